"""The report's overview picture: this migration's own figures, only the phases it reached."""

from __future__ import annotations

from typing import Any

from mwaa_migrate.execution import StepTiming
from mwaa_migrate.run.report import Downtime, Failure, MigrationReport, table_counts
from mwaa_migrate.run.report_overview import overview_diagram, overview_section


def _step(state: str) -> StepTiming:
    return StepTiming(
        state=state,
        type="Task",
        runs=1,
        seconds=1.0,
        status="succeeded",
        first_entered_at="2026-11-23T12:00:00Z",
    )


def _report(**changes: Any) -> MigrationReport:
    fields: dict[str, Any] = {
        "status": "SUCCEEDED",
        "migration_id": "prod.prod-2-10",
        "execution_id": "arn:aws:states:us-east-1:123456789012:execution:m:run-1",
        "source": {"name": "prod", "airflowVersion": "2.7.2"},
        "target": {"name": "prod-2-10", "airflowVersion": "2.10.3"},
        "started_at": "2026-11-23T12:00:00+00:00",
        "finished_at": "2026-11-23T12:31:12+00:00",
        "duration_seconds": 1872.0,
        "tables": table_counts(
            {"tables": {"variable": {"rows": 3}, "dag_run": {"rows": 40}}},
            {"tables": {"variable": {"read": 3, "inserted": 3}, "dag_run": {"read": 40, "inserted": 40}}},
        ),
        "cutover_tables": table_counts(
            {"tables": {"dag_run": {"rows": 2}}}, {"tables": {"dag_run": {"read": 2, "updated": 2}}}
        ),
        "metadata": {"cutoverExport": {"active_dags": ["daily_sales", "hourly"]}},
        "downtime": Downtime(
            paused_at="2026-11-23T12:20:00+00:00",
            live_at="2026-11-23T12:21:30+00:00",
            seconds=90.0,
            drain_waited_seconds=12.5,
        ),
        "cutover": {"recordState": "live", "unpaused": ["daily_sales", "hourly"]},
        "logs": {"streamsCopied": 4, "eventsWritten": 300},
        "steps": [_step("PlanMigration"), _step("CloneEnvironment"), _step("StartTargetDags")],
        "dags_running": "The target prod-2-10 runs the DAGs (2 unpaused)",
    }
    fields.update(changes)
    return MigrationReport(**fields)


def test_a_finished_migration_draws_every_move_with_its_figures_and_the_window():
    diagram = "\n".join(overview_diagram(_report()))
    assert diagram.startswith("sequenceDiagram")
    assert "participant S as prod (Airflow 2.7.2)" in diagram
    assert "participant T as prod-2-10 (Airflow 2.10.3)" in diagram
    assert "S->>T: own copy of DAGs" in diagram
    assert "S->>B: bulk export: 43 rows in 2 tables" in diagram
    assert "B->>T: bulk import: 43 rows now in the target" in diagram
    # The window holds the pause, the delta and the unpause, and nothing else.
    window = diagram.split("rect rgb(255, 235, 235)", 1)[1].split("\n  end", 1)[0]
    assert "downtime 90.0 s" in window
    assert "paused 2 DAGs, drained in 12.5 s" in window
    assert "S->>B: delta export: 2 rows in 1 table" in window
    assert "Note over T: unpaused 2 DAGs" in window
    assert "task logs" not in window
    assert "S->>T: task logs, 300 events written in 4 streams" in diagram
    assert diagram.rstrip().endswith("runs the DAGs (2 unpaused)")


def test_a_failure_before_the_cutover_draws_no_window_and_says_where_it_stopped():
    report = _report(
        status="FAILED",
        cutover_tables=[],
        downtime=None,
        cutover={},
        logs={},
        metadata={},
        failure=Failure(state="CheckExportRun", error="DagRunFailed", cause="task export failed"),
        dags_running="The source prod runs the DAGs; it was never paused",
    )
    diagram = "\n".join(overview_diagram(report))
    assert "rect" not in diagram
    assert "unpaused" not in diagram
    assert "task logs" not in diagram
    assert "failed in CheckExportRun (DagRunFailed)" in diagram
    assert diagram.rstrip().endswith("The source prod runs the DAGs, it was never paused")


def test_a_window_that_never_ended_draws_no_unpause():
    report = _report(
        status="FAILED",
        downtime=Downtime(paused_at="2026-11-23T12:20:00+00:00"),
        cutover={"recordState": "restored", "unpaused": ["daily_sales"]},
    )
    diagram = "\n".join(overview_diagram(report))
    assert "downtime (not ended)" in diagram
    assert "Note over T: unpaused" not in diagram


def test_an_upgrade_in_place_is_drawn_once_it_ran():
    target = {"name": "prod-3", "airflowVersion": "3.0.6", "createdVersion": "2.11.0", "upgradedTo": "3.0.6"}
    assert "upgraded in place" not in "\n".join(overview_diagram(_report(target=target)))
    ran = _report(target=target, steps=[_step("UpgradeEnvironment")])
    assert "  Note over T: upgraded in place to Airflow 3.0.6" in overview_diagram(ran)


def test_names_cannot_break_the_diagram():
    report = _report(source={"name": "prod;evil#1\nx", "airflowVersion": "2.7.2"})
    participant = next(line for line in overview_diagram(report) if "participant S" in line)
    assert ";" not in participant
    assert "#" not in participant
    assert "\n" not in participant


def test_the_section_is_a_fenced_mermaid_block():
    section = overview_section(_report())
    assert section[:3] == ["## Overview", "", "```mermaid"]
    assert section[-2:] == ["```", ""]
