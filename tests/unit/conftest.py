"""Fixtures of the unit tier: moto's KMS as the DAGs' library reaches it, and those it shares with
the emulator tier, moto's migration bucket and KMS and the DAG runtime on them (tests/emulated_dags.py)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from mwaa_migrate.dags import mwaa_migrate_metadata as metadata
from tests.emulated_dags import conf, cutover, kms, runtime, s3  # noqa: F401 (fixtures)


@pytest.fixture
def keys() -> Iterator[metadata.KmsKeys]:
    with mock_aws():
        yield metadata.KmsKeys(boto3.client("kms", region_name="us-east-1"))
