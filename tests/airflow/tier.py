"""What the real tier's tests share: the version pairs and the local AWS endpoint."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulation.real_airflow import AirflowEnvironment

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client

# (source, target) Airflow versions, both ones MWAA runs: AIRFLOW_TIER_PAIRS="2.7.2:2.10.3,2.10.3:2.11.0"
PAIRS = [
    tuple(pair.split(":", 1))
    for pair in os.environ.get("AIRFLOW_TIER_PAIRS", "2.7.2:2.10.3,2.10.3:2.11.0").split(",")
    if pair
]
VERSIONS = sorted({version for pair in PAIRS for version in pair})
REGION = "us-east-1"


@dataclass(frozen=True)
class LocalAws:
    endpoint: str
    s3: S3Client
    kms: KMSClient
    kms_key_arn: str
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        """What the Airflow processes' boto3 needs to reach the local S3 and KMS."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }


HERE = Path(__file__).parent
SEED_DAGS = {"seed_history.py": (HERE / "dags" / "seed_history.py").read_bytes()}
PASSWORD = "p@ss w0rd/with:odd#chars"
EXTRA = {"sslmode": "require", "token": "extra-secret-token"}
VARIABLES = {"partner_api_token": "s3cr3t-token\nline2 ✓", "warehouse_schema": "analytics"}
RUN_CONF = {"note": "ünïcødé\nnewline", "n": [1, 2]}
# Comparable sections of the report: everything but pause states (changed on purpose) and the
# audit log (the target adds its own rows).
SECTIONS = ("dag_runs", "task_instances", "xcom", "variables", "connections", "pools", "task_fail")


def report(environment: AirflowEnvironment) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(environment.python(HERE / "report.py"))
    return loaded


def seed_source(environment: AirflowEnvironment) -> None:
    for key, value in VARIABLES.items():
        environment.cli("variables", "set", key, value)
    connection = {
        "conn_type": "postgres",
        "host": "db.example.com",
        "login": "etl",
        "password": PASSWORD,
        "port": 5432,
        "schema": "sales",
        "extra": EXTRA,
    }
    environment.cli("connections", "add", "warehouse_db", "--conn-json", json.dumps(connection))
    environment.cli("pools", "set", "warehouse", "4", "warehouse connections")
    environment.put_dag_files(SEED_DAGS)
    environment.cli("dags", "unpause", "daily_sales")
    environment.cli("dags", "unpause", "hourly_events")
    environment.cli(
        "dags", "trigger", "hourly_events", "-e", "2026-11-21T05:00:00+00:00", "-c", json.dumps(RUN_CONF)
    )
    # daily_sales has two scheduled runs (2026-11-20, 2026-11-21), hourly_events the triggered one.
    environment.schedule_until_done(runs=3)
