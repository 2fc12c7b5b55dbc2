"""Every other source version MWAA accepts, migrated once into Airflow 2.11 and on to Airflow 3.

test_real_migration.py takes its pairs through every edge case (the cutover, re-imports, refusals,
conflicts). Here each remaining source (tier.SOURCES: 2.8.1, 2.9.2, 2.10.1, and 2.11.0 for the
same-version move) gets the history Airflow itself makes (tier.seed_source), the bulk export, and
its import into a fresh 2.11.0 bound for Airflow 3 (targetFinalVersion 3.0.6); then the target is
upgraded in place by Airflow 3.0.6's own `airflow db migrate`, as MWAA does. Checked for each:
- every section Airflow reports (runs, task instances, XComs, rendered fields, variables,
  connections with their passwords, pools, notes, SLA misses, dataset events, task failures) is the
  same on both sides, through each version's own models, and the runs through `airflow dags list-runs`;
- every failure the source recorded is a failed try on the target (task_instance_history: recorded
  by 2.10+, synthesized from task_fail before) and still one after the hop;
- after the hop Airflow 3 reports what the 2.11 target held, and what it leaves unread is exactly
  the import's not_carried.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from emulation.real_airflow import AirflowEnvironment, AirflowInstallation
from mwaa_migrate.dags import mwaa_migrate_metadata as metadata
from tests.airflow.tier import (
    HOP,
    HOP_SECTIONS,
    INTO,
    SECTIONS,
    SEED_DAGS,
    SOURCES,
    LocalAws,
    as_airflow_3,
    report,
    run_dag,
    seed_source,
)

pytestmark = pytest.mark.airflow


@dataclass
class Move:
    source: AirflowEnvironment
    target: AirflowEnvironment
    source_report: dict[str, Any]
    target_report: dict[str, Any]
    result: dict[str, Any]
    hop: AirflowEnvironment | None
    hop_tables: dict[str, int]
    hop_report: dict[str, Any]


@pytest.fixture(scope="module", params=SOURCES, ids=[f"{source}-to-{INTO}" for source in SOURCES])
def move(
    request: pytest.FixtureRequest,
    installations: dict[str, AirflowInstallation],
    local_aws: LocalAws,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Move]:
    version = request.param
    folder = tmp_path_factory.mktemp(f"{version}-to-{INTO}")
    migration_id = f"tier-source-{version}-to-{INTO}"
    conf = {
        "bucket": local_aws.bucket,
        "prefix": f"migrations/{migration_id}",
        "migrationId": migration_id,
        "kmsKeyId": local_aws.kms_key_arn,
        "phase": "bulk",
        "sourceEnvironment": f"source-{version}",
        "targetEnvironment": f"target-{INTO}",
        "drainTimeoutMinutes": 1,
        "targetFinalVersion": HOP[1] if HOP else INTO,
    }
    source = AirflowEnvironment.create(installations[version], folder / "source", aws_env=local_aws.env)
    target = AirflowEnvironment.create(installations[INTO], folder / "target", aws_env=local_aws.env)
    hop = None
    try:
        seed_source(source)
        source_report = report(source)
        source.install_project_dags()
        run_dag(source, "mwaa_migrate_export", "2026-11-23T00:00:00+00:00", conf)
        target.put_dag_files(SEED_DAGS)
        target.install_project_dags()
        run_dag(target, "mwaa_migrate_import", "2026-11-24T00:00:00+00:00", conf)
        target_report = report(target)
        key = f"{conf['prefix']}/import/bulk/result.json"
        result = json.loads(local_aws.s3.get_object(Bucket=local_aws.bucket, Key=key)["Body"].read())
        hop_tables: dict[str, int] = {}
        hop_report: dict[str, Any] = {}
        if HOP is not None:
            hop = target.upgraded_copy(installations[HOP[1]], folder / "hop")
            hop_tables, hop_report = hop.table_rows(), report(hop)
        yield Move(source, target, source_report, target_report, result, hop, hop_tables, hop_report)
    finally:
        source.drop()
        target.drop()
        if hop is not None:
            hop.drop()


def failures(shown: dict[str, Any]) -> dict[str, int]:
    """Failed tries per task instance: task_instance_history's, and the instance's own last try."""
    failed: dict[str, int] = {}
    for key, attempt in shown["tries"].items():
        if attempt["state"] == "failed":
            instance = key.rsplit("/", 1)[0]
            failed[instance] = failed.get(instance, 0) + 1
    for key, ti in shown["task_instances"].items():
        if ti["state"] == "failed":
            failed[key] = failed.get(key, 0) + 1
    return failed


@pytest.mark.parametrize("section", SECTIONS)
def test_airflow_reports_the_same_history_on_both_sides(move: Move, section: str) -> None:
    assert move.source_report[section], f"the source made no {section}"
    assert move.target_report[section] == move.source_report[section]


def test_every_audit_log_row_of_the_source_is_in_the_target(move: Move) -> None:
    target = list(move.target_report["log"])
    for row in move.source_report["log"]:
        target.remove(row)


def test_airflows_cli_lists_the_same_runs_on_both_sides(move: Move) -> None:
    def runs(environment: AirflowEnvironment) -> list[tuple[str, str, str]]:
        listed = json.loads(environment.cli("dags", "list-runs", "-d", "daily_sales", "-o", "json").stdout)
        return sorted((run["run_id"], run["state"], run["execution_date"]) for run in listed)

    assert runs(move.target) == runs(move.source) != []


def test_every_failure_of_the_source_is_a_failed_try_on_the_target(move: Move) -> None:
    synthesized = move.result["synthesized"]["task_instance_history"]

    assert failures(move.target_report) == move.source_report["task_fail"]
    if "tries" in move.source_report:  # 2.10+: recorded by the source, carried
        assert move.target_report["tries"] == move.source_report["tries"]
        assert synthesized["written"] == 0
    else:
        assert synthesized["written"] == synthesized["candidates"] > 0


def hopped(move: Move) -> dict[str, Any]:
    if move.hop is None:
        pytest.skip("no hop to Airflow 3 in this run (AIRFLOW_TIER_HOP)")
    return move.hop_report


@pytest.mark.parametrize("section", HOP_SECTIONS)
def test_airflow_3_reports_what_the_2_11_target_held(move: Move, section: str) -> None:
    assert hopped(move)[section] == as_airflow_3(move.target_report)[section]


def test_every_failure_of_the_source_is_still_a_failed_try_after_the_hop(move: Move) -> None:
    assert failures(hopped(move)) == move.source_report["task_fail"]


def test_what_airflow_3_leaves_unread_is_the_imports_not_carried(move: Move) -> None:
    shown = hopped(move)
    unread = {
        table: rows
        for table, rows in move.hop_tables.items()
        if rows and table in metadata.TABLES_BY_NAME and table not in shown["models"]
    }

    assert "task_fail" not in move.hop_tables
    assert (
        unread == {entry["table"]: entry["rows"] for entry in move.result["not_carried"]} == {"sla_miss": 1}
    )
