"""Whole executions of statemachine/migration.asl.json against the local emulation."""

from __future__ import annotations

import json

from emulation.local_stack import scenario_path
from emulation.scenario import EnvironmentFailure, Fault, Scenario
from mwaa_migrate.environment.environment_request import SOURCE_TAG
from tests.statemachine.conftest import run

SOURCE = "analytics-prod"
TARGET = "analytics-prod-2-10"
SOURCE_ROLE = "AmazonMWAA-analytics-prod"


def _report(stack, described):
    uri = json.loads(described["output"])["reportUri"] if described["status"] == "SUCCEEDED" else None
    if uri is None:
        name = described["executionArn"].rsplit(":", 1)[-1]
        keys = [o["Key"] for o in stack.s3.list_objects_v2(Bucket="mwaa-migrate-local")["Contents"]]
        key = next(k for k in keys if k.endswith(f"/reports/{name}.json"))
    else:
        key = uri.split("/", 3)[3]
    return stack.read_json("mwaa-migrate-local", key)


def _entered(described):
    return [
        e["stateEnteredEventDetails"]["name"] for e in described["history"] if "stateEnteredEventDetails" in e
    ]


def test_a_migration_moves_settings_metadata_and_recent_logs(scenario, local_stack):
    stack = local_stack(scenario)
    described = run(stack)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    target = stack.mwaa.get_environment(Name=TARGET)["Environment"]
    source = stack.mwaa.get_environment(Name=SOURCE)["Environment"]
    assert target["Status"] == "AVAILABLE"
    assert target["AirflowVersion"] == "2.10.3"
    assert target["Tags"][SOURCE_TAG] == SOURCE
    for setting in (
        "EnvironmentClass",
        "MaxWorkers",
        "MinWorkers",
        "Schedulers",
        "NetworkConfiguration",
        "WebserverAccessMode",
        "WeeklyMaintenanceWindowStart",
    ):
        assert target[setting] == source[setting], setting
    # Its own copy of what it runs, and no DAG scheduled before the cutover.
    assert target["DagS3Path"] == f"mwaa-migrate/{TARGET}/dags"
    assert target["RequirementsS3Path"] == f"mwaa-migrate/{TARGET}/requirements.txt"
    # The source's options, core.dag_concurrency under the name Airflow 2.2 gave it (Airflow's table).
    options = dict(source["AirflowConfigurationOptions"])
    options["core.max_active_tasks_per_dag"] = options.pop("core.dag_concurrency")
    assert target["AirflowConfigurationOptions"] == {**options, "core.dags_are_paused_at_creation": "True"}

    migrated = stack.mwaa_emulator.environment(TARGET).metadata
    assert {v["key"] for v in migrated["variable"]} == {
        v["key"] for v in scenario.source_metadata["variable"]
    }
    assert {p["pool"] for p in migrated["slot_pool"]} >= {"warehouse"}
    source_runs = {(r["dag_id"], r["run_id"]) for r in scenario.source_metadata["dag_run"]}
    assert source_runs <= {(r["dag_id"], r["run_id"]) for r in migrated["dag_run"]}

    paused = {d["dag_id"]: d["is_paused"] for d in migrated["dag"]}
    assert (paused["daily_sales"], paused["hourly_events"], paused["legacy_export"]) == (False, False, True)
    source_dags = {
        d["dag_id"]: d["is_paused"] for d in stack.mwaa_emulator.environment(SOURCE).metadata["dag"]
    }
    assert source_dags["daily_sales"] is True, "the cutover paused the source's active DAGs"
    assert source_dags["legacy_export"] is True
    entered = _entered(described)
    assert entered.index("CheckImportRun") < entered.index("TriggerCutoverExport"), "bulk before cutover"
    # The project's DAG files leave both DAG folders.
    for bucket, folder in (
        ("airflow-analytics-prod", "dags/"),
        ("airflow-analytics-prod", f"mwaa-migrate/{TARGET}/dags/"),
    ):
        listed = stack.s3.list_objects_v2(Bucket=bucket, Prefix=folder).get("Contents", [])
        assert not [o["Key"] for o in listed if "mwaa_migrate_" in o["Key"]], folder

    recent = [s for s in scenario.task_logs if s.minutes_ago <= 3 * 24 * 60]
    copied = stack.logs.describe_log_streams(logGroupName=f"airflow-{TARGET}-Task")["logStreams"]
    assert sorted(s["logStreamName"] for s in copied) == sorted(s.stream for s in recent)
    report = _report(stack, described)
    assert report["status"] == "SUCCEEDED"
    assert report["logs"]["eventsWritten"] == sum(s.events for s in recent)
    assert stack.iam.list_role_policies(RoleName=SOURCE_ROLE)["PolicyNames"] == []
    assert [c for c in stack.mwaa_emulator.calls if c[0] == "CreateEnvironment"] == [
        ("CreateEnvironment", TARGET)
    ]


def test_create_failed_fails_fast_with_mwaas_error_and_removes_the_grants(scenario, local_stack):
    failing = scenario.model_copy(
        update={
            "create_failure": EnvironmentFailure(
                error_code="INCORRECT_CONFIGURATION", error_message="no NAT route"
            )
        }
    )
    stack = local_stack(failing)
    described = run(stack)

    assert described["status"] == "FAILED"
    assert described["error"] == "EnvironmentFailed"
    assert "CREATE_FAILED: INCORRECT_CONFIGURATION: no NAT route" in described["cause"]
    polls = stack.lambdas.count("CheckEnvironmentFunction")
    assert polls <= 3, "a failed environment must end the wait at once, not at the deadline"
    report = _report(stack, described)
    assert report["failure"]["state"] == "CheckTarget"
    assert stack.iam.list_role_policies(RoleName=SOURCE_ROLE)["PolicyNames"] == []
    # The way back pauses the import DAG on the failed target, whose web server answers 503: urllib3
    # resent the request after its backoffs, which the emulation records rather than sleeps.
    assert stack.cli_retry_sleeps, "the way back's requests to the failed target were resent"


def test_a_throttled_call_beyond_botocores_retries_is_retried_by_the_state(scenario, local_stack):
    throttled = scenario.model_copy(update={"faults": [Fault(operation="CreateEnvironment", times=8)]})
    stack = local_stack(throttled)
    described = run(stack)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert stack.lambdas.count("CloneEnvironmentFunction") == 2
    assert [i.error_type for i in stack.lambdas.invocations if i.function == "CloneEnvironmentFunction"] == [
        "TransientAwsError",
        None,
    ]
    assert stack.retry_sleeps, "the state's Retry waited before the second attempt"


def test_a_failing_export_run_fails_the_migration_with_the_tasks_error(scenario, local_stack):
    failing = scenario.model_copy(
        update={"dag_failures": {"mwaa_migrate_export": "permission denied writing export"}}
    )
    stack = local_stack(failing)
    described = run(stack)

    assert described["status"] == "FAILED"
    assert described["error"] == "DagRunFailed"
    assert "permission denied writing export" in described["cause"]
    assert "ImportDag" not in " ".join(_entered(described))


def test_a_source_without_task_logs_skips_the_copy(scenario, local_stack):
    source = {**scenario.source, "LoggingConfiguration": {"TaskLogs": {"Enabled": False, "LogLevel": "INFO"}}}
    stack = local_stack(scenario.model_copy(update={"source": source, "task_logs": []}))
    described = run(stack)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert stack.lambdas.count("CopyLogStreamsFunction") == 0
    logs = _report(stack, described)["logs"]
    assert (logs["streamsListed"], logs["eventsWritten"], logs["complete"]) == (0, 0, True)


def test_bad_input_is_refused_and_nothing_is_created(scenario, local_stack):
    stack = local_stack(scenario)
    described = run(
        stack, execution_input={**scenario.input, "targetAirflowVersion": "2.10.4", "logDays": 40}
    )

    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidMigrationRequest"
    assert "targetAirflowVersion" in described["cause"]
    assert "logDays" in described["cause"]
    assert stack.lambdas.count("PlanMigrationFunction") == 1, "validation errors are not retried"
    assert not [c for c in stack.mwaa_emulator.calls if c[0] != "GetEnvironment"]
    assert stack.iam.list_role_policies(RoleName=SOURCE_ROLE)["PolicyNames"] == []


def test_a_dry_run_returns_the_plan_and_changes_nothing(scenario, local_stack):
    stack = local_stack(scenario)
    described = run(stack, execution_input={**scenario.input, "dryRun": True})

    assert described["status"] == "SUCCEEDED"
    plan = json.loads(described["output"])
    assert plan["target"]["createRequest"]["Name"] == TARGET
    assert plan["exportDag"]["dagId"] == "mwaa_migrate_export"
    assert [c[0] for c in stack.mwaa_emulator.calls] == ["GetEnvironment", "GetEnvironment"]
    assert stack.lambdas.count("GrantPermissionsFunction") == 0


def test_an_airflow_3_target_is_filled_on_2_11_then_upgraded_in_place(scenario, local_stack):
    to_three = {**scenario.input, "targetEnvironmentName": "analytics-3", "targetAirflowVersion": "3.0.6"}
    stack = local_stack(scenario.model_copy(update={"input": to_three}))
    described = run(stack)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    target = stack.mwaa.get_environment(Name="analytics-3")["Environment"]
    assert target["AirflowVersion"] == "3.0.6"
    entered = _entered(described)
    assert entered.index("CheckImportRun") < entered.index("UpgradeEnvironment")
    assert ("UpdateEnvironment", "analytics-3") in stack.mwaa_emulator.calls


def test_a_second_run_of_a_finished_migration_is_refused_and_changes_nothing(scenario, local_stack):
    stack = local_stack(scenario)
    first = run(stack, name="first")
    events_after_first = _target_event_count(stack)
    variables_after_first = len(stack.mwaa_emulator.environment(TARGET).metadata["variable"])
    calls_after_first = len(stack.mwaa_emulator.calls)
    second = run(stack, name="second")

    assert (first["status"], second["status"]) == ("SUCCEEDED", "FAILED"), second.get("cause")
    assert second["error"] == "MigrationConflict"
    assert "already migrated" in second["cause"]
    assert "reports/first.json" in second["cause"]
    assert [c[0] for c in stack.mwaa_emulator.calls[calls_after_first:]] == ["GetEnvironment"] * len(
        stack.mwaa_emulator.calls[calls_after_first:]
    ), "a refused run only reads"
    assert _target_event_count(stack) == events_after_first
    assert len(stack.mwaa_emulator.environment(TARGET).metadata["variable"]) == variables_after_first
    report = _report(stack, second)
    assert report["dagsRunning"].startswith(f"The target {TARGET} runs the DAGs")


def test_a_second_run_of_a_finished_2_to_3_migration_is_refused_at_once(scenario, local_stack):
    scenario = Scenario.load(scenario_path("airflow3"))
    stack = local_stack(scenario)
    first = run(stack, name="first")
    second = run(stack, name="second")

    assert (first["status"], second["status"]) == ("SUCCEEDED", "FAILED"), second.get("cause")
    assert "already migrated" in second["cause"]
    assert "CheckTarget" not in _entered(second)


def _target_event_count(stack):
    group = f"airflow-{TARGET}-Task"
    total = 0
    for stream in stack.logs.describe_log_streams(logGroupName=group)["logStreams"]:
        total += len(
            stack.logs.get_log_events(
                logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
            )["events"]
        )
    return total


def test_target_settings_give_the_target_its_own_class_size_and_network(scenario, local_stack):
    stack = local_stack(scenario)
    settings = {
        "EnvironmentClass": "mw1.large",
        "MaxWorkers": 12,
        "NetworkConfiguration": {
            "SubnetIds": ["subnet-new-a", "subnet-new-b"],
            "SecurityGroupIds": ["sg-new"],
        },
        "Tags": {"cost-center": "42"},
    }

    described = run(stack, execution_input={**scenario.input, "targetSettings": settings})

    assert described["status"] == "SUCCEEDED", described.get("cause")
    target = stack.mwaa.get_environment(Name=TARGET)["Environment"]
    source = stack.mwaa.get_environment(Name=SOURCE)["Environment"]
    assert (target["EnvironmentClass"], target["MaxWorkers"]) == ("mw1.large", 12)
    assert target["NetworkConfiguration"] == settings["NetworkConfiguration"]
    assert target["Tags"]["cost-center"] == "42"
    assert target["Tags"][SOURCE_TAG] == SOURCE
    # What targetSettings do not name is the source's.
    assert target["WeeklyMaintenanceWindowStart"] == source["WeeklyMaintenanceWindowStart"]
    assert target["EnvironmentClass"] != source["EnvironmentClass"]
