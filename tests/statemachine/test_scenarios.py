"""The scenarios of `make demo SCENARIO=...`: each ends as it says, its figures add up the same in the
report, the Markdown (what `mwaa-migrate report` prints) and the demo's output, and the cutover's
show what they are about."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulation import demo
from emulation.faults import instant_botocore_retries
from emulation.lambdas import REPO_ROOT
from emulation.local_stack import instant_cli_retries, instant_state_retries, scenario_path
from emulation.scenario import Scenario, UnknownScenario, find
from mwaa_migrate import clients
from mwaa_migrate.logs.log_names import parse_task_stream
from mwaa_migrate.logs.log_report import LogCopyReport
from mwaa_migrate.run.report import MigrationReport
from mwaa_migrate.run.report_markdown import log_copy_lines, render_markdown
from tests.statemachine.conftest import run

SCENARIOS = sorted(path.stem for path in (REPO_ROOT / "scenarios").glob("*.json"))
SOURCE = "analytics-prod"
TARGET = "analytics-prod-2-10"
ACTIVE = ("daily_sales", "hourly_events")
# Lines a person reads at the end of `make demo` (a scenario that runs twice prints two reports).
ONE_SCREEN = 50


def _paused(stack, environment: str) -> dict[str, bool]:
    return {
        row["dag_id"]: row["is_paused"]
        for row in stack.mwaa_emulator.environment(environment).metadata["dag"]
    }


def _flat(text: str) -> str:
    """Text with every run of whitespace as one space: the demo wraps its lines."""
    return " ".join(text.split())


@pytest.fixture
def retries_not_waited() -> Iterator[None]:
    """make demo waits out each retry's backoff, botocore's, the states' and urllib3's (the web
    server's requests), as AWS would: a person watches it. Here the retries happen as there, and
    their waits are recorded rather than slept (the default scenario's throttling alone would wait
    about ten seconds)."""
    with instant_botocore_retries(), instant_state_retries(), instant_cli_retries():
        yield


@pytest.mark.usefixtures("retries_not_waited")
@pytest.mark.parametrize("name", SCENARIOS)
def test_make_demo_ends_each_scenario_as_it_expects_with_figures_that_add_up_everywhere(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = Scenario.load(scenario_path(name))

    code = demo.main([name])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert not [line for line in out.splitlines() if line.lstrip().startswith("{")], "no JSON log lines"
    assert "Traceback" not in out + err
    runs = 2 if scenario.rerun else 1
    assert len(out.splitlines()) <= ONE_SCREEN * runs, out
    assert out.splitlines()[-1].endswith(f"as scenario {name} expects.")
    reports = [Path(path) for path in re.findall(r"^The whole report: (\S+)", out, re.MULTILINE)]
    assert len(reports) == runs
    for path in reports:
        data = json.loads(path.with_suffix(".json").read_text())
        report = MigrationReport.model_validate(data)
        markdown = path.read_text()
        assert markdown == render_markdown(report, uri=_uri(markdown)), "the CLI prints what was written"
        if report.logs and report.logs.get("groups"):  # else the copy was skipped: no log groups
            logs = LogCopyReport.model_validate(report.logs)
            assert logs.unreconciled() == []
            assert logs.streams_selected == logs.streams_copied + logs.streams_skipped + logs.streams_failed
            for line in log_copy_lines(report.logs):
                assert f"- {line}" in markdown
                assert _flat(line) in _flat(out), "the demo prints the report's figures"
        for count in [c for c in report.tables + report.cutover_tables if c.source_rows or c.target_rows]:
            # A count the failed step never reported is "?".
            target = "?" if count.target_rows is None else count.target_rows
            assert _flat(f"{count.table} {count.source_rows}→{target}") in _flat(out)
        assert "tables {" not in out, "no Python dict of the target's tables"


def _uri(markdown: str) -> str | None:
    found = re.search(r"^\| Report \| (\S+) \|$", markdown, re.MULTILINE)
    return found.group(1) if found else None


def test_the_default_scenario_carries_the_task_instances_its_copied_logs_come_from(
    capsys: pytest.CaptureFixture[str],
) -> None:
    scenario = Scenario.load(scenario_path("default"))
    tries = {
        (row["dag_id"], row["run_id"].replace(":", "_"), row["task_id"]): row["try_number"]
        for row in scenario.source_metadata["task_instance"]
    }
    runs = {(row["dag_id"], row["run_id"]) for row in scenario.source_metadata["dag_run"]}
    attempts = set()
    for log in scenario.task_logs:
        parsed = parse_task_stream(log.stream)
        assert parsed is not None, log.stream
        assert 1 <= parsed.try_number <= tries[(parsed.dag_id, parsed.run_id, parsed.task_id)], log.stream
        attempts.add((parsed.dag_id, parsed.run_id, parsed.task_id, parsed.try_number))
    # Every try of every task instance left its log, and every task instance is of a run carried.
    assert attempts == {(*key, n) for key, last in tries.items() for n in range(1, last + 1)}
    assert {(d, r) for d, r, _ in tries} == {(d, r.replace(":", "_")) for d, r in runs}
    assert {"connection", "task_instance", "xcom"} <= scenario.source_metadata.keys()
    assert all(scenario.source_metadata[table] for table in ("connection", "task_instance", "xcom"))


def test_the_default_scenarios_throttling_outlasts_botocore_and_shows_in_the_reports_retries(
    local_stack: Any,
) -> None:
    scenario = Scenario.load(scenario_path("default"))
    attempts = clients.RETRY_CONFIG.retries["total_max_attempts"]  # type: ignore[attr-defined]
    assert [fault.times for fault in scenario.faults if fault.operation == "GetEnvironment"] == [attempts]
    stack = local_stack(scenario)

    described = run(stack)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    key = json.loads(described["output"])["reportUri"].split("/", 3)[3]
    report = MigrationReport.model_validate(stack.read_json(scenario.migration_bucket, key))
    (plan,) = [step for step in report.steps if step.state == "PlanMigration"]
    assert (plan.retries, plan.retried_errors) == (1, ["TransientAwsError"])
    assert "| PlanMigration | Task | 1 |" in render_markdown(report)
    assert "succeeded, 1 retried after TransientAwsError |" in render_markdown(report)


def test_a_scenario_in_any_folder_extends_one_of_scenarios_by_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"extends": "default", "name": "mine", "input": {"logDays": 1}}))

    scenario = Scenario.load(find(str(path)))

    assert (scenario.name, scenario.input["logDays"]) == ("mine", 1)
    assert scenario.input["sourceEnvironmentName"] == SOURCE


def test_a_scenario_extends_another_by_a_path_relative_to_its_own_folder(tmp_path: Path) -> None:
    (tmp_path / "bases").mkdir()
    (tmp_path / "bases" / "base.json").write_text(json.dumps({"extends": "default", "name": "base"}))
    (tmp_path / "cases").mkdir()
    path = tmp_path / "cases" / "case.json"
    path.write_text(json.dumps({"extends": "../bases/base.json", "name": "case", "faults": []}))

    scenario = Scenario.load(path)

    assert (scenario.name, scenario.faults, scenario.input["targetEnvironmentName"]) == ("case", [], TARGET)


def test_an_unknown_scenario_is_refused_with_the_valid_names(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"extends": "defualt", "name": "broken"}))

    with pytest.raises(
        UnknownScenario, match=r"no scenario 'defualt' \(extended by .*broken.json\)"
    ) as raised:
        Scenario.load(path)

    assert all(name in str(raised.value) for name in SCENARIOS)


def test_make_demo_with_an_unknown_scenario_lists_the_valid_ones_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = demo.main(["nonexistent"])

    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.startswith(f"make demo: no scenario 'nonexistent': name one of {', '.join(SCENARIOS)} ")
    assert "Traceback" not in err


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
