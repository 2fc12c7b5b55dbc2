"""A self-managed Apache Airflow in access mode reached, through the real ASL, end to end
(scenarios/self_managed.json): no GetEnvironment of the source and no role of its own; the export DAG
placed in its S3 DAG folder, triggered, paused and followed through its own REST API (basic auth, the
credentials in Secrets Manager); the export written through presigned URLs with data keys sealed by
the stack's RSA key; the import, the cutover and the report as for an MWAA source."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulation.local_stack import LocalStack, scenario_path
from emulation.scenario import Scenario
from tests.statemachine.conftest import active_dags, run

SOURCE = "onprem-airflow"
TARGET = "onprem-airflow-2-10"
TARGET_ROLE = "AmazonMWAA-onprem-airflow-2-10"


@pytest.fixture
def migrated(local_stack: Any) -> tuple[LocalStack, dict[str, Any]]:
    stack = local_stack(Scenario.load(scenario_path("self_managed")))
    described = run(stack)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    return stack, described


def test_the_history_lands_on_the_target_and_the_dags_move_with_the_cutover(migrated) -> None:
    stack, described = migrated
    source = stack.mwaa_emulator.environment(SOURCE)
    target = stack.mwaa_emulator.environment(TARGET)

    report_uri = json.loads(described["output"])["reportUri"]
    bucket, key = report_uri.removeprefix("s3://").split("/", 1)
    report = stack.read_json(bucket, key)
    assert report["status"] == "SUCCEEDED"
    assert report["dagsRunning"].startswith(f"The target {TARGET} runs the DAGs")
    assert report["source"]["kind"] == "self_managed"
    for table in ("variable", "connection", "dag_run", "task_instance", "xcom"):
        assert len(target.table(table)) >= len(source.table(table)) > 0, table
    assert active_dags(source) == []
    assert active_dags(target) == ["daily_sales", "hourly_events"]


def test_the_source_is_reached_by_its_rest_api_only(migrated) -> None:
    stack, _ = migrated

    called = stack.self_managed_webserver.requests
    assert ("POST", "/dags/mwaa_migrate_export/dagRuns") in called
    assert ("PATCH", "/dags/mwaa_migrate_export") in called
    # MWAA never hears of the source: it is no MWAA environment.
    assert not [call for call in stack.mwaa_emulator.calls if call[1] == SOURCE]
    assert [argv for name, argv in stack.mwaa_emulator.cli_commands if name == SOURCE] == []


def test_the_export_was_sealed_for_the_target_and_no_signature_or_secret_is_in_the_history(migrated) -> None:
    stack, described = migrated
    manifest = stack.read_json(
        stack.scenario.migration_bucket, f"migrations/{SOURCE}/{TARGET}/export/cutover/manifest.json"
    )

    assert manifest["secrets"]["data_key_sealing"] == "RSAES_OAEP_SHA_256"
    assert manifest["secrets"]["kms_key_id"] == stack.sealing_key_arn
    history = json.dumps(described["history"], default=str)
    for leaked in (
        "X-Amz-Signature",
        "x-amz-signature",
        '"policy"',
        "AWSAccessKeyId",
        stack.self_managed_password,
    ):
        assert leaked not in history


def test_only_the_targets_role_got_a_policy_and_it_is_gone(migrated) -> None:
    stack, described = migrated

    assert stack.iam.list_role_policies(RoleName=TARGET_ROLE)["PolicyNames"] == []
    granted = [
        json.loads(event["stateExitedEventDetails"]["output"])
        for event in described["history"]
        if event.get("stateExitedEventDetails", {}).get("name") == "GrantPermissions"
    ]
    assert [policy.rsplit("-", 1)[-1] for policy in granted[0]["grants"]["policies"]] == ["import"]


def test_a_cutover_that_fails_after_the_pause_starts_the_dags_again_on_the_source(local_stack) -> None:
    """The way back reaches the self-managed source by its REST API: its recorded DAGs run again
    there, the target's stay paused, and the outcome says which environment runs them."""
    scenario = Scenario.load(scenario_path("self_managed"))
    failing = scenario.model_copy(update={"dag_failures": {"mwaa_migrate_import@cutover": "disk full"}})
    stack = local_stack(failing)

    described = run(stack)

    assert described["status"] == "FAILED"
    assert active_dags(stack.mwaa_emulator.environment(SOURCE)) == ["daily_sales", "hourly_events"]
    assert active_dags(stack.mwaa_emulator.environment(TARGET)) == []
    assert ("PATCH", "/dags/daily_sales") in stack.self_managed_webserver.requests
    listed = stack.s3.list_objects_v2(
        Bucket=stack.scenario.migration_bucket, Prefix=f"migrations/{SOURCE}/{TARGET}/reports/"
    )
    [report] = [
        stack.read_json(stack.scenario.migration_bucket, item["Key"])
        for item in listed["Contents"]
        if item["Key"].endswith(".json")
    ]
    assert report["status"] == "FAILED"
    assert report["dagsRunning"].startswith(f"The source {SOURCE} runs the DAGs again: its 2 recorded DAGs")
