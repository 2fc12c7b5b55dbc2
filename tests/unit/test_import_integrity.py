"""The import trusts only what the export wrote (the manifest's MAC) and verifies what it did
(read = inserted + updated + identical + conflicts), in the emulation: the export and import DAGs'
tasks through the emulator's runtime, the bucket and KMS in moto.

Issue 10, items 6 and 7: an edited manifest made the target unpause a DAG paused on the source;
a dag_run refused by a constraint and a stale target connection both ended "already present"."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from emulation.dag_runtime import EmulatedDatabase, MigrationDagRuntime
from emulation.lambdas import REPO_ROOT
from emulation.mwaa import DagRunResult, EmulatedEnvironment
from mwaa_migrate.dags import mwaa_migrate_metadata as metadata
from mwaa_migrate.errors import DagRunFailed
from mwaa_migrate.metadata.metadata_dags import read_export, read_verified_import
from mwaa_migrate.run.report import MigrationReport, table_counts
from mwaa_migrate.run.report_markdown import render_markdown
from mwaa_migrate_cli import arguments, request_args
from tests.emulated_dags import (
    BUCKET,
    LATER,
    NOW,
    Migration,
    environment,
    migrate,
    read_json,
    scheduled_run,
    snapshot,
)

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client

PREFIX = "migrations/prod/prod-2-10"
RUN_20 = "scheduled__2026-11-20T00:00:00+00:00"
RUN_22 = "scheduled__2026-11-22T00:00:00+00:00"


@pytest.fixture
def migration() -> Migration:
    return Migration(PREFIX, "prod-to-new", "prod")


# The source and the target, the source's bulk exported and imported.
Migrated = tuple[EmulatedEnvironment, EmulatedEnvironment]


@pytest.fixture
def bulk_migrated(runtime: MigrationDagRuntime, conf: dict[str, Any]) -> Migrated:
    old, new = source(), target()
    migrate(runtime, old, new, conf)
    return old, new


def _connection(host: str, password: str) -> dict[str, Any]:
    return {
        "conn_id": "warehouse",
        "conn_type": "postgres",
        "host": host,
        "login": "etl",
        "password": password,
        "port": 5432,
        "extra": None,
        "is_encrypted": True,
        "is_extra_encrypted": False,
    }


def source() -> EmulatedEnvironment:
    return environment(
        "prod",
        "2.7.2",
        {
            "variable": [{"key": "schema", "val": "analytics", "description": None, "is_encrypted": True}],
            "connection": [_connection("db.prod.internal", "s3cr3t")],
            "dag": [
                {"dag_id": "daily_sales", "is_paused": False},
                {"dag_id": "legacy_export", "is_paused": True},
            ],
            "dag_run": [scheduled_run("daily_sales", 20), scheduled_run("daily_sales", 22, "running")],
        },
    )


def target(**tables: list[dict[str, Any]]) -> EmulatedEnvironment:
    return environment(
        "prod-2-10",
        "2.10.3",
        {
            "dag": [
                {"dag_id": "daily_sales", "is_paused": True},
                {"dag_id": "legacy_export", "is_paused": True},
                {"dag_id": metadata.IMPORT_DAG_ID, "is_paused": False},
            ],
            "dag_run": [],
            **tables,
        },
    )


def put_json(s3: S3Client, key: str, data: dict[str, Any]) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(data).encode())


def edit_manifest(s3: S3Client, phase: str, change: Callable[[dict[str, Any]], Any]) -> None:
    """What anyone who may write to the bucket can do: change the manifest, keep its MAC."""
    key = f"{PREFIX}/export/{phase}/manifest.json"
    manifest = read_json(s3, key)
    change(manifest)
    put_json(s3, key, manifest)


def paused(env: EmulatedEnvironment) -> dict[str, bool]:
    return {row["dag_id"]: row["is_paused"] for row in env.metadata["dag"]}


# ------------------------------------------------------------------ item 6: the manifest's MAC


def test_the_export_writes_a_mac_the_import_accepts(
    runtime: MigrationDagRuntime, conf: dict[str, Any], s3: S3Client
) -> None:
    results = migrate(runtime, source(), target(), conf)

    assert results == (DagRunResult("success"), DagRunResult("success"))
    mac = read_json(s3, f"{PREFIX}/export/bulk/manifest.json")["mac"]
    assert mac["algorithm"] == metadata.MAC_ALGORITHM
    assert len(mac["value"]) == 64


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda m: m["active_dags"].append("legacy_export"), id="added-active-dag"),
        pytest.param(
            lambda m: m["tables"]["dag_run"].update(rows=m["tables"]["dag_run"]["rows"] + 1), id="count"
        ),
        pytest.param(lambda m: m.pop("mac"), id="mac-removed"),
    ],
)
def test_an_edited_cutover_manifest_fails_the_import_before_the_target_changes(
    runtime: MigrationDagRuntime,
    bulk_migrated: Migrated,
    cutover: dict[str, Any],
    s3: S3Client,
    edit: Callable[[dict[str, Any]], Any],
) -> None:
    old, new = bulk_migrated
    runtime.run(old, metadata.EXPORT_DAG_ID, cutover)
    edit_manifest(s3, "cutover", edit)
    before = snapshot(new)

    result = runtime.run(new, metadata.IMPORT_DAG_ID, cutover)

    assert (result.state, result.failed_task) == ("failed", "verify_export")
    assert "VerificationError" in result.stderr
    assert "MAC" in result.stderr
    assert new.metadata == before
    assert paused(new)["legacy_export"] is True


def test_a_data_object_swapped_for_another_exports_fails_the_import_with_nothing_changed(
    runtime: MigrationDagRuntime, bulk_migrated: Migrated, cutover: dict[str, Any], s3: S3Client
) -> None:
    old, new = bulk_migrated
    runtime.run(old, metadata.EXPORT_DAG_ID, cutover)
    # The bulk's dag_run file (another data key) under the cutover's name, its sha256 in the manifest.
    swapped = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/export/bulk/dag_run.tsv.gz.sealed")["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/export/cutover/dag_run.tsv.gz.sealed", Body=swapped)
    edit_manifest(s3, "cutover", lambda m: m["tables"]["dag_run"].update(sha256=metadata.sha256_hex(swapped)))
    before = snapshot(new)

    result = runtime.run(new, metadata.IMPORT_DAG_ID, cutover)

    assert (result.state, result.failed_task) == ("failed", "verify_export")
    assert "does not match its MAC" in result.stderr
    assert new.metadata == before


def test_a_manifest_changed_after_verify_export_is_refused_before_any_dag_is_unpaused(
    runtime: MigrationDagRuntime,
    bulk_migrated: Migrated,
    cutover: dict[str, Any],
    s3: S3Client,
    kms: KMSClient,
) -> None:
    old, new = bulk_migrated
    runtime.run(old, metadata.EXPORT_DAG_ID, cutover)
    run_conf = metadata.RunConf.from_conf(cutover)
    storage, keys = metadata.S3Storage(s3, BUCKET), metadata.KmsKeys(kms)
    db = EmulatedDatabase(new, now=NOW)
    metadata.verify_export(db, storage, run_conf, keys)
    imported = metadata.import_tables(db, storage, run_conf, keys)
    edit_manifest(s3, "cutover", lambda m: m["active_dags"].append("legacy_export"))

    with pytest.raises(metadata.VerificationError, match="does not match its MAC"):
        metadata.unpause_dags(db, storage, run_conf, imported, keys)


def test_a_bulk_watermark_edited_before_the_cutover_export_fails_the_cutover_import(
    runtime: MigrationDagRuntime, bulk_migrated: Migrated, cutover: dict[str, Any], s3: S3Client
) -> None:
    old, new = bulk_migrated
    # The source's role cannot check a MAC (it may not decrypt): the cutover export reads this as is.
    edit_manifest(s3, "bulk", lambda m: m.update(watermark="2026-11-23T13:00:00+00:00"))
    runtime.run(old, metadata.EXPORT_DAG_ID, cutover)
    before = snapshot(new)

    result = runtime.run(new, metadata.IMPORT_DAG_ID, cutover)

    assert (result.state, result.failed_task) == ("failed", "verify_export")
    assert "export/bulk/manifest.json does not match its MAC" in result.stderr
    assert new.metadata == before


# ------------------------------------------------------------------ item 7: conflicts


def refusing_target() -> EmulatedEnvironment:
    """A target holding its own run of daily_sales at the 20th's logical date, under another run id."""
    return target(dag_run=[{**scheduled_run("daily_sales", 20), "run_id": "manual__mine", "id": 900}])


def stale_target() -> EmulatedEnvironment:
    return target(connection=[{**_connection("db.old.internal", "stale"), "id": 5}])


Resolve = Callable[[EmulatedEnvironment, str], dict[str, Any]]


@pytest.fixture
def resolved(runtime: MigrationDagRuntime, conf: dict[str, Any], s3: S3Client) -> Resolve:
    """The bulk migrated into a target, its conflicts resolved by an onConflict: the import's result."""

    def resolve(env: EmulatedEnvironment, on_conflict: str) -> dict[str, Any]:
        results = migrate(runtime, source(), env, {**conf, "onConflict": on_conflict})

        assert results == (DagRunResult("success"), DagRunResult("success"))
        return read_json(s3, f"{PREFIX}/import/bulk/result.json")

    return resolve


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        pytest.param(
            refusing_target, f"dag_run: 1 [dag_id=daily_sales, run_id={RUN_20} (refused)]", id="refused"
        ),
        pytest.param(stale_target, "connection: 1 [conn_id=warehouse (differs)]", id="stale-connection"),
    ],
)
def test_a_conflict_fails_the_import_by_default_naming_table_and_key_with_nothing_changed(
    runtime: MigrationDagRuntime,
    conf: dict[str, Any],
    s3: S3Client,
    new: Callable[[], EmulatedEnvironment],
    expected: str,
) -> None:
    env = new()
    before = snapshot(env)

    exported, imported = migrate(runtime, source(), env, conf)

    assert exported.state == "success"
    assert (imported.state, imported.failed_task) == ("failed", "import_tables")
    assert imported.stderr.startswith("ConflictError: 1 exported rows conflict with the target's own")
    assert expected in imported.stderr
    assert "onConflict is fail" in imported.stderr
    # pause_dags (before import_tables) committed; nothing of import_tables did.
    assert {k: v for k, v in env.metadata.items() if k != "dag"} == {
        k: v for k, v in before.items() if k != "dag"
    }
    # Keys only: no value of the row (a password) in the error.
    assert "s3cr3t" not in imported.stderr
    assert "stale" not in imported.stderr


def test_keep_target_keeps_the_stale_connection_and_lists_the_conflict(
    resolved: Resolve, s3: S3Client
) -> None:
    env = stale_target()

    result = resolved(env, "keep-target")

    [connection] = env.metadata["connection"]
    assert (connection["host"], connection["password"]) == ("db.old.internal", "stale")
    assert result["on_conflict"] == "keep-target"
    assert result["tables"]["connection"] == {
        "read": 1,
        "inserted": 0,
        "updated": 0,
        "identical": 0,
        "conflicts": 1,
    }
    assert result["conflicts"] == {
        "connection": {
            "count": 1,
            "refused": 0,
            "differing": 1,
            "resolution": "kept-target",
            "listed": [{"key": {"conn_id": "warehouse"}, "reason": "differs"}],
        }
    }
    verified = read_verified_import(s3, BUCKET, PREFIX, "bulk", read_export(s3, BUCKET, PREFIX, "bulk"))
    assert verified.conflicts["connection"]["resolution"] == "kept-target"


def test_keep_target_keeps_the_targets_own_run_and_leaves_out_the_refused_one(resolved: Resolve) -> None:
    env = refusing_target()

    conflicts = resolved(env, "keep-target")["conflicts"]

    assert [row["run_id"] for row in env.metadata["dag_run"]] == ["manual__mine"]
    assert conflicts["dag_run"]["refused"] == 1
    assert conflicts["dag_run"]["listed"] == [
        {"key": {"dag_id": "daily_sales", "run_id": RUN_20}, "reason": "refused"}
    ]


def test_overwrite_sets_the_stale_connection_to_the_sources(
    resolved: Resolve, runtime: MigrationDagRuntime, conf: dict[str, Any], s3: S3Client
) -> None:
    env = stale_target()

    result = resolved(env, "overwrite")

    [connection] = env.metadata["connection"]
    assert (connection["host"], connection["password"]) == ("db.prod.internal", "s3cr3t")
    assert result["conflicts"]["connection"]["resolution"] == "overwritten"
    assert result["tables"]["connection"]["conflicts"] == 1
    # Overwritten, the row is now this migration's copy: a second import finds it identical.
    again = runtime.run(env, metadata.IMPORT_DAG_ID, conf)
    assert again == DagRunResult("success")
    assert read_json(s3, f"{PREFIX}/import/bulk/result.json")["tables"]["connection"]["identical"] == 1


def test_overwrite_cannot_replace_a_row_refused_under_another_key_and_fails(
    runtime: MigrationDagRuntime, conf: dict[str, Any]
) -> None:
    env = refusing_target()

    _, imported = migrate(runtime, source(), env, {**conf, "onConflict": "overwrite"})

    assert (imported.state, imported.failed_task) == ("failed", "import_tables")
    assert "cannot replace a row the target holds under another key" in imported.stderr


def test_the_cutover_updates_its_own_earlier_copy_of_a_run_without_a_conflict(
    runtime: MigrationDagRuntime, bulk_migrated: Migrated, cutover: dict[str, Any], s3: S3Client
) -> None:
    old, new = bulk_migrated
    migrate(runtime, old, new, cutover)
    # A retried cutover: the run carried in flight by the first has finished on the source since.
    [run] = [row for row in old.metadata["dag_run"] if row["run_id"] == RUN_22]
    run.update(state="success", end_date=LATER)

    results = migrate(runtime, old, new, cutover)

    assert results == (DagRunResult("success"), DagRunResult("success"))
    [copied] = [row for row in new.metadata["dag_run"] if row["run_id"] == RUN_22]
    assert (copied["state"], copied["end_date"]) == ("success", LATER)
    result = read_json(s3, f"{PREFIX}/import/cutover/result.json")
    assert result["tables"]["dag_run"] == {
        "read": 1,
        "inserted": 0,
        "updated": 1,
        "identical": 0,
        "conflicts": 0,
    }
    assert result["conflicts"] == {}


def test_a_row_changed_on_the_target_between_bulk_and_cutover_is_a_conflict_of_the_cutover(
    runtime: MigrationDagRuntime, bulk_migrated: Migrated, cutover: dict[str, Any]
) -> None:
    old, new = bulk_migrated
    [variable] = new.metadata["variable"]
    variable["val"] = "set by hand on the new environment"
    runtime.run(old, metadata.EXPORT_DAG_ID, cutover)
    before = snapshot(new)

    result = runtime.run(new, metadata.IMPORT_DAG_ID, cutover)

    assert (result.state, result.failed_task) == ("failed", "import_tables")
    assert "variable: 1 [key=schema (differs)]" in result.stderr
    assert {k: v for k, v in new.metadata.items() if k != "dag"} == {
        k: v for k, v in before.items() if k != "dag"
    }
    assert paused(new)["daily_sales"] is True


def test_an_honest_second_import_of_the_same_export_counts_every_row_identical(
    runtime: MigrationDagRuntime, conf: dict[str, Any], bulk_migrated: Migrated, s3: S3Client
) -> None:
    _, new = bulk_migrated

    again = runtime.run(new, metadata.IMPORT_DAG_ID, conf)

    assert again == DagRunResult("success")
    tables = read_json(s3, f"{PREFIX}/import/bulk/result.json")["tables"]
    assert tables == {
        name: {"read": c["read"], "inserted": 0, "updated": 0, "identical": c["read"], "conflicts": 0}
        for name, c in tables.items()
    }
    assert sum(c["read"] for c in tables.values()) > 0


def test_the_bulk_imported_again_after_the_cutover_is_refused_with_nothing_changed(
    runtime: MigrationDagRuntime, conf: dict[str, Any], bulk_migrated: Migrated, cutover: dict[str, Any]
) -> None:
    old, new = bulk_migrated
    [variable] = old.metadata["variable"]
    variable["val"] = "analytics_v2"
    migrate(runtime, old, new, cutover)
    before = snapshot(new)

    # The bulk's older values would set the cutover's newer copies back: refused before any change.
    result = runtime.run(new, metadata.IMPORT_DAG_ID, conf)

    assert (result.state, result.failed_task) == ("failed", "verify_export")
    assert "is older than one already imported into this environment" in result.stderr
    assert new.metadata == before
    assert [row["val"] for row in new.metadata["variable"]] == ["analytics_v2"]


def bulk_report(s3: S3Client) -> MigrationReport:
    """The migration's report of a succeeded run, from the bulk's verified export and import."""
    exported = read_export(s3, BUCKET, PREFIX, "bulk")
    imported = read_verified_import(s3, BUCKET, PREFIX, "bulk", exported).model_dump(
        mode="json", by_alias=True
    )
    return MigrationReport(
        status="SUCCEEDED",
        migration_id="prod-to-new",
        execution_id="arn:aws:states:us-east-1:1:execution:m:run-1",
        source={"name": "prod"},
        target={"name": "prod-2-10"},
        started_at="2026-11-23T12:00:00+00:00",
        finished_at="2026-11-23T12:30:00+00:00",
        duration_seconds=1800.0,
        tables=table_counts(exported.model_dump(mode="json"), imported),
        metadata={"import": imported},
    )


def test_the_report_lists_conflicts_by_table_and_key(
    runtime: MigrationDagRuntime, conf: dict[str, Any], s3: S3Client
) -> None:
    migrate(runtime, source(), stale_target(), {**conf, "onConflict": "keep-target"})
    report = bulk_report(s3)

    markdown = render_markdown(report)

    assert (
        "| Table | Source rows | Read by import | Inserted | Updated | Already in target | Conflicts |"
        in markdown
    )
    assert "| connection | 1 | 1 | 0 | 0 | 0 | 1 |" in markdown
    assert "Conflicts (onConflict `keep-target`):" in markdown
    assert "- connection: 1, kept-target\n  - conn_id=warehouse (differs)" in markdown


# ------------------------------------------------------------------ onConflict from the request to the DAG


def test_the_on_conflict_flag_becomes_the_request_field_and_back() -> None:
    args = arguments.build_parser().parse_args(
        [
            "start",
            "--source",
            "prod",
            "--target",
            "prod-2",
            "--version",
            "2.10.3",
            "--on-conflict",
            "keep-target",
        ]
    )

    request = request_args.migration_request(args, dry_run=False)

    assert request["onConflict"] == "keep-target"
    assert request_args.request_flags(request)[-1] == "--on-conflict keep-target"


def test_the_state_machine_passes_the_plans_on_conflict_to_both_imports_only() -> None:
    definition = json.loads((REPO_ROOT / "statemachine" / "migration.asl.json").read_text())
    confs: dict[str, dict[str, Any]] = {}

    def walk(states: dict[str, Any]) -> None:
        for name, state in states.items():
            payload = state.get("Parameters", {}).get("Payload", {})
            if "conf" in payload:
                confs[name] = payload["conf"]
            for branch in state.get("Branches", []):
                walk(branch["States"])
            if "ItemProcessor" in state:
                walk(state["ItemProcessor"]["States"])

    walk(definition["States"])
    plan = definition["States"]["PlanMigration"]["ResultSelector"]

    assert plan["onConflict.$"] == "$.Payload.onConflict"
    imports = {name for name, conf in confs.items() if conf.get("onConflict.$") == "$.plan.onConflict"}
    assert imports == {"TriggerImportDag", "TriggerCutoverImport"}
    assert {conf.get("phase") for name, conf in confs.items() if name in imports} == {"bulk", "cutover"}


# ------------------------------------------------------------------ issue 11: nothing dropped silently


def test_the_report_lists_what_was_not_carried_and_the_tries_kept_for_airflow_3(
    runtime: MigrationDagRuntime, conf: dict[str, Any], s3: S3Client
) -> None:
    old = source()
    run_20 = {"dag_id": "daily_sales", "run_id": RUN_20, "map_index": -1}
    old.metadata["task_instance"] = [
        {
            **run_20,
            "task_id": "extract",
            "state": "success",
            "try_number": 2,
            "pool": "default_pool",
            "start_date": "2026-11-20T00:00:30+00:00",
            "end_date": "2026-11-20T00:00:40+00:00",
        },
    ]
    old.metadata["task_fail"] = [
        {
            **run_20,
            "id": 1,
            "task_id": "extract",
            "start_date": "2026-11-20T00:00:05+00:00",
            "end_date": "2026-11-20T00:00:09+00:00",
            "duration": 4,
        },
    ]
    old.metadata["sla_miss"] = [
        {
            "task_id": "extract",
            "dag_id": "daily_sales",
            "execution_date": "2026-11-20T00:00:00+00:00",
            "timestamp": "2026-11-20T01:00:00+00:00",
        },
    ]
    new = target()
    to_airflow_3 = {**conf, "targetFinalVersion": "3.0.6"}

    assert migrate(runtime, old, new, to_airflow_3) == (DagRunResult("success"),) * 2
    report = bulk_report(s3)

    markdown = render_markdown(report)

    assert [(entry["table"], entry["rows"]) for entry in report.metadata["import"]["notCarried"]] == [
        ("sla_miss", 1)
    ]
    assert f"- sla_miss: 1 rows, {metadata.SLA_MISS_GONE}" in markdown
    assert (
        "Written to task_instance_history from task_fail: 1 rows (the target becomes Airflow 3.0.6"
        in markdown
    )
    [tried] = new.metadata["task_instance_history"]
    assert (tried["task_id"], tried["try_number"], tried["state"]) == ("extract", 1, "failed")


def _pending_trigger_for_a_dag_the_target_lacks(
    runtime: MigrationDagRuntime, conf: dict[str, Any], cutover: dict[str, Any]
) -> None:
    old = source()
    old.metadata["dataset"] = [
        {
            "id": 1,
            "uri": "s3://lake/sales",
            "extra": {},
            "created_at": LATER,
            "updated_at": LATER,
            "is_orphaned": False,
        }
    ]
    old.metadata["dataset_dag_run_queue"] = [
        {"dataset_id": 1, "target_dag_id": "not_on_the_target", "created_at": LATER}
    ]
    new = target()
    assert migrate(runtime, old, new, conf) == (DagRunResult("success"),) * 2
    assert migrate(runtime, old, new, cutover) == (DagRunResult("success"),) * 2


def test_rows_dropped_for_a_dag_the_target_lacks_pass_verification_listed_as_not_carried(
    runtime: MigrationDagRuntime, conf: dict[str, Any], cutover: dict[str, Any], s3: S3Client
) -> None:
    _pending_trigger_for_a_dag_the_target_lacks(runtime, conf, cutover)
    exported = read_export(s3, BUCKET, PREFIX, "cutover")

    imported = read_verified_import(s3, BUCKET, PREFIX, "cutover", exported)

    assert imported.tables["dataset_dag_run_queue"]["dropped"] == 1
    assert imported.not_carried == [
        {
            "table": "dataset_dag_run_queue",
            "rows": 1,
            "reason": "for DAGs the target does not have: not_on_the_target",
        }
    ]


def test_rows_dropped_without_a_not_carried_line_fail_verification(
    runtime: MigrationDagRuntime, conf: dict[str, Any], cutover: dict[str, Any], s3: S3Client
) -> None:
    _pending_trigger_for_a_dag_the_target_lacks(runtime, conf, cutover)
    exported = read_export(s3, BUCKET, PREFIX, "cutover")
    result = read_json(s3, f"{PREFIX}/import/cutover/result.json")
    put_json(s3, f"{PREFIX}/import/cutover/result.json", {**result, "not_carried": []})

    with pytest.raises(DagRunFailed, match="dataset_dag_run_queue: read 1, inserted 0"):
        read_verified_import(s3, BUCKET, PREFIX, "cutover", exported)
