"""The emulator's runtime for the project's DAGs: export from one emulated environment into (moto's)
S3, import into another, with the same library the real DAGs use, in both phases (bulk, then the
cutover's pause, drain and delta)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from emulation.dag_runtime import MigrationDagRuntime
from emulation.mwaa import DagRunResult, EmulatedEnvironment
from mwaa_migrate.dags import mwaa_migrate_metadata as metadata
from tests.emulated_dags import (
    BUCKET,
    LATER,
    NOW,
    Migration,
    environment,
    migrate,
    moto_bucket,
    read_json,
    scheduled_run,
    snapshot,
)

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client

PREFIX = "migrations/m-1"
CARRIED = {
    "variable": ("key", "val", "description"),
    "slot_pool": ("pool", "slots", "description", "include_deferred"),
    "dag_run": (
        "dag_id",
        "run_id",
        "state",
        "run_type",
        "execution_date",
        "start_date",
        "end_date",
        "conf",
        "external_trigger",
    ),
}


@pytest.fixture
def migration() -> Migration:
    return Migration(PREFIX, "m-1", "analytics-prod")


@pytest.fixture
def s3() -> Iterator[S3Client]:
    """The migration's bucket, in place of the tier's source bucket (conftest.py)."""
    with moto_bucket(BUCKET) as client:
        yield client


def exported_rows(s3: S3Client, kms: KMSClient, conf: dict[str, Any], table: str) -> list[dict[str, Any]]:
    run_conf = metadata.RunConf.from_conf(conf)
    storage = metadata.S3Storage(s3, BUCKET)
    manifest = metadata.read_manifest(storage, run_conf)
    box = metadata.open_secret_box(metadata.KmsKeys(kms), manifest.secrets, run_conf.migration_id)
    return metadata.read_table(storage, run_conf, manifest.tables[table], box)


def source() -> EmulatedEnvironment:
    return environment(
        "analytics-prod",
        "2.7.2",
        {
            "variable": [
                {
                    "key": "warehouse_schema",
                    "val": "analytics",
                    "description": "schema",
                    "is_encrypted": False,
                },
                {
                    "key": "partner_api_token",
                    "val": "s3cr3t\nline2 ✓",
                    "description": None,
                    "is_encrypted": True,
                },
            ],
            "slot_pool": [
                {
                    "pool": "default_pool",
                    "slots": 128,
                    "description": "Default pool",
                    "include_deferred": False,
                },
                {"pool": "warehouse", "slots": 4, "description": "warehouse", "include_deferred": True},
            ],
            "dag": [
                {"dag_id": "daily_sales", "is_paused": False, "is_active": True},
                {"dag_id": "hourly_events", "is_paused": False},
                {"dag_id": "legacy_export", "is_paused": True},
                {"dag_id": metadata.EXPORT_DAG_ID, "is_paused": False},
            ],
            "dag_run": [
                scheduled_run("daily_sales", 20),
                scheduled_run("daily_sales", 21, "failed"),
                scheduled_run("daily_sales", 22, "running"),
                scheduled_run("hourly_events", 20, conf={"backfill": "yes\nwith a newline"}),
                scheduled_run(metadata.EXPORT_DAG_ID, 23, "running"),
            ],
            "task_instance": [
                {
                    "dag_id": "daily_sales",
                    "task_id": "extract",
                    "run_id": "scheduled__2026-11-22T00:00:00+00:00",
                    "map_index": -1,
                    "state": "running",
                    "try_number": 1,
                    "start_date": "2026-11-22T00:00:06+00:00",
                    "end_date": None,
                    "pool": "default_pool",
                },
            ],
        },
    )


def target() -> EmulatedEnvironment:
    return environment(
        "analytics-prod-2-10",
        "2.10.3",
        {
            "slot_pool": [
                {
                    "id": 1,
                    "pool": "default_pool",
                    "slots": 128,
                    "description": "Default pool",
                    "include_deferred": False,
                }
            ],
            "dag": [
                {"dag_id": "daily_sales", "is_paused": True},
                {"dag_id": "hourly_events", "is_paused": True},
                {"dag_id": "legacy_export", "is_paused": True},
                {"dag_id": metadata.IMPORT_DAG_ID, "is_paused": False},
            ],
            "dag_run": [],
        },
    )


def carried(env: EmulatedEnvironment, table: str, *, exclude_dag: str | None = None) -> list[dict[str, Any]]:
    rows = [
        {column: row.get(column) for column in CARRIED[table]}
        for row in env.metadata.get(table, [])
        if row.get("pool") != "default_pool" and (exclude_dag is None or row.get("dag_id") != exclude_dag)
    ]
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))


def test_bulk_then_cutover_makes_the_targets_tables_match(
    runtime: MigrationDagRuntime, conf: dict[str, Any], cutover: dict[str, Any], s3: S3Client
) -> None:
    old, new = source(), target()

    results = [*migrate(runtime, old, new, conf), *migrate(runtime, old, new, cutover)]

    assert results == [DagRunResult("success")] * 4
    assert carried(new, "variable") == carried(old, "variable")
    assert carried(new, "slot_pool") == carried(old, "slot_pool")
    # Every run of the user's DAGs, the one in flight included (carried as it stands).
    assert carried(new, "dag_run") == carried(old, "dag_run", exclude_dag=metadata.EXPORT_DAG_ID)
    assert {row["clear_number"] for row in new.metadata["dag_run"]} == {0}  # a 2.8+ column, filled by default
    assert {row["dag_id"]: row["is_paused"] for row in new.metadata["dag"]} == {
        "daily_sales": False,
        "hourly_events": False,
        "legacy_export": True,
        metadata.IMPORT_DAG_ID: False,
    }
    result = read_json(s3, f"{PREFIX}/import/cutover/result.json")
    assert result["verified"] is True
    assert result["unpaused_dags"] == ["daily_sales", "hourly_events"]
    assert result["tables"]["dag_run"] == {
        "read": 1,
        "inserted": 1,
        "updated": 0,
        "identical": 0,
        "conflicts": 0,
    }


def test_the_bulk_export_pauses_nothing(
    runtime: MigrationDagRuntime, conf: dict[str, Any], s3: S3Client
) -> None:
    old = source()
    before = json.loads(json.dumps(old.metadata["dag"]))

    runtime.run(old, metadata.EXPORT_DAG_ID, conf)

    assert old.metadata["dag"] == before
    manifest = read_json(s3, f"{PREFIX}/export/bulk/manifest.json")
    assert manifest["watermark"] == "2026-11-23T12:00:00+00:00"
    assert manifest["active_dags"] == []


def test_the_cutover_export_pauses_the_active_dags_and_lists_them_in_the_manifest(
    runtime: MigrationDagRuntime,
    conf: dict[str, Any],
    cutover: dict[str, Any],
    s3: S3Client,
    kms: KMSClient,
) -> None:
    old = source()
    runtime.run(old, metadata.EXPORT_DAG_ID, conf)

    runtime.run(old, metadata.EXPORT_DAG_ID, cutover)

    manifest = read_json(s3, f"{PREFIX}/export/cutover/manifest.json")
    assert manifest["active_dags"] == ["daily_sales", "hourly_events"]
    assert read_json(s3, f"{PREFIX}/cutover/record.json")["source_environment"] == "analytics-prod"
    assert {row["dag_id"]: row["is_paused"] for row in old.metadata["dag"]} == {
        "daily_sales": True,
        "hourly_events": True,
        "legacy_export": True,
        metadata.EXPORT_DAG_ID: False,
    }
    assert len(exported_rows(s3, kms, cutover, "variable")) == manifest["tables"]["variable"]["rows"] == 2


def test_the_drain_waits_for_the_running_task_and_the_delta_carries_it_finished(
    runtime: MigrationDagRuntime, conf: dict[str, Any], cutover: dict[str, Any], s3: S3Client, kms: KMSClient
) -> None:
    old = source()
    runtime.run(old, metadata.EXPORT_DAG_ID, conf)

    runtime.run(old, metadata.EXPORT_DAG_ID, cutover)

    manifest = read_json(s3, f"{PREFIX}/export/cutover/manifest.json")
    assert manifest["drain"] == {"waited_seconds": 10.0, "timed_out": False, "still_running": 0}
    [extract] = exported_rows(s3, kms, cutover, "task_instance")
    assert extract["state"] == "success"


def test_a_drain_that_times_out_fails_the_export_and_keeps_the_pause_and_its_record(
    s3: S3Client, kms: KMSClient, conf: dict[str, Any], cutover: dict[str, Any]
) -> None:
    runtime = MigrationDagRuntime(s3, kms, clock=lambda: NOW, drain_polls=None)
    old = source()
    runtime.run(old, metadata.EXPORT_DAG_ID, conf)

    result = runtime.run(old, metadata.EXPORT_DAG_ID, {**cutover, "drainTimeoutMinutes": 1})

    assert result.failed_task == "drain"
    assert result.stderr.startswith("DrainTimeout: after 1 minutes 1 task instances of the paused DAGs")
    assert read_json(s3, f"{PREFIX}/cutover/record.json")["state"] == "paused"
    assert [row["dag_id"] for row in old.metadata["dag"] if row["is_paused"]] == [
        "daily_sales",
        "hourly_events",
        "legacy_export",
    ]


def test_a_run_after_the_bulk_reaches_the_target_with_the_cutover(
    runtime: MigrationDagRuntime, conf: dict[str, Any], cutover: dict[str, Any]
) -> None:
    old, new = source(), target()
    migrate(runtime, old, new, conf)
    old.metadata["dag_run"].append(
        {
            **old.metadata["dag_run"][0],
            "id": 99,
            "run_id": "manual__late",
            "execution_date": LATER,
            "end_date": LATER,
        }
    )

    migrate(runtime, old, new, cutover)

    assert "manual__late" in {row["run_id"] for row in new.metadata["dag_run"]}


def test_a_second_import_of_either_phase_changes_nothing(
    runtime: MigrationDagRuntime, conf: dict[str, Any], cutover: dict[str, Any], s3: S3Client
) -> None:
    old, new = source(), target()
    again = []
    for phase_conf in (conf, cutover):
        migrate(runtime, old, new, phase_conf)
        before = snapshot(new)
        again.append(runtime.run(new, metadata.IMPORT_DAG_ID, phase_conf))
        assert new.metadata == before

    assert again == [DagRunResult("success")] * 2
    for phase in ("bulk", "cutover"):
        tables = read_json(s3, f"{PREFIX}/import/{phase}/result.json")["tables"]
        # An honest re-run: every row read is identical, nothing inserted, updated or in conflict.
        assert {
            name: (c["inserted"], c["updated"], c["conflicts"], c["identical"] == c["read"])
            for name, c in tables.items()
        } == dict.fromkeys(tables, (0, 0, 0, True))


def test_a_corrupt_file_fails_verify_export_and_changes_nothing(
    runtime: MigrationDagRuntime, conf: dict[str, Any], s3: S3Client
) -> None:
    old, new = source(), target()
    runtime.run(old, metadata.EXPORT_DAG_ID, conf)
    key = f"{PREFIX}/export/bulk/dag_run.tsv.gz.sealed"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"not the exported file")
    before = snapshot(new)

    result = runtime.run(new, metadata.IMPORT_DAG_ID, conf)

    assert result.state == "failed"
    assert result.failed_task == "verify_export"
    assert result.stderr.startswith("VerificationError: dag_run.tsv.gz.sealed: sha256")
    assert new.metadata == before


def test_a_missing_manifest_fails_verify_export(runtime: MigrationDagRuntime, conf: dict[str, Any]) -> None:
    result = runtime.run(target(), metadata.IMPORT_DAG_ID, conf)

    assert result == DagRunResult(
        "failed",
        failed_task="verify_export",
        stderr=f"MissingObjectError: s3://{BUCKET}/{PREFIX}/export/bulk/manifest.json does not exist",
    )


def test_a_failing_task_leaves_none_of_its_changes(
    runtime: MigrationDagRuntime, conf: dict[str, Any], s3: S3Client, kms: KMSClient
) -> None:
    old, new = source(), target()
    runtime.run(old, metadata.EXPORT_DAG_ID, conf)
    # An export whose dag_run lacks execution_date: the target requires it and no rule fills it,
    # so import_tables fails after it has inserted the variables and pools.
    manifest = read_json(s3, f"{PREFIX}/export/bulk/manifest.json")
    entry = manifest["tables"]["dag_run"]
    key = f"{PREFIX}/export/bulk/dag_run.tsv.gz.sealed"
    rows = exported_rows(s3, kms, conf, "dag_run")
    box = metadata.open_secret_box(
        metadata.KmsKeys(kms), metadata.SecretsEnvelope.from_json(manifest["secrets"]), "m-1"
    )
    entry["columns"] = [column for column in entry["columns"] if column["name"] != "execution_date"]
    body, count = metadata.encode_table(
        [{k: v for k, v in row.items() if k != "execution_date"} for row in rows],
        box,
        "dag_run.tsv.gz.sealed",
        [metadata.Column.from_json(column) for column in entry["columns"]],
    )
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    entry.update(rows=count, sha256=metadata.sha256_hex(body))
    # Written as the export would (the data key's holder), so it passes verify_export.
    s3.put_object(
        Bucket=BUCKET,
        Key=f"{PREFIX}/export/bulk/manifest.json",
        Body=json.dumps(metadata.with_mac(manifest, box)).encode(),
    )

    result = runtime.run(new, metadata.IMPORT_DAG_ID, conf)

    assert result.failed_task == "import_tables"
    assert result.stderr == (
        "MappingError: dag_run: the target requires execution_date, which the export lacks "
        "and no rule in RULES fills"
    )
    assert new.metadata.get("variable", []) == []
    assert [row["pool"] for row in new.metadata["slot_pool"]] == ["default_pool"]


def test_tasks_before_a_failing_task_keep_their_changes(
    runtime: MigrationDagRuntime, conf: dict[str, Any], s3: S3Client
) -> None:
    old, new = source(), target()
    runtime.run(old, metadata.EXPORT_DAG_ID, conf)
    runtime.fail_dag(metadata.IMPORT_DAG_ID, "boom", task_id="unpause_dags")

    failed = runtime.run(new, metadata.IMPORT_DAG_ID, conf)

    assert failed == DagRunResult("failed", failed_task="unpause_dags", stderr="boom")
    assert carried(new, "variable") == carried(old, "variable")
    assert [row["dag_id"] for row in new.metadata["dag"] if not row["is_paused"]] == [metadata.IMPORT_DAG_ID]
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/import/bulk/result.json")


def test_a_scripted_failure_fails_the_first_task_before_any_change(
    runtime: MigrationDagRuntime, conf: dict[str, Any]
) -> None:
    old = source()
    runtime.fail_dag(metadata.EXPORT_DAG_ID, "the export was told to fail", times=1)

    first = runtime.run(old, metadata.EXPORT_DAG_ID, conf)
    second = runtime.run(old, metadata.EXPORT_DAG_ID, conf)

    assert first == DagRunResult("failed", failed_task="pause", stderr="the export was told to fail")
    assert second.state == "success"


def test_a_bad_conf_fails_the_first_task(runtime: MigrationDagRuntime) -> None:
    """The conf names a bucket only."""
    result = runtime.run(source(), metadata.EXPORT_DAG_ID, {"bucket": BUCKET})

    assert result.state == "failed"
    assert result.failed_task == "pause"
    assert "'prefix'" in result.stderr


def test_other_dags_just_succeed_and_can_be_made_to_fail(runtime: MigrationDagRuntime) -> None:
    env = source()
    before = snapshot(env)

    assert runtime.run(env, "daily_sales", {}) == DagRunResult("success")
    runtime.fail_dag("daily_sales", "scripted")
    assert runtime.run(env, "daily_sales", {}) == DagRunResult("failed", stderr="scripted")
    assert env.metadata == before


def test_an_airflow_3_target_fails_the_import_clearly(
    runtime: MigrationDagRuntime, conf: dict[str, Any]
) -> None:
    old = source()
    new = environment("analytics-prod-3", "3.0.6", {"dag": []})
    runtime.run(old, metadata.EXPORT_DAG_ID, conf)

    result = runtime.run(new, metadata.IMPORT_DAG_ID, conf)

    assert result.failed_task == "verify_export"
    assert "UnsupportedAirflowError" in result.stderr
    assert "Airflow 3.0.6" in result.stderr


def test_scripting_a_failure_in_a_task_the_dag_lacks_is_refused(runtime: MigrationDagRuntime) -> None:
    with pytest.raises(ValueError, match="mwaa_migrate_import has no task import_rows"):
        runtime.fail_dag(metadata.IMPORT_DAG_ID, "boom", task_id="import_rows")
