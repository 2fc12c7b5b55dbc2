"""A self-managed Apache Airflow source: its request, and the dry-run plan made from it without
GetEnvironment. Every refusal comes before anything changes in AWS."""

from __future__ import annotations

import copy
import io
import zipfile
from typing import Any

import pytest

from mwaa_migrate.environment.environment_request import PAUSED_AT_CREATION, SOURCE_TAG
from mwaa_migrate.environment.target_settings import request_problems
from mwaa_migrate.errors import InvalidMigrationRequest, MigrationConflict
from mwaa_migrate.models import MigrationPlan, MigrationRequest, SourceEnvironment, parse_model
from mwaa_migrate.run.plan import plan_migration
from tests.unit.test_plan import OLD_STYLE_DAG, _objects, aws, stack_settings  # noqa: F401 (a fixture)

ACCOUNT = "123456789012"
TARGET_ROLE = f"arn:aws:iam::{ACCOUNT}:role/mwaa-next"
SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:mwaa-migrate/onprem-AbCdEf"
SEALING_KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
NETWORK = {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]}
REQUIREMENTS = (
    b"--constraint https://raw.githubusercontent.com/apache/airflow/constraints-2.8.4/constraints-3.11.txt\n"
    b"apache-airflow-providers-postgres\n"
)
REQUEST: dict[str, Any] = {
    "source": {
        "kind": "self_managed",
        "name": "onprem",
        "airflowVersion": "2.8.4",
        "dagsUri": "s3://airflow-onprem/dags/",
        "pluginsUri": "s3://airflow-onprem/plugins.zip",
        "requirementsUri": "s3://airflow-onprem/requirements.txt",
        "access": {
            "mode": "reached",
            "restApiUrl": "https://airflow.example.com/api/v1",
            "credentialsSecretArn": SECRET_ARN,
        },
    },
    "targetEnvironmentName": "next",
    "targetAirflowVersion": "2.10.3",
    "dryRun": True,
    "targetSettings": {
        "ExecutionRoleArn": TARGET_ROLE,
        "SourceBucketArn": "arn:aws:s3:::airflow-next",
        "NetworkConfiguration": NETWORK,
        "EnvironmentClass": "mw1.medium",
        "AirflowConfigurationOptions": {"core.default_timezone": "utc"},
    },
}


def _plugins() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as plugins:
        plugins.writestr("hooks/warehouse.py", "from airflow.hooks.base import BaseHook\n")
    return archive.getvalue()


@pytest.fixture
def onprem(aws: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    """The test_plan world plus a self-managed Airflow's files and the target's own bucket."""
    s3 = aws["s3"]
    s3.create_bucket(Bucket="airflow-onprem")
    s3.put_object(Bucket="airflow-onprem", Key="dags/etl.py", Body=b"from airflow import DAG\n")
    s3.put_object(Bucket="airflow-onprem", Key="plugins.zip", Body=_plugins())
    s3.put_object(Bucket="airflow-onprem", Key="requirements.txt", Body=REQUIREMENTS)
    s3.create_bucket(Bucket="airflow-next")
    s3.put_bucket_versioning(Bucket="airflow-next", VersioningConfiguration={"Status": "Enabled"})
    return aws


def _request(**changes: Any) -> dict[str, Any]:
    request = copy.deepcopy(REQUEST)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        holder = request
        for parent in parents:
            holder = holder[parent]
        if value is None:
            holder.pop(leaf, None)
        else:
            holder[leaf] = value
    return request


def _plan(
    world: dict[str, Any], request: dict[str, Any] | None = None, *, sealing_key_arn: str | None = None
) -> MigrationPlan:
    return plan_migration(
        parse_model(MigrationRequest, request or REQUEST),
        mwaa=world["mwaa"],
        iam=world["iam"],
        s3=world["s3"],
        stack=stack_settings(SEALING_KEY_ARN=sealing_key_arn),
    )


def _refusal(request: dict[str, Any]) -> str:
    with pytest.raises(InvalidMigrationRequest) as refused:
        parse_model(MigrationRequest, request)
    return str(refused.value)


# ---------------------------------------------------------------------------- the plan


def test_a_self_managed_dry_run_plans_the_target_from_its_own_settings(onprem):
    plan = _plan(onprem)

    request = plan.target.create_request
    assert request["Name"] == "next"
    assert request["AirflowVersion"] == "2.10.3"
    assert request["ExecutionRoleArn"] == TARGET_ROLE
    assert request["SourceBucketArn"] == "arn:aws:s3:::airflow-next"
    assert request["NetworkConfiguration"] == NETWORK
    assert request["EnvironmentClass"] == "mw1.medium"
    assert request["Tags"][SOURCE_TAG] == "onprem"
    # The option values stay out of the plan; the pipeline's own (the DAGs start paused) is shown.
    assert request["AirflowConfigurationOptions"] == {
        "core.default_timezone": "****",
        PAUSED_AT_CREATION: "True",
    }
    assert request_problems(request) == []  # a whole CreateEnvironment request by botocore's model


def test_a_self_managed_plan_copies_the_sources_files_to_the_targets_bucket(onprem):
    plan = _plan(onprem)

    assert plan.target.create_request["DagS3Path"] == "mwaa-migrate/next/dags"
    assert plan.target.create_request["PluginsS3Path"] == "mwaa-migrate/next/plugins.zip"
    assert plan.target.create_request["RequirementsS3Path"] == "mwaa-migrate/next/requirements.txt"
    assert [(f.kind, f.source_key, f.target_key) for f in plan.target.files] == [
        ("dags", "dags/", "mwaa-migrate/next/dags/"),
        ("plugins", "plugins.zip", "mwaa-migrate/next/plugins.zip"),
        ("requirements", "requirements.txt", "mwaa-migrate/next/requirements.txt"),
    ]
    assert (plan.source.source_bucket_arn, plan.source.dag_s3_path) == ("arn:aws:s3:::airflow-onprem", "dags")
    assert (plan.export_dag.bucket, plan.export_dag.folder) == ("airflow-onprem", "dags")
    assert (plan.import_dag.bucket, plan.import_dag.folder) == ("airflow-next", "mwaa-migrate/next/dags")


def test_a_self_managed_plan_rewrites_the_requirements_constraint(onprem):
    plan = _plan(onprem)

    assert any(w.startswith("requirements.txt:") and "constraints-2.10.3" in w for w in plan.warnings), (
        plan.warnings
    )


def test_a_self_managed_plan_scans_the_dag_files_for_an_airflow_3_target(onprem):
    onprem["s3"].put_object(Bucket="airflow-onprem", Key="dags/team/old.py", Body=OLD_STYLE_DAG)

    plan = _plan(onprem, _request(targetAirflowVersion="3.0.6"))

    compatibility = plan.dag_compatibility
    assert compatibility is not None
    assert (compatibility.checked, compatibility.files_scanned) == ("static", 3)  # 2 DAG files, 1 plugin
    assert ("team/old.py", 5, "AIR301") in {(f.file, f.line, f.rule) for f in compatibility.findings}


def test_a_self_managed_plan_says_plainly_what_it_does_not_do(onprem):
    plan = _plan(onprem)

    assert plan.source.kind == "self_managed"
    assert (plan.source.arn, plan.source.execution_role_arn, plan.source.task_logs_enabled) == (
        None,
        None,
        False,
    )
    assert plan.log_groups == []
    assert any(w.startswith("task logs are not copied") for w in plan.warnings)
    assert any(w.startswith("no source execution role is changed") for w in plan.warnings)
    assert any(
        "runs the export on it through its REST API (https://airflow.example.com" in w for w in plan.warnings
    )
    # Only the target's role would get a policy: the source has none.
    assert [(p.role_name, p.policy_name.rsplit("-", 1)[-1]) for p in plan.policies] == [
        ("mwaa-next", "import")
    ]
    assert plan.to_event()["source"]["kind"] == "self_managed"


def test_a_self_managed_plan_changes_nothing_and_describes_no_source(onprem):
    before = _objects(onprem["s3"])

    plan = _plan(onprem)

    assert plan.dry_run is True
    assert plan.target.configuration is None
    assert _objects(onprem["s3"]) == before
    # The only MWAA call: is the target's name free?
    assert onprem["emulator"].calls == [("GetEnvironment", "next")]
    assert onprem["iam"].list_role_policies(RoleName="mwaa-next")["PolicyNames"] == []


def test_an_older_plans_source_still_parses_as_an_mwaa_environment():
    source = SourceEnvironment.model_validate(
        {
            "name": "analytics",
            "arn": "arn:aws:airflow:us-east-1:123456789012:environment/analytics",
            "airflowVersion": "2.7.2",
            "executionRoleArn": "arn:aws:iam::123456789012:role/mwaa-analytics",
            "sourceBucketArn": "arn:aws:s3:::airflow-analytics",
            "dagS3Path": "dags",
            "taskLogsEnabled": True,
        }
    )
    assert source.kind == "mwaa"


# ---------------------------------------------------------------------------- the request's refusals


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"targetSettings__NetworkConfiguration": None}, "targetSettings: NetworkConfiguration: missing"),
        ({"targetSettings__ExecutionRoleArn": None}, "targetSettings: ExecutionRoleArn: missing"),
        ({"targetSettings": None}, "targetSettings: ExecutionRoleArn: missing"),
        ({"targetSettings__MaxWorkers": "5"}, "Invalid type for parameter MaxWorkers"),
        ({"targetSettings__DagS3Path": "dags"}, "DagS3Path: set by the pipeline"),
        (
            {"targetSettings__SourceBucketArn": "arn:aws:s3:::my-bucket"},
            "SourceBucketArn: must be an S3 bucket ARN",
        ),
        (
            {"targetSettings__AirflowConfigurationOptions": {"smtp.smtp_password": "hunter2-secret"}},
            "AirflowConfigurationOptions.smtp.smtp_password: names a secret",
        ),
        ({"source__airflowVersion": "2.6.3"}, "source.airflowVersion: the export supports self-managed"),
        ({"source__airflowVersion": "3.0.6"}, "Airflow 3 lets no task read the metadata database"),
        ({"source__airflowVersion": "2.12.0"}, "not 2.12.0"),
        ({"source__metadataDatabase": "mysql"}, "source.metadataDatabase: the export reads postgresql"),
        (
            {"source__pluginsUri": "s3://airflow-other/plugins.zip"},
            "pluginsUri: must be in the DAG folder's bucket",
        ),
        ({"source__dagsUri": "s3://my-dags/dags/"}, "source.dagsUri: String should match pattern"),
        (
            {"source__access__restApiUrl": "https://admin:hunter2@airflow.example.com/api/v1"},
            "source.access.reached.restApiUrl",
        ),
        ({"source__access": {"mode": "over_the_phone"}}, "source.access"),
        ({"sourceEnvironmentName": "analytics"}, "name the source in exactly one of sourceEnvironmentName"),
        ({"targetExecutionRoleArn": TARGET_ROLE}, "targetExecutionRoleArn: a self-managed source's target"),
        ({"targetBucket": "airflow-next"}, "targetBucket: a self-managed source's target names it"),
        ({"logGroups": ["Task"]}, "logGroups: a self-managed source has no CloudWatch log groups"),
        ({"source__name": "next"}, "targetEnvironmentName must differ from source.name"),
    ],
)
def test_a_self_managed_request_that_cannot_work_is_refused_naming_the_field(changes, said):
    assert said in _refusal(_request(**changes))


def test_neither_source_is_refused():
    assert "exactly one of sourceEnvironmentName" in _refusal(_request(source=None))


HANDS_ON = {"mode": "hands_on", "exportDeadlineHours": 3}


def test_a_hands_on_plan_hands_the_export_dag_over_through_the_migration_bucket(onprem):
    plan = _plan(onprem, _request(dryRun=False, source__access=HANDS_ON), sealing_key_arn=SEALING_KEY_ARN)

    # Nothing reaches the source: its DAG files wait in the migration bucket for its operator.
    assert plan.webserver.source.transport == plan.export_dag.transport == "hands_on"
    assert plan.export_dag.airflow_api is None
    assert (plan.export_dag.bucket, plan.export_dag.folder) == (plan.bucket, f"{plan.prefix}/hands-on/dags")
    assert plan.hands_on_deadline_seconds == 3 * 3600
    # Sealed with the RSA key, as reached: the source holds no AWS credentials either way.
    assert plan.kms_key_arn == SEALING_KEY_ARN
    assert any("run by hand (hands_on)" in warning for warning in plan.warnings)
    assert any("mwaa-migrate hands-on prints the steps" in warning for warning in plan.warnings)


def test_a_reached_plan_waits_for_no_hand_over(onprem):
    plan = _plan(onprem, _request(dryRun=False), sealing_key_arn=SEALING_KEY_ARN)

    assert plan.hands_on_deadline_seconds == 0


@pytest.mark.parametrize(
    ("hours", "said"),
    [(0, "greater than or equal to 1"), (13, "less than or equal to 12"), ("soon", "valid integer")],
)
def test_a_hands_on_deadline_beyond_what_the_presigned_forms_last_is_refused(hours, said):
    access = {"mode": "hands_on", "exportDeadlineHours": hours}
    refusal = _refusal(_request(dryRun=False, source__access=access))

    assert "source.access.hands_on.exportDeadlineHours" in refusal
    assert said in refusal


def test_a_reached_run_is_a_migration_the_pipeline_runs():
    request = parse_model(MigrationRequest, _request(dryRun=False))

    assert (request.dry_run, request.source and request.source.access.mode) == (False, "reached")


def test_a_reached_run_on_a_stack_without_a_sealing_key_is_refused_at_the_plan(onprem):
    with pytest.raises(InvalidMigrationRequest, match="source: this stack has no sealing key"):
        _plan(onprem, _request(dryRun=False))


def test_a_reached_plan_reaches_the_source_by_its_rest_api_and_seals_with_the_rsa_key(onprem):
    plan = _plan(onprem, _request(dryRun=False), sealing_key_arn=SEALING_KEY_ARN)

    assert plan.kms_key_arn == SEALING_KEY_ARN
    assert plan.webserver.source.transport == plan.export_dag.transport == "airflow_api"
    assert plan.export_dag.airflow_api is not None
    assert plan.export_dag.airflow_api.to_event() == {
        "restApiUrl": "https://airflow.example.com/api/v1",
        "credentialsSecretArn": REQUEST["source"]["access"]["credentialsSecretArn"],
    }
    assert (plan.export_dag.bucket, plan.export_dag.folder) == ("airflow-onprem", "dags")
    [import_policy] = plan.policies
    [decrypt] = [s for s in import_policy.document["Statement"] if s["Sid"] == "OpenMigrationExport"]
    assert decrypt["Resource"] == SEALING_KEY_ARN
    assert decrypt["Condition"] == {"StringEquals": {"kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}}
    # The option values' object is still sealed with the stack's migration key.
    assert plan.target.configuration is not None


def test_a_secret_the_stack_may_not_read_is_refused():
    other = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/airflow-AbCdEf"

    said = _refusal(_request(source__access__credentialsSecretArn=other))

    assert "credentialsSecretArn: the secret's name must start with mwaa-migrate/" in said


def test_a_refusal_never_repeats_a_secret_value():
    said = _refusal(
        _request(
            targetSettings__AirflowConfigurationOptions={"smtp.smtp_password": "hunter2-secret"},
            source__access__restApiUrl="https://admin:hunter2@airflow.example.com/api/v1",
        )
    )
    assert "hunter2" not in said


def test_an_mwaa_source_request_is_unchanged():
    request = parse_model(
        MigrationRequest,
        {
            "sourceEnvironmentName": "analytics",
            "targetEnvironmentName": "next",
            "targetAirflowVersion": "2.10.3",
        },
    )
    assert (request.source, request.source_name, request.dry_run) == (None, "analytics", False)
    assert "source" not in request.to_event()


# ---------------------------------------------------------------------------- the plan's refusals


def _refused_at_the_plan(
    world: dict[str, Any], request: dict[str, Any], error: type[Exception], said: str
) -> None:
    before = _objects(world["s3"])
    with pytest.raises(error, match=said):
        _plan(world, request)
    assert _objects(world["s3"]) == before
    assert not [call for call in world["emulator"].calls if call[0] != "GetEnvironment"]
    assert ("GetEnvironment", "onprem") not in world["emulator"].calls
    assert world["iam"].list_role_policies(RoleName="mwaa-next")["PolicyNames"] == []


def test_a_missing_dag_bucket_is_refused_at_the_plan(onprem):
    _refused_at_the_plan(
        onprem,
        _request(
            source__dagsUri="s3://airflow-nowhere/dags/",
            source__pluginsUri=None,
            source__requirementsUri=None,
        ),
        InvalidMigrationRequest,
        "source.dagsUri: bucket airflow-nowhere does not exist",
    )


def test_a_missing_requirements_file_is_refused_at_the_plan(onprem):
    _refused_at_the_plan(
        onprem,
        _request(source__requirementsUri="s3://airflow-onprem/missing.txt"),
        MigrationConflict,
        r"source\.requirementsUri s3://airflow-onprem/missing\.txt does not exist",
    )


def test_a_target_bucket_without_versioning_is_refused_at_the_plan(onprem):
    onprem["s3"].create_bucket(Bucket="airflow-unversioned")
    _refused_at_the_plan(
        onprem,
        _request(targetSettings__SourceBucketArn="arn:aws:s3:::airflow-unversioned"),
        InvalidMigrationRequest,
        "targetSettings.SourceBucketArn: bucket airflow-unversioned must have versioning enabled",
    )


def test_a_missing_target_role_is_refused_at_the_plan(onprem):
    _refused_at_the_plan(
        onprem,
        _request(targetSettings__ExecutionRoleArn="arn:aws:iam::123456789012:role/mwaa-ghost"),
        InvalidMigrationRequest,
        "targetSettings.ExecutionRoleArn: role .*mwaa-ghost does not exist",
    )


def test_a_target_dag_folder_inside_the_sources_is_refused_at_the_plan(onprem):
    onprem["s3"].put_bucket_versioning(Bucket="airflow-onprem", VersioningConfiguration={"Status": "Enabled"})
    _refused_at_the_plan(
        onprem,
        _request(
            source__dagsUri="s3://airflow-onprem/",
            source__pluginsUri=None,
            source__requirementsUri=None,
            targetSettings__SourceBucketArn="arn:aws:s3:::airflow-onprem",
        ),
        InvalidMigrationRequest,
        "targetSettings.SourceBucketArn: the target's DAG folder",
    )


def test_a_downgrade_from_a_self_managed_source_is_refused_at_the_plan(onprem):
    _refused_at_the_plan(
        onprem,
        _request(source__airflowVersion="2.10.5"),
        InvalidMigrationRequest,
        "targetAirflowVersion: .* older than the source's 2.10.5",
    )
