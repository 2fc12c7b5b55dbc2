"""The plan chooses how each environment's Airflow is reached, says why, and hands the choice to
every function that talks to it (through the DAG deployments the state machine passes whole)."""

from __future__ import annotations

from typing import Any

import pytest

from mwaa_migrate.errors import InvalidMigrationRequest
from mwaa_migrate.models import MigrationPlan, MigrationRequest
from mwaa_migrate.run.plan import plan_migration
from tests.unit.test_plan import SOURCE, aws, stack_settings  # noqa: F401 (the fixture)


def _plan(aws: dict[str, Any], *, functions_in_vpc: bool | None) -> MigrationPlan:  # noqa: F811
    request = MigrationRequest.model_validate(
        {
            "sourceEnvironmentName": "analytics",
            "targetEnvironmentName": "next",
            "targetAirflowVersion": "2.10.3",
        }
    )
    return plan_migration(
        request,
        mwaa=aws["mwaa"],
        iam=aws["iam"],
        s3=aws["s3"],
        stack=stack_settings(WEBSERVER_FUNCTIONS_IN_VPC=functions_in_vpc),
    )


def _access(aws: dict[str, Any], mode: str) -> None:  # noqa: F811
    aws["emulator"].environment("analytics").description["WebserverAccessMode"] = mode


def test_a_private_source_planned_by_functions_outside_any_vpc_goes_through_invoke_rest_api(aws):  # noqa: F811
    _access(aws, "PRIVATE_ONLY")

    plan = _plan(aws, functions_in_vpc=False)

    assert (plan.webserver.source.transport, plan.webserver.target.transport) == ("rest_api", "rest_api")
    assert "outside any VPC" in plan.webserver.source.reason
    assert (plan.export_dag.transport, plan.import_dag.transport) == ("rest_api", "rest_api")
    assert plan.to_event()["webserver"]["source"]["transport"] == "rest_api"


def test_a_private_source_planned_by_functions_in_the_vpc_goes_through_its_cli_endpoint(aws):  # noqa: F811
    _access(aws, "PRIVATE_ONLY")

    plan = _plan(aws, functions_in_vpc=True)

    assert (plan.export_dag.transport, plan.import_dag.transport) == ("cli", "cli")
    assert "run in a VPC" in plan.webserver.source.reason


def test_a_public_source_and_its_public_target_go_through_their_cli_endpoints(aws):  # noqa: F811
    _access(aws, "PUBLIC_ONLY")

    plan = _plan(aws, functions_in_vpc=False)

    assert (plan.export_dag.transport, plan.import_dag.transport) == ("cli", "cli")
    assert "PUBLIC_ONLY" in plan.webserver.target.reason


def test_a_plan_without_the_stacks_network_keeps_the_cli_endpoint(aws):  # noqa: F811
    plan = _plan(aws, functions_in_vpc=None)

    assert (plan.export_dag.transport, plan.import_dag.transport) == ("cli", "cli")


def test_a_refused_route_changes_nothing(aws, monkeypatch):  # noqa: F811
    # The decision refuses a PRIVATE_ONLY environment too old for InvokeRestApi when the functions
    # run outside any VPC (tests/unit/test_webserver_transport.py); here, where the plan asks it.
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise InvalidMigrationRequest("sourceEnvironmentName: no way to its Airflow")

    monkeypatch.setattr("mwaa_migrate.run.plan.choose_routes", refuse)

    with pytest.raises(InvalidMigrationRequest, match="no way to its Airflow"):
        _plan(aws, functions_in_vpc=False)

    assert "Contents" not in aws["s3"].list_objects_v2(Bucket="migrations")
    assert [environment.name for environment in aws["emulator"].environments] == ["analytics"]
