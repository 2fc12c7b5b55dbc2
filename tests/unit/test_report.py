"""The migration report: the row counts and the downtime (report.py), its Markdown (report_markdown.py)
and both files written to the bucket (migration_bucket.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mwaa_migrate.execution import StepTiming
from mwaa_migrate.migration_bucket import markdown_key, write_report
from mwaa_migrate.run.report import MigrationReport, downtime_of, table_counts
from mwaa_migrate.run.report_markdown import duration, log_copy_lines, render_markdown
from mwaa_migrate.run.settings_diff import SettingsSummary, settings_diff

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:mwaa-migrate-migration:run-1"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


# ------------------------------------------------------------------ tables


def test_row_counts_pair_each_exported_table_with_what_the_import_did():
    exported = {"tables": {"variable": {"rows": 3}, "dag_run": {"rows": 5}}}
    imported = {"tables": {"variable": {"read": 3, "inserted": 1, "skipped": 2, "conflicts": 0}}}

    counts = {count.table: count for count in table_counts(exported, imported)}

    assert (counts["variable"].source_rows, counts["variable"].inserted, counts["variable"].target_rows) == (
        3,
        1,
        3,
    )
    assert (counts["dag_run"].source_rows, counts["dag_run"].read, counts["dag_run"].target_rows) == (
        5,
        None,
        None,
    )


def test_the_markdown_steps_say_what_a_retry_was_for():
    step = StepTiming(
        state="PlanMigration",
        type="Task",
        runs=1,
        seconds=9.5,
        status="succeeded",
        retries=1,
        retried_errors=["TransientAwsError"],
        first_entered_at="2026-11-23T12:00:01+00:00",
    )

    text = render_markdown(_report(steps=[step]))

    assert "| PlanMigration | Task | 1 | 9.5s | succeeded, 1 retried after TransientAwsError |" in text


def test_the_log_copy_figures_add_up_in_the_markdown_streams_events_and_reasons():
    logs = {
        "since": "2026-11-20T12:00:00+00:00",
        "until": "2026-11-23T12:00:00+00:00",
        "failedTasksOnly": False,
        "streamsListed": 8,
        "streamsOutsideWindow": 2,
        "streamsNotFailed": 0,
        "streamsSelected": 6,
        "streamsCopied": 4,
        "streamsSkipped": 1,
        "streamsFailed": 1,
        "eventsRead": 380,
        "eventsWritten": 370,
        "eventsAlreadyPresent": 6,
        "eventsTooOld": 4,
        "eventsRejected": 0,
        "eventsTruncated": 1,
        "describeLogStreamsCalls": 1,
        "getLogEventsCalls": 9,
        "putLogEventsCalls": 5,
        "skipped": [
            {"group": "Task", "stream": "s5", "reason": "no event in the log window"},
            {"group": "Task", "stream": "s6", "reason": "the copy of its work item failed: AwsAccessDenied"},
        ],
        "skippedByReason": {"no event in the log window": 1},
        "failedByReason": {"the copy of its work item failed: AwsAccessDenied": 1},
    }

    lines = log_copy_lines(logs)
    text = render_markdown(_report(logs=logs))

    assert lines == [
        "Log streams: 8 listed = 2 outside the window + 6 selected; "
        "6 selected = 4 copied + 1 skipped + 1 failed.",
        "Events in the window: 380 read = 370 written + 6 already in the target + 4 too old for "
        "CloudWatch Logs + 0 rejected (1 written truncated to fit).",
        "Calls: 1 DescribeLogStreams, 9 GetLogEvents, 5 PutLogEvents.",
    ]
    assert all(f"- {line}" in text for line in lines)
    assert "- 1 stream skipped: no event in the log window" in text
    assert "- 1 stream failed: the copy of its work item failed: AwsAccessDenied" in text
    assert "- skipped `s5`: no event in the log window" in text
    assert "- failed `s6` and the rest of its item: the copy of its work item failed: AwsAccessDenied" in text


def test_streams_not_of_a_failed_task_are_a_part_of_the_listed_ones_when_only_failed_tasks_are_copied():
    logs = {"failedTasksOnly": True, "streamsListed": 5, "streamsOutsideWindow": 0, "streamsNotFailed": 3}
    logs |= {"streamsSelected": 2, "streamsCopied": 2, "streamsSkipped": 0, "streamsFailed": 0}

    assert log_copy_lines(logs) == [
        "Log streams: 5 listed = 0 outside the window + 3 not of a failed task + 2 selected; "
        "2 selected = 2 copied + 0 skipped + 0 failed."
    ]


# ------------------------------------------------------------------ Markdown and the bucket


def _report(**changes: Any) -> MigrationReport:
    fields: dict[str, Any] = {
        "status": "SUCCEEDED",
        "migration_id": "prod-to-prod-2-10",
        "execution_id": EXECUTION,
        "source": {"name": "prod", "airflowVersion": "2.7.2"},
        "target": {
            "name": "prod-2-10",
            "airflowVersion": "3.0.6",
            "createdVersion": "2.11.0",
            "upgradedTo": "3.0.6",
        },
        "started_at": "2026-11-23T12:00:00+00:00",
        "finished_at": "2026-11-23T12:31:12+00:00",
        "duration_seconds": 1872.0,
        "settings": settings_diff(
            {"Name": "prod", "AirflowConfigurationOptions": {"smtp.smtp_password": "hunter2"}},
            {"Name": "prod-2-10", "AirflowConfigurationOptions": {"smtp.smtp_password": "hunter2"}},
        ),
        "warnings": ["core.dag_concurrency was renamed core.max_active_tasks_per_dag"],
        "tables": table_counts(
            {"tables": {"variable": {"rows": 3}}},
            {"tables": {"variable": {"read": 3, "inserted": 2, "skipped": 1, "conflicts": 0}}},
        ),
        "metadata": {"export": {"activeDags": ["daily_sales"]}, "import": {"unpausedDags": ["daily_sales"]}},
        "logs": {
            "streamsCopied": 4,
            "eventsWritten": 300,
            "skipped": [{"stream": "a|b", "reason": "too old"}],
        },
        "steps": [
            StepTiming(
                state="WaitForTarget",
                type="Wait",
                runs=25,
                seconds=1500,
                status="succeeded",
                first_entered_at="2026-11-23T12:00:01+00:00",
            )
        ],
        "policies_removed": ["AmazonMWAA-prod/mwaa-migrate-prod-to-prod-2-10-export"],
    }
    fields.update(changes)
    return MigrationReport(**fields)


def test_the_markdown_report_shows_every_section_a_person_needs():
    text = render_markdown(_report(), uri="s3://bucket/reports/run-1.json")

    assert text.startswith("# Migration prod → prod-2-10: SUCCEEDED\n")
    assert "| Duration | 0:31:12 |" in text
    assert "| Target | prod-2-10, Airflow 3.0.6 (created on 2.11.0, upgraded in place) |" in text
    assert "- core.dag_concurrency was renamed core.max_active_tasks_per_dag" in text
    assert "| Name | changed | prod | prod-2-10 |" in text
    assert "| variable | 3 | 3 | 2 |  | 1 | 0 | 3 |" in text
    assert "- Events in the window: 300 written." in text
    assert "- skipped `a\\|b`: too old" in text
    assert "| WaitForTarget | Wait | 25 | 0:25:00 | succeeded |" in text
    assert "- `AmazonMWAA-prod/mwaa-migrate-prod-to-prod-2-10-export`" in text
    assert "hunter2" not in text


def test_a_failed_report_says_where_and_why_first():
    report = _report(
        status="FAILED",
        settings=None,
        tables=[],
        failure={
            "state": "CheckTarget",
            "error": "EnvironmentFailed",
            "cause": "CREATE_FAILED: bad subnet\nsee logs",
        },
    )

    text = render_markdown(report)

    failure = text.index("## Failure")
    assert failure < text.index("## Warnings")
    assert "State `CheckTarget` failed with `EnvironmentFailed`:" in text
    assert "> CREATE_FAILED: bad subnet\n> see logs" in text
    assert "Not known: the migration stopped before its plan was made." in text


def test_a_report_without_settings_reads_back_from_its_json():
    report = _report(settings=SettingsSummary())
    assert MigrationReport.model_validate(json.loads(json.dumps(report.to_event()))) == report


@mock_aws
def test_the_report_is_written_as_json_and_markdown_side_by_side():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="reports")
    key = "migrations/prod/prod-2-10/reports/run-1.json"

    uri = write_report(s3, "reports", key, _report())

    assert uri == f"s3://reports/{key}"
    stored = s3.get_object(Bucket="reports", Key=key)
    assert stored["ContentType"] == "application/json"
    assert MigrationReport.model_validate(json.loads(stored["Body"].read())).status == "SUCCEEDED"
    markdown = s3.get_object(Bucket="reports", Key=markdown_key(key))
    assert markdown_key(key) == "migrations/prod/prod-2-10/reports/run-1.md"
    assert markdown["ContentType"].startswith("text/markdown")
    assert markdown["Body"].read().decode().startswith("# Migration prod → prod-2-10: SUCCEEDED")


@pytest.mark.parametrize(
    ("seconds", "shown"), [(4.25, "4.2s"), (59.9, "59.9s"), (61, "0:01:01"), (3725, "1:02:05")]
)
def test_durations_read_as_seconds_then_hours_minutes_seconds(seconds, shown):
    assert duration(seconds) == shown


def test_a_log_copy_by_group_shows_a_row_per_group_and_counts_many_skips_by_reason():
    logs = {
        "since": "2026-11-20T12:00:00+00:00",
        "until": "2026-11-23T12:00:00+00:00",
        "streamsListed": 130,
        "eventsWritten": 9000,
        "groups": [
            {
                "group": "Task",
                "sourceGroup": "airflow-prod-Task",
                "targetGroup": "airflow-prod-2-10-Task",
                "streamsListed": 100,
                "streamsCopied": 70,
                "streamsSkipped": 30,
                "streamsFailed": 0,
                "eventsWritten": 8000,
                "eventsAlreadyPresent": 0,
            }
        ],
        "skipped": [
            {"group": "Task", "stream": f"s{index}", "reason": "older than logDays"} for index in range(30)
        ],
        "skippedByReason": {"older than logDays": 30},
    }

    text = render_markdown(_report(logs=logs))

    assert "Log events from 2026-11-20T12:00:00+00:00 to 2026-11-23T12:00:00+00:00." in text
    assert "| airflow-prod-Task | airflow-prod-2-10-Task | 100 |  | 70 | 30 | 0 | 8000 | 0 |" in text
    assert "- 30 streams skipped: older than logDays" in text
    assert "`s0`" not in text


# ------------------------------------------------------------------ the cutover: tables, downtime, timeline

# The cutover export's result as CheckDagRun passes it on (camelCase fields, `timings` as the DAG
# wrote them) and the import's, then StartTargetDags' settlement.
CUTOVER_EXPORTED: dict[str, Any] = {
    "kind": "export",
    "tables": {"dag_run": {"rows": 4}},
    "activeDags": ["daily_sales", "hourly_clicks"],
    "timings": {
        "paused_at": "2026-11-23T12:20:00+00:00",
        "drain_started_at": "2026-11-23T12:20:01+00:00",
        "drained_at": "2026-11-23T12:22:31+00:00",
        "exported_at": "2026-11-23T12:23:01+00:00",
    },
    "drain": {"waited_seconds": 150, "timed_out": False, "still_running": 0},
}
CUTOVER_IMPORTED: dict[str, Any] = {
    "kind": "import",
    "tables": {"dag_run": {"read": 4, "inserted": 1, "updated": 2, "unchanged": 1, "rejected": 0}},
    "unpausedDags": ["daily_sales", "hourly_clicks"],
    "timings": {
        "import_started_at": "2026-11-23T12:23:10+00:00",
        "imported_at": "2026-11-23T12:24:10+00:00",
        "verified_at": "2026-11-23T12:24:20+00:00",
        "unpaused_at": "2026-11-23T12:24:22+00:00",
    },
}
LIVE: dict[str, Any] = {
    "running": "target",
    "line": "The target prod-2-10 runs the DAGs",
    "at": "2026-11-23T12:24:25+00:00",
}


def test_the_cutover_counts_show_updates_and_rejects_and_leave_unreported_counts_empty():
    bulk = table_counts(
        {"tables": {"dag_run": {"rows": 9}}},
        {"tables": {"dag_run": {"read": 9, "skipped": 2, "inserted": 7}}},
    )
    cutover = table_counts(CUTOVER_EXPORTED, CUTOVER_IMPORTED)

    assert (bulk[0].updated, bulk[0].already_there, bulk[0].not_imported, bulk[0].target_rows) == (
        None,
        2,
        None,
        9,
    )
    assert (cutover[0].updated, cutover[0].already_there, cutover[0].rejected, cutover[0].target_rows) == (
        2,
        1,
        0,
        4,
    )


def test_a_bulk_result_with_both_unchanged_and_skipped_counts_the_rows_once():
    counts = table_counts(
        {"tables": {"pool": {"rows": 3}}},
        {"tables": {"pool": {"read": 3, "inserted": 1, "unchanged": 2, "skipped": 2}}},
    )

    assert counts[0].target_rows == 3


def test_the_markdown_shows_the_bulk_and_the_cutover_tables_apart():
    report = _report(cutover_tables=table_counts(CUTOVER_EXPORTED, CUTOVER_IMPORTED))

    text = render_markdown(report)

    bulk, cutover = text.index("### Bulk copy"), text.index("### Cutover")
    assert bulk < text.index("| variable | 3 | 3 | 2 |  | 1 | 0 | 3 |") < cutover
    assert cutover < text.index("| dag_run | 4 | 4 | 1 | 2 | 1 | 0 | 4 |")


def test_the_downtime_runs_from_the_pause_to_the_imports_unpause_with_each_part():
    downtime = downtime_of(CUTOVER_EXPORTED, CUTOVER_IMPORTED, LIVE)

    assert downtime is not None
    assert (downtime.paused_at, downtime.live_at, downtime.seconds) == (
        "2026-11-23T12:20:00+00:00",
        "2026-11-23T12:24:22+00:00",
        262.0,
    )
    assert [(part.part, part.seconds) for part in downtime.parts] == [
        ("drain", 150.0),
        ("delta export", 30.0),
        ("delta import", 60.0),
        ("verification", 10.0),
        ("start on target", 2.0),
    ]
    assert (downtime.drain_waited_seconds, downtime.drain_timed_out, downtime.drain_still_running) == (
        150.0,
        False,
        0,
    )


def test_after_an_upgrade_the_downtime_ends_when_start_target_dags_unpaused_the_dags():
    imported = {
        **CUTOVER_IMPORTED,
        "timings": {k: v for k, v in CUTOVER_IMPORTED["timings"].items() if k != "unpaused_at"},
    }

    downtime = downtime_of(CUTOVER_EXPORTED, imported, LIVE)

    assert downtime is not None
    assert (downtime.live_at, downtime.seconds, downtime.parts[-1].seconds) == (
        "2026-11-23T12:24:25+00:00",
        265.0,
        5.0,
    )


def test_parts_the_dags_did_not_report_stay_unknown():
    exported = {
        "timings": {"pausedAt": "2026-11-23T12:20:00Z"},
        "drain": {"timedOut": True, "stillRunning": ["a", "b"]},
    }

    downtime = downtime_of(exported, {}, {})

    assert downtime is not None
    assert (downtime.live_at, downtime.seconds) == (None, None)
    assert all(part.seconds is None for part in downtime.parts)
    assert (downtime.drain_waited_seconds, downtime.drain_timed_out, downtime.drain_still_running) == (
        None,
        True,
        2,
    )


def test_without_a_pause_there_is_no_downtime():
    assert downtime_of({"tables": {}}, CUTOVER_IMPORTED, LIVE) is None


def test_the_markdown_opens_with_who_runs_the_dags_then_the_downtime_after_the_summary():
    report = _report(
        dags_running="The target prod-2-10 runs the DAGs (2 unpaused).",
        downtime=downtime_of(CUTOVER_EXPORTED, CUTOVER_IMPORTED, LIVE),
    )

    text = render_markdown(report)

    assert text.splitlines()[2] == "**The target prod-2-10 runs the DAGs (2 unpaused).**"
    assert text.index("| Duration | 0:31:12 |") < text.index("## Downtime") < text.index("## Warnings")
    assert "The DAGs stood still for **4 min 22 s**" in text
    assert "| drain | 2026-11-23T12:20:01+00:00 | 2026-11-23T12:22:31+00:00 | 0:02:30 |" in text
    assert "Drain: waited 0:02:30 for running and queued tasks, finished before its deadline" in text


def test_the_timeline_is_a_gantt_chart_of_the_steps_with_the_downtime_marked_critical():
    report = _report(downtime=downtime_of(CUTOVER_EXPORTED, CUTOVER_IMPORTED, LIVE))
    paused = int(datetime(2026, 11, 23, 12, 20, tzinfo=UTC).timestamp() * 1000)
    live = paused + 262_000
    entered = int(datetime(2026, 11, 23, 12, 0, 1, tzinfo=UTC).timestamp() * 1000)

    text = render_markdown(report)

    start = text.index("```mermaid\ngantt")
    chart = text[start : text.index("```", start + 3)]
    assert chart.splitlines()[1:3] == ["gantt", "    dateFormat x"]
    assert f"    WaitForTarget :{entered}, {entered + 1_500_000}" in chart
    assert f"    downtime :crit, {paused}, {live}" in chart
    assert f"    live :milestone, {live}, {live}" in chart
    assert text.index("## Timeline") < text.index("## Steps")


def test_a_failure_report_shows_where_the_dags_were_left_and_the_source_version():
    report = _report(
        status="FAILED",
        failure={"state": "CheckCutoverImportRun", "error": "VerificationFailed", "cause": "row missing"},
        dags_running="The source prod runs the DAGs again: its 2 recorded DAGs were unpaused.",
        cutover={
            "running": "source",
            "line": "The source prod runs the DAGs again: its 2 recorded DAGs were unpaused.",
            "recordState": "restored",
            "unpaused": ["daily_sales", "hourly_clicks"],
            "problems": ["pausing mwaa_migrate_import on prod-2-10: unreachable"],
        },
    )

    text = render_markdown(report)

    assert text.splitlines()[2].startswith("**The source prod runs the DAGs again")
    assert "| Source | prod, Airflow 2.7.2 |" in text
    assert "Cutover record: `restored`." in text
    assert "- not done: pausing mwaa_migrate_import on prod-2-10: unreachable" in text


def test_a_report_with_the_cutover_reads_back_from_its_json():
    report = _report(
        cutover_tables=table_counts(CUTOVER_EXPORTED, CUTOVER_IMPORTED),
        dags_running="The target prod-2-10 runs the DAGs",
        cutover=LIVE,
        downtime=downtime_of(CUTOVER_EXPORTED, CUTOVER_IMPORTED, LIVE),
    )

    assert MigrationReport.model_validate(json.loads(json.dumps(report.to_event()))) == report
