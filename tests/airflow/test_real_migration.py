"""A real migration between two Airflow versions MWAA runs, judged by what Airflow itself reports.

Given a source environment whose history comes from Airflow's own scheduler running real DAGs
(successes, a retried task, a failed run with a task that never ran, mapped tasks, XComs, a pool,
variables and a connection with a password and extras), the export DAG runs in the source and the
import DAG in a fresh database of a newer version, each with Airflow's own runner (`airflow dags
test`). Then Airflow's models on both sides (tests/airflow/report.py) must tell the same story, and
a second import of the same export must change nothing.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from emulation.real_airflow import AirflowEnvironment, AirflowInstallation
from mwaa_migrate.dags import mwaa_migrate_metadata as metadata
from mwaa_migrate.metadata_dags import read_export, read_verified_import
from tests.airflow.tier import (
    EXTRA,
    PAIRS,
    PASSWORD,
    SECTIONS,
    SEED_DAGS,
    VARIABLES,
    LocalAws,
    report,
    seed_source,
)

pytestmark = pytest.mark.airflow


@dataclass
class Migration:
    source: AirflowEnvironment
    target: AirflowEnvironment
    aws: LocalAws
    conf: dict[str, Any]
    source_report: dict[str, Any]
    source_report_after_export: dict[str, Any]
    target_report: dict[str, Any]
    target_report_after_second_import: dict[str, Any]
    result: dict[str, Any]
    second_result: dict[str, Any]

    @property
    def prefix(self) -> str:
        return str(self.conf["prefix"])

    def read(self, key: str) -> bytes:
        body: bytes = self.aws.s3.get_object(Bucket=self.aws.bucket, Key=key)["Body"].read()
        return body

    def read_json(self, key: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.read(key))
        return loaded

    def exported_rows(self, table: str) -> list[dict[str, Any]]:
        """A table file of the export, opened as the target's role does (KMS decrypts the data key)."""
        conf = metadata.RunConf.from_conf(self.conf)
        manifest = metadata.read_manifest(self.storage, conf)
        box = metadata.open_secret_box(metadata.KmsKeys(self.aws.kms), manifest.secrets, conf.migration_id)
        return metadata.read_table(self.storage, conf, manifest.tables[table], box)

    @property
    def storage(self) -> metadata.S3Storage:
        return metadata.S3Storage(self.aws.s3, self.aws.bucket)


def run_dag(environment: AirflowEnvironment, dag_id: str, date: str, conf: dict[str, Any]) -> None:
    result = environment.dags_test(dag_id, date, conf)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "Marking task as FAILED" not in output, output[-5000:]


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
    }
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
        source_report_after_export = report(source)

        target.put_dag_files(SEED_DAGS)
        target.install_project_dags()
        run_dag(target, "mwaa_migrate_import", "2026-11-24T00:00:00+00:00", conf)
        target_report = report(target)
        result = json.loads(
            local_aws.s3.get_object(Bucket=local_aws.bucket, Key=f"{conf['prefix']}/import/result.json")[
                "Body"
            ].read()
        )

        run_dag(target, "mwaa_migrate_import", "2026-11-25T00:00:00+00:00", conf)
        second_result = json.loads(
            local_aws.s3.get_object(Bucket=local_aws.bucket, Key=f"{conf['prefix']}/import/result.json")[
                "Body"
            ].read()
        )
        yield Migration(
            source=source,
            target=target,
            aws=local_aws,
            conf=conf,
            source_report=source_report,
            source_report_after_export=source_report_after_export,
            target_report=target_report,
            target_report_after_second_import=report(target),
            result=result,
            second_result=second_result,
        )
    finally:
        source.drop()
        target.drop()


# ------------------------------------------------------------------ the source's history is real


def test_the_source_history_has_retries_failures_mapped_tasks_and_xcoms(migration: Migration) -> None:
    tis = migration.source_report["task_instances"]
    runs = migration.source_report["dag_runs"]

    assert sorted(run["state"] for run in runs.values()) == ["failed", "success", "success"]
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


def test_the_export_pauses_the_active_dags_and_lists_them(migration: Migration) -> None:
    manifest = migration.read_json(f"{migration.prefix}/export/manifest.json")

    assert manifest["active_dags"] == ["daily_sales", "hourly_events"]
    assert migration.source_report["paused"]["daily_sales"] is False
    assert migration.source_report_after_export["paused"]["daily_sales"] is True
    assert migration.source_report_after_export["paused"]["hourly_events"] is True
    assert migration.source_report_after_export["paused"]["legacy_export"] is True


def test_the_export_leaves_out_its_own_run(migration: Migration) -> None:
    runs = migration.exported_rows("dag_run")

    assert sorted(run["dag_id"] for run in runs) == ["daily_sales", "daily_sales", "hourly_events"]


def test_no_secret_is_in_the_bucket_in_plaintext(migration: Migration) -> None:
    listed = migration.aws.s3.list_objects_v2(Bucket=migration.aws.bucket, Prefix=migration.prefix)
    contents = b"".join(migration.read(item["Key"]) for item in listed["Contents"])

    for secret in (PASSWORD, EXTRA["token"], *VARIABLES.values()):
        assert secret.encode() not in contents
        assert json.dumps(secret).encode() not in contents
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(migration.read(f"{migration.prefix}/export/connection.jsonl.gz.sealed"))
    manifest = migration.read_json(f"{migration.prefix}/export/manifest.json")
    assert manifest["secrets"]["kms_key_id"] == migration.aws.kms_key_arn
    assert manifest["secrets"]["algorithm"] == "AES-256-GCM"


def test_the_secrets_are_in_the_sealed_files_for_the_key_holder(migration: Migration) -> None:
    [connection] = migration.exported_rows("connection")
    variables = {row["key"]: row["val"] for row in migration.exported_rows("variable")}

    assert connection["password"] == PASSWORD
    assert json.loads(connection["extra"]) == EXTRA
    assert variables == VARIABLES


def test_the_manifest_describes_the_source(migration: Migration) -> None:
    manifest = migration.read_json(f"{migration.prefix}/export/manifest.json")

    assert manifest["source_airflow_version"] == migration.source.version
    assert (
        manifest["schema_revision"] == migration.source.sql("SELECT version_num FROM alembic_version")[0][0]
    )
    assert manifest["tables"]["task_instance"]["rows"] == len(migration.source_report["task_instances"])
    assert manifest["tables"]["xcom"]["rows"] == len(migration.source_report["xcom"])


# ------------------------------------------------------------------ import


@pytest.mark.parametrize("section", SECTIONS)
def test_airflow_reports_the_same_history_on_both_sides(migration: Migration, section: str) -> None:
    assert migration.target_report[section] == migration.source_report[section]


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
    for row in migration.source_report["log"]:
        target.remove(row)  # a multiset: each source row once


def test_connections_decrypt_with_the_targets_own_fernet_key(migration: Migration) -> None:
    [[stored, encrypted]] = migration.target.sql(
        "SELECT password, is_encrypted FROM connection WHERE conn_id = 'warehouse_db'"
    )

    assert encrypted == "t"
    assert PASSWORD not in stored
    assert migration.target_report["connections"]["warehouse_db"]["password"] == PASSWORD
    assert migration.target_report["connections"]["warehouse_db"]["extra"] == EXTRA


def test_the_import_unpauses_exactly_the_dags_that_were_active(migration: Migration) -> None:
    paused = migration.target_report["paused"]

    assert paused["daily_sales"] is False
    assert paused["hourly_events"] is False
    assert paused["legacy_export"] is True
    assert migration.result["unpaused_dags"] == ["daily_sales", "hourly_events"]


def test_the_pipeline_verifies_the_import_against_the_export(migration: Migration) -> None:
    exported = read_export(migration.aws.s3, migration.aws.bucket, migration.prefix)

    verified = read_verified_import(migration.aws.s3, migration.aws.bucket, migration.prefix, exported)

    assert verified.tables["task_instance"]["read"] == len(migration.source_report["task_instances"])
    first = migration.result["tables"]
    assert first["task_instance"]["inserted"] == len(migration.source_report["task_instances"])
    assert first["xcom"]["inserted"] == len(migration.source_report["xcom"])
    assert migration.result["source_airflow_version"] == migration.source.version
    assert migration.result["target_airflow_version"] == migration.target.version


def test_a_second_import_of_the_same_export_adds_nothing(migration: Migration) -> None:
    tables = migration.second_result["tables"]

    assert {name: counts["inserted"] for name, counts in tables.items()} == dict.fromkeys(tables, 0)
    assert {name: counts["skipped"] for name, counts in tables.items()} == {
        name: counts["read"] for name, counts in tables.items()
    }
    for section in SECTIONS:
        assert migration.target_report_after_second_import[section] == migration.target_report[section]


def test_airflows_cli_lists_the_same_runs_on_both_sides(migration: Migration) -> None:
    def runs(environment: AirflowEnvironment) -> list[tuple[str, str, str]]:
        listed = json.loads(environment.cli("dags", "list-runs", "-d", "daily_sales", "-o", "json").stdout)
        return sorted((run["run_id"], run["state"], run["execution_date"]) for run in listed)

    assert runs(migration.target) == runs(migration.source)
