"""`mwaa-migrate rollback` reaches each environment's Airflow as the migration's plan chose: the CLI
endpoint, or InvokeRestApi for a PRIVATE_ONLY environment the pipeline reached from outside its VPC."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from unittest import mock

import boto3

from mwaa_migrate.environment.airflow_cli import AirflowCli
from mwaa_migrate.environment.webserver_transport import RestApiTransport
from mwaa_migrate.run.cutover import Settlement
from mwaa_migrate_cli import arguments, cutover, main


def _history(export_transport: str | None, import_transport: str | None) -> list[dict[str, Any]]:
    plan: dict[str, Any] = {
        "bucket": "migration-bucket",
        "prefix": "migrations/prod/prod-2",
        "source": {"name": "prod"},
        "target": {"name": "prod-2"},
        "exportDag": {"dagId": "mwaa_migrate_export"},
        "importDag": {"dagId": "mwaa_migrate_import"},
    }
    if export_transport:
        plan["exportDag"]["transport"] = export_transport
    if import_transport:
        plan["importDag"]["transport"] = import_transport
    output = json.dumps({"plan": plan})
    return [
        {
            "id": 1,
            "type": "TaskStateExited",
            "stateExitedEventDetails": {"name": "PlanMigration", "output": output},
        }
    ]


@dataclass
class _Pipeline:
    mwaa: Any
    s3: Any = None
    local: bool = False


def test_the_plans_transports_are_the_rollbacks():
    migration = cutover.planned(_history("rest_api", "cli"))

    assert migration is not None
    assert (migration.source_transport, migration.target_transport) == ("rest_api", "cli")


def test_a_plan_from_before_the_transports_means_the_cli_endpoint():
    migration = cutover.planned(_history(None, None))

    assert migration is not None
    assert (migration.source_transport, migration.target_transport) == ("cli", "cli")


def test_rollback_opens_invoke_rest_api_where_the_plan_chose_it():
    migration = cutover.planned(_history("rest_api", "cli"))
    assert migration is not None
    pipeline = _Pipeline(mwaa=boto3.client("mwaa", region_name="us-east-1"))
    settled = Settlement(running="source", line="Rolled back.")

    with mock.patch("mwaa_migrate.run.cutover.rollback", return_value=settled) as rollback:
        cutover.rollback(pipeline, migration)  # type: ignore[arg-type]

    called = rollback.call_args.kwargs
    assert isinstance(called["source_cli"], RestApiTransport)
    assert isinstance(called["target_cli"], AirflowCli)
    assert called["source_cli"].environment_name == "prod"


def test_a_bucket_given_on_the_command_line_keeps_the_plans_transports():
    planned = cutover.planned(_history("rest_api", "cli"))
    assert planned is not None
    args = arguments.build_parser().parse_args(["rollback", "run-1", "--bucket", "other-bucket", "--yes"])

    with (
        mock.patch.object(cutover, "migration_of_execution", return_value=planned),
        mock.patch.object(main, "execution_arn_of", return_value="arn:run-1"),
    ):
        migration = main._rollback_migration(_Pipeline(mwaa=None), args)  # type: ignore[arg-type]

    assert migration.bucket == "other-bucket"
    assert (migration.source_transport, migration.target_transport) == ("rest_api", "cli")
