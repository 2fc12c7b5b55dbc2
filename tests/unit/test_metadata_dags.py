"""Deploying, triggering and following the project's DAGs through the emulated MWAA CLI endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulation.mwaa import DagRunResult, EmulatedEnvironment, MwaaEmulator
from mwaa_migrate.environment.airflow_cli import AirflowCli
from mwaa_migrate.errors import DagRunFailed, MigrationConflict
from mwaa_migrate.metadata.metadata_dags import (
    EXPORT_DAG,
    IMPORT_DAG,
    MetadataResult,
    check_dag_run,
    deploy_dag,
    deployment,
    read_cutover_record,
    read_export,
    read_verified_import,
    remove_dag,
    trigger_dag,
    write_cutover_record_state,
)
from mwaa_migrate.migration_bucket import cutover_record_key, export_manifest_key, import_result_key
from mwaa_migrate.step_events import Phase

ENVIRONMENT = {
    "Name": "analytics",
    "AirflowVersion": "2.10.3",
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/mwaa",
    "SourceBucketArn": "arn:aws:s3:::airflow-analytics",
    "DagS3Path": "dags",
    "NetworkConfiguration": {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]},
    "LoggingConfiguration": {"TaskLogs": {"Enabled": True, "LogLevel": "INFO"}},
}
CONF = {"bucket": "migrations", "prefix": "migrations/a/b", "migrationId": "a-to-b"}


class ScriptedRuntime:
    """Runs succeed unless a failure is scripted: the DAGs' own logic is tested elsewhere."""

    def __init__(self) -> None:
        self.failure: str | None = None
        self.confs: list[dict[str, Any]] = []

    def run(self, environment: EmulatedEnvironment, dag_id: str, conf: dict[str, Any]) -> DagRunResult:
        self.confs.append(conf)
        if self.failure:
            return DagRunResult(state="failed", failed_task="export_tables", stderr=self.failure)
        return DagRunResult(state="success")


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3")
        logs = boto3.client("logs")
        s3.create_bucket(Bucket="airflow-analytics")
        s3.create_bucket(Bucket="migrations")
        runtime = ScriptedRuntime()
        with MwaaEmulator(s3_client=s3, logs_client=logs, dag_runtime=runtime) as emulator:
            monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", emulator.endpoint_url)
            emulator.add_environment(dict(ENVIRONMENT))
            mwaa = boto3.client("mwaa")
            yield {
                "s3": s3,
                "logs": logs,
                "runtime": runtime,
                "emulator": emulator,
                "cli": AirflowCli(mwaa, "analytics", scheme="http"),
                "target": deployment(EXPORT_DAG, "analytics", "airflow-analytics", "dags/"),
            }


def _trigger_until_parsed(world: dict[str, Any], run_id: str = "mwaa_migrate__t1") -> Any:
    result = None
    for attempt in range(5):
        result = trigger_dag(world["cli"], world["target"], run_id=run_id, conf=CONF, attempt=attempt)
        if result.parsed:
            return result
    raise AssertionError("the DAG was never parsed")


def _poll_until_done(world: dict[str, Any]) -> list[str]:
    states = []
    for attempt in range(6):
        check = check_dag_run(
            world["cli"], world["logs"], world["target"], run_id="mwaa_migrate__t1", attempt=attempt
        )
        states.append(check.state)
        if check.done:
            return states
    raise AssertionError(f"the run did not finish: {states}")


def test_deploying_twice_uploads_once(world):
    first = deploy_dag(world["s3"], world["target"])
    second = deploy_dag(world["s3"], world["target"])
    assert first.uploaded == ["dags/mwaa_migrate_metadata.py", "dags/mwaa_migrate_export.py"]
    assert (second.uploaded, second.unchanged) == ([], first.uploaded)


def test_removing_a_dag_deletes_its_files_once(world):
    target = deployment(EXPORT_DAG, "analytics", "airflow-analytics", "dags")
    deploy_dag(world["s3"], target)

    removed = [remove_dag(world["s3"], target), remove_dag(world["s3"], target)]

    assert removed == [["dags/mwaa_migrate_export.py", "dags/mwaa_migrate_metadata.py"], []]
    assert "Contents" not in world["s3"].list_objects_v2(Bucket="airflow-analytics", Prefix="dags/")


def test_the_library_stays_while_the_other_project_dag_in_the_folder_needs_it(world):
    export, imports = (
        deployment(dag, "analytics", "airflow-analytics", "dags") for dag in (EXPORT_DAG, IMPORT_DAG)
    )
    deploy_dag(world["s3"], export)
    deploy_dag(world["s3"], imports)

    removed = remove_dag(world["s3"], export)

    assert removed == ["dags/mwaa_migrate_export.py"]
    world["s3"].head_object(Bucket="airflow-analytics", Key="dags/mwaa_migrate_metadata.py")


def test_a_dag_not_parsed_yet_is_reported_and_not_triggered(world):
    deploy_dag(world["s3"], world["target"])
    result = trigger_dag(world["cli"], world["target"], run_id="r1", conf=CONF, attempt=0)
    assert (result.parsed, result.attempt) == (False, 1)
    assert world["runtime"].confs == []


def test_a_dag_file_that_does_not_import_fails_at_once(world):
    world["s3"].put_object(
        Bucket="airflow-analytics", Key="dags/mwaa_migrate_export.py", Body=b"from airflow import DAG\nDAG(\n"
    )
    with pytest.raises(DagRunFailed, match="mwaa_migrate_export.py does not import"):
        _trigger_until_parsed(world)


def test_triggering_again_with_the_same_run_id_finds_the_first_run(world):
    deploy_dag(world["s3"], world["target"])
    _trigger_until_parsed(world)
    _trigger_until_parsed(world)
    runs = [
        r
        for r in world["emulator"].environment("analytics").metadata["dag_run"]
        if r["dag_id"] == "mwaa_migrate_export"
    ]
    assert [r["run_id"] for r in runs] == ["mwaa_migrate__t1"]


def test_the_conf_reaches_the_dag_intact(world):
    deploy_dag(world["s3"], world["target"])
    _trigger_until_parsed(world)
    _poll_until_done(world)
    assert world["runtime"].confs == [CONF]


def test_a_run_is_followed_until_it_succeeds(world):
    deploy_dag(world["s3"], world["target"])
    _trigger_until_parsed(world)
    states = _poll_until_done(world)
    assert states[-1] == "success"
    assert len(states) > 1, "a run is not finished at its first poll"


def test_a_failed_run_fails_with_the_task_and_its_log(world):
    world["runtime"].failure = "PermissionError: cannot write s3://migrations/x"
    deploy_dag(world["s3"], world["target"])
    _trigger_until_parsed(world)
    with pytest.raises(DagRunFailed) as failed:
        _poll_until_done(world)
    assert "failed in task export_tables" in str(failed.value)
    assert "PermissionError: cannot write s3://migrations/x" in str(failed.value)


def _put_result(world: dict[str, Any], result: dict[str, Any], phase: Phase = "bulk") -> None:
    world["s3"].put_object(
        Bucket="migrations",
        Key=import_result_key(CONF["prefix"], phase),
        Body=json.dumps({"phase": phase, **result}).encode(),
    )


def _counts(
    read: int,
    inserted: int = 0,
    *,
    updated: int = 0,
    identical: int = 0,
    conflicts: int = 0,
    dropped: int = 0,
) -> dict[str, int]:
    counts = {
        "read": read,
        "inserted": inserted,
        "updated": updated,
        "identical": identical,
        "conflicts": conflicts,
    }
    return {**counts, "dropped": dropped} if dropped else counts


def _conflicts(count: int, resolution: str) -> dict[str, Any]:
    return {
        "count": count,
        "refused": 0,
        "differing": count,
        "resolution": resolution,
        "listed": [{"key": {"key": f"k{n}"}, "reason": "differs"} for n in range(count)],
    }


EXPORTED = MetadataResult(
    kind="export", phase="bulk", tables={"variable": {"rows": 3}, "dag_run": {"rows": 2}}
)
CUTOVER_MANIFEST = {
    "phase": "cutover",
    "watermark": "2026-11-23T06:00:00+00:00",
    "tables": {"variable": {"rows": 3}},
    "active_dags": ["daily_sales"],
    "timings": {"paused_at": "2026-11-23T12:00:00+00:00", "exported_at": "2026-11-23T12:05:00+00:00"},
    "drain": {"waited_seconds": 10.0, "timed_out": False, "still_running": 0},
}


def test_reading_the_cutover_export_gives_its_dags_timings_drain_and_watermark(world):
    world["s3"].put_object(
        Bucket="migrations",
        Key=export_manifest_key(CONF["prefix"], "cutover"),
        Body=json.dumps(CUTOVER_MANIFEST).encode(),
    )

    exported = read_export(world["s3"], "migrations", CONF["prefix"], "cutover")

    assert exported.phase == "cutover"
    assert exported.tables == {"variable": {"rows": 3}}
    assert exported.active_dags == ["daily_sales"]
    assert exported.timings["paused_at"] == "2026-11-23T12:00:00+00:00"
    assert exported.drain == {"waited_seconds": 10.0, "timed_out": False, "still_running": 0}
    assert exported.watermark == "2026-11-23T06:00:00+00:00"


def test_an_export_of_another_phase_under_the_phases_key_is_refused(world):
    world["s3"].put_object(
        Bucket="migrations",
        Key=export_manifest_key(CONF["prefix"], "bulk"),
        Body=json.dumps(CUTOVER_MANIFEST).encode(),
    )

    with pytest.raises(MigrationConflict, match="is not a bulk export"):
        read_export(world["s3"], "migrations", CONF["prefix"], "bulk")


def test_an_import_that_accounts_for_every_row_is_verified(world):
    tables = {"variable": _counts(3, inserted=1, updated=1, identical=1), "dag_run": _counts(2, inserted=2)}
    _put_result(world, {"verified": True, "tables": tables, "unpaused_dags": ["a"], "timings": {"x": "y"}})

    result = read_verified_import(world["s3"], "migrations", CONF["prefix"], "bulk", EXPORTED)

    assert result.tables == tables
    assert result.unpaused_dags == ["a"]
    assert result.timings == {"x": "y"}


def test_rows_of_a_table_the_targets_airflow_lacks_are_reported_not_failed(world):
    exported = MetadataResult(kind="export", phase="bulk", tables={"task_fail": {"rows": 2}})
    _put_result(
        world,
        {
            "verified": True,
            "tables": {"task_fail": _counts(2, dropped=2)},
            "columns": {"task_fail": {"table_missing": True}},
        },
    )

    result = read_verified_import(world["s3"], "migrations", CONF["prefix"], "bulk", exported)

    assert result.tables["task_fail"]["dropped"] == 2


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ({"verified": True, "tables": {"variable": _counts(3, inserted=3)}}, "dag_run: not imported"),
        (
            {
                "verified": True,
                "tables": {"variable": _counts(2, inserted=2), "dag_run": _counts(2, inserted=2)},
            },
            "variable: exported 3 rows, import read 2",
        ),
        (
            {
                "verified": True,
                "tables": {"variable": _counts(3, inserted=1, identical=1), "dag_run": _counts(2, 2)},
            },
            "variable: read 3, inserted 1, updated 0, identical 1, conflicts 0",
        ),
        (
            # The old arithmetic's blind spot: a row counted as skipped although it was not there.
            {
                "verified": True,
                "tables": {"variable": _counts(3, inserted=2, dropped=1), "dag_run": _counts(2, 2)},
            },
            "variable: read 3, inserted 2, updated 0, identical 0, conflicts 0, dropped 1",
        ),
        (
            # A conflict the DAG should have failed on (onConflict fail) in a result that says verified.
            {
                "verified": True,
                "on_conflict": "fail",
                "tables": {"variable": _counts(3, inserted=2, conflicts=1), "dag_run": _counts(2, 2)},
                "conflicts": {"variable": _conflicts(1, "failed")},
            },
            "variable: 1 conflicts, resolved 'failed' under onConflict 'fail'",
        ),
        (
            {
                "verified": True,
                "on_conflict": "keep-target",
                "tables": {"variable": _counts(3, inserted=2, conflicts=1), "dag_run": _counts(2, 2)},
            },
            "variable: 1 conflicts counted but not listed as such",
        ),
        ({"verified": False, "tables": {}}, "did not verify its input"),
    ],
)
def test_an_import_that_loses_rows_fails_the_migration(world, result, problem):
    _put_result(world, result)

    with pytest.raises(DagRunFailed, match=problem):
        read_verified_import(world["s3"], "migrations", CONF["prefix"], "bulk", EXPORTED)


@pytest.mark.parametrize(
    ("on_conflict", "resolution"), [("keep-target", "kept-target"), ("overwrite", "overwritten")]
)
def test_conflicts_resolved_as_the_request_says_pass_and_are_carried_on(world, on_conflict, resolution):
    tables = {"variable": _counts(3, identical=2, conflicts=1), "dag_run": _counts(2, inserted=2)}
    conflicts = {"variable": _conflicts(1, resolution)}
    _put_result(
        world, {"verified": True, "on_conflict": on_conflict, "tables": tables, "conflicts": conflicts}
    )

    result = read_verified_import(world["s3"], "migrations", CONF["prefix"], "bulk", EXPORTED)

    assert result.conflicts == conflicts
    assert result.on_conflict == on_conflict


def test_the_import_result_of_the_other_phase_is_not_read(world):
    _put_result(world, {"verified": True, "tables": {"variable": _counts(3, 3), "dag_run": _counts(2, 2)}})

    with pytest.raises(MigrationConflict, match="import/cutover/result.json does not exist"):
        read_verified_import(
            world["s3"],
            "migrations",
            CONF["prefix"],
            "cutover",
            EXPORTED.model_copy(update={"phase": "cutover"}),
        )


RECORD = {
    "migration_id": "a-to-b",
    "source_environment": "a",
    "target_environment": "b",
    "active_dags": ["daily_sales"],
    "state": "paused",
    "paused_at": "2026-11-23T12:00:00+00:00",
    "updated_at": "2026-11-23T12:00:00+00:00",
    "history": [{"state": "paused", "at": "2026-11-23T12:00:00+00:00", "migration_id": "a-to-b"}],
}


def test_no_cutover_record_reads_as_none(world):
    assert read_cutover_record(world["s3"], "migrations", CONF["prefix"]) is None


def test_a_record_state_change_keeps_the_list_and_appends_to_the_history(world):
    world["s3"].put_object(
        Bucket="migrations", Key=cutover_record_key(CONF["prefix"]), Body=json.dumps(RECORD).encode()
    )

    written = write_cutover_record_state(
        world["s3"], "migrations", CONF["prefix"], "restored", restored_dags=["daily_sales"]
    )

    assert read_cutover_record(world["s3"], "migrations", CONF["prefix"]) == written
    assert (written["state"], written["active_dags"], written["restored_dags"]) == (
        "restored",
        ["daily_sales"],
        ["daily_sales"],
    )
    assert [entry["state"] for entry in written["history"]] == ["paused", "restored"]
    assert written["updated_at"] == written["history"][-1]["at"]


def test_a_record_state_change_without_a_record_is_refused(world):
    with pytest.raises(MigrationConflict, match="never paused by this pipeline"):
        write_cutover_record_state(world["s3"], "migrations", CONF["prefix"], "restored")


def test_an_unknown_record_state_is_refused(world):
    with pytest.raises(ValueError, match="not 'gone'"):
        write_cutover_record_state(world["s3"], "migrations", CONF["prefix"], "gone")  # type: ignore[arg-type]
