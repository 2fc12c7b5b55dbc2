"""moto's migration bucket and KMS, and the export and import DAGs run on them by the emulator's
runtime: the fixtures, rows and reads that the emulator tier's runtime tests
(tests/emulator/test_dag_runtime.py) and the unit tier's (test_import_integrity.py, the log report's
tests) share; `moto_bucket` serves the CLI tier's too.

The tiers' conftest.py files make the fixtures theirs; a test module that uses `conf` or `cutover`
defines `migration`, the names its conf carries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from emulation.dag_runtime import MigrationDagRuntime
from emulation.mwaa import DagRunResult, EmulatedEnvironment
from mwaa_migrate.dags import mwaa_migrate_metadata as metadata

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client

BUCKET = "mwaa-migrate-tests"
# Each run's emulated start: after every finished run of the sources' rows, so the bulk's watermark.
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LATER = "2026-11-23T13:00:00+00:00"


@dataclass(frozen=True)
class Migration:
    """What a test module's conf names: the migration's folder in the bucket, its id and source."""

    prefix: str
    migration_id: str
    source_environment: str


@contextmanager
def moto_bucket(name: str) -> Iterator[S3Client]:
    """moto's AWS for the block, with one S3 bucket in it."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=name)
        yield client


@pytest.fixture
def s3() -> Iterator[S3Client]:
    """moto's S3 with the migration bucket, BUCKET (the tests' MIGRATION_BUCKET)."""
    with moto_bucket(BUCKET) as client:
        yield client


@pytest.fixture
def kms(s3: S3Client) -> KMSClient:
    return boto3.client("kms", region_name="us-east-1")


@pytest.fixture
def conf(kms: KMSClient, migration: Migration) -> dict[str, Any]:
    """The bulk's DAG conf, sealing with a new KMS key."""
    return {
        "bucket": BUCKET,
        "prefix": migration.prefix,
        "migrationId": migration.migration_id,
        "kmsKeyId": kms.create_key()["KeyMetadata"]["Arn"],
        "phase": "bulk",
    }


@pytest.fixture
def cutover(conf: dict[str, Any], migration: Migration) -> dict[str, Any]:
    return {**conf, "phase": "cutover", "sourceEnvironment": migration.source_environment}


@pytest.fixture
def runtime(s3: S3Client, kms: KMSClient) -> MigrationDagRuntime:
    return MigrationDagRuntime(s3, kms, clock=lambda: NOW)


def environment(name: str, version: str, tables: dict[str, list[dict[str, Any]]]) -> EmulatedEnvironment:
    """An AVAILABLE environment holding a copy of `tables`."""
    description = {"Name": name, "AirflowVersion": version, "Status": "AVAILABLE"}
    return EmulatedEnvironment(name, description, json.loads(json.dumps(tables)))


def scheduled_run(dag_id: str, day: int, state: str = "success", **extra: Any) -> dict[str, Any]:
    """A scheduled dag_run of November 2026's `day`, its id that day; finished unless running."""
    date = f"2026-11-{day:02d}T00:00:00+00:00"
    return {
        "id": day,
        "dag_id": dag_id,
        "run_id": f"scheduled__{date}",
        "state": state,
        "run_type": "scheduled",
        "execution_date": date,
        "start_date": f"2026-11-{day:02d}T00:00:05+00:00",
        "end_date": None if state == "running" else f"2026-11-{day:02d}T00:12:41+00:00",
        "conf": {},
        "external_trigger": False,
        **extra,
    }


def migrate(
    runtime: MigrationDagRuntime, old: EmulatedEnvironment, new: EmulatedEnvironment, conf: dict[str, Any]
) -> tuple[DagRunResult, DagRunResult]:
    """The export DAG run on `old`, then the import DAG on `new`, with one conf."""
    return runtime.run(old, metadata.EXPORT_DAG_ID, conf), runtime.run(new, metadata.IMPORT_DAG_ID, conf)


def read_json(s3: S3Client, key: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return loaded


def snapshot(env: EmulatedEnvironment) -> Any:
    """A deep copy of the environment's tables, to compare with after a run."""
    return json.loads(json.dumps(env.metadata))
