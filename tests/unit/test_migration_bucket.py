"""The migration bucket's key layout: spelled once in the layer, the same as the project's DAGs spell
it inside Airflow, and the manifest's key read back to the migration it belongs to."""

from __future__ import annotations

import pytest

from mwaa_migrate import migration_bucket as bucket
from mwaa_migrate.dags.mwaa_migrate_metadata import MANIFEST_FILE, RESULT_FILE, RunConf
from mwaa_migrate.execution import new_execution_name
from mwaa_migrate.step_events import Phase

PREFIX = bucket.migration_prefix("analytics-prod", "analytics-prod-2-10")


def _run_conf(phase: Phase) -> RunConf:
    return RunConf.from_conf(
        {
            "migrationId": "analytics-prod.analytics-prod-2-10",
            "bucket": "mwaa-migrate-artifacts",
            "prefix": PREFIX,
            "kmsKeyId": "alias/mwaa-migrate",
            "phase": phase,
        }
    )


@pytest.mark.parametrize("phase", ["bulk", "cutover"])
def test_the_dags_write_where_the_layer_reads(phase: Phase) -> None:
    conf = _run_conf(phase)
    assert conf.export_key(MANIFEST_FILE) == bucket.export_manifest_key(PREFIX, phase)
    assert conf.import_key(RESULT_FILE) == bucket.import_result_key(PREFIX, phase)
    assert conf.record_key == bucket.cutover_record_key(PREFIX)


def test_every_key_is_under_the_migrations_prefix() -> None:
    execution = f"arn:aws:states:us-east-1:123456789012:execution:mwaa-migrate:{new_execution_name('a', 'b')}"
    keys = [
        bucket.export_manifest_key(PREFIX, "bulk"),
        bucket.import_result_key(PREFIX, "cutover"),
        bucket.cutover_record_key(PREFIX),
        bucket.files_record_key(PREFIX),
        bucket.configuration_key(PREFIX),
        bucket.logs_base_key(PREFIX, execution),
        bucket.hands_on_dags_folder(PREFIX),
        bucket.hands_on_key(PREFIX, "bulk", "conf.json"),
        bucket.report_key(PREFIX, execution),
    ]
    assert PREFIX == "migrations/analytics-prod/analytics-prod-2-10"
    assert all(key.startswith(PREFIX + "/") for key in keys), keys
    assert len(set(keys)) == len(keys)
    assert bucket.report_key(PREFIX, execution).startswith(bucket.reports_prefix(PREFIX))
    assert PREFIX.startswith(bucket.source_migrations_prefix("analytics-prod"))


@pytest.mark.parametrize("phase", ["bulk", "cutover"])
def test_an_exports_manifest_key_names_its_migration_and_phase(phase: Phase) -> None:
    assert bucket.export_manifest_of(bucket.export_manifest_key(PREFIX, phase)) == (PREFIX, phase)


@pytest.mark.parametrize(
    "key",
    [
        f"{PREFIX}/import/bulk/result.json",
        f"{PREFIX}/export/bulk/table.csv.gz",
        f"{PREFIX}/export/delta/manifest.json",
        f"{PREFIX}/hands-on/bulk/wait.json",
        f"other/{PREFIX}/export/bulk/manifest.json",
        "migrations/analytics-prod/export/bulk/manifest.json",
        "migrations/a/b/c/export/bulk/manifest.json",
    ],
)
def test_no_other_key_is_taken_for_a_manifest(key: str) -> None:
    assert bucket.export_manifest_of(key) is None
