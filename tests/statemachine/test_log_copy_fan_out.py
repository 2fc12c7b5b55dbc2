"""The log copy's fan-out run by the real ASL: list, Distributed Map of work items, summary, report."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any
from unittest import mock

import pytest

from emulation.lambdas import FakeLambdaContext
from emulation.local_stack import LocalStack, Timing
from emulation.scenario import Scenario, TaskLogStream
from tests.statemachine.conftest import run

SOURCE = "analytics-prod"
TARGET = "analytics-prod-2-10"
BUCKET = "mwaa-migrate-local"


@pytest.fixture
def stacks() -> Iterator[Callable[..., LocalStack]]:
    with ExitStack() as opened:

        def start(scenario: Scenario, **timing: Any) -> LocalStack:
            return opened.enter_context(LocalStack(scenario, timing=Timing(**timing)))

        yield start


def many_streams(scenario: Scenario, count: int, events: int = 30) -> Scenario:
    logs = [
        TaskLogStream(
            stream=f"dag_id=etl/run_id=scheduled__{i:03d}/task_id=load/attempt=1.log",
            events=events,
            minutes_ago=120,
        )
        for i in range(count)
    ]
    return scenario.model_copy(update={"task_logs": logs})


def target_events(stack: LocalStack, group: str = f"airflow-{TARGET}-Task") -> dict[str, list[str]]:
    """Every target stream's messages, read page by page to the end."""
    held: dict[str, list[str]] = {}
    for page in stack.logs.get_paginator("describe_log_streams").paginate(logGroupName=group):
        for stream in page["logStreams"]:
            request: dict[str, Any] = {
                "logGroupName": group,
                "logStreamName": stream["logStreamName"],
                "startFromHead": True,
            }
            messages = held.setdefault(stream["logStreamName"], [])
            while True:
                answer = stack.logs.get_log_events(**request)
                messages.extend(event["message"] for event in answer["events"])
                if answer["nextForwardToken"] == request.get("nextToken"):
                    break
                request["nextToken"] = answer["nextForwardToken"]
    return held


def report(stack: LocalStack, described: dict[str, Any]) -> dict[str, Any]:
    keys = [o["Key"] for o in stack.s3.list_objects_v2(Bucket=BUCKET, Prefix="migrations/")["Contents"]]
    key = next(k for k in keys if "/reports/" in k and k.endswith(".json"))
    return dict(stack.read_json(BUCKET, key))


def entered(described: dict[str, Any]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in described["history"] if "stateEnteredEventDetails" in e
    ]


def test_streams_fan_out_to_a_distributed_map_of_work_items_and_are_each_copied_once(scenario, stacks):
    stack = stacks(many_streams(scenario, 23), log_copy_max_concurrency=3)

    described = run(stack)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert "CopyLogStreamsInParallel" in entered(described)
    assert any(e["type"] == "MapRunStarted" for e in described["history"])
    # 23 streams for a map of 3 at once: 3 items of at most 8 streams, one child execution each.
    copies = [i for i in stack.lambdas.invocations if i.function == "CopyLogStreamsFunction"]
    assert sorted(i.event["index"] for i in copies) == [0, 1, 2]
    assert sum(len(i.event["item"]["streams"]) for i in copies) == 23
    held = target_events(stack)
    assert len(held) == 23
    assert all(len(messages) == 30 == len(set(messages)) for messages in held.values())
    assert stack.put_log.refused == []
    logs = report(stack, described)["logs"]
    assert (logs["streamsListed"], logs["streamsCopied"], logs["eventsWritten"], logs["complete"]) == (
        23,
        23,
        690,
        True,
    )
    assert logs["groups"][0]["group"] == "Task"
    assert logs["putLogEventsCalls"] == 23


def test_a_stream_too_big_for_one_call_returns_a_continuation_and_the_child_loops(scenario, stacks):
    big = TaskLogStream(
        stream="dag_id=etl/run_id=r/task_id=big/attempt=1.log", events=25_000, minutes_ago=600
    )
    stack = stacks(scenario.model_copy(update={"task_logs": [big]}))

    def remaining(context: FakeLambdaContext) -> int:
        """Each look at the clock finds 300 s less: a call stops after a batch or two. (The copy looks
        only once its cursor has moved, and a small stream is read by one FilterLogEvents batch
        before its first write: the first call looks three times.)"""
        context.remaining_ms -= 300_000
        return context.remaining_ms

    with mock.patch.object(FakeLambdaContext, "get_remaining_time_in_millis", remaining):
        described = run(stack)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    copies = [i for i in stack.lambdas.invocations if i.function == "CopyLogStreamsFunction"]
    assert len(copies) > 1
    assert copies[1].event["progress"]["resumeAt"]["stream"] == big.stream
    (messages,) = target_events(stack).values()
    assert len(messages) == len(set(messages)) == 25_000
    copied = [call.events for call in stack.put_log.accepted if call.log_group == f"airflow-{TARGET}-Task"]
    assert copied == [10_000, 10_000, 5_000]


def test_a_killed_copy_is_retried_by_the_state_and_writes_nothing_twice(scenario, stacks):
    stack = stacks(many_streams(scenario, 2, events=40))
    copy = stack.lambdas.handlers["CopyLogStreamsFunction"]
    timed_out = type("Sandbox.Timedout", (Exception,), {})
    killed: list[int] = []

    def killed_after_writing(event: dict[str, Any], context: Any) -> Any:
        result = copy(event, context)
        if not killed:  # the first call does its work, then Lambda's timeout kills it before it answers
            killed.append(event["index"])
            raise timed_out("Task timed out after 900.00 seconds")
        return result

    stack.lambdas.handlers["CopyLogStreamsFunction"] = killed_after_writing
    described = run(stack)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    errors = [i.error_type for i in stack.lambdas.invocations if i.function == "CopyLogStreamsFunction"]
    assert errors.count("Sandbox.Timedout") == 1
    assert stack.retry_sleeps, "the state's Retry waited before the second attempt"
    assert all(len(messages) == 40 == len(set(messages)) for messages in target_events(stack).values())
    logs = report(stack, described)["logs"]
    assert (logs["eventsWritten"] + logs["eventsAlreadyPresent"], logs["eventsAlreadyPresent"]) == (80, 40)


def test_a_failed_work_item_fails_the_migration_at_the_map_by_default(scenario, stacks):
    stack = stacks(many_streams(scenario, 4), log_copy_max_concurrency=4)

    def broken(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("the copy broke")

    stack.lambdas.handlers["CopyLogStreamsFunction"] = broken
    described = run(stack)

    assert described["status"] == "FAILED"
    # The failed item's own error: its message, and the Map's threshold that made it fail the migration.
    assert described["error"] == "RuntimeError"
    assert "States.ExceedToleratedFailureThreshold" in described["cause"]
    assert "RuntimeError: the copy broke" in described["cause"]
    assert report(stack, described)["failure"]["state"] == "CopyLogStreamsInParallel"
    assert stack.iam.list_role_policies(RoleName="AmazonMWAA-analytics-prod")["PolicyNames"] == []


def test_failed_items_within_the_tolerated_percentage_are_reported_not_copied(scenario, stacks):
    stack = stacks(
        many_streams(scenario, 4), log_copy_max_concurrency=4, log_copy_tolerated_failure_percentage=50
    )
    copy = stack.lambdas.handlers["CopyLogStreamsFunction"]

    def first_item_broken(event: dict[str, Any], context: Any) -> Any:
        if event["index"] == 0:
            raise RuntimeError("the copy broke")
        return copy(event, context)

    stack.lambdas.handlers["CopyLogStreamsFunction"] = first_item_broken
    described = run(stack)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    logs = report(stack, described)["logs"]
    assert (logs["itemsFailed"], logs["streamsFailed"], logs["streamsCopied"], logs["complete"]) == (
        1,
        1,
        3,
        False,
    )
    assert "the copy of its work item failed" in logs["skipped"][0]["reason"]


def test_other_log_groups_are_copied_on_request(scenario, stacks):
    stack = stacks(many_streams(scenario, 1))
    stack.logs.create_log_stream(logGroupName=f"airflow-{SOURCE}-Worker", logStreamName="worker-1.log")
    now_ms = int(time.time() * 1000)
    stack.logs.put_log_events(
        logGroupName=f"airflow-{SOURCE}-Worker",
        logStreamName="worker-1.log",
        logEvents=[{"timestamp": now_ms - 60_000 + i, "message": f"worker line {i}"} for i in range(5)],
    )

    described = run(stack, execution_input={**scenario.input, "logGroups": ["Task", "Worker", "WebServer"]})

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert target_events(stack, f"airflow-{TARGET}-Worker") == {
        "worker-1.log": [f"worker line {i}" for i in range(5)]
    }
    groups = {g["group"]: g for g in report(stack, described)["logs"]["groups"]}
    assert (groups["Task"]["eventsWritten"], groups["Worker"]["eventsWritten"]) == (30, 5)
    assert (
        groups["WebServer"]["streamsListed"] == 0
    )  # the default scenario has WebServer logs off, but a group


def test_no_log_groups_means_no_log_copy(scenario, stacks):
    stack = stacks(many_streams(scenario, 2))

    described = run(stack, execution_input={**scenario.input, "logGroups": []})

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert "SkipLogCopy" in entered(described)
    assert stack.lambdas.count("ListLogStreamsFunction") == 0
    assert report(stack, described)["logs"]["note"].startswith("no log groups to copy (logGroups is empty")


def test_bad_log_choices_are_refused_before_anything_changes(scenario, stacks):
    stack = stacks(scenario)

    described = run(
        stack,
        execution_input={**scenario.input, "logGroups": ["Task", "Audit"], "failedTasksOnly": "perhaps"},
    )

    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidMigrationRequest"
    assert "logGroups.1" in described["cause"]
    assert "failedTasksOnly" in described["cause"]
    assert not [c for c in stack.mwaa_emulator.calls if c[0] != "GetEnvironment"]


def test_failed_tasks_only_copies_every_attempt_of_the_failed_task_instances(scenario, stacks):
    run_id = "scheduled__2026-11-21T00:00:00+00:00"
    instances = [
        {"dag_id": "daily_sales", "task_id": "extract", "run_id": run_id, "map_index": -1, "state": "failed",
         "try_number": 2, "pool": "default_pool"},
        {"dag_id": "daily_sales", "task_id": "extract", "run_id": "scheduled__2026-11-20T00:00:00+00:00",
         "map_index": -1, "state": "success", "try_number": 1, "pool": "default_pool"},
    ]  # fmt: skip
    metadata = {**scenario.source_metadata, "task_instance": instances}
    stack = stacks(scenario.model_copy(update={"source_metadata": metadata}))

    described = run(stack, execution_input={**scenario.input, "failedTasksOnly": True})

    assert described["status"] == "SUCCEEDED", described.get("cause")
    stream = "dag_id=daily_sales/run_id=scheduled__2026-11-21T00_00_00+00_00/task_id=extract/attempt={}.log"
    assert sorted(target_events(stack)) == [stream.format(1), stream.format(2)]
    (task,) = report(stack, described)["logs"]["groups"]
    # 8 listed: 2 outside the window, 4 of task instances that did not fail, the 2 attempts copied.
    assert (task["streamsListed"], task["streamsNotFailed"], task["eventsWritten"]) == (8, 4, 80 + 60)
