"""The plan: every refusal happens before anything changes, and the plan says exactly what will."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulation.mwaa import MwaaEmulator
from mwaa_migrate.environment.environment_request import SOURCE_TAG
from mwaa_migrate.errors import IncompatibleDags, InvalidMigrationRequest, MigrationConflict
from mwaa_migrate.migration_bucket import configuration_key
from mwaa_migrate.models import MigrationPlan, MigrationRequest
from mwaa_migrate.run.plan import plan_migration
from mwaa_migrate.settings import Settings

SOURCE = {
    "Name": "analytics",
    "AirflowVersion": "2.7.2",
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/service-role/mwaa-analytics",
    "SourceBucketArn": "arn:aws:s3:::airflow-analytics",
    "DagS3Path": "dags",
    "NetworkConfiguration": {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]},
    "LoggingConfiguration": {"TaskLogs": {"Enabled": True, "LogLevel": "INFO"}},
}

# The target as an earlier run of this migration created it: on its own copy of the DAG folder.
OUR_TARGET = {
    **SOURCE,
    "Name": "next",
    "AirflowVersion": "2.10.3",
    "DagS3Path": "mwaa-migrate/next/dags",
    "Tags": {SOURCE_TAG: "analytics"},
}

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# The stack's ExecutionRoleArnPattern in these tests: the roles below, and no other.
ROLE_PATTERN = "role/*mwaa-*"


def stack_settings(**overrides: Any) -> Settings:
    """The stack the plans are made on (its environment variables, which overrides replace; None
    leaves one unset)."""
    variables = {
        "MIGRATION_BUCKET": "migrations",
        "POLICY_NAME_PREFIX": "mwaa-migrate",
        "MIGRATION_KEY_ARN": KEY_ARN,
        "EXECUTION_ROLE_ARN_PATTERN": ROLE_PATTERN,
        **overrides,
    }
    return Settings.model_validate({name: value for name, value in variables.items() if value is not None})


MWAA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws(), MwaaEmulator() as emulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", emulator.endpoint_url)
        iam = boto3.client("iam")
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="migrations")
        s3.create_bucket(Bucket="airflow-analytics")
        s3.put_bucket_versioning(Bucket="airflow-analytics", VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket="airflow-analytics", Key="dags/etl.py", Body=b"from airflow import DAG\n")
        for name, path in (("mwaa-analytics", "/service-role/"), ("mwaa-next", "/")):
            iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=MWAA_TRUST)
        emulator.add_environment(dict(SOURCE))
        yield {"mwaa": boto3.client("mwaa"), "iam": iam, "s3": s3, "emulator": emulator}


def _plan(aws: dict[str, Any], **fields: Any):
    request = MigrationRequest.model_validate(
        {
            "sourceEnvironmentName": "analytics",
            "targetEnvironmentName": "next",
            "targetAirflowVersion": "2.10.3",
        }
        | fields
    )
    return plan_migration(
        request,
        mwaa=aws["mwaa"],
        iam=aws["iam"],
        s3=aws["s3"],
        stack=stack_settings(),
    )


def test_the_plan_holds_the_request_the_policies_and_the_dags(aws):
    plan = _plan(aws)
    assert plan.target.create_request["Name"] == "next"
    assert plan.target.create_request["AirflowVersion"] == "2.10.3"
    assert plan.target.create_request["ExecutionRoleArn"] == SOURCE["ExecutionRoleArn"]
    assert plan.prefix == "migrations/analytics/next"
    assert [p.role_name for p in plan.policies] == ["mwaa-analytics", "mwaa-analytics"]
    assert plan.export_dag.bucket == "airflow-analytics"
    assert plan.export_dag.files == ["mwaa_migrate_metadata.py", "mwaa_migrate_export.py"]
    assert plan.source.task_logs_enabled is True
    json.dumps(plan.to_event())  # the state machine carries it as JSON
    # Every field, none left out as null: the state machine's ResultSelector names them all.
    assert set(plan.to_event()) == {str(field.alias) for field in MigrationPlan.model_fields.values()}


def _objects(s3) -> dict[str, list[str]]:
    return {
        bucket["Name"]: [
            f"{item['Key']}@{item['VersionId']}"
            for item in s3.list_object_versions(Bucket=bucket["Name"]).get("Versions", [])
        ]
        for bucket in s3.list_buckets()["Buckets"]
    }


def test_planning_changes_nothing_but_writing_the_configuration_object(aws):
    before = _objects(aws["s3"])
    plan = _plan(aws)
    assert {call[0] for call in aws["emulator"].calls} == {"GetEnvironment"}
    assert aws["iam"].list_role_policies(RoleName="mwaa-analytics")["PolicyNames"] == []
    after = _objects(aws["s3"])
    # The option values' object (secret_options.py), which the plan references, and nothing else.
    written = sorted(set(after["migrations"]) - set(before["migrations"]))
    assert [item.split("@")[0] for item in written] == [configuration_key(plan.prefix)]
    assert {**after, "migrations": before["migrations"]} == before


def test_a_dry_run_plan_changes_nothing(aws):
    before = _objects(aws["s3"])
    plan = _plan(aws, dryRun=True)
    assert plan.target.configuration is None
    assert _objects(aws["s3"]) == before


def test_an_airflow_3_target_is_planned_through_2_11(aws):
    plan = _plan(aws, targetAirflowVersion="3.0.6")
    assert (plan.target.create_version, plan.target.upgrade_to) == ("2.11.0", "3.0.6")
    assert plan.target.create_request["AirflowVersion"] == "2.11.0"


def test_a_missing_source_is_refused(aws):
    with pytest.raises(
        InvalidMigrationRequest, match="sourceEnvironmentName: environment ghost does not exist"
    ):
        _plan(aws, sourceEnvironmentName="ghost")


def test_a_source_that_is_not_available_is_refused(aws):
    aws["emulator"].add_environment({**SOURCE, "Name": "busy", "Status": "UPDATING"})
    with pytest.raises(InvalidMigrationRequest, match="busy is UPDATING, it must be AVAILABLE"):
        _plan(aws, sourceEnvironmentName="busy")


def test_a_downgrade_is_refused(aws):
    aws["emulator"].add_environment({**SOURCE, "Name": "newer", "AirflowVersion": "2.10.3"})
    with pytest.raises(
        InvalidMigrationRequest, match="targetAirflowVersion: .* older than the source's 2.10.3"
    ):
        _plan(aws, sourceEnvironmentName="newer", targetAirflowVersion="2.9.2")


def test_a_source_older_than_the_export_supports_is_refused_before_anything_changes(aws):
    aws["emulator"].add_environment({**SOURCE, "Name": "legacy", "AirflowVersion": "2.5.1"})
    with pytest.raises(
        InvalidMigrationRequest, match=r"^sourceEnvironmentName: the source runs Airflow 2\.5\.1"
    ):
        _plan(aws, sourceEnvironmentName="legacy")
    assert sorted(env.name for env in aws["emulator"].environments) == ["analytics", "legacy"]
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket="migrations")


OLD_STYLE_DAG = b"""from datetime import datetime
from airflow import DAG
from airflow.operators.dummy_operator import DummyOperator

with DAG("old", schedule_interval="@daily", start_date=datetime(2024, 1, 1)) as dag:
    DummyOperator(task_id="start")
"""


def test_an_airflow_3_plan_names_each_dag_file_line_that_will_not_run(aws):
    aws["s3"].put_object(Bucket="airflow-analytics", Key="dags/team/old.py", Body=OLD_STYLE_DAG)
    plan = _plan(aws, targetAirflowVersion="3.0.6")
    compatibility = plan.dag_compatibility
    assert compatibility is not None
    assert compatibility.checked == "static"
    assert compatibility.target_version == "3.0.6"
    assert ("team/old.py", 5, "AIR301") in {(f.file, f.line, f.rule) for f in compatibility.findings}
    assert any(w.startswith("team/old.py:5: AIR301") for w in plan.warnings)


def test_on_incompatible_dags_fail_refuses_at_the_plan_before_anything_changes(aws):
    aws["s3"].put_object(Bucket="airflow-analytics", Key="dags/team/old.py", Body=OLD_STYLE_DAG)
    with pytest.raises(IncompatibleDags, match=r"in team/old\.py"):
        _plan(aws, targetAirflowVersion="3.0.6", onIncompatibleDags="fail")
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket="migrations")


def test_on_incompatible_dags_fail_lets_a_clean_folder_through(aws):
    plan = _plan(aws, targetAirflowVersion="3.0.6", onIncompatibleDags="fail")
    assert plan.dag_compatibility is not None
    assert plan.dag_compatibility.breaking_count == 0


def test_a_same_version_migration_is_planned_as_a_move_with_a_warning(aws):
    plan = _plan(aws, targetAirflowVersion="2.7.2")
    assert plan.target.final_version == "2.7.2"
    [warning] = [w for w in plan.warnings if "same version" in w]
    assert "both run Airflow 2.7.2" in warning
    assert "not an upgrade" in warning


def test_an_upgrade_carries_no_same_version_warning(aws):
    assert not [w for w in _plan(aws).warnings if "same version" in w]


def test_a_missing_target_role_is_refused(aws):
    with pytest.raises(
        InvalidMigrationRequest, match="targetExecutionRoleArn: role .*mwaa-ghost does not exist"
    ):
        _plan(aws, targetExecutionRoleArn="arn:aws:iam::123456789012:role/mwaa-ghost")


def test_a_bucket_other_than_the_stacks_is_refused(aws):
    # The functions' policies and the grants name the stack's bucket only.
    with pytest.raises(InvalidMigrationRequest, match="migrationBucket: nowhere is not this stack's"):
        _plan(aws, migrationBucket="nowhere")


def test_a_missing_stack_bucket_is_refused(aws):
    aws["s3"].delete_bucket(Bucket="migrations")
    with pytest.raises(InvalidMigrationRequest, match="migrationBucket: bucket migrations does not exist"):
        _plan(aws)


# ------------------------------------------------------------------ who may receive the grants


def _role(aws: dict[str, Any], name: str, trust: dict[str, Any], path: str = "/") -> str:
    return aws["iam"].create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]


def _trust(*principals: dict[str, Any]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
            for principal in principals
        ],
    }


def test_a_target_role_only_a_person_can_assume_is_refused(aws):
    # The finding: a role that trusts only a developer's user received the import grant.
    role = _role(aws, "mwaa-developer", _trust({"AWS": "arn:aws:iam::123456789012:user/dev"}))
    with pytest.raises(
        InvalidMigrationRequest, match="not an MWAA execution role: its trust policy does not let MWAA"
    ):
        _plan(aws, targetExecutionRoleArn=role)


def test_a_target_role_that_a_person_can_also_assume_is_refused(aws):
    trust = _trust({"Service": "airflow-env.amazonaws.com"}, {"AWS": "arn:aws:iam::123456789012:user/dev"})
    role = _role(aws, "mwaa-shared", trust)
    with pytest.raises(
        InvalidMigrationRequest, match="also lets AWS arn:aws:iam::123456789012:user/dev assume"
    ):
        _plan(aws, targetExecutionRoleArn=role)


def test_a_target_role_outside_the_stacks_pattern_is_refused(aws):
    role = _role(aws, "admin", _trust({"Service": "airflow.amazonaws.com"}))
    with pytest.raises(
        InvalidMigrationRequest, match="does not match the stack's ExecutionRoleArnPattern role/"
    ):
        _plan(aws, targetExecutionRoleArn=role)


def test_a_target_role_of_another_account_is_refused(aws):
    with pytest.raises(InvalidMigrationRequest, match="not in this stack's account 123456789012"):
        _plan(aws, targetExecutionRoleArn="arn:aws:iam::210987654321:role/mwaa-next")


def test_an_mwaa_role_is_accepted_and_receives_the_import_grant(aws):
    role = _role(aws, "mwaa-new", _trust({"Service": ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]}))
    plan = _plan(aws, targetExecutionRoleArn=role)
    assert [(policy.role_name, policy.policy_name) for policy in plan.policies][1] == (
        "mwaa-new",
        "mwaa-migrate-analytics.next-import",
    )


def test_a_source_whose_role_is_outside_the_pattern_is_refused_before_anything_changes(aws):
    aws["emulator"].add_environment(
        {**SOURCE, "Name": "legacy", "ExecutionRoleArn": "arn:aws:iam::123456789012:role/legacy-airflow"}
    )
    with pytest.raises(InvalidMigrationRequest, match=r"sourceEnvironmentName \(its execution role\)"):
        _plan(aws, sourceEnvironmentName="legacy")


def test_a_target_of_another_origin_is_refused(aws):
    aws["emulator"].add_environment({**SOURCE, "Name": "next", "Tags": {"team": "other"}})
    with pytest.raises(MigrationConflict, match="next already exists and was not created by a migration"):
        _plan(aws)


def test_a_target_from_an_earlier_run_is_reused(aws):
    aws["emulator"].add_environment({**OUR_TARGET, "Tags": {SOURCE_TAG: "analytics"}})
    plan = _plan(aws)
    assert plan.target.already_exists is True
    assert any("reused" in warning for warning in plan.warnings)


def test_a_target_from_an_earlier_run_with_another_role_is_refused(aws):
    aws["emulator"].add_environment(
        {
            **OUR_TARGET,
            "ExecutionRoleArn": "arn:aws:iam::123456789012:role/mwaa-next",
        }
    )
    with pytest.raises(MigrationConflict, match="exists with execution role"):
        _plan(aws)


# ------------------------------------------------------------------ the target's own copy of the files


def test_the_target_reads_its_own_copy_of_the_dag_folder(aws):
    # Given a source whose DAGs are in s3://airflow-analytics/dags
    # When the migration is planned
    plan = _plan(aws)
    # Then the target reads a folder of its own in the same bucket, and the import DAG goes there
    assert plan.target.create_request["SourceBucketArn"] == "arn:aws:s3:::airflow-analytics"
    assert plan.target.create_request["DagS3Path"] == "mwaa-migrate/next/dags"
    assert (plan.import_dag.bucket, plan.import_dag.folder) == ("airflow-analytics", "mwaa-migrate/next/dags")
    assert [(f.kind, f.source_key, f.target_key) for f in plan.target.files] == [
        ("dags", "dags/", "mwaa-migrate/next/dags/")
    ]


def test_the_versioned_files_are_planned_at_the_versions_the_source_runs(aws):
    # Given a source with requirements at a named version and plugins at no named version
    s3 = aws["s3"]
    pinned = s3.put_object(Bucket="airflow-analytics", Key="requirements.txt", Body=b"pandas==2.0\n")[
        "VersionId"
    ]
    s3.put_object(Bucket="airflow-analytics", Key="requirements.txt", Body=b"pandas==2.2\n")
    current = s3.put_object(Bucket="airflow-analytics", Key="plugins.zip", Body=b"PK")["VersionId"]
    aws["emulator"].add_environment(
        {
            **SOURCE,
            "Name": "pinned",
            "RequirementsS3Path": "requirements.txt",
            "RequirementsS3ObjectVersion": pinned,
            "PluginsS3Path": "plugins.zip",
        }
    )
    # When the migration is planned
    plan = _plan(aws, sourceEnvironmentName="pinned")
    # Then each is copied from the version the source runs, and the request waits for the copy's version
    planned = {f.kind: (f.source_version_id, f.target_key) for f in plan.target.files}
    assert planned["requirements"] == (pinned, "mwaa-migrate/next/requirements.txt")
    assert planned["plugins"] == (current, "mwaa-migrate/next/plugins.zip")
    assert plan.target.create_request["RequirementsS3Path"] == "mwaa-migrate/next/requirements.txt"
    assert "RequirementsS3ObjectVersion" not in plan.target.create_request


def test_a_version_the_source_names_that_is_gone_is_refused(aws):
    aws["emulator"].add_environment(
        {
            **SOURCE,
            "Name": "broken",
            "RequirementsS3Path": "requirements.txt",
            "RequirementsS3ObjectVersion": "v9",
        }
    )
    with pytest.raises(
        MigrationConflict, match="RequirementsS3Path s3://airflow-analytics/requirements.txt version v9"
    ):
        _plan(aws, sourceEnvironmentName="broken")


def test_a_target_bucket_holds_the_copy_when_named(aws):
    # Given a versioned bucket named for the target
    aws["s3"].create_bucket(Bucket="airflow-next")
    aws["s3"].put_bucket_versioning(Bucket="airflow-next", VersioningConfiguration={"Status": "Enabled"})
    # When the migration is planned with targetBucket
    plan = _plan(aws, targetBucket="airflow-next")
    # Then the target reads that bucket
    assert plan.target.create_request["SourceBucketArn"] == "arn:aws:s3:::airflow-next"
    assert plan.target.source_bucket_arn == "arn:aws:s3:::airflow-next"


def test_a_target_bucket_without_versioning_is_refused(aws):
    aws["s3"].create_bucket(Bucket="airflow-next")
    with pytest.raises(
        InvalidMigrationRequest, match="targetBucket: bucket airflow-next must have versioning"
    ):
        _plan(aws, targetBucket="airflow-next")


def test_a_missing_target_bucket_is_refused(aws):
    with pytest.raises(InvalidMigrationRequest, match="targetBucket: bucket airflow-nowhere does not exist"):
        _plan(aws, targetBucket="airflow-nowhere")


def test_a_dag_that_starts_unpaused_is_named_in_a_warning(aws):
    # Given a DAG file that opts out of being paused at creation, beside an ordinary one
    aws["s3"].put_object(
        Bucket="airflow-analytics",
        Key="dags/live.py",
        Body=b"with DAG('live', is_paused_upon_creation=False):\n    pass\n",
    )
    # When the migration is planned
    plan = _plan(aws)
    # Then a warning names exactly that file
    [warning] = [w for w in plan.warnings if "is_paused_upon_creation=False" in w]
    assert "dags/live.py" in warning
    assert "etl.py" not in warning


def test_the_target_is_created_with_every_dag_paused(aws):
    plan = _plan(aws)
    assert (
        plan.target.create_request["AirflowConfigurationOptions"]["core.dags_are_paused_at_creation"]
        == "True"
    )


# ------------------------------------------------------------------ failed targets


def test_a_failed_target_of_this_migration_is_planned_for_replacement(aws):
    # Given this migration's target, left CREATE_FAILED by an earlier run
    aws["emulator"].add_environment(
        {
            **OUR_TARGET,
            "Status": "CREATE_FAILED",
            "LastUpdate": {"Status": "FAILED", "Error": {"ErrorCode": "SUBNET", "ErrorMessage": "no route"}},
        }
    )
    # When the migration is planned again
    plan = _plan(aws)
    # Then the plan replaces it and says so
    assert (plan.target.replace_failed, plan.target.already_exists) == (True, False)
    assert any("will replace environment next" in w and "CREATE_FAILED" in w for w in plan.warnings)


def test_a_failed_target_is_refused_when_replacing_is_switched_off(aws):
    aws["emulator"].add_environment({**OUR_TARGET, "Status": "CREATE_FAILED"})
    with pytest.raises(MigrationConflict, match="replaceFailedTarget is false: delete it"):
        _plan(aws, replaceFailedTarget=False)


def test_a_failed_environment_of_another_origin_is_refused_with_what_to_do(aws):
    aws["emulator"].add_environment({**OUR_TARGET, "Status": "CREATE_FAILED", "Tags": {"team": "other"}})
    with pytest.raises(
        MigrationConflict, match="not created by a migration from analytics: delete it .* or choose"
    ):
        _plan(aws)


def test_a_target_that_reads_the_sources_own_folder_is_refused(aws):
    aws["emulator"].add_environment({**OUR_TARGET, "DagS3Path": "dags"})
    with pytest.raises(MigrationConflict, match="not its own copy"):
        _plan(aws)


# ------------------------------------------------------------------ re-runs of a finished migration


def _put_json(aws, key, value):
    aws["s3"].put_object(Bucket="migrations", Key=key, Body=json.dumps(value).encode())


def _record(state, target="next"):
    return {
        "migration_id": f"analytics.{target}",
        "state": state,
        "active_dags": ["etl"],
        "updated_at": "2026-01-02T03:04:05Z",
        "history": [
            {"state": "paused", "at": "2026-01-02T03:00:00Z"},
            {"state": state, "at": "2026-01-02T03:04:05Z"},
        ],
    }


def test_a_migration_whose_target_went_live_is_refused(aws):
    # Given the cutover record of this migration says the target is live
    _put_json(aws, "migrations/analytics/next/cutover/record.json", _record("live"))
    _put_json(
        aws,
        "migrations/analytics/next/reports/run-1.json",
        {"status": "SUCCEEDED", "finishedAt": "2026-01-02T04:00:00Z"},
    )
    # When it is planned again
    # Then it is refused, saying since when and where the report is
    with pytest.raises(
        MigrationConflict,
        match=r"already migrated: the target next runs the DAGs since 2026-01-02T03:04:05Z; "
        r"report s3://migrations/migrations/analytics/next/reports/run-1.json",
    ):
        _plan(aws)


def test_a_migration_that_went_live_and_stopped_before_finishing_is_resumed(aws):
    # Given a record that says live, and no report of a succeeded run (the run crashed after the cutover)
    _put_json(aws, "migrations/analytics/next/cutover/record.json", _record("live"))
    # When it is planned again
    plan = _plan(aws)
    # Then the plan resumes after the cutover, and says so
    assert plan.cutover.resume_after_live is True
    assert any("resumes after the cutover" in w for w in plan.warnings)


def test_an_airflow_3_target_unpauses_its_dags_after_the_upgrade(aws):
    assert _plan(aws, targetAirflowVersion="3.0.6").cutover.unpause_in_import is False
    assert _plan(aws, targetAirflowVersion="2.10.3").cutover.unpause_in_import is True


def test_a_migration_with_a_succeeded_report_is_refused(aws):
    _put_json(aws, "migrations/analytics/next/reports/run-0.json", {"status": "FAILED", "finishedAt": "a"})
    _put_json(aws, "migrations/analytics/next/reports/run-1.json", {"status": "SUCCEEDED", "finishedAt": "b"})
    with pytest.raises(MigrationConflict, match="already migrated: .* since b; report .*run-1.json"):
        _plan(aws)


def test_a_migration_with_only_failed_reports_is_planned(aws):
    _put_json(aws, "migrations/analytics/next/reports/run-0.json", {"status": "FAILED", "finishedAt": "a"})
    assert _plan(aws).migration_id == "analytics.next"


def test_another_migration_that_left_the_source_paused_is_refused(aws):
    _put_json(aws, "migrations/analytics/other/cutover/record.json", _record("paused", "other"))
    with pytest.raises(
        MigrationConflict, match="migration of analytics to other paused the source's DAGs \\(etl\\)"
    ):
        _plan(aws)


def test_a_source_already_migrated_elsewhere_is_refused(aws):
    _put_json(aws, "migrations/analytics/other/cutover/record.json", _record("live", "other"))
    with pytest.raises(MigrationConflict, match="analytics was already migrated to other"):
        _plan(aws)


def test_another_migration_that_restored_the_source_does_not_stop_this_one(aws):
    _put_json(aws, "migrations/analytics/other/cutover/record.json", _record("restored", "other"))
    assert _plan(aws).target.name == "next"


# ------------------------------------------------------------------ ids and cutover settings


def test_migration_ids_that_once_collided_differ(aws):
    # Given "a-to-b" -> "c" and "a" -> "b-to-c", which were both "a-to-b-to-c"
    for name in ("a-to-b", "a"):
        aws["emulator"].add_environment({**SOURCE, "Name": name})
    # When both are planned
    first = _plan(aws, sourceEnvironmentName="a-to-b", targetEnvironmentName="c")
    second = _plan(aws, sourceEnvironmentName="a", targetEnvironmentName="b-to-c")
    # Then their ids, and so their policy names, differ
    assert (first.migration_id, second.migration_id) == ("a-to-b.c", "a.b-to-c")
    assert {p.policy_name for p in first.policies}.isdisjoint(p.policy_name for p in second.policies)


def test_the_plan_carries_the_cutover_settings(aws):
    plan = _plan(
        aws, cutover="approve", approvalTimeoutHours=2, drainTimeoutMinutes=5, onDrainTimeout="carry"
    )
    cutover = plan.cutover
    assert (
        cutover.mode,
        cutover.approval_timeout_seconds,
        cutover.drain_timeout_minutes,
        cutover.on_drain_timeout,
    ) == ("approve", 7200, 5, "carry")


def test_an_airflow_3_plan_scans_the_python_files_of_plugins_zip_too(aws):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as plugins:
        plugins.writestr("operators/legacy.py", OLD_STYLE_DAG.decode())
        plugins.writestr("README.txt", "not python")
    version = aws["s3"].put_object(Bucket="airflow-analytics", Key="plugins.zip", Body=archive.getvalue())[
        "VersionId"
    ]
    aws["emulator"].environment("analytics").description.update(
        PluginsS3Path="plugins.zip", PluginsS3ObjectVersion=version
    )
    plan = _plan(aws, targetAirflowVersion="3.0.6")
    assert plan.dag_compatibility is not None
    files = {finding.file for finding in plan.dag_compatibility.findings}
    assert "plugins.zip/operators/legacy.py" in files
