"""Step 1: validate the request against AWS and work out the whole migration, changing nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mwaa_migrate.environment_request import SOURCE_TAG, build_create_request, source_settings
from mwaa_migrate.environment_status import get_environment
from mwaa_migrate.errors import InvalidMigrationRequest, MigrationConflict, from_client_error
from mwaa_migrate.grants import migration_policies, role_name
from mwaa_migrate.metadata_dags import EXPORT_DAG, IMPORT_DAG, deployment
from mwaa_migrate.models import MigrationPlan, MigrationRequest, SourceEnvironment, TargetEnvironment
from mwaa_migrate.versions import version_path

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_mwaa import MWAAClient
    from mypy_boto3_s3 import S3Client


def _arn_parts(arn: str) -> tuple[str, str, str]:
    """Partition, region and account of an ARN."""
    parts = arn.split(":")
    return parts[1], parts[3], parts[4]


def _logs_enabled(environment: dict[str, Any], module: str) -> bool:
    return bool(environment.get("LoggingConfiguration", {}).get(module, {}).get("Enabled"))


def _require_role(iam: IAMClient, role_arn: str) -> None:
    try:
        iam.get_role(RoleName=role_name(role_arn))
    except iam.exceptions.NoSuchEntityException:
        raise InvalidMigrationRequest(f"targetExecutionRoleArn: role {role_arn} does not exist") from None
    except ClientError as error:
        raise from_client_error(error, f"reading role {role_arn}") from None


def _require_bucket(s3: S3Client, bucket: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"404", "NoSuchBucket", "NotFound"}:
            raise InvalidMigrationRequest(f"migrationBucket: bucket {bucket} does not exist") from None
        raise from_client_error(error, f"checking bucket {bucket}") from None


def plan_migration(
    request: MigrationRequest,
    *,
    mwaa: MWAAClient,
    iam: IAMClient,
    s3: S3Client,
    default_bucket: str,
    policy_name_prefix: str,
    kms_key_arn: str,
) -> MigrationPlan:
    source_name = request.source_environment_name
    target_name = request.target_environment_name

    source = get_environment(mwaa, source_name)
    if source is None:
        raise InvalidMigrationRequest(f"sourceEnvironmentName: environment {source_name} does not exist")
    if source["Status"] != "AVAILABLE":
        raise InvalidMigrationRequest(
            f"sourceEnvironmentName: environment {source_name} is {source['Status']}, it must be AVAILABLE"
        )
    try:
        path = version_path(source["AirflowVersion"], request.target_airflow_version)
    except ValueError as error:
        raise InvalidMigrationRequest(f"targetAirflowVersion: {error}") from None

    target_role = request.target_execution_role_arn or source["ExecutionRoleArn"]
    if request.target_execution_role_arn:
        _require_role(iam, target_role)
    bucket = request.migration_bucket or default_bucket
    _require_bucket(s3, bucket)

    create_request, warnings = build_create_request(
        source, name=target_name, airflow_version=path.create_version, execution_role_arn=target_role
    )

    existing = get_environment(mwaa, target_name)
    if existing is not None:
        origin = existing.get("Tags", {}).get(SOURCE_TAG)
        if origin != source_name:
            raise MigrationConflict(
                f"targetEnvironmentName: environment {target_name} already exists and was not created "
                f"by a migration from {source_name}"
            )
        if existing.get("AirflowVersion") not in {path.create_version, path.final_version}:
            raise MigrationConflict(
                f"targetEnvironmentName: environment {target_name} exists on Airflow "
                f"{existing.get('AirflowVersion')}, not {path.create_version} or {path.final_version}"
            )
        if existing.get("ExecutionRoleArn") != target_role:
            raise MigrationConflict(
                f"targetEnvironmentName: environment {target_name} exists with execution role "
                f"{existing.get('ExecutionRoleArn')}, not {target_role}"
            )
        warnings.append(f"environment {target_name} exists from an earlier run of this migration: reused")

    partition, region, account_id = _arn_parts(source["Arn"])
    migration_id = f"{source_name}-to-{target_name}"
    prefix = f"migrations/{source_name}/{target_name}"
    policies = migration_policies(
        prefix=policy_name_prefix,
        migration_id=migration_id,
        partition=partition,
        region=region,
        account_id=account_id,
        bucket=bucket,
        object_prefix=prefix,
        source_environment=source_name,
        source_role_arn=source["ExecutionRoleArn"],
        target_role_arn=target_role,
        kms_key_arn=kms_key_arn,
    )
    source_bucket = source["SourceBucketArn"].split(":::", 1)[-1]
    return MigrationPlan(
        migration_id=migration_id,
        source=SourceEnvironment(
            name=source_name,
            arn=source["Arn"],
            airflow_version=source["AirflowVersion"],
            execution_role_arn=source["ExecutionRoleArn"],
            source_bucket_arn=source["SourceBucketArn"],
            dag_s3_path=source["DagS3Path"],
            task_logs_enabled=_logs_enabled(source, "TaskLogs"),
            settings=source_settings(source),
        ),
        target=TargetEnvironment(
            name=target_name,
            execution_role_arn=target_role,
            source_bucket_arn=create_request["SourceBucketArn"],
            dag_s3_path=create_request["DagS3Path"],
            create_version=path.create_version,
            upgrade_to=path.upgrade_to,
            final_version=path.final_version,
            create_request=create_request,
            already_exists=existing is not None,
        ),
        bucket=bucket,
        prefix=prefix,
        policies=policies,
        export_dag=deployment(EXPORT_DAG, source_name, source_bucket, source["DagS3Path"]),
        import_dag=deployment(
            IMPORT_DAG,
            target_name,
            create_request["SourceBucketArn"].split(":::", 1)[-1],
            create_request["DagS3Path"],
        ),
        log_days=request.log_days,
        kms_key_arn=kms_key_arn,
        log_groups=request.log_groups,
        failed_tasks_only=request.failed_tasks_only,
        dry_run=request.dry_run,
        warnings=warnings,
    )
