"""The target's own copy of the source's files, and CloneEnvironment that makes it and creates the
target from it (replacing this migration's CREATE_FAILED target)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulation.mwaa import MwaaEmulator
from mwaa_migrate.environment.clone import clone_environment
from mwaa_migrate.environment.environment_request import SOURCE_TAG
from mwaa_migrate.environment.requirements_file import requirements_rewrite
from mwaa_migrate.environment.target_files import copy_target_files
from mwaa_migrate.models import MigrationPlan, MigrationRequest, TargetFile
from mwaa_migrate.run.plan import plan_migration
from tests.unit.test_plan import stack_settings

SOURCE = {
    "Name": "analytics",
    "AirflowVersion": "2.7.2",
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/service-role/mwaa-analytics",
    "SourceBucketArn": "arn:aws:s3:::airflow-analytics",
    "DagS3Path": "dags",
    "NetworkConfiguration": {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]},
}
BUCKET = "airflow-analytics"
MWAA_TRUST = json.dumps(
    {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "airflow-env.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
    }
)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws(), MwaaEmulator(delete_polls=1) as emulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", emulator.endpoint_url)
        s3 = boto3.client("s3")
        boto3.client("iam").create_role(
            RoleName="mwaa-analytics", Path="/service-role/", AssumeRolePolicyDocument=MWAA_TRUST
        )
        s3.create_bucket(Bucket="migrations")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket=BUCKET, Key="dags/etl.py", Body=b"# etl", ContentType="text/x-python")
        s3.put_object(Bucket=BUCKET, Key="dags/lib/helpers.py", Body=b"# helpers")
        s3.put_object(Bucket=BUCKET, Key="dags/mwaa_migrate_export.py", Body=b"# the project's own")
        old = s3.put_object(Bucket=BUCKET, Key="requirements.txt", Body=b"pandas==2.0\n")["VersionId"]
        s3.put_object(
            Bucket=BUCKET, Key="requirements.txt", Body=b"pandas==2.2\n"
        )  # not what the source runs
        source = {**SOURCE, "RequirementsS3Path": "requirements.txt", "RequirementsS3ObjectVersion": old}
        emulator.add_environment(source)
        yield {"mwaa": boto3.client("mwaa"), "s3": s3, "emulator": emulator, "requirements_version": old}


def _plan(aws: dict[str, Any]) -> MigrationPlan:
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
        iam=boto3.client("iam"),
        s3=aws["s3"],
        stack=stack_settings(EXECUTION_ROLE_ARN_PATTERN="role/*"),
    )


def _copy(aws: dict[str, Any], files: list[TargetFile]):
    return copy_target_files(aws["s3"], source_bucket=BUCKET, target_bucket=BUCKET, files=files)


def _body(s3, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_the_dag_folder_is_copied_without_the_projects_own_files(aws):
    # Given a planned copy of the DAG folder
    files = _plan(aws).target.files
    # When it is copied
    copy = _copy(aws, files)
    # Then every file but mwaa_migrate_*.py is in the target's folder, as the source has it
    keys = sorted(item.target_key for item in copy.dag_files)
    assert keys == ["mwaa-migrate/next/dags/etl.py", "mwaa-migrate/next/dags/lib/helpers.py"]
    assert _body(aws["s3"], "mwaa-migrate/next/dags/etl.py") == b"# etl"
    head = aws["s3"].head_object(Bucket=BUCKET, Key="mwaa-migrate/next/dags/etl.py")
    assert head["ContentType"] == "text/x-python"
    assert (copy.dag_files_copied, copy.dag_files_unchanged) == (2, 0)


def test_the_requirements_are_copied_at_the_version_the_source_runs(aws):
    copy = _copy(aws, _plan(aws).target.files)
    [requirements] = copy.files
    assert requirements.source_version_id == aws["requirements_version"]
    assert _body(aws["s3"], "mwaa-migrate/next/requirements.txt") == b"pandas==2.0\n"
    current = aws["s3"].head_object(Bucket=BUCKET, Key="mwaa-migrate/next/requirements.txt")["VersionId"]
    assert requirements.target_version_id == current


def test_copying_again_copies_nothing(aws):
    # Given a copy made by an earlier run
    files = _plan(aws).target.files
    first = _copy(aws, files)
    # When the copy runs again
    second = _copy(aws, files)
    # Then nothing is copied, and the same versions are recorded
    assert (second.dag_files_copied, second.dag_files_unchanged) == (0, 2)
    assert [f.copied for f in second.files] == [False]
    assert [f.target_version_id for f in second.files] == [f.target_version_id for f in first.files]
    versions = aws["s3"].list_object_versions(Bucket=BUCKET, Prefix="mwaa-migrate/next/")["Versions"]
    assert len(versions) == 3


def test_a_dag_file_changed_on_the_source_is_copied_again(aws):
    files = _plan(aws).target.files
    _copy(aws, files)
    aws["s3"].put_object(Bucket=BUCKET, Key="dags/etl.py", Body=b"# etl v2")
    again = _copy(aws, files)
    assert (again.dag_files_copied, again.dag_files_unchanged) == (1, 1)
    assert _body(aws["s3"], "mwaa-migrate/next/dags/etl.py") == b"# etl v2"


def test_the_target_is_created_on_its_copy_at_the_copys_versions(aws):
    # Given the plan
    plan = _plan(aws)
    # When CloneEnvironment runs
    result = clone_environment(aws["mwaa"], aws["s3"], plan, sleep=lambda _: None)
    # Then the environment reads its own copy, at the copy's object version, and the copy is recorded
    created = aws["emulator"].environment("next").description
    [requirements] = result.files
    assert created["DagS3Path"] == "mwaa-migrate/next/dags"
    assert created["RequirementsS3Path"] == "mwaa-migrate/next/requirements.txt"
    assert created["RequirementsS3ObjectVersion"] == requirements.target_version_id
    assert created["AirflowConfigurationOptions"]["core.dags_are_paused_at_creation"] == "True"
    assert result.files_record == "s3://migrations/migrations/analytics/next/target/files.json"
    record = json.loads(
        aws["s3"]
        .get_object(Bucket="migrations", Key="migrations/analytics/next/target/files.json")["Body"]
        .read()
    )
    assert len(record["dagFiles"]) == 2


def _failed_target(aws: dict[str, Any]) -> None:
    aws["emulator"].add_environment(
        {
            **SOURCE,
            "Name": "next",
            "DagS3Path": "mwaa-migrate/next/dags",
            "Status": "CREATE_FAILED",
            "Tags": {SOURCE_TAG: "analytics"},
        }
    )


def test_a_failed_target_of_this_migration_is_deleted_and_created_again(aws):
    # Given this migration's target in CREATE_FAILED, and a plan that replaces it
    _failed_target(aws)
    plan = _plan(aws)
    # When CloneEnvironment runs
    result = clone_environment(aws["mwaa"], aws["s3"], plan, sleep=lambda _: None)
    # Then it was deleted, then created again
    operations = [
        call[0] for call in aws["emulator"].calls if call[0] in {"DeleteEnvironment", "CreateEnvironment"}
    ]
    assert operations == ["DeleteEnvironment", "CreateEnvironment"]
    assert (result.created, result.replaced_failed, result.replacing) == (True, True, False)
    assert aws["emulator"].environment("next").status == "CREATING"


def test_a_deletion_that_outlasts_the_wait_is_handed_back_to_the_state_machine(aws):
    # Given a failed target whose deletion takes longer than one invocation may wait
    _failed_target(aws)
    plan = _plan(aws)
    aws["emulator"].delete_polls = 50
    # When CloneEnvironment runs with no time to wait
    result = clone_environment(aws["mwaa"], aws["s3"], plan, delete_wait_seconds=0, sleep=lambda _: None)
    # Then it says the target is still being replaced, and created nothing
    assert (result.replacing, result.created) == (True, False)
    assert not [call for call in aws["emulator"].calls if call[0] == "CreateEnvironment"]
    # And the next invocation does not delete it twice
    clone_environment(aws["mwaa"], aws["s3"], plan, delete_wait_seconds=0, sleep=lambda _: None)
    assert [call[0] for call in aws["emulator"].calls].count("DeleteEnvironment") == 1


CONSTRAINED = (
    b'--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-2.7.2/constraints-3.11.txt"\n'
    b"apache-airflow-providers-snowflake==5.0.0\n"
)


def _constrained_source(aws: dict[str, Any]) -> None:
    version = aws["s3"].put_object(Bucket=BUCKET, Key="requirements.txt", Body=CONSTRAINED)["VersionId"]
    aws["emulator"].environment("analytics").description["RequirementsS3ObjectVersion"] = version


def test_the_targets_requirements_name_the_target_versions_constraints(aws):
    # Given a source whose requirements pin Airflow 2.7.2's constraints
    _constrained_source(aws)
    plan = _plan(aws)
    assert any(
        w.startswith("requirements.txt: --constraint") and "constraints-2.10.3" in w for w in plan.warnings
    )
    # When CloneEnvironment copies them
    clone_environment(aws["mwaa"], aws["s3"], plan, sleep=lambda _: None)
    # Then the target's copy names 2.10.3's, the rest as the source has it, and the source is unchanged
    assert _body(aws["s3"], "mwaa-migrate/next/requirements.txt") == (
        b"--constraint https://raw.githubusercontent.com/apache/airflow/constraints-2.10.3/constraints-3.11.txt\n"
        b"apache-airflow-providers-snowflake==5.0.0\n"
    )
    assert _body(aws["s3"], "requirements.txt") == CONSTRAINED


def test_a_rewritten_copy_is_not_written_again_by_a_rerun(aws):
    _constrained_source(aws)
    plan = _plan(aws)
    rewrites = {"requirements": requirements_rewrite("2.10.3", "2.10.3")}
    first = copy_target_files(
        aws["s3"], source_bucket=BUCKET, target_bucket=BUCKET, files=plan.target.files, rewrites=rewrites
    )
    again = copy_target_files(
        aws["s3"], source_bucket=BUCKET, target_bucket=BUCKET, files=plan.target.files, rewrites=rewrites
    )
    assert [f.copied for f in first.files] == [True]
    assert [f.copied for f in again.files] == [False]
    assert again.files[0].target_version_id == first.files[0].target_version_id
    # A copy made for another version is made again.
    other = {"requirements": requirements_rewrite("2.11.0", "3.0.6")}
    third = copy_target_files(
        aws["s3"], source_bucket=BUCKET, target_bucket=BUCKET, files=plan.target.files, rewrites=other
    )
    assert [f.copied for f in third.files] == [True]
    assert (
        _body(aws["s3"], "mwaa-migrate/next/requirements.txt")
        == b"apache-airflow-providers-snowflake==5.0.0\n"
    )
