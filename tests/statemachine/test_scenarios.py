"""The scenarios of `make demo SCENARIO=...`: each ends as it says, and the cutover's show what they
are about."""

from __future__ import annotations

import pytest

from emulation import demo
from emulation.lambdas import REPO_ROOT
from emulation.local_stack import scenario_path
from emulation.scenario import Scenario
from tests.statemachine.conftest import run

SCENARIOS = sorted(path.stem for path in (REPO_ROOT / "scenarios").glob("*.json"))
SOURCE = "analytics-prod"
TARGET = "analytics-prod-2-10"
ACTIVE = ("daily_sales", "hourly_events")


def _paused(stack, environment: str) -> dict[str, bool]:
    return {
        row["dag_id"]: row["is_paused"]
        for row in stack.mwaa_emulator.environment(environment).metadata["dag"]
    }


@pytest.mark.parametrize("name", SCENARIOS)
def test_make_demo_ends_each_scenario_as_it_expects(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main([name]) == 0, capsys.readouterr().err


def test_cutover_fails_restores_the_sources_recorded_dags_and_keeps_the_targets_paused(local_stack):
    stack = local_stack(Scenario.load(scenario_path("cutover_fails")))

    described = run(stack)

    assert (described["status"], described["error"]) == ("FAILED", "DagRunFailed")
    source, target = _paused(stack, SOURCE), _paused(stack, TARGET)
    assert [source[dag] for dag in ACTIVE] == [False, False]
    assert [target[dag] for dag in ACTIVE] == [True, True]
    assert source["legacy_export"] is True


def test_create_failed_never_pauses_the_source_and_a_rerun_replaces_the_target(local_stack):
    stack = local_stack(Scenario.load(scenario_path("create_failed")))

    first = run(stack, name="first")
    paused_after_failure = _paused(stack, SOURCE)
    second = run(stack, name="second")

    assert first["status"] == "FAILED"
    assert [paused_after_failure[dag] for dag in ACTIVE] == [False, False]
    assert second["status"] == "SUCCEEDED", second.get("cause")
    calls = [
        call for call in stack.mwaa_emulator.calls if call[0] in {"CreateEnvironment", "DeleteEnvironment"}
    ]
    assert calls == [
        ("CreateEnvironment", TARGET),
        ("DeleteEnvironment", TARGET),
        ("CreateEnvironment", TARGET),
    ]


def test_approve_waits_before_the_window_until_the_operator_answers(local_stack):
    stack = local_stack(Scenario.load(scenario_path("approve")))

    described = run(stack)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in described["history"] if "stateEnteredEventDetails" in e
    ]
    assert (
        entered.index("CheckImportRun")
        < entered.index("AwaitApproval")
        < entered.index("TriggerCutoverExport")
    )


def test_drain_carries_the_run_in_flight_to_the_target_as_it_stands(local_stack):
    scenario = Scenario.load(scenario_path("drain"))
    stack = local_stack(scenario)
    [in_flight] = [r for r in scenario.source_metadata["dag_run"] if r["state"] == "running"]

    described = run(stack)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    tasks = {
        row["task_id"]: row["state"]
        for row in stack.mwaa_emulator.environment(TARGET).metadata["task_instance"]
        if row["run_id"] == in_flight["run_id"]
    }
    # transform was running at the pause: the drain let it finish; load had not started.
    assert tasks == {"extract": "success", "transform": "success", "load": None}
    [carried] = [
        r
        for r in stack.mwaa_emulator.environment(TARGET).metadata["dag_run"]
        if r["run_id"] == in_flight["run_id"]
    ]
    assert carried["state"] == "running", "the target's scheduler finishes it once the DAG runs there"
