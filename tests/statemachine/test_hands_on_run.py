"""A self-managed Apache Airflow run by hand (access mode hands_on), through the real ASL end to end
(scenarios/self_managed_hands_on.json): the pipeline never reaches the source. HandOverExport writes
the export DAG's files, each phase's conf and steps to the migration bucket and the execution waits;
the emulated operator copies the files into the Airflow's DAG folder and triggers the export with
the conf through the Airflow's own REST API; S3's "Object Created" event for the manifest, through
EventBridge's rule (template.yaml's pattern), reaches ExportLanded, which ends the wait."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from emulation.local_stack import LocalStack, scenario_path
from emulation.scenario import Scenario
from mwaa_migrate.environment.airflow_cli import AirflowCli
from mwaa_migrate.environment.webserver_transport import HandsOnSource
from mwaa_migrate.run import cutover
from tests.statemachine.conftest import active_dags, run

SOURCE = "onprem-airflow"
TARGET = "onprem-airflow-2-10"
PREFIX = f"migrations/{SOURCE}/{TARGET}"
# What the operator asks of their Airflow: list its DAGs, unpause and trigger the export, watch it.
OPERATOR_CALLS = {
    ("GET", "/dags"),
    ("PATCH", "/dags/mwaa_migrate_export"),
    ("POST", "/dags/mwaa_migrate_export/dagRuns"),
}


def _scenario(**changes: Any) -> Scenario:
    return Scenario.load(scenario_path("self_managed_hands_on")).model_copy(update=changes)


@pytest.fixture
def migrated(local_stack: Any) -> tuple[LocalStack, dict[str, Any]]:
    stack = local_stack(_scenario())
    described = run(stack)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    return stack, described


def _report(stack: LocalStack) -> dict[str, Any]:
    listed = stack.s3.list_objects_v2(Bucket=stack.scenario.migration_bucket, Prefix=f"{PREFIX}/reports/")
    [report] = [
        stack.read_json(stack.scenario.migration_bucket, item["Key"])
        for item in listed["Contents"]
        if item["Key"].endswith(".json")
    ]
    return report


def _wait_for_hand_over(stack: LocalStack, phase: str, timeout_seconds: float = 60) -> None:
    """Until HandOverExport has written the phase's steps (what an operator waits for)."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        listed = stack.s3.list_objects_v2(
            Bucket=stack.scenario.migration_bucket, Prefix=f"{PREFIX}/hands-on/{phase}/steps.md"
        )
        if listed.get("KeyCount"):
            return
        time.sleep(0.05)
    raise AssertionError(f"the {phase} export was not handed over in {timeout_seconds} s")


def _states(described: dict[str, Any]) -> list[str]:
    return [
        event["stateEnteredEventDetails"]["name"]
        for event in described["history"]
        if "stateEnteredEventDetails" in event
    ]


def test_each_export_run_by_hand_lands_and_the_migration_goes_on(migrated) -> None:
    stack, described = migrated
    source = stack.mwaa_emulator.environment(SOURCE)
    target = stack.mwaa_emulator.environment(TARGET)

    assert [(phase, state) for phase, _, state in stack.hands_on_operator.runs] == [
        ("bulk", "success"),
        ("cutover", "success"),
    ]
    states = _states(described)
    assert {"HandOverExport", "HandOverCutoverExport"} <= set(states)
    # The export is never triggered or polled by the pipeline: its operator runs it.
    assert not {"TriggerExportDag", "TriggerCutoverExport"} & set(states)
    for table in ("variable", "connection", "dag_run", "task_instance", "xcom"):
        assert len(target.table(table)) >= len(source.table(table)) > 0, table
    # The cutover's export paused the source's active DAGs itself; the import started them.
    assert active_dags(source) == []
    assert active_dags(target) == ["daily_sales", "hourly_events"]
    report = _report(stack)
    assert report["status"] == "SUCCEEDED"
    assert report["dagsRunning"].startswith(f"The target {TARGET} runs the DAGs")


def test_nothing_of_the_pipeline_reaches_the_source(migrated) -> None:
    stack, _ = migrated

    called = {(method, path.split("?")[0]) for method, path in stack.self_managed_webserver.requests}
    assert called - OPERATOR_CALLS == {
        ("GET", f"/dags/mwaa_migrate_export/dagRuns/{run_id}")
        for _, run_id, _ in stack.hands_on_operator.runs
    }
    assert not [call for call in stack.mwaa_emulator.calls if call[1] == SOURCE]
    assert not [
        invocation
        for invocation in stack.lambdas.invocations
        if invocation.function == "TriggerDagFunction"
        and invocation.event["deployment"]["environmentName"] == SOURCE
    ]


def test_the_hand_over_is_in_the_bucket_and_no_signature_is_in_the_history(migrated) -> None:
    stack, described = migrated
    bucket = stack.scenario.migration_bucket

    steps = (
        stack.s3.get_object(Bucket=bucket, Key=f"{PREFIX}/hands-on/cutover/steps.md")["Body"].read().decode()
    )
    assert "airflow dags trigger mwaa_migrate_export --run-id mwaa_migrate__cutover__" in steps
    assert "pauses exactly those" in steps
    conf = stack.read_json(bucket, f"{PREFIX}/hands-on/cutover/conf.json")
    assert conf["phase"] == "cutover"
    assert conf["selfManaged"]["uploads"]
    # The signatures and the wait's token go to the bucket, never into a function's output.
    outputs = json.dumps(
        [
            event["taskSucceededEventDetails"]["output"]
            for event in described["history"]
            if "taskSucceededEventDetails" in event
        ]
    )
    wait = stack.read_json(bucket, f"{PREFIX}/hands-on/cutover/wait.json")
    for leaked in ("X-Amz-Signature", "x-amz-signature", "AWSAccessKeyId", '"policy"', wait["taskToken"]):
        assert leaked not in outputs
    assert "X-Amz-Signature" not in json.dumps(described["history"], default=str)


def test_a_cutover_that_fails_after_the_export_paused_the_source_names_the_commands_to_unpause(
    local_stack,
) -> None:
    """The pipeline cannot unpause a source run by hand: the target keeps its copies paused, the
    outcome lists the commands, and the operator's rollback records the way back once they ran."""
    stack = local_stack(_scenario(dag_failures={"mwaa_migrate_import@cutover": "disk full"}))

    described = run(stack)

    assert described["status"] == "FAILED"
    source = stack.mwaa_emulator.environment(SOURCE)
    assert active_dags(source) == []
    assert active_dags(stack.mwaa_emulator.environment(TARGET)) == []
    report = _report(stack)
    said = report["dagsRunning"]
    assert said.startswith("The DAGs run nowhere until you unpause them")
    assert "airflow dags unpause daily_sales; airflow dags unpause hourly_events" in said
    assert f"mwaa-migrate rollback --source {SOURCE} --target {TARGET} --source-unpaused" in said
    # No PATCH of a user's DAG ever reached the source from the pipeline.
    assert [path for method, path in stack.self_managed_webserver.requests if method == "PATCH"] == [
        "/dags/mwaa_migrate_export"
    ] * 2

    # The operator unpauses them in their Airflow, then records it.
    for row in source.table("dag"):
        if row["dag_id"] in {"daily_sales", "hourly_events"}:
            row["is_paused"] = False
    settled = cutover.rollback(
        s3=stack.s3,
        bucket=stack.scenario.migration_bucket,
        prefix=PREFIX,
        source=SOURCE,
        target=TARGET,
        source_cli=HandsOnSource(SOURCE),
        target_cli=AirflowCli(stack.mwaa, TARGET, scheme="http"),
        source_unpaused_by_hand=True,
    )
    assert settled.running == "source"
    assert (
        stack.read_json(stack.scenario.migration_bucket, f"{PREFIX}/cutover/record.json")["state"]
        == "rolled_back"
    )


def test_a_manifest_that_is_not_this_migrations_export_fails_the_wait_before_anything_pauses(
    local_stack,
) -> None:
    stack = local_stack(_scenario(hands_on_phases=[]))  # the operator runs nothing
    execution_arn = stack.start("forged")
    bucket = stack.scenario.migration_bucket
    _wait_for_hand_over(stack, "bulk")

    forged = {"migrationId": "someone-else.other", "phase": "bulk", "tables": {}}
    stack.s3.put_object(
        Bucket=bucket, Key=f"{PREFIX}/export/bulk/manifest.json", Body=json.dumps(forged).encode()
    )
    described = stack.wait(execution_arn)

    assert described["status"] == "FAILED"
    assert described["error"] == "HandsOnExportInvalid"
    assert "is the export of migration 'someone-else.other'" in described["cause"]
    assert active_dags(stack.mwaa_emulator.environment(SOURCE)) == ["daily_sales", "hourly_events"]
    assert _report(stack)["dagsRunning"].startswith(f"The source {SOURCE} runs the DAGs")
