"""A PRIVATE_ONLY source migrated by a stack whose functions run outside any VPC: the plan chooses
InvokeRestApi for both environments and every call to Airflow goes through it, end to end (the IAM
tier checks each against the functions' policies)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from emulation.local_stack import scenario_path
from emulation.scenario import Scenario
from mwaa_migrate.settings import settings
from tests.statemachine.conftest import run

SOURCE = "analytics-prod"
TARGET = "analytics-prod-2-10"


@pytest.fixture
def outside_any_vpc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What template.yaml tells the plan when WebserverSubnetIds is left empty."""
    monkeypatch.setenv("WEBSERVER_FUNCTIONS_IN_VPC", "false")
    settings.cache_clear()
    yield
    settings.cache_clear()


@pytest.fixture
def private() -> Scenario:
    return Scenario.load(scenario_path("private")).model_copy(update={"faults": []})


def _plan(described: dict[str, Any]) -> dict[str, Any]:
    for event in described["history"]:
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == "PlanMigration":
            return dict(json.loads(details["output"])["plan"])
    raise AssertionError("no PlanMigration output in the history")


def _rest_calls(stack: Any, environment: str) -> list[tuple[str, str]]:
    return [
        (method, path) for name, method, path in stack.mwaa_emulator.rest_api.requests if name == environment
    ]


def _paused(stack: Any, environment: str) -> dict[str, bool]:
    return {
        row["dag_id"]: row["is_paused"]
        for row in stack.mwaa_emulator.environment(environment).metadata["dag"]
    }


def test_a_private_source_is_migrated_through_invoke_rest_api(outside_any_vpc, private, local_stack):
    stack = local_stack(private)

    described = run(stack)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    plan = _plan(described)
    assert plan["exportDag"]["transport"] == plan["importDag"]["transport"] == "rest_api"
    assert plan["webserver"]["source"]["transport"] == "rest_api"
    assert "outside any VPC" in plan["webserver"]["source"]["reason"]
    # No CLI token, no CLI command: every call to Airflow went through MWAA's API.
    assert stack.mwaa_emulator.cli_commands == []
    assert not [call for call in stack.mwaa_emulator.calls if call[0] in {"CreateCliToken", "Cli"}]
    assert ("POST", "/dags/mwaa_migrate_export/dagRuns") in _rest_calls(stack, SOURCE)
    assert ("POST", "/dags/mwaa_migrate_import/dagRuns") in _rest_calls(stack, TARGET)
    # The cutover moved the DAGs: paused on the source, running on the target.
    assert _paused(stack, SOURCE)["daily_sales"] is True
    assert _paused(stack, TARGET)["daily_sales"] is False


def test_the_way_back_after_a_failure_also_goes_through_invoke_rest_api(
    outside_any_vpc, private, local_stack
):
    failing = private.model_copy(update={"dag_failures": {"mwaa_migrate_import@cutover": "boom"}})
    stack = local_stack(failing)

    described = run(stack)

    assert described["status"] == "FAILED"
    assert stack.mwaa_emulator.cli_commands == []
    # RecordFailure paused the target's copies, then unpaused the source's recorded DAGs.
    assert ("PATCH", "/dags/daily_sales") in _rest_calls(stack, SOURCE)
    assert _paused(stack, SOURCE)["daily_sales"] is False
    assert _paused(stack, TARGET)["daily_sales"] is True


def test_an_airflow_3_target_is_started_through_invoke_rest_api_after_its_upgrade(
    outside_any_vpc, private, local_stack
):
    to_three = {**private.input, "targetEnvironmentName": "analytics-3", "targetAirflowVersion": "3.0.6"}
    stack = local_stack(private.model_copy(update={"input": to_three}))

    described = run(stack)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert stack.mwaa_emulator.environment("analytics-3").airflow_version == "3.0.6"
    assert ("PATCH", "/dags/daily_sales") in _rest_calls(stack, "analytics-3")
    assert _paused(stack, "analytics-3")["daily_sales"] is False
