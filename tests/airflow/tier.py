"""What the real tier's tests share: the version pairs and the local AWS endpoint."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulation.real_airflow import AirflowEnvironment

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client

# (source, target) Airflow versions, both ones MWAA runs, each migrated with every edge case
# (test_real_migration.py): AIRFLOW_TIER_PAIRS="2.7.2:2.10.3,2.10.3:2.11.0"
DEFAULT_PAIRS = "2.7.2:2.10.3,2.10.3:2.11.0"
PAIRS = [
    tuple(pair.split(":", 1))
    for pair in os.environ.get("AIRFLOW_TIER_PAIRS", DEFAULT_PAIRS).split(",")
    if pair
]
# MWAA's in-place upgrade from the newest 2.11 to Airflow 3: a target of HOP[0] filled by the import
# is upgraded by HOP[1]'s own `airflow db migrate` and compared again (AIRFLOW_TIER_HOP="" skips it).
DEFAULT_HOP = "2.11.0:3.0.6"
_hop = os.environ.get("AIRFLOW_TIER_HOP", DEFAULT_HOP)
HOP: tuple[str, str] | None = tuple(_hop.split(":", 1)) if _hop else None  # type: ignore[assignment]
# The other sources MWAA accepts, each migrated once into HOP's 2.11 (test_source_versions.py):
# a bulk export and import, compared section by section, then the hop.
DEFAULT_SOURCES = "2.8.1,2.9.2,2.10.1,2.11.0"
SOURCES = [
    version for version in os.environ.get("AIRFLOW_TIER_SOURCES", DEFAULT_SOURCES).split(",") if version
]
INTO = "2.11.0"
VERSIONS = sorted(
    {version for pair in PAIRS for version in pair}
    | ({INTO, *SOURCES} if SOURCES else set())
    | set(HOP or ())
)
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
SECTIONS = (
    "dag_runs",
    "task_instances",
    "xcom",
    "variables",
    "connections",
    "pools",
    "rendered_fields",
    "task_fail",
    "run_notes",
    "task_notes",
    "sla_miss",
    "dataset_events",
)
# What Airflow 3 reports too, and must report as the filled 2.11 target did (Airflow 3 has no
# task_fail or sla_miss: the tries and not_carried tell their fate).
HOP_SECTIONS = (
    *(section for section in SECTIONS if section not in ("task_fail", "sla_miss")),
    "tries",
    "paused",
)
# Airflow 3 renamed datasets to assets (its migration 0041_3_0_0): the 2.x table each asset
# table's rows come from.
ASSET_TABLES = {
    "asset": "dataset",
    "asset_event": "dataset_event",
    "dagrun_asset_event": "dagrun_dataset_event",
    "asset_dag_run_queue": "dataset_dag_run_queue",
    "dag_schedule_asset_reference": "dag_schedule_dataset_reference",
    "task_outlet_asset_reference": "task_outlet_dataset_reference",
}
PUBLISH_DATE = "2026-11-21T12:00:00+00:00"
# Notes and an SLA miss on the seeded runs, written through Airflow's models (tests/airflow/history.py).
SEEDED_HISTORY = [
    {
        "kind": "run_note",
        "dag_id": "daily_sales",
        "date": "2026-11-20T00:00:00+00:00",
        "content": "ünïcødé note ✓",
    },
    {
        "kind": "task_note",
        "dag_id": "daily_sales",
        "date": "2026-11-20T00:00:00+00:00",
        "task_id": "flaky",
        "content": "fails once, on purpose",
    },
    {
        "kind": "sla_miss",
        "dag_id": "daily_sales",
        "date": "2026-11-21T00:00:00+00:00",
        "task_id": "extract",
        "content": "extract took longer than its SLA",
    },
]


def as_airflow_3(report: dict[str, Any]) -> dict[str, Any]:
    """An Airflow 2 report as Airflow 3 shows the same history: no external_trigger on runs (the
    column is gone; run_type says how a run started), an empty conf as none (Airflow 3's migration
    from pickled to JSON confs converts only non-empty ones: 0055_3_0_0), no task_fail or sla_miss
    sections."""
    shown: dict[str, Any] = json.loads(json.dumps(report))
    for run in shown["dag_runs"].values():
        run.pop("external_trigger", None)
        if run["conf"] == {}:
            run["conf"] = None
        if run["run_type"] == "dataset_triggered":
            run["run_type"] = "asset_triggered"
    # A dataset a task's outlets pushed: Airflow 2's UI shows it as text, Airflow 3's XCom (JSON
    # since its migration 0049_3_0_0) as its serialized form, the Dataset class Airflow 3 no longer has.
    for key, value in shown["xcom"].items():
        if key.endswith("/pipeline_outlets"):
            shown["xcom"][key] = [_dataset_as_airflow_3(item) for item in value]
    shown.pop("task_fail", None)
    shown.pop("sla_miss", None)
    return shown


def _dataset_as_airflow_3(shown: Any) -> Any:
    match = re.fullmatch(r"airflow\.datasets\.Dataset@version=1\(uri=(.*),extra=None\)", str(shown))
    if match is None:
        return shown
    return {
        "__classname__": "airflow.datasets.Dataset",
        "__data__": {"extra": None, "uri": match[1]},
        "__version__": 1,
    }


def run_dag(environment: AirflowEnvironment, dag_id: str, date: str, conf: dict[str, Any]) -> None:
    """One run of a DAG with Airflow's own runner, which must end with no task failed."""
    result = environment.dags_test(dag_id, date, conf)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "Marking task as FAILED" not in output, output[-5000:]


def write_history(environment: AirflowEnvironment, operations: list[dict[str, str]]) -> None:
    environment.python(HERE / "history.py", json.dumps(operations))


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
    # publish_sales updates the dataset once; the scheduler then runs sales_report on that event
    # (weekly_rollup, paused, gets none).
    for dag_id in ("publish_sales", "sales_report"):
        environment.cli("dags", "unpause", dag_id)
    environment.cli("dags", "trigger", "publish_sales", "-e", PUBLISH_DATE)
    environment.schedule_until_done(runs=5)
    write_history(environment, SEEDED_HISTORY)
