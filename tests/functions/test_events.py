"""Every file in events/ reaches its handler, as `sam local invoke -e` would send it.

The events were recorded from real local runs (`make events`) of an execution named `sample`;
each is replayed here against a world where that same execution has run. Every step is meant to be
safe to repeat, so a replay must succeed and change nothing that the run already did.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from emulation.faults import instant_botocore_retries
from emulation.lambdas import REPO_ROOT, FakeLambdaContext, function_folders, logical_id
from emulation.local_stack import LocalStack, scenario_path
from emulation.record_events import SAMPLE_EXECUTION, scenario_for
from emulation.scenario import Scenario
from mwaa_migrate.errors import InvalidMigrationRequest, MigrationConflict

EVENTS = REPO_ROOT / "events"
# Written by hand (no scenario runs a self-managed source yet): PlanMigration's event for a
# self-managed Apache Airflow's dry run, in the world of the default scenario.
SELF_MANAGED_PLAN = "plan_migration_self_managed"


def _event(folder: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{folder}.json").read_text())


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest) -> Iterator[LocalStack]:
    """The scenario, after the sample execution has run it to its end."""
    scenario = Scenario.load(scenario_path(request.param))
    # The scenario's throttling outlasts botocore's retries: their backoffs recorded, not slept.
    with instant_botocore_retries(), LocalStack(scenario) as stack:
        described = stack.wait(stack.start(SAMPLE_EXECUTION))
        assert described["status"] == scenario.expect.status, described.get("cause")
        yield stack


def invoke(stack: LocalStack, folder: str) -> dict[str, Any]:
    handler = stack.lambdas.handlers[logical_id(folder)]
    result: dict[str, Any] = handler(_event(folder), FakeLambdaContext(function_name=logical_id(folder)))
    return result


def by_scenario(*folders: str) -> list[Any]:
    return [pytest.param(scenario_for(folder), folder, id=folder) for folder in folders]


def replayed(folder: str) -> pytest.MarkDecorator:
    """The test replays events/<folder>.json in the world of the scenario that recorded it. The
    parametrization is the module's, as the world's scope: the tests of one scenario share its world
    (a parametrization of the test's own would build one world a test)."""
    return pytest.mark.parametrize(
        ("world", "folder"), by_scenario(folder), indirect=["world"], scope="module"
    )


def test_there_is_an_event_for_every_function_and_no_other():
    function_events = {path.stem for path in EVENTS.glob("*.json")} - {
        "migration_request",
        "migration_request_dry_run",
        "eventbridge_migration_requested",
        SELF_MANAGED_PLAN,
    }
    assert function_events == set(function_folders())


@replayed("plan_migration")
def test_plan_migration_event_of_a_finished_migration_is_refused_as_already_migrated(world, folder):
    with pytest.raises(MigrationConflict, match="already migrated") as refused:
        invoke(world, folder)
    reports = "s3://mwaa-migrate-local/migrations/analytics-prod/analytics-prod-2-10/reports/"
    assert reports in str(refused.value)


@pytest.mark.parametrize("world", [pytest.param("default", id=SELF_MANAGED_PLAN)], indirect=True)
def test_plan_migration_self_managed_event_plans_a_dry_run_without_describing_the_source(world):
    calls = len(world.mwaa_emulator.calls)
    handler = world.lambdas.handlers[logical_id("plan_migration")]
    plan = handler(_event(SELF_MANAGED_PLAN), FakeLambdaContext(function_name=logical_id("plan_migration")))
    assert (plan["dryRun"], plan["source"]["kind"], plan["logGroups"]) == (True, "self_managed", [])
    assert plan["target"]["createRequest"]["DagS3Path"] == "mwaa-migrate/onprem-airflow-2-10/dags"
    # No GetEnvironment of the source: only whether the target's name is free.
    assert world.mwaa_emulator.calls[calls:] == [("GetEnvironment", "onprem-airflow-2-10")]


@replayed("grant_permissions")
def test_grant_permissions_event_of_a_finished_execution_grants_nothing(world, folder):
    # GrantPermissions acts only for a running execution (tests/hardening/test_forged_events.py):
    # replayed after the sample execution ended, its event is refused and the roles stay clean.
    with pytest.raises(InvalidMigrationRequest, match="is SUCCEEDED, not RUNNING"):
        invoke(world, folder)
    assert world.iam.list_role_policies(RoleName="AmazonMWAA-analytics-prod")["PolicyNames"] == []


@replayed("clone_environment")
def test_clone_environment_event_reuses_the_environment(world, folder):
    result = invoke(world, folder)
    assert result["created"] is False
    assert [c for c in world.mwaa_emulator.calls if c[0] == "CreateEnvironment"] == [
        ("CreateEnvironment", "analytics-prod-2-10")
    ]


@replayed("check_environment")
def test_check_environment_event_sees_it_ready(world, folder):
    result = invoke(world, folder)
    assert (result["status"], result["ready"]) == ("AVAILABLE", True)


@replayed("deploy_dag")
def test_deploy_dag_event_leaves_identical_files_alone(world, folder):
    # The finished run removed its DAG files: the first replay puts them back, the second finds them.
    first = invoke(world, folder)
    again = invoke(world, folder)
    assert len(first["uploaded"]) == 2
    assert (again["uploaded"], sorted(again["unchanged"])) == ([], sorted(first["uploaded"]))


@replayed("trigger_dag")
def test_trigger_dag_event_finds_its_run_instead_of_starting_another(world, folder):
    event = _event(folder)
    environment = world.mwaa_emulator.environment(event["deployment"]["environmentName"])
    runs_before = len(environment.metadata["dag_run"])
    result = invoke(world, folder)
    assert (result["parsed"], result["runId"]) == (True, f"mwaa_migrate__bulk__{SAMPLE_EXECUTION}")
    assert len(environment.metadata["dag_run"]) == runs_before


@replayed("check_dag_run")
def test_check_dag_run_event_reads_the_finished_export(world, folder):
    result = invoke(world, folder)
    assert result["done"] is True
    assert result["result"]["tables"]["variable"]["rows"] == 3


@replayed("list_log_streams")
def test_list_log_streams_event_lists_the_same_work_items_again(world, folder):
    items_key = _event("summarize_log_copy")["listing"]["itemsKey"]
    before = world.read_json("mwaa-migrate-local", items_key)
    result = invoke(world, folder)
    assert (result["done"], result["calls"]) == (True, 1)
    assert result["progress"]["itemsKey"] == items_key
    # The window is the recorded run's: the streams it still finds are a part of the same list.
    after = world.read_json("mwaa-migrate-local", items_key)
    assert _sources(after) <= _sources(before)


@replayed("copy_log_streams")
def test_copy_log_streams_event_writes_nothing_twice(world, folder):
    item = _event(folder)["item"]
    before = {s["source"]: _target_events(world, item["targetGroup"], s["source"]) for s in item["streams"]}
    result = invoke(world, folder)
    assert result["done"] is True
    assert result["progress"]["eventsWritten"] == 0
    assert {s: _target_events(world, item["targetGroup"], s) for s in before} == before


@replayed("summarize_log_copy")
def test_summarize_log_copy_event_adds_up_the_runs_work_items(world, folder):
    report = invoke(world, folder)
    assert (report["complete"], report["items"], report["itemsFailed"]) == (True, 3, 0)
    assert report["groups"][0]["group"] == "Task"
    assert report["streamsSelected"] == 6


def _sources(items):
    return {stream["source"] for item in items for stream in item["streams"]}


def _target_events(world, group, stream):
    request = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
    try:
        return world.logs.get_log_events(**request)["events"]
    except world.logs.exceptions.ResourceNotFoundException:
        return None


@replayed("start_target_dags")
def test_start_target_dags_event_finds_the_target_live_and_unpauses_nothing_again(world, folder):
    target = world.mwaa_emulator.environment("analytics-prod-2-10")
    before = {row["dag_id"]: row["is_paused"] for row in target.metadata["dag"]}
    result = invoke(world, folder)
    assert (result["running"], result["recordState"]) == ("target", "live")
    assert {row["dag_id"]: row["is_paused"] for row in target.metadata["dag"]} == before


@replayed("settle_stopped_execution")
def test_settle_stopped_execution_event_of_an_execution_that_ended_itself_changes_nothing(world, folder):
    # The sample execution ran to its end: an event saying it was stopped is not believed.
    reports = world.s3.list_objects_v2(Bucket="mwaa-migrate-local", Prefix="migrations/")["KeyCount"]
    result = invoke(world, folder)
    assert result == {"settled": False}
    assert world.s3.list_objects_v2(Bucket="mwaa-migrate-local", Prefix="migrations/")["KeyCount"] == reports


@replayed("finish_migration")
def test_finish_migration_event_writes_the_report(world, folder):
    result = invoke(world, folder)
    assert result["status"] == "SUCCEEDED"
    bucket, key = result["reportUri"][5:].split("/", 1)
    assert world.read_json(bucket, key)["status"] == "SUCCEEDED"


# Functions off the default scenario's path, each replayed in its own scenario's world: last, so
# that the default scenario's world is built once and each of these once (tests run in file order).
@replayed("upgrade_environment")
def test_upgrade_environment_event_does_not_start_a_second_upgrade(world, folder):
    updates = [c for c in world.mwaa_emulator.calls if c[0] == "UpdateEnvironment"]
    result = invoke(world, folder)
    assert result["started"] is False
    assert [c for c in world.mwaa_emulator.calls if c[0] == "UpdateEnvironment"] == updates


@replayed("await_approval")
def test_await_approval_event_announces_the_wait_again_without_its_token(world, folder):
    result = invoke(world, folder)
    assert set(result) == {"waitingSince", "deadline"}
    assert _event(folder)["taskToken"] not in json.dumps(result)


@replayed("record_failure")
def test_record_failure_event_names_the_failed_state(world, folder):
    result = invoke(world, folder)
    assert (result["status"], result["failedState"], result["error"]) == (
        "FAILED",
        "CheckTarget",
        "EnvironmentFailed",
    )
    assert "INCORRECT_CONFIGURATION" in result["cause"]


@replayed("hand_over_export")
def test_hand_over_export_event_hands_the_export_over_again_without_its_token(world, folder):
    event = _event(folder)
    result = invoke(world, folder)
    assert result["phase"] == "bulk"
    assert result["confUri"].endswith("/hands-on/bulk/conf.json")
    # The token and the presigned forms go to the bucket, never into the output (the history).
    assert event["taskToken"] not in json.dumps(result)
    for marker in ("Signature", "X-Amz", "AWSAccessKeyId"):
        assert marker not in json.dumps(result)


@replayed("export_landed")
def test_export_landed_event_of_an_ended_wait_changes_nothing(world, folder):
    # The sample execution's waits ended; this event names the bulk's manifest, older than the wait
    # the hand-over's replay may have written: either way no execution resumes twice.
    result = invoke(world, folder)
    assert result["outcome"] == "ignored", result
