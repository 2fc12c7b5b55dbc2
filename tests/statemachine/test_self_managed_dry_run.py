"""A self-managed Apache Airflow source through the real ASL: its dry run ends with the plan, and a
run on a stack without the sealing key its export needs ends at PlanMigration, refused, with nothing
changed."""

from __future__ import annotations

import json
from typing import Any

from emulation.lambdas import REPO_ROOT
from tests.statemachine.conftest import run

TARGET = "onprem-airflow-2-10"
ROLE = "AmazonMWAA-analytics-prod"


def _request(**changes: Any) -> dict[str, Any]:
    event = json.loads((REPO_ROOT / "events" / "plan_migration_self_managed.json").read_text())
    return {**event["request"], **changes}


def test_a_self_managed_dry_run_succeeds_with_its_plan_and_changes_nothing(scenario, local_stack):
    stack = local_stack(scenario)

    described = run(stack, execution_input=_request())

    assert described["status"] == "SUCCEEDED", described.get("cause")
    plan = json.loads(described["output"])
    assert (plan["dryRun"], plan["source"]["kind"], plan["source"]["name"]) == (
        True,
        "self_managed",
        "onprem-airflow",
    )
    assert any(warning.startswith("task logs are not copied") for warning in plan["warnings"])
    # No GetEnvironment of the source: it is no MWAA environment.
    assert stack.mwaa_emulator.calls == [("GetEnvironment", TARGET)]
    assert stack.lambdas.count("GrantPermissionsFunction") == 0
    assert stack.iam.list_role_policies(RoleName=ROLE)["PolicyNames"] == []


def test_a_self_managed_run_on_a_stack_without_a_sealing_key_is_refused_at_the_plan_with_its_report(
    scenario, local_stack
):
    stack = local_stack(scenario)

    described = run(stack, execution_input=_request(dryRun=False))

    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidMigrationRequest"
    assert "source: this stack has no sealing key (SEALING_KEY_ARN)" in described["cause"]
    assert stack.lambdas.count("PlanMigrationFunction") == 1, "a refusal is not retried"
    assert stack.mwaa_emulator.calls == []
    assert stack.iam.list_role_policies(RoleName=ROLE)["PolicyNames"] == []
    # The failure path writes the report under the self-managed source's name.
    listed = stack.s3.list_objects_v2(
        Bucket=scenario.migration_bucket, Prefix=f"migrations/onprem-airflow/{TARGET}/reports/"
    )
    [report] = [
        stack.read_json(scenario.migration_bucket, item["Key"])
        for item in listed["Contents"]
        if item["Key"].endswith(".json")
    ]
    assert (report["status"], report["source"]["name"]) == ("FAILED", "onprem-airflow")
