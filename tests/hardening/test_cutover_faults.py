"""The cutover's fault matrix: a failure at every state from the pause onward, and inside the
project's DAG runs of the window, on the state machine executed end to end.

Whatever fails, afterwards exactly one environment runs the source's recorded active DAGs: the
source again when the target never went live (the recorded DAGs unpaused, never a DAG its owner had
paused), the target when it had; and the report's first line says which.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulation.local_stack import LocalStack
from emulation.scenario import Scenario
from tests.hardening.discovery import TASKS
from tests.hardening.test_crash_rerun import state_of_invocation

SOURCE = "analytics-prod"
TARGET = "analytics-prod-2-10"
# The default scenario's source: two DAGs active, one its owner paused.
ACTIVE = ("daily_sales", "hourly_events")
PAUSED_BY_OWNER = "legacy_export"

# Task states from the pause onward (each fails at its first invocation), and which environment
# runs the DAGs then. The cutover import's run unpauses the target itself: its first check comes
# before the run ends; StartTargetDags comes after the target went live.
FAILING_STATES = {
    "TriggerCutoverExport": "source",
    "CheckCutoverExportRun": "source",
    "TriggerCutoverImport": "source",
    "CheckCutoverImportRun": "source",
    "StartTargetDags": "target",
    "ListLogStreams": "target",
    "CopyLogStreams": "target",
    "SummarizeLogCopy": "target",
    "FinishMigration": "target",
}
# Tasks of the project's DAG runs inside the window: "dag_id@phase/task_id".
FAILING_DAG_TASKS = {
    "mwaa_migrate_export@cutover/drain": "source",
    "mwaa_migrate_export@cutover/export_tables": "source",
    "mwaa_migrate_import@cutover/verify_export": "source",
    "mwaa_migrate_import@cutover/import_tables": "source",
    "mwaa_migrate_import@cutover/unpause_dags": "source",
}


def fail_at(stack: LocalStack, state: str) -> list[str]:
    """Every invocation of `state`'s function made by `state` fails with an error no Retry
    covers; returns the states that failed (to tell the failure was reached)."""
    failed: list[str] = []
    original = stack.lambdas.invoke
    function = TASKS[state].function

    def invoke(function_name: str, event: dict[str, Any]) -> tuple[str, bool, str]:
        if function_name == function:
            execution_arn = str(event.get("executionId", ""))
            # Inside the Distributed Map the executionId is the parent's: match on the function.
            if TASKS[state].in_map or state_of_invocation(stack, execution_arn, event) == state:
                failed.append(state)
                payload = {"errorType": "MigrationConflict", "errorMessage": f"injected failure in {state}"}
                return json.dumps(payload), True, ""
        return original(function_name, event)

    stack.lambdas.invoke = invoke  # type: ignore[method-assign]
    return failed


def paused(stack: LocalStack, environment: str) -> dict[str, bool]:
    rows = stack.mwaa_emulator.environment(environment).metadata.get("dag", [])
    return {str(row["dag_id"]): bool(row.get("is_paused")) for row in rows}


def report_of(stack: LocalStack, described: dict[str, Any]) -> dict[str, Any]:
    name = str(described["executionArn"]).rsplit(":", 1)[-1]
    key = f"migrations/{SOURCE}/{TARGET}/reports/{name}.json"
    return dict(stack.read_json(stack.scenario.migration_bucket, key))


def assert_one_side_runs_the_dags(stack: LocalStack, described: dict[str, Any], expected: str) -> None:
    source, target = paused(stack, SOURCE), paused(stack, TARGET)
    running = {"source": [d for d in ACTIVE if not source[d]], "target": [d for d in ACTIVE if not target[d]]}
    assert running[expected] == list(ACTIVE), (expected, source, target)
    other = "target" if expected == "source" else "source"
    assert running[other] == [], f"both environments run {running[other]}"
    assert source[PAUSED_BY_OWNER] is True, "a DAG its owner paused is never unpaused"
    report = report_of(stack, described)
    which = TARGET if expected == "target" else SOURCE
    assert report["dagsRunning"].startswith(f"The {expected} {which} runs the DAGs"), report["dagsRunning"]
    assert report["status"] == "FAILED"


@pytest.mark.parametrize("state", sorted(FAILING_STATES))
def test_a_failure_at_each_state_of_the_window_leaves_exactly_one_side_running(harness, scenario, state):
    run = harness(scenario)
    failed = fail_at(run.stack, state)

    described = run.run()

    assert failed, f"{state} was not reached"
    assert described["status"] == "FAILED"
    assert_one_side_runs_the_dags(run.stack, described, FAILING_STATES[state])


@pytest.mark.parametrize("where", sorted(FAILING_DAG_TASKS))
def test_a_failing_task_of_the_windows_dag_runs_leaves_exactly_one_side_running(harness, where):
    scenario = Scenario.model_validate(
        {**_default_data(), "dagFailures": {where: f"injected failure in {where}"}}
    )
    run = harness(scenario)

    described = run.run()

    assert described["status"] == "FAILED"
    assert described["error"] == "DagRunFailed"
    assert_one_side_runs_the_dags(run.stack, described, FAILING_DAG_TASKS[where])


def test_a_drain_past_its_deadline_with_fail_restores_the_source(harness):
    # A run whose task never finishes is in flight at the pause, and the drain may not wait.
    data = _default_data()
    data["input"] = {**data["input"], "drainTimeoutMinutes": 0, "onDrainTimeout": "fail"}
    data["sourceMetadata"] = {**data["sourceMetadata"], **_in_flight_run()}
    run = harness(Scenario.model_validate(data))
    run.stack.dag_runtime.drain_polls = None

    described = run.run()

    assert described["status"] == "FAILED"
    assert "DrainTimeout" in described["cause"]
    assert_one_side_runs_the_dags(run.stack, described, "source")


def test_a_drain_past_its_deadline_with_carry_moves_the_run_as_it_stands(harness):
    data = _default_data()
    data["input"] = {**data["input"], "drainTimeoutMinutes": 0, "onDrainTimeout": "carry"}
    data["sourceMetadata"] = {**data["sourceMetadata"], **_in_flight_run()}
    run = harness(Scenario.model_validate(data))
    run.stack.dag_runtime.drain_polls = None

    described = run.run()

    assert described["status"] == "SUCCEEDED", described.get("cause")
    carried = [
        row
        for row in run.stack.mwaa_emulator.environment(TARGET).metadata["task_instance"]
        if row["run_id"] == IN_FLIGHT_RUN
    ]
    assert {row["task_id"]: row["state"] for row in carried} == {"extract": "success", "transform": None}


IN_FLIGHT_RUN = "manual__2026-12-06T00:00:00+00:00"


def _default_data() -> dict[str, Any]:
    from tests.hardening.discovery import default_scenario  # noqa: PLC0415

    return default_scenario().model_dump(mode="json", by_alias=True)


def _in_flight_run() -> dict[str, Any]:
    base = _default_data()["sourceMetadata"]
    run = {
        "dag_id": "hourly_events",
        "run_id": IN_FLIGHT_RUN,
        "state": "running",
        "run_type": "manual",
        "execution_date": "2026-12-06T00:00:00+00:00",
        "start_date": "2026-12-06T00:00:02+00:00",
        "end_date": None,
        "conf": {},
        "external_trigger": True,
    }

    def task(task_id: str, state: str) -> dict[str, Any]:
        return {
            "dag_id": "hourly_events",
            "task_id": task_id,
            "run_id": IN_FLIGHT_RUN,
            "map_index": -1,
            "try_number": 1,
            "state": state,
            "start_date": "2026-12-06T00:00:03+00:00",
            "end_date": "2026-12-06T00:01:00+00:00" if state == "success" else None,
            "pool": "default_pool",
            "queue": "default",
            "operator": "PythonOperator",
            "max_tries": 1,
            "hostname": "worker-1",
        }

    return {
        "dag_run": [*base["dag_run"], run],
        "task_instance": [
            *base.get("task_instance", []),
            task("extract", "success"),
            task("transform", "running"),
        ],
    }
