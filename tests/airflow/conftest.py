"""The real tier: real Apache Airflow (one virtualenv per version) on a real PostgreSQL server, with
S3 and KMS served by moto's server on loopback so the DAGs' own boto3 reaches them.

`make test-airflow` installs and starts everything; run alone, the fixtures do the same (each step
is skipped when already done). Every test module here is marked `airflow`, which pytest's default
options deselect, so `make test` leaves them out.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from moto.server import ThreadedMotoServer

from emulation.lambdas import REPO_ROOT
from emulation.real_airflow import AirflowInstallation
from tests.airflow.tier import REGION, VERSIONS, LocalAws

if TYPE_CHECKING:
    pass


@pytest.fixture(scope="session")
def installations() -> dict[str, AirflowInstallation]:
    subprocess.run([str(REPO_ROOT / "scripts" / "airflow_venvs.sh"), *VERSIONS], check=True)
    subprocess.run([str(REPO_ROOT / "scripts" / "postgres_server.sh"), "start"], check=True)
    return {version: AirflowInstallation.find(version) for version in VERSIONS}


# A module's own: moto's backends are one per process, and a module that runs the local stack
# (mock_aws) resets them all when its stack stops, this server's bucket and key with them.
@pytest.fixture(scope="module")
def local_aws() -> Iterator[LocalAws]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    options = {
        "endpoint_url": endpoint,
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    s3 = boto3.client("s3", **options)  # type: ignore[call-overload]
    kms = boto3.client("kms", **options)  # type: ignore[call-overload]
    bucket = "mwaa-migrate-airflow-tier"
    s3.create_bucket(Bucket=bucket)
    key = kms.create_key(Description="mwaa-migrate migration secrets")["KeyMetadata"]["Arn"]
    try:
        yield LocalAws(endpoint, s3, kms, key, bucket)
    finally:
        server.stop()
