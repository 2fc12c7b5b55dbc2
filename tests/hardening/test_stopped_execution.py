"""An execution stopped (StopExecution) or timed out never reaches RecordFailure. The status-change
event EventBridge sends for it calls SettleStoppedExecution, which must leave exactly one side
running the DAGs, remove the grants and release the lock, as the failure path does; and an event
that is not true (forged, or for an execution that ended by itself) changes nothing."""

from __future__ import annotations

import json
from typing import Any

from emulation.lambdas import FakeLambdaContext
from emulation.local_stack import LocalStack
from tests.hardening.test_crash_rerun import stop_after

SOURCE, TARGET = "analytics-prod", "analytics-prod-2-10"
ACTIVE = ("daily_sales", "hourly_events")
FUNCTION = "SettleStoppedExecutionFunction"


def status_change(stack: LocalStack, execution_arn: str, status: str = "ABORTED") -> dict[str, Any]:
    return {
        "version": "0",
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "account": "123456789012",
        "region": stack.region,
        "resources": [execution_arn],
        "detail": {
            "executionArn": execution_arn,
            "stateMachineArn": stack.state_machine_arn,
            "status": status,
        },
    }


def settle(stack: LocalStack, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = stack.lambdas.handlers[FUNCTION](
        event, FakeLambdaContext(function_name=FUNCTION)
    )
    return result


def paused(stack: LocalStack, environment: str) -> dict[str, bool]:
    rows = stack.mwaa_emulator.environment(environment).metadata["dag"]
    return {str(row["dag_id"]): bool(row["is_paused"]) for row in rows}


def test_a_run_stopped_inside_the_window_gives_the_dags_back_to_the_source(harness, scenario):
    run = harness(scenario)
    stop_after(run.stack, "TriggerCutoverImport")
    stopped = run.stack.wait(run.stack.start("stopped"), timeout_seconds=180)
    assert stopped["status"] == "ABORTED"
    assert all(paused(run.stack, SOURCE)[dag] for dag in ACTIVE), "stopped inside the window"

    result = settle(run.stack, status_change(run.stack, stopped["executionArn"]))

    assert result["settled"] is True
    assert result["dagsRunning"].startswith(f"The source {SOURCE} runs the DAGs again")
    assert [paused(run.stack, SOURCE)[dag] for dag in ACTIVE] == [False, False]
    assert [paused(run.stack, TARGET)[dag] for dag in ACTIVE] == [True, True]
    assert run.stack.iam.list_role_policies(RoleName="AmazonMWAA-analytics-prod")["PolicyNames"] == []
    report = run.stack.read_json(run.stack.scenario.migration_bucket, result["reportUri"].split("/", 3)[3])
    assert report["failure"]["error"] == "ExecutionAborted"
    # The lock is released: the same input runs again at once.
    again = run.stack.wait(run.stack.start("again"), timeout_seconds=180)
    assert again["status"] == "SUCCEEDED", again.get("cause")


def test_an_event_for_an_execution_that_is_still_running_or_of_another_machine_changes_nothing(
    harness, scenario
):
    run = harness(scenario)
    finished = run.stack.wait(run.stack.start("finished"), timeout_seconds=180)
    before = {name: paused(run.stack, name) for name in (SOURCE, TARGET)}
    other = finished["executionArn"].replace(":mwaa-migrate-migration:", ":someone-elses:")

    results = [
        settle(run.stack, status_change(run.stack, finished["executionArn"])),
        settle(run.stack, status_change(run.stack, other)),
    ]

    assert results == [{"settled": False}, {"settled": False}]
    assert {name: paused(run.stack, name) for name in (SOURCE, TARGET)} == before
    assert json.loads(finished["output"])["status"] == "SUCCEEDED"
