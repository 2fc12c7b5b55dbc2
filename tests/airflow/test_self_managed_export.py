"""A self-managed Apache Airflow's export (issue 16), on a real Airflow that holds no AWS credentials,
imported into a real Airflow as an MWAA target's would be.

The source is a real Airflow 2.x on its own PostgreSQL database, its history made by its own
scheduler (tier.seed_source), with no AWS credentials, endpoint or configuration in its processes'
environment. Its export DAG gets what the pipeline hands a self-managed source: presigned POST forms
for this migration's export prefix and cutover record, presigned GET URLs for the two objects it
reads, and the public half of an asymmetric KMS key. The target imports with its own role's S3 and
KMS access (moto's server on loopback; its KMS decrypts RSA as KMS does: emulation/moto_kms.py).
Checked: the bulk and the cutover land and Airflow reports the same history on both sides, section
by section; the cutover pauses exactly the active DAGs on the source and the import unpauses them on
the target; the data key opens only with KMS (the source never could).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from emulation.moto_kms import rsa_decryption
from emulation.real_airflow import AirflowEnvironment, AirflowInstallation
from mwaa_migrate.dags import mwaa_migrate_metadata as metadata
from mwaa_migrate.environment.versions import self_managed_version_problem
from mwaa_migrate.metadata.self_managed_access import export_access, sealing_public_key
from tests.airflow.tier import INTO, SECTIONS, SEED_DAGS, VERSIONS, LocalAws, report, run_dag, seed_source

pytestmark = pytest.mark.airflow

# The oldest installed version a self-managed source may run (2.7.2 by default).
SOURCE = next(version for version in VERSIONS if not self_managed_version_problem(version))
# No credentials anywhere boto3 would look: an export that called AWS itself would fail.
NO_AWS = {
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}
CHANGED_VARIABLE = ("warehouse_schema", "analytics_self_managed")


@dataclass
class SelfManagedMove:
    source: AirflowEnvironment
    target: AirflowEnvironment
    conf: dict[str, Any]
    source_reports: dict[str, dict[str, Any]]
    target_reports: dict[str, dict[str, Any]]
    manifests: dict[str, dict[str, Any]]
    results: dict[str, dict[str, Any]]
    record: dict[str, Any]


@pytest.fixture(scope="module")
def move(
    installations: dict[str, AirflowInstallation],
    local_aws: LocalAws,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SelfManagedMove]:
    folder = tmp_path_factory.mktemp(f"self-managed-{SOURCE}-to-{INTO}")
    key_arn = local_aws.kms.create_key(KeySpec="RSA_4096", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["Arn"]
    public_key = sealing_public_key(local_aws.kms, key_arn)
    migration_id = f"tier-self-managed-{SOURCE}-to-{INTO}"
    conf = {
        "bucket": local_aws.bucket,
        "prefix": f"migrations/{migration_id}",
        "migrationId": migration_id,
        "kmsKeyId": key_arn,
        "phase": "bulk",
        "sourceEnvironment": "on-premises",
        "targetEnvironment": f"target-{INTO}",
        "drainTimeoutMinutes": 1,
    }
    cutover = {**conf, "phase": "cutover"}
    source = AirflowEnvironment.create(installations[SOURCE], folder / "source", aws_env=NO_AWS)
    target = AirflowEnvironment.create(installations[INTO], folder / "target", aws_env=local_aws.env)
    source_reports, target_reports, manifests, results = {}, {}, {}, {}
    try:
        with rsa_decryption():
            seed_source(source)
            source.install_project_dags()
            target.put_dag_files(SEED_DAGS)
            target.install_project_dags()
            for phase, run_conf, dates in (
                ("bulk", conf, ("2026-11-23T00:00:00+00:00", "2026-11-24T00:00:00+00:00")),
                ("cutover", cutover, ("2026-11-26T00:00:00+00:00", "2026-11-27T00:00:00+00:00")),
            ):
                if phase == "cutover":
                    source.cli("variables", "set", *CHANGED_VARIABLE)
                source_reports[f"before_{phase}"] = report(source)
                access = export_access(
                    local_aws.s3,
                    bucket=local_aws.bucket,
                    prefix=conf["prefix"],
                    public_key=public_key,
                    expires_in=3600,
                )
                signed = {**run_conf, "selfManaged": access}
                run_dag(source, "mwaa_migrate_export", dates[0], signed)
                source_reports[phase] = report(source)
                run_dag(target, "mwaa_migrate_import", dates[1], run_conf)
                target_reports[phase] = report(target)
                for name, key in (
                    ("manifest", f"{conf['prefix']}/export/{phase}/manifest.json"),
                    ("result", f"{conf['prefix']}/import/{phase}/result.json"),
                ):
                    body = local_aws.s3.get_object(Bucket=local_aws.bucket, Key=key)["Body"].read()
                    (manifests if name == "manifest" else results)[phase] = json.loads(body)
            record_key = f"{conf['prefix']}/cutover/record.json"
            record = json.loads(
                local_aws.s3.get_object(Bucket=local_aws.bucket, Key=record_key)["Body"].read()
            )
            yield SelfManagedMove(
                source, target, conf, source_reports, target_reports, manifests, results, record
            )
    finally:
        source.drop()
        target.drop()


@pytest.mark.parametrize("phase", ["bulk", "cutover"])
@pytest.mark.parametrize("section", SECTIONS)
def test_airflow_reports_the_same_history_on_both_sides(
    move: SelfManagedMove, phase: str, section: str
) -> None:
    assert move.source_reports[f"before_{phase}"][section], f"the source made no {section}"
    assert move.target_reports[phase][section] == move.source_reports[f"before_{phase}"][section]


def test_the_cutover_carries_what_changed_after_the_bulk(move: SelfManagedMove) -> None:
    key, value = CHANGED_VARIABLE

    assert move.target_reports["bulk"]["variables"][key] != value
    assert move.target_reports["cutover"]["variables"][key] == value
    assert move.results["cutover"]["tables"]["variable"]["updated"] == 1


def test_the_cutover_pauses_the_active_dags_on_the_source_and_starts_them_on_the_target(
    move: SelfManagedMove,
) -> None:
    active = move.record["active_dags"]

    assert active == move.manifests["cutover"]["active_dags"] != []
    assert not any(move.source_reports["before_cutover"]["paused"][dag] for dag in active)
    assert all(move.source_reports["cutover"]["paused"][dag] for dag in active)
    assert move.results["cutover"]["unpaused_dags"] == active
    assert not any(move.target_reports["cutover"]["paused"][dag] for dag in active)


def test_the_data_key_is_sealed_for_kms_and_no_secret_is_in_the_bucket(
    move: SelfManagedMove, local_aws: LocalAws
) -> None:
    for manifest in move.manifests.values():
        assert manifest["secrets"]["data_key_sealing"] == metadata.PUBLIC_KEY_SEALING
        assert manifest["secrets"]["kms_key_id"] == move.conf["kmsKeyId"]
    listed = local_aws.s3.list_objects_v2(Bucket=local_aws.bucket, Prefix=move.conf["prefix"])["Contents"]
    connection = move.source_reports["before_bulk"]["connections"]["warehouse_db"]
    for item in listed:
        body = local_aws.s3.get_object(Bucket=local_aws.bucket, Key=item["Key"])["Body"].read()
        assert connection["password"].encode() not in body
