"""Two executions for the same target environment cannot both proceed: the first step that changes
anything takes a lock (a conditional write in the stack's bucket). The second fails at once with
MigrationInProgress and touches nothing of the first one's: not its grants, not its lock."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
from cfnlint.decode import cfn_yaml

from emulation.accounts import ACCOUNT_ID
from emulation.lambdas import REPO_ROOT
from emulation.local_stack import LocalStack
from mwaa_migrate.migration_bucket import lock_key
from tests.hardening.end_state import differences, snapshot

SOURCE_ROLE = "AmazonMWAA-analytics-prod"
TARGET = "analytics-prod-2-10"
GATE_SECONDS = 60


class Gate:
    """Holds invocations of one function (for the executions `holds` picks) until opened."""

    def __init__(
        self, stack: LocalStack, function: str, holds: Callable[[str], bool] = lambda _: True
    ) -> None:
        self.opened = threading.Event()
        self.reached = threading.Event()
        self.held: list[str] = []
        original = stack.lambdas.invoke

        def invoke(function_name: str, event: dict[str, Any]) -> tuple[str, bool, str]:
            execution = str(event.get("executionId", ""))
            if function_name == function and holds(execution):
                self.held.append(execution)
                self.reached.set()
                if not self.opened.wait(GATE_SECONDS):
                    raise TimeoutError(f"the gate before {function} was never opened")
            return original(function_name, event)

        stack.lambdas.invoke = invoke  # type: ignore[method-assign]


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GATE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def _status(stack: LocalStack, arn: str) -> str:
    return str(stack.sfn.describe_execution(executionArn=arn)["status"])


def _lock_holder(stack: LocalStack) -> str | None:
    try:
        body = stack.s3.get_object(Bucket=stack.scenario.migration_bucket, Key=lock_key(TARGET))["Body"]
    except stack.s3.exceptions.NoSuchKey:
        return None
    return str(json.loads(body.read())["executionId"])


def test_a_second_execution_for_the_same_target_fails_at_the_lock_and_leaves_the_first_alone(
    harness, scenario, uninterrupted
):
    run = harness(scenario)
    stack = run.stack
    first_arn = stack.start("first")
    gate = Gate(stack, "CloneEnvironmentFunction", holds=lambda execution: execution == first_arn)
    assert gate.reached.wait(GATE_SECONDS), "the first execution reached CloneEnvironment"

    second = run.run("second")

    assert second["status"] == "FAILED"
    assert second["error"] == "MigrationInProgress"
    assert first_arn in second["cause"]
    # The first one's grants and lock are untouched by the second's failure path.
    assert len(stack.iam.list_role_policies(RoleName=SOURCE_ROLE)["PolicyNames"]) == 2
    assert _lock_holder(stack) == first_arn
    report_key = f"migrations/analytics-prod/{TARGET}/reports/second.json"
    assert stack.read_json(scenario.migration_bucket, report_key)["policiesRemoved"] == []
    assert [c for c in stack.mwaa_emulator.calls if c[0] == "CreateEnvironment"] == []

    gate.opened.set()
    first = stack.wait(first_arn, timeout_seconds=180)

    assert first["status"] == "SUCCEEDED", first.get("cause")
    assert _lock_holder(stack) is None, "the lock is released at the end"
    assert differences(uninterrupted, snapshot(stack)) == []


def _migration_rule() -> dict[str, Any]:
    template = cfn_yaml.load(str(REPO_ROOT / "template.yaml"))
    event = template["Resources"]["MigrationStateMachine"]["Properties"]["Events"]["MigrationRequested"]
    properties: dict[str, Any] = event["Properties"]
    return properties


def _deliveries(stack: LocalStack, event: dict[str, Any], times: int) -> list[dict[str, Any]]:
    """What the template's rule delivers when `event` is put `times` times: EventBridge (moto)
    matches each against the rule's pattern and delivers it to a queue we read back."""
    rule = _migration_rule()
    pattern = {**rule["Pattern"], "account": [ACCOUNT_ID]}
    events = boto3.client("events", region_name=stack.region)
    sqs = boto3.client("sqs", region_name=stack.region)
    queue_url = sqs.create_queue(QueueName="deliveries")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="migration-requested", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="migration-requested", Targets=[{"Id": "deliveries", "Arn": queue_arn}])
    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
    }
    for _ in range(times):
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    return [json.loads(message["Body"]) for message in messages]


def test_a_duplicate_eventbridge_delivery_starts_one_migration(harness, scenario, uninterrupted):
    run = harness(scenario)
    stack = run.stack
    event = json.loads((REPO_ROOT / "events" / "eventbridge_migration_requested.json").read_text())
    deliveries = _deliveries(stack, event, times=2)
    assert len(deliveries) == 2, "at-least-once: the event arrives twice"
    assert _migration_rule()["InputPath"] == "$.detail"
    # Both executions get as far as they can before either finishes.
    gate = Gate(stack, "FinishMigrationFunction")

    # As EventBridge's Step Functions target does: StartExecution, the detail as input, a fresh name.
    arns = [
        stack.start(f"eventbridge-{uuid.uuid4().hex[:12]}", delivery["detail"]) for delivery in deliveries
    ]
    _wait_for(lambda: any(_status(stack, arn) == "FAILED" for arn in arns), "one execution to fail")
    gate.opened.set()
    ended = {arn: stack.wait(arn, timeout_seconds=180) for arn in arns}

    statuses = sorted(described["status"] for described in ended.values())
    assert statuses == ["FAILED", "SUCCEEDED"]
    (loser,) = [described for described in ended.values() if described["status"] == "FAILED"]
    assert loser["error"] == "MigrationInProgress"
    assert len(gate.held) == 1, "only one execution got as far as finishing"
    assert [c for c in stack.mwaa_emulator.calls if c[0] == "CreateEnvironment"] == [
        ("CreateEnvironment", TARGET)
    ]
    assert differences(uninterrupted, snapshot(stack)) == []
