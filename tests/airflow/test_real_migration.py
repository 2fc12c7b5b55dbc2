"""A real migration between two Airflow versions MWAA runs, judged by what Airflow itself reports.

Given a source environment whose history comes from Airflow's own scheduler running real DAGs
(successes, a retried task, a failed run with a task that never ran, mapped tasks, XComs, a pool,
variables and a connection with a password and extras), the migration runs in its two phases, each
DAG with Airflow's own runner (`airflow dags test`): the bulk export in the source (pausing
nothing) and its import into a fresh database of a newer version; then the source makes new
history (a triggered run that the scheduler runs, a variable changed); then the cutover export
(record, pause, drain, delta) and its import. Airflow's models on both sides (tests/airflow/report.py)
must tell the same story, and a second import of either phase must change nothing. A 2.11.0 target
is then upgraded in place to Airflow 3.0.6 (a copy of its database, Airflow 3's own `db migrate`),
and Airflow 3's models must tell that story still, losing only what the import's not_carried lists.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulation.real_airflow import AirflowEnvironment, AirflowInstallation
from mwaa_migrate.dags import mwaa_migrate_metadata as metadata
from mwaa_migrate.environment.versions import AirflowVersion
from mwaa_migrate.metadata.metadata_dags import read_export, read_verified_import
from mwaa_migrate.step_events import Phase
from tests.airflow.tier import (
    ASSET_TABLES,
    EXTRA,
    HOP,
    HOP_SECTIONS,
    PAIRS,
    PASSWORD,
    SECTIONS,
    SEED_DAGS,
    VARIABLES,
    LocalAws,
    as_airflow_3,
    report,
    run_dag,
    seed_source,
    write_history,
)

pytestmark = pytest.mark.airflow

# The source's history after the bulk: one more run of hourly_events, and a variable changed.
LATE_RUN_DATE = "2026-11-22T05:00:00+00:00"
CHANGED_VARIABLE = ("warehouse_schema", "analytics_v2")
# At the cutover that run is still going (set so in the database: no worker runs here), its task
# never_runs queued, so the drain times out (drainTimeoutMinutes 0) and carries it (onDrainTimeout
# carry): the delta carries the run as it stands and the task with its state cleared.
IN_FLIGHT = (
    "UPDATE dag_run SET state = 'running', end_date = NULL"
    " WHERE dag_id = 'hourly_events' AND execution_date = '2026-11-22T05:00:00+00:00'",
    "UPDATE task_instance SET state = 'queued' WHERE dag_id = 'hourly_events' AND task_id = 'never_runs'"
    " AND run_id = (SELECT run_id FROM dag_run"
    " WHERE dag_id = 'hourly_events' AND execution_date = '2026-11-22T05:00:00+00:00')",
)


# History people and Airflow's SLA check write after the bulk: a run note changed and a task note
# added on runs the bulk carried, a note on the run made after the bulk, one more SLA miss.
LATE_HISTORY = [
    {"kind": "run_note", "dag_id": "daily_sales", "date": "2026-11-20T00:00:00+00:00", "content": "edited"},
    {
        "kind": "task_note",
        "dag_id": "daily_sales",
        "date": "2026-11-21T00:00:00+00:00",
        "task_id": "extract",
        "content": "written after the bulk",
    },
    {"kind": "run_note", "dag_id": "hourly_events", "date": LATE_RUN_DATE, "content": "the late run"},
    {
        "kind": "sla_miss",
        "dag_id": "daily_sales",
        "date": "2026-11-20T00:00:00+00:00",
        "task_id": "uses_secrets",
        "content": "late",
    },
]
# The tier's targets stand for ones MWAA upgrades to Airflow 3 after the import: the import writes
# the failed tries to task_instance_history first. A 2.11.0 target is upgraded for real (HOP).
FINAL_VERSION = "3.0.6"


def in_flight_task(task_instances: dict[str, Any]) -> str:
    """The report's key of the task queued at the cutover."""
    [key] = [
        key
        for key in task_instances
        if key.startswith("hourly_events/") and "2026-11-22T05" in key and "/never_runs/" in key
    ]
    return key


@dataclass
class Attempt:
    """One more import run: its output, the target before and after, its result if it wrote one."""

    output: str
    failed: bool
    before: dict[str, Any]
    after: dict[str, Any]
    result: dict[str, Any] | None = None


@dataclass
class Hop:
    """A filled 2.11 target upgraded in place to Airflow 3: its database's tables before and after
    Airflow 3's own migration, and what Airflow 3 reports."""

    environment: AirflowEnvironment
    tables_before: dict[str, int]
    tables_after: dict[str, int]
    report: dict[str, Any]


@dataclass
class Migration:
    source: AirflowEnvironment
    target: AirflowEnvironment
    aws: LocalAws
    conf: dict[str, Any]
    # Before anything; after the bulk export; after the new history; after the cutover export.
    source_report: dict[str, Any]
    source_report_after_bulk: dict[str, Any]
    source_report_before_cutover: dict[str, Any]
    source_report_after_cutover: dict[str, Any]
    target_report_after_bulk: dict[str, Any]
    target_report: dict[str, Any]
    target_report_after_second_bulk: dict[str, Any]
    target_report_after_second_imports: dict[str, Any]
    # The bulk imported again after the cutover.
    older_export: Attempt
    results: dict[str, dict[str, Any]]
    second_results: dict[str, dict[str, Any]]
    # The import of a cutover manifest edited in the bucket (a paused DAG added to active_dags).
    tampered: Attempt
    # A connection changed by hand in the target, then the bulk imported again: by default, then
    # with onConflict keep-target.
    stale_by_default: Attempt
    stale_kept: Attempt
    # The target after both imports, upgraded in place to Airflow 3 (a copy of its database, by
    # Airflow 3's own `db migrate`), when the target is HOP's 2.11: what Airflow 3 reports.
    hop: Hop | None = None

    @property
    def prefix(self) -> str:
        return str(self.conf["prefix"])

    def read(self, key: str) -> bytes:
        body: bytes = self.aws.s3.get_object(Bucket=self.aws.bucket, Key=key)["Body"].read()
        return body

    def read_json(self, key: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.read(key))
        return loaded

    def exported_rows(self, table: str, phase: str = "bulk") -> list[dict[str, Any]]:
        """A table file of the export, opened as the target's role does (KMS decrypts the data key)."""
        conf = metadata.RunConf.from_conf({**self.conf, "phase": phase})
        manifest = metadata.read_manifest(self.storage, conf)
        box = metadata.open_secret_box(metadata.KmsKeys(self.aws.kms), manifest.secrets, conf.migration_id)
        return metadata.read_table(self.storage, conf, manifest.tables[table], box)

    @property
    def storage(self) -> metadata.S3Storage:
        return metadata.S3Storage(self.aws.s3, self.aws.bucket)


STALE_HOST = "db.old.internal"


def attempt(target: AirflowEnvironment, date: str, conf: dict[str, Any]) -> Attempt:
    before = report(target)
    result = target.dags_test("mwaa_migrate_import", date, conf)
    output = result.stdout + result.stderr
    failed = result.returncode != 0 or "Marking task as FAILED" in output
    return Attempt(output=output, failed=failed, before=before, after=report(target))


def import_result(local_aws: LocalAws, conf: dict[str, Any], phase: str) -> dict[str, Any]:
    key = f"{conf['prefix']}/import/{phase}/result.json"
    loaded: dict[str, Any] = json.loads(
        local_aws.s3.get_object(Bucket=local_aws.bucket, Key=key)["Body"].read()
    )
    return loaded


def upgrade(
    target: AirflowEnvironment, installations: dict[str, AirflowInstallation], folder: Path
) -> Hop | None:
    """MWAA's in-place upgrade of a filled 2.11 target to Airflow 3, on a copy of its database."""
    if HOP is None:
        return None
    tables_before = target.table_rows()
    upgraded = target.upgraded_copy(installations[HOP[1]], folder / "hop")
    try:
        return Hop(upgraded, tables_before, upgraded.table_rows(), report(upgraded))
    except BaseException:
        upgraded.drop()
        raise


@pytest.fixture(scope="module", params=PAIRS, ids=[f"{source}-to-{target}" for source, target in PAIRS])
def migration(
    request: pytest.FixtureRequest,
    installations: dict[str, AirflowInstallation],
    local_aws: LocalAws,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Migration]:
    source_version, target_version = request.param
    folder = tmp_path_factory.mktemp(f"{source_version}-to-{target_version}")
    migration_id = f"tier-{source_version}-to-{target_version}"
    conf = {
        "bucket": local_aws.bucket,
        "prefix": f"migrations/{migration_id}",
        "migrationId": migration_id,
        "kmsKeyId": local_aws.kms_key_arn,
        "phase": "bulk",
        "sourceEnvironment": f"source-{source_version}",
        "targetEnvironment": f"target-{target_version}",
        "drainTimeoutMinutes": 1,
        "targetFinalVersion": FINAL_VERSION,
    }
    cutover = {**conf, "phase": "cutover", "drainTimeoutMinutes": 0, "onDrainTimeout": "carry"}
    hop: Hop | None = None
    source = AirflowEnvironment.create(
        installations[source_version], folder / "source", aws_env=local_aws.env
    )
    target = AirflowEnvironment.create(
        installations[target_version], folder / "target", aws_env=local_aws.env
    )
    try:
        seed_source(source)
        source_report = report(source)

        source.install_project_dags()
        run_dag(source, "mwaa_migrate_export", "2026-11-23T00:00:00+00:00", conf)
        source_report_after_bulk = report(source)

        target.put_dag_files(SEED_DAGS)
        target.install_project_dags()
        run_dag(target, "mwaa_migrate_import", "2026-11-24T00:00:00+00:00", conf)
        target_report_after_bulk = report(target)
        results = {"bulk": import_result(local_aws, conf, "bulk")}
        # The same export imported again: every row identical, nothing changed.
        run_dag(target, "mwaa_migrate_import", "2026-11-24T12:00:00+00:00", conf)
        second_results = {"bulk": import_result(local_aws, conf, "bulk")}
        target_report_after_second_bulk = report(target)

        # The source runs on after the bulk: its scheduler runs one more (failing) run, and a
        # variable changes. 5 seeded runs + the bulk export's own + this one.
        source.cli("dags", "trigger", "hourly_events", "-e", LATE_RUN_DATE)
        source.schedule_until_done(runs=7)
        source.cli("variables", "set", *CHANGED_VARIABLE)
        write_history(source, LATE_HISTORY)
        for statement in IN_FLIGHT:
            source.sql(statement)
        source_report_before_cutover = report(source)

        run_dag(source, "mwaa_migrate_export", "2026-11-26T00:00:00+00:00", cutover)
        source_report_after_cutover = report(source)
        run_dag(target, "mwaa_migrate_import", "2026-11-27T00:00:00+00:00", cutover)
        target_report = report(target)
        results["cutover"] = import_result(local_aws, conf, "cutover")

        run_dag(target, "mwaa_migrate_import", "2026-11-29T00:00:00+00:00", cutover)
        second_results["cutover"] = import_result(local_aws, conf, "cutover")
        target_report_after_second_imports = report(target)
        hop = upgrade(target, installations, folder) if target_version == (HOP or ("",))[0] else None
        # The bulk's older export after the cutover's: refused, it would set newer rows back.
        older_export = attempt(target, "2026-11-29T12:00:00+00:00", conf)

        manifest_key = f"{conf['prefix']}/export/cutover/manifest.json"
        manifest = local_aws.s3.get_object(Bucket=local_aws.bucket, Key=manifest_key)["Body"].read()
        edited = json.loads(manifest)
        edited["active_dags"].append("legacy_export")
        local_aws.s3.put_object(Bucket=local_aws.bucket, Key=manifest_key, Body=json.dumps(edited).encode())
        tampered = attempt(target, "2026-11-30T00:00:00+00:00", cutover)
        local_aws.s3.put_object(Bucket=local_aws.bucket, Key=manifest_key, Body=manifest)

        target.sql(f"UPDATE connection SET host = '{STALE_HOST}' WHERE conn_id = 'warehouse_db'")  # noqa: S608
        stale_by_default = attempt(target, "2026-12-01T00:00:00+00:00", cutover)
        stale_kept = attempt(target, "2026-12-02T00:00:00+00:00", {**cutover, "onConflict": "keep-target"})
        stale_kept.result = import_result(local_aws, conf, "cutover")
        yield Migration(
            source=source,
            target=target,
            aws=local_aws,
            conf=conf,
            source_report=source_report,
            source_report_after_bulk=source_report_after_bulk,
            source_report_before_cutover=source_report_before_cutover,
            source_report_after_cutover=source_report_after_cutover,
            target_report_after_bulk=target_report_after_bulk,
            target_report=target_report,
            target_report_after_second_bulk=target_report_after_second_bulk,
            target_report_after_second_imports=target_report_after_second_imports,
            older_export=older_export,
            results=results,
            second_results=second_results,
            tampered=tampered,
            stale_by_default=stale_by_default,
            stale_kept=stale_kept,
            hop=hop,
        )
    finally:
        source.drop()
        target.drop()
        if hop is not None:
            hop.environment.drop()


# ------------------------------------------------------------------ the source's history is real


def test_the_source_history_has_retries_failures_mapped_tasks_and_xcoms(migration: Migration) -> None:
    tis = migration.source_report["task_instances"]
    runs = migration.source_report["dag_runs"]

    assert sorted(run["state"] for run in runs.values()) == ["failed", *["success"] * 4]
    flaky = [ti for key, ti in tis.items() if "/flaky/" in key]
    assert [ti["attempts"] for ti in flaky] == [2, 2]
    assert {ti["state"] for key, ti in tis.items() if key.startswith("hourly_events/")} == {
        "failed",
        "upstream_failed",
    }
    assert len([key for key in tis if "/load/" in key]) == 6  # 3 mapped instances in each of 2 runs
    assert any(key.endswith("/row_count") for key in migration.source_report["xcom"])
    assert sum(migration.source_report["task_fail"].values()) >= 3


# ------------------------------------------------------------------ export


SEEDED = ("daily_sales", "hourly_events", "legacy_export", "publish_sales", "sales_report", "weekly_rollup")
ACTIVE = ["daily_sales", "hourly_events", "publish_sales", "sales_report"]


def test_the_bulk_pauses_nothing(migration: Migration) -> None:
    before, after = migration.source_report["paused"], migration.source_report_after_bulk["paused"]

    assert {dag: after[dag] for dag in SEEDED} == {dag: before[dag] for dag in SEEDED}
    assert migration.read_json(f"{migration.prefix}/export/bulk/manifest.json")["active_dags"] == []


def test_the_cutover_records_and_pauses_the_active_dags(migration: Migration) -> None:
    manifest = migration.read_json(f"{migration.prefix}/export/cutover/manifest.json")
    record = migration.read_json(f"{migration.prefix}/cutover/record.json")

    assert manifest["active_dags"] == record["active_dags"] == ACTIVE
    assert record["state"] == "paused"
    assert migration.source_report_before_cutover["paused"]["daily_sales"] is False
    assert {dag: migration.source_report_after_cutover["paused"][dag] for dag in SEEDED} == dict.fromkeys(
        SEEDED, True
    )
    assert (manifest["drain"]["timed_out"], manifest["drain"]["still_running"]) == (True, 1)
    assert set(manifest["timings"]) == {"paused_at", "drain_started_at", "drained_at", "exported_at"}


def test_the_bulk_leaves_out_its_own_run(migration: Migration) -> None:
    runs = migration.exported_rows("dag_run")

    assert sorted(run["dag_id"] for run in runs) == [
        "daily_sales",
        "daily_sales",
        "hourly_events",
        "publish_sales",
        "sales_report",
    ]


def test_the_delta_carries_the_run_made_after_the_bulk_and_not_the_bulks_runs(migration: Migration) -> None:
    runs = migration.exported_rows("dag_run", "cutover")

    assert [(run["dag_id"], run["execution_date"], run["state"]) for run in runs] == [
        ("hourly_events", LATE_RUN_DATE, "running")
    ]


def test_the_delta_carries_the_task_in_flight_with_its_state_cleared(migration: Migration) -> None:
    tasks = {row["task_id"]: row["state"] for row in migration.exported_rows("task_instance", "cutover")}
    key = in_flight_task(migration.source_report_after_cutover["task_instances"])

    assert tasks == {"always_fails": "failed", "never_runs": None}
    assert migration.source_report_after_cutover["task_instances"][key]["state"] == "queued"
    assert migration.target_report["task_instances"][key]["state"] is None


def test_no_secret_is_in_the_bucket_in_plaintext(migration: Migration) -> None:
    listed = migration.aws.s3.list_objects_v2(Bucket=migration.aws.bucket, Prefix=migration.prefix)
    contents = b"".join(migration.read(item["Key"]) for item in listed["Contents"])

    for secret in (PASSWORD, EXTRA["token"], *VARIABLES.values(), CHANGED_VARIABLE[1]):
        assert secret.encode() not in contents
        assert json.dumps(secret).encode() not in contents
    for phase in ("bulk", "cutover"):
        with pytest.raises(gzip.BadGzipFile):
            gzip.decompress(migration.read(f"{migration.prefix}/export/{phase}/connection.tsv.gz.sealed"))
        manifest = migration.read_json(f"{migration.prefix}/export/{phase}/manifest.json")
        assert manifest["secrets"]["kms_key_id"] == migration.aws.kms_key_arn
        assert manifest["secrets"]["algorithm"] == "AES-256-GCM"


def test_the_secrets_are_in_the_sealed_files_for_the_key_holder(migration: Migration) -> None:
    [connection] = migration.exported_rows("connection")
    variables = {row["key"]: row["val"] for row in migration.exported_rows("variable")}

    assert connection["password"] == PASSWORD
    assert json.loads(connection["extra"]) == EXTRA
    assert variables == VARIABLES


def test_the_manifest_describes_the_source(migration: Migration) -> None:
    manifest = migration.read_json(f"{migration.prefix}/export/bulk/manifest.json")

    assert manifest["source_airflow_version"] == migration.source.version
    assert (
        manifest["schema_revision"] == migration.source.sql("SELECT version_num FROM alembic_version")[0][0]
    )
    assert manifest["tables"]["task_instance"]["rows"] == len(migration.source_report["task_instances"])
    assert manifest["tables"]["xcom"]["rows"] == len(migration.source_report["xcom"])


# ------------------------------------------------------------------ import


@pytest.mark.parametrize("section", SECTIONS)
def test_the_bulk_import_carries_the_history_before_the_watermark(migration: Migration, section: str) -> None:
    assert migration.target_report_after_bulk[section] == migration.source_report[section]


@pytest.mark.parametrize("section", SECTIONS)
def test_airflow_reports_the_same_history_on_both_sides_after_the_cutover(
    migration: Migration, section: str
) -> None:
    expected = json.loads(json.dumps(migration.source_report_before_cutover[section]))
    if section == "task_instances":
        expected[in_flight_task(expected)]["state"] = None  # the target's scheduler runs it again

    assert migration.target_report[section] == expected


def test_the_cutover_updates_a_variable_changed_after_the_bulk(migration: Migration) -> None:
    key, value = CHANGED_VARIABLE

    assert migration.target_report_after_bulk["variables"][key] == VARIABLES[key]
    assert migration.target_report["variables"][key] == value
    assert migration.results["cutover"]["tables"]["variable"]["updated"] == 1


def test_the_try_history_is_carried_when_both_versions_keep_it(migration: Migration) -> None:
    query = (
        "SELECT dag_id, task_id, run_id, map_index, try_number, state, start_date, end_date "
        "FROM task_instance_history ORDER BY 1, 2, 3, 4, 5"
    )
    if migration.source.sql("SELECT to_regclass('task_instance_history') IS NOT NULL") == [["f"]]:
        pytest.skip(f"Airflow {migration.source.version} keeps no task_instance_history (2.10+)")

    history = migration.source.sql(query)

    assert any(row[1] == "flaky" for row in history)  # the retried task's first try
    assert migration.target.sql(query) == history


def test_every_audit_log_row_of_the_source_is_in_the_target(migration: Migration) -> None:
    target = list(migration.target_report["log"])
    for row in migration.source_report_after_cutover["log"]:
        target.remove(row)  # a multiset: each source row once


def test_connections_decrypt_with_the_targets_own_fernet_key(migration: Migration) -> None:
    [[stored, encrypted]] = migration.target.sql(
        "SELECT password, is_encrypted FROM connection WHERE conn_id = 'warehouse_db'"
    )

    assert encrypted == "t"
    assert PASSWORD not in stored
    assert migration.target_report["connections"]["warehouse_db"]["password"] == PASSWORD
    assert migration.target_report["connections"]["warehouse_db"]["extra"] == EXTRA


def test_the_bulk_import_unpauses_nothing(migration: Migration) -> None:
    paused = migration.target_report_after_bulk["paused"]

    assert {dag: paused[dag] for dag in SEEDED} == dict.fromkeys(SEEDED, True)
    assert migration.results["bulk"]["unpaused_dags"] == []


def test_the_cutover_import_unpauses_exactly_the_dags_that_were_active(migration: Migration) -> None:
    paused = migration.target_report["paused"]

    assert paused["daily_sales"] is False
    assert paused["hourly_events"] is False
    assert paused["legacy_export"] is True
    assert migration.results["cutover"]["unpaused_dags"] == ACTIVE


@pytest.mark.parametrize("phase", ["bulk", "cutover"])
def test_the_pipeline_verifies_each_import_against_its_export(migration: Migration, phase: Phase) -> None:
    exported = read_export(migration.aws.s3, migration.aws.bucket, migration.prefix, phase)

    verified = read_verified_import(migration.aws.s3, migration.aws.bucket, migration.prefix, phase, exported)

    assert verified.tables["dag_run"]["read"] == exported.tables["dag_run"]["rows"]
    assert migration.results[phase]["source_airflow_version"] == migration.source.version
    assert migration.results[phase]["target_airflow_version"] == migration.target.version


def test_the_bulk_import_inserts_every_exported_task_instance(migration: Migration) -> None:
    first = migration.results["bulk"]["tables"]

    assert first["task_instance"]["inserted"] == len(migration.source_report["task_instances"])
    assert first["xcom"]["inserted"] == len(migration.source_report["xcom"])


@pytest.mark.parametrize("phase", ["bulk", "cutover"])
def test_a_second_import_of_either_phase_changes_nothing(migration: Migration, phase: str) -> None:
    tables = migration.second_results[phase]["tables"]

    first = migration.target_report_after_bulk if phase == "bulk" else migration.target_report
    again = (
        migration.target_report_after_second_bulk
        if phase == "bulk"
        else migration.target_report_after_second_imports
    )

    # An honest re-run: every row identical (a table the target's Airflow lacks: dropped).
    assert {
        name: (c["inserted"], c["updated"], c["conflicts"], c["identical"] + c.get("dropped", 0))
        for name, c in tables.items()
    } == {name: (0, 0, 0, c["read"]) for name, c in tables.items()}
    assert migration.second_results[phase]["conflicts"] == {}
    for section in SECTIONS:
        assert again[section] == first[section]


def test_the_bulk_imported_again_after_the_cutover_is_refused_with_nothing_changed(
    migration: Migration,
) -> None:
    older = migration.older_export

    assert older.failed
    assert "is older than one already imported into this environment" in older.output
    assert older.after == older.before


def test_airflows_cli_lists_the_same_runs_on_both_sides(migration: Migration) -> None:
    def runs(environment: AirflowEnvironment) -> list[tuple[str, str, str]]:
        listed = json.loads(environment.cli("dags", "list-runs", "-d", "hourly_events", "-o", "json").stdout)
        return sorted((run["run_id"], run["state"], run["execution_date"]) for run in listed)

    assert runs(migration.target) == runs(migration.source)


# ------------------------------------------------------------------ what the import trusts and refuses


def test_an_edited_cutover_manifest_fails_the_import_and_unpauses_nothing(migration: Migration) -> None:
    tampered = migration.tampered

    assert tampered.failed
    assert "does not match its MAC" in tampered.output
    assert tampered.after == tampered.before
    assert tampered.after["paused"]["legacy_export"] is True


def test_a_connection_changed_in_the_target_fails_the_import_by_default_naming_it(
    migration: Migration,
) -> None:
    stale = migration.stale_by_default

    assert stale.failed
    assert "ConflictError" in stale.output
    assert "connection: 1 [conn_id=warehouse_db (differs)]" in stale.output
    assert PASSWORD not in stale.output
    # pause_dags, the task before, paused every DAG again; import_tables changed nothing.
    assert {k: v for k, v in stale.after.items() if k != "paused"} == {
        k: v for k, v in stale.before.items() if k != "paused"
    }


def test_keep_target_keeps_the_changed_connection_and_lists_the_conflict(migration: Migration) -> None:
    kept = migration.stale_kept

    assert not kept.failed, kept.output[-5000:]
    host = migration.target.sql("SELECT host FROM connection WHERE conn_id = 'warehouse_db'")
    assert host == [[STALE_HOST]]
    assert kept.result is not None
    assert kept.result["tables"]["connection"]["conflicts"] == 1
    assert kept.result["conflicts"]["connection"]["resolution"] == "kept-target"
    assert kept.result["conflicts"]["connection"]["listed"] == [
        {"key": {"conn_id": "warehouse_db"}, "reason": "differs"}
    ]
    exported = read_export(migration.aws.s3, migration.aws.bucket, migration.prefix, "cutover")
    read_verified_import(migration.aws.s3, migration.aws.bucket, migration.prefix, "cutover", exported)


# ------------------------------------------------------------------ notes, SLA misses, failed tries


def test_notes_and_sla_misses_are_in_the_history_airflow_reports(migration: Migration) -> None:
    before = migration.source_report_before_cutover

    assert set(migration.source_report["run_notes"].values()) == {"ünïcødé note ✓"}
    assert set(before["run_notes"].values()) == {"edited", "the late run"}
    assert sorted(before["task_notes"].values()) == ["fails once, on purpose", "written after the bulk"]
    assert len(before["sla_miss"]) == 2


def test_the_cutover_updates_a_note_edited_after_the_bulk_and_adds_the_new_ones(migration: Migration) -> None:
    bulk, cutover = migration.results["bulk"]["tables"], migration.results["cutover"]["tables"]

    assert (bulk["dag_run_note"]["inserted"], bulk["task_instance_note"]["inserted"]) == (1, 1)
    # Every note again: the one edited updated, the late run's and the new task note inserted.
    assert cutover["dag_run_note"] == {"read": 2, "inserted": 1, "updated": 1, "identical": 0, "conflicts": 0}
    assert cutover["task_instance_note"] == {
        "read": 2,
        "inserted": 1,
        "updated": 0,
        "identical": 1,
        "conflicts": 0,
    }
    assert (bulk["sla_miss"]["inserted"], cutover["sla_miss"]["inserted"]) == (1, 1)


def test_a_run_note_points_at_the_targets_own_id_of_its_run(migration: Migration) -> None:
    query = (
        "SELECT r.dag_id, r.run_id, n.content FROM dag_run_note n JOIN dag_run r ON r.id = n.dag_run_id "
        "WHERE r.dag_id NOT LIKE 'mwaa_migrate%' ORDER BY 1, 2"
    )

    assert migration.target.sql(query) == migration.source.sql(query)


def test_the_failed_tries_are_in_task_instance_history_before_airflow_3(migration: Migration) -> None:
    """task_fail rows but the task instance's own last try become tries of task_instance_history,
    numbered back from the task instance's try number, with task_fail's times and state failed."""
    history = migration.target.sql(
        "SELECT dag_id, task_id, run_id, map_index, try_number, state, start_date, end_date "
        "FROM task_instance_history WHERE dag_id NOT LIKE 'mwaa_migrate%' ORDER BY 1, 2, 3, 4, 5"
    )
    fails = migration.source.sql(
        "SELECT f.dag_id, f.task_id, f.run_id, f.map_index, f.start_date, f.end_date, ti.try_number "
        "FROM task_fail f JOIN task_instance ti USING (dag_id, task_id, run_id, map_index) "
        "WHERE f.start_date IS DISTINCT FROM ti.start_date AND f.dag_id NOT LIKE 'mwaa_migrate%' "
        "ORDER BY 1, 2, 3, 4, 5"
    )
    synthesized = migration.results["bulk"]["synthesized"]["task_instance_history"]

    assert fails  # the retried tasks' first tries
    recorded = migration.source.sql("SELECT to_regclass('task_instance_history') IS NOT NULL") == [["t"]]
    assert sorted((*row[:4], row[6]) for row in history) == sorted((*row[:4], row[4]) for row in fails)
    if not recorded:
        # Synthesized: task_fail's end too (Airflow 2.10+ stamps a try it records itself a moment
        # after task_fail's end).
        assert sorted((*row[:4], row[7]) for row in history) == sorted((*row[:4], row[5]) for row in fails)
    assert {row[5] for row in history} == {"failed"}
    by_instance: dict[tuple[str, ...], list[int]] = {}
    for row in history:
        by_instance.setdefault(tuple(row[:4]), []).append(int(row[4]))
    tries = {tuple(row[:4]): int(row[6]) for row in fails}
    assert by_instance == {key: list(range(1, tries[key])) for key in by_instance}
    if recorded:
        # Airflow 2.10+ recorded its tries itself: they are carried, none synthesized.
        assert synthesized["written"] == 0
    else:
        assert synthesized["written"] == synthesized["candidates"] > 0
        assert "task_fail" in synthesized["why"]


def test_a_second_import_synthesizes_no_try_again(migration: Migration) -> None:
    for phase in ("bulk", "cutover"):
        assert migration.second_results[phase]["synthesized"]["task_instance_history"]["written"] == 0


def test_what_airflow_3_drops_is_listed_as_not_carried(migration: Migration) -> None:
    for phase in ("bulk", "cutover"):
        lost = {entry["table"]: entry for entry in migration.results[phase]["not_carried"]}
        assert lost["sla_miss"]["rows"] == 1
        assert "Airflow 3" in lost["sla_miss"]["reason"]


# ------------------------------------------------------------------ datasets


def test_the_dataset_event_and_the_run_it_triggered_are_in_the_history(migration: Migration) -> None:
    [event] = [json.loads(entry) for entry in migration.source_report["dataset_events"]]

    assert (event[0], event[2], event[3]) == ("s3://lake/sales", "publish_sales", "publish")
    assert [run.split("/")[0] for run in event[7]] == ["sales_report"]


def test_the_events_point_at_the_targets_own_dataset_and_run_ids(migration: Migration) -> None:
    query = (
        "SELECT d.uri, e.timestamp, e.source_run_id, r.dag_id, r.run_id FROM dagrun_dataset_event l "
        "JOIN dataset_event e ON e.id = l.event_id JOIN dataset d ON d.id = e.dataset_id "
        "JOIN dag_run r ON r.id = l.dag_run_id ORDER BY 1, 2, 4, 5"
    )
    bulk = migration.results["bulk"]["tables"]

    assert migration.target.sql(query) == migration.source.sql(query) != []
    # The target's DAG processor made the dataset from the same DAG files: it keeps its own row.
    assert bulk["dataset"]["identical"] >= 1
    assert (bulk["dataset_event"]["inserted"], bulk["dagrun_dataset_event"]["inserted"]) == (1, 1)


def test_pending_dataset_triggers_reach_the_target_with_the_cutover_only(migration: Migration) -> None:
    """Before Airflow 2.10 the paused weekly_rollup gets a trigger that waits for it; 2.10+ queues
    none for a paused DAG. Whatever the source holds at the cutover, the target holds after it."""
    query = (
        "SELECT d.uri, q.target_dag_id, q.created_at FROM dataset_dag_run_queue q "
        "JOIN dataset d ON d.id = q.dataset_id ORDER BY 1, 2"
    )
    pending = migration.source.sql(query)
    bulk, cutover = migration.results["bulk"]["tables"], migration.results["cutover"]["tables"]

    assert migration.target.sql(query) == pending
    assert bulk["dataset_dag_run_queue"]["read"] == 0
    assert cutover["dataset_dag_run_queue"]["inserted"] == len(pending)
    if AirflowVersion.parse(migration.source.version) < AirflowVersion(2, 10, 0):
        assert [row[1] for row in pending] == ["weekly_rollup"]


# ------------------------------------------------------------------ the hop to Airflow 3


def hopped(migration: Migration) -> Hop:
    if migration.hop is None:
        pytest.skip(f"MWAA upgrades only {(HOP or ('2.11.0',))[0]} targets in place to Airflow 3")
    return migration.hop


@pytest.mark.parametrize("section", HOP_SECTIONS)
def test_airflow_3_reports_what_the_filled_2_11_target_held(migration: Migration, section: str) -> None:
    hop = hopped(migration)

    assert hop.report[section] == as_airflow_3(migration.target_report_after_second_imports)[section]


@pytest.mark.parametrize("section", [s for s in HOP_SECTIONS if s not in ("tries", "paused")])
def test_airflow_3_reports_the_sources_history_after_the_hop(migration: Migration, section: str) -> None:
    hop = hopped(migration)
    expected = as_airflow_3(migration.source_report_before_cutover)
    expected["task_instances"][in_flight_task(expected["task_instances"])]["state"] = None

    assert hop.report[section] == expected[section]


def test_every_failed_try_of_the_source_is_a_try_airflow_3_reports(migration: Migration) -> None:
    """task_fail is gone: each failure the source recorded is the task instance's own failed last
    try or a failed try in task_instance_history (recorded by 2.10+, synthesized before)."""
    hop = hopped(migration)
    failed: dict[str, int] = {}
    for key, attempt in hop.report["tries"].items():
        if attempt["state"] == "failed":
            instance = key.rsplit("/", 1)[0]
            failed[instance] = failed.get(instance, 0) + 1
    for key, ti in hop.report["task_instances"].items():
        if ti["state"] == "failed":
            failed[key] = failed.get(key, 0) + 1

    assert failed == migration.source_report_before_cutover["task_fail"]
    assert "task_fail" not in hop.tables_after


def test_the_active_dags_stay_unpaused_through_the_hop(migration: Migration) -> None:
    paused = hopped(migration).report["paused"]

    assert sorted(dag for dag in SEEDED if not paused[dag]) == ACTIVE


def test_connections_still_decrypt_with_the_targets_fernet_key_after_the_hop(migration: Migration) -> None:
    hop = hopped(migration)
    [[stored, encrypted]] = hop.environment.sql(
        "SELECT password, is_encrypted FROM connection WHERE conn_id = 'warehouse_db'"
    )

    assert (encrypted, PASSWORD in stored) == ("t", False)
    assert hop.report["connections"]["warehouse_db"]["password"] == PASSWORD


def test_every_audit_log_row_of_the_source_is_in_airflow_3(migration: Migration) -> None:
    hop = list(hopped(migration).report["log"])
    for row in migration.source_report_after_cutover["log"]:
        hop.remove(row)


def test_the_dataset_tables_become_asset_tables_row_for_row(migration: Migration) -> None:
    hop = hopped(migration)

    assert {new: hop.tables_after[new] for new in ASSET_TABLES} == {
        new: hop.tables_before[old] for new, old in ASSET_TABLES.items()
    }


def test_what_airflow_3_drops_or_leaves_unread_is_what_the_import_lists_as_not_carried(
    migration: Migration,
) -> None:
    """Of the tables the import carries: the ones Airflow 3's migration drops with their rows
    (renamed dataset tables aside) are task_fail alone, whose failures are tries now (above); the
    ones it keeps but no Airflow 3 model reads hold exactly what both imports' not_carried list, by
    table and row count."""
    hop = hopped(migration)
    carried = set(metadata.TABLES_BY_NAME)
    renamed = set(ASSET_TABLES.values())
    dropped = {
        table
        for table, rows in hop.tables_before.items()
        if rows and table in carried and table not in hop.tables_after and table not in renamed
    }
    unread = {
        table: rows
        for table, rows in hop.tables_after.items()
        if rows and table in carried and table not in hop.report["models"]
    }
    listed: dict[str, int] = {}
    for phase in ("bulk", "cutover"):
        for entry in migration.results[phase]["not_carried"]:
            listed[entry["table"]] = listed.get(entry["table"], 0) + entry["rows"]

    assert dropped == {"task_fail"}
    assert unread == listed == {"sla_miss": 2}
