"""An execution's history read as steps: their order, durations, retries, failures, what still runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.stub import Stubber

from mwaa_migrate.execution import StepTiming, finished_steps, step_timings

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:mwaa-migrate-migration:run-1"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


# ------------------------------------------------------------------ steps from the history


class History:
    """Builds an execution history the way Step Functions links it (previousEventId)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, previous: int, seconds: float, **details: Any) -> int:
        event_id = len(self.events) + 1
        event = {
            "id": event_id,
            "type": kind,
            "previousEventId": previous,
            "timestamp": T0 + timedelta(seconds=seconds),
        }
        event.update(details)
        self.events.append(event)
        return event_id

    def enter(self, state_type: str, name: str, previous: int, seconds: float) -> int:
        return self.add(
            f"{state_type}StateEntered", previous, seconds, stateEnteredEventDetails={"name": name}
        )

    def exit(self, state_type: str, name: str, previous: int, seconds: float) -> int:
        return self.add(f"{state_type}StateExited", previous, seconds, stateExitedEventDetails={"name": name})

    def task(self, name: str, previous: int, start: float, end: float, *, fail: str | None = None) -> int:
        entered = self.enter("Task", name, previous, start)
        scheduled = self.add("TaskScheduled", entered, start)
        started = self.add("TaskStarted", scheduled, start)
        if fail:
            return self.add("TaskFailed", started, end, taskFailedEventDetails={"error": fail, "cause": "x"})
        succeeded = self.add("TaskSucceeded", started, end)
        return self.exit("Task", name, succeeded, end)


def _by_state(timings: list[StepTiming]) -> dict[str, StepTiming]:
    return {timing.state: timing for timing in timings}


def test_steps_come_in_the_order_entered_with_their_durations_and_pass_and_choice_states_left_out():
    history = History()
    start = history.add("ExecutionStarted", 0, 0)
    passed = history.enter("Pass", "ReadInput", start, 0)
    left = history.exit("Pass", "ReadInput", passed, 0)
    planned = history.task("PlanMigration", left, 0, 1.5)
    choice = history.enter("Choice", "IsDryRun", planned, 1.5)
    history.task("GrantPermissions", history.exit("Choice", "IsDryRun", choice, 1.5), 1.5, 2.0)

    timings = step_timings(history.events, ended=True)

    assert [(t.state, t.type, t.runs, t.seconds, t.status) for t in timings] == [
        ("PlanMigration", "Task", 1, 1.5, "succeeded"),
        ("GrantPermissions", "Task", 1, 0.5, "succeeded"),
    ]


def test_a_wait_loop_adds_up_its_runs():
    history = History()
    previous = 0
    for poll in range(3):
        waited = history.enter("Wait", "WaitForTarget", previous, poll * 60)
        left = history.exit("Wait", "WaitForTarget", waited, poll * 60 + 59)
        previous = history.task("CheckTarget", left, poll * 60 + 59, poll * 60 + 60)

    timings = _by_state(step_timings(history.events, ended=True))

    assert (timings["WaitForTarget"].runs, timings["WaitForTarget"].seconds) == (3, 177.0)
    assert (timings["CheckTarget"].runs, timings["CheckTarget"].seconds) == (3, 3.0)


def test_a_retried_task_counts_its_retries_and_succeeds():
    history = History()
    entered = history.enter("Task", "CheckTarget", 0, 0)
    scheduled = history.add("TaskScheduled", entered, 0)
    started = history.add("TaskStarted", scheduled, 0)
    failed = history.add("TaskFailed", started, 1, taskFailedEventDetails={"error": "TransientAwsError"})
    again = history.add("TaskScheduled", failed, 3)
    started = history.add("TaskStarted", again, 3)
    succeeded = history.add("TaskSucceeded", started, 4)
    history.exit("Task", "CheckTarget", succeeded, 4)

    (timing,) = step_timings(history.events, ended=True)

    assert (timing.status, timing.retries, timing.error, timing.seconds) == ("succeeded", 1, None, 4.0)
    assert timing.retried_errors == ["TransientAwsError"]


def test_a_task_failing_inside_a_parallel_fails_it_and_stops_the_other_branch():
    history = History()
    parallel = history.enter("Parallel", "PrepareTargetAndExport", 0, 0)
    branches = history.add("ParallelStateStarted", parallel, 0)
    history.enter("Task", "TriggerExportDag", branches, 1)  # still running in the other branch
    failed = history.task("CheckTarget", branches, 1, 5, fail="EnvironmentFailed")
    parallel_failed = history.add("ParallelStateFailed", failed, 5)
    history.exit("Parallel", "PrepareTargetAndExport", parallel_failed, 5)

    timings = _by_state(step_timings(history.events, now=T0 + timedelta(seconds=60), ended=True))

    assert (timings["PrepareTargetAndExport"].status, timings["PrepareTargetAndExport"].seconds) == (
        "failed",
        5.0,
    )
    assert (timings["CheckTarget"].status, timings["CheckTarget"].error) == ("failed", "EnvironmentFailed")
    assert (timings["CheckTarget"].retries, timings["TriggerExportDag"].status) == (0, "stopped")
    assert timings["TriggerExportDag"].seconds == 4.0


def test_while_the_execution_runs_an_open_state_is_running_and_counts_up_to_now():
    history = History()
    history.enter("Wait", "WaitForTarget", 0, 0)

    (timing,) = step_timings(history.events, now=T0 + timedelta(seconds=42), ended=False)

    assert (timing.status, timing.seconds) == ("running", 42.0)


def test_a_task_waiting_for_its_retry_is_running_with_the_error_it_retries():
    history = History()
    entered = history.enter("Task", "CloneEnvironment", 0, 0)
    scheduled = history.add("TaskScheduled", entered, 0)
    started = history.add("TaskStarted", scheduled, 0)
    failed = history.add("TaskFailed", started, 1, taskFailedEventDetails={"error": "TransientAwsError"})
    history.add("TaskScheduled", failed, 3)

    (timing,) = step_timings(history.events, now=T0 + timedelta(seconds=4), ended=False)

    assert (timing.status, timing.error) == ("running", "TransientAwsError")


def test_a_fail_state_is_a_failed_step():
    history = History()
    history.enter("Fail", "MigrationFailed", 0, 9)

    (timing,) = step_timings(history.events, ended=True)

    assert (timing.state, timing.status, timing.seconds) == ("MigrationFailed", "failed", 0.0)


def test_the_report_leaves_out_the_step_that_is_writing_it():
    history = History()
    planned = history.task("PlanMigration", 0, 0, 1)
    entered = history.enter("Task", "FinishMigration", planned, 2)
    history.add("TaskScheduled", entered, 2)
    client = boto3.client("stepfunctions", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_execution_history",
            {"events": history.events},
            {"executionArn": EXECUTION, "includeExecutionData": False},
        )
        steps = finished_steps(client, EXECUTION)

    assert [(step.state, step.status) for step in steps] == [("PlanMigration", "succeeded")]
