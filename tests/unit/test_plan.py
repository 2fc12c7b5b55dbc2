"""The plan: every refusal happens before anything changes, and the plan says exactly what will."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulation.mwaa import MwaaEmulator
from mwaa_migrate.environment_request import SOURCE_TAG
from mwaa_migrate.errors import InvalidMigrationRequest, MigrationConflict
from mwaa_migrate.models import MigrationRequest
from mwaa_migrate.plan import plan_migration

SOURCE = {
    "Name": "analytics",
    "AirflowVersion": "2.7.2",
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/service-role/mwaa-analytics",
    "SourceBucketArn": "arn:aws:s3:::airflow-analytics",
    "DagS3Path": "dags",
    "NetworkConfiguration": {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]},
    "LoggingConfiguration": {"TaskLogs": {"Enabled": True, "LogLevel": "INFO"}},
}

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws(), MwaaEmulator() as emulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", emulator.endpoint_url)
        iam = boto3.client("iam")
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="migrations")
        for name, path in (("mwaa-analytics", "/service-role/"), ("mwaa-next", "/")):
            iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument="{}")
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
        default_bucket="migrations",
        policy_name_prefix="mwaa-migrate",
        kms_key_arn=KEY_ARN,
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


def test_planning_changes_nothing(aws):
    _plan(aws)
    assert {call[0] for call in aws["emulator"].calls} == {"GetEnvironment"}
    assert aws["iam"].list_role_policies(RoleName="mwaa-analytics")["PolicyNames"] == []


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


def test_a_missing_target_role_is_refused(aws):
    with pytest.raises(InvalidMigrationRequest, match="targetExecutionRoleArn: role .*ghost does not exist"):
        _plan(aws, targetExecutionRoleArn="arn:aws:iam::123456789012:role/ghost")


def test_a_missing_bucket_is_refused(aws):
    with pytest.raises(InvalidMigrationRequest, match="migrationBucket: bucket nowhere does not exist"):
        _plan(aws, migrationBucket="nowhere")


def test_a_target_of_another_origin_is_refused(aws):
    aws["emulator"].add_environment({**SOURCE, "Name": "next", "Tags": {"team": "other"}})
    with pytest.raises(MigrationConflict, match="next already exists and was not created by a migration"):
        _plan(aws)


def test_a_target_from_an_earlier_run_is_reused(aws):
    aws["emulator"].add_environment(
        {**SOURCE, "Name": "next", "AirflowVersion": "2.10.3", "Tags": {SOURCE_TAG: "analytics"}}
    )
    plan = _plan(aws)
    assert plan.target.already_exists is True
    assert any("reused" in warning for warning in plan.warnings)


def test_a_target_from_an_earlier_run_with_another_role_is_refused(aws):
    aws["emulator"].add_environment(
        {
            **SOURCE,
            "Name": "next",
            "AirflowVersion": "2.10.3",
            "ExecutionRoleArn": "arn:aws:iam::123456789012:role/mwaa-next",
            "Tags": {SOURCE_TAG: "analytics"},
        }
    )
    with pytest.raises(MigrationConflict, match="exists with execution role"):
        _plan(aws)
