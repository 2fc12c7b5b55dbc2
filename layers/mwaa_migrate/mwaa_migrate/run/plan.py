"""Validate the request against AWS and work out the whole migration, changing nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mwaa_migrate.environment.dag_compatibility import enforce as enforce_dag_compatibility
from mwaa_migrate.environment.dag_compatibility import scan_dag_files
from mwaa_migrate.environment.dag_compatibility import warning_lines as dag_warning_lines
from mwaa_migrate.environment.environment_request import SOURCE_TAG, build_create_request, source_settings
from mwaa_migrate.environment.environment_status import get_environment
from mwaa_migrate.environment.execution_roles import require_allowed_role, require_execution_role
from mwaa_migrate.environment.requirements_file import rewrite_constraints
from mwaa_migrate.environment.secret_options import store_configuration
from mwaa_migrate.environment.target_files import (
    FilesPlan,
    bucket_name,
    plan_target_files,
    plugin_sources,
    point_request_at_copy,
    read_dag_sources,
    read_source_file,
    unpaused_upon_creation,
)
from mwaa_migrate.environment.target_settings import SELF_MANAGED_SETTINGS, apply_target_settings
from mwaa_migrate.environment.versions import UnsupportedSource, VersionPath, version_path
from mwaa_migrate.environment.webserver_transport import choose_route, choose_routes
from mwaa_migrate.errors import InvalidMigrationRequest, MigrationConflict, from_client_error
from mwaa_migrate.metadata.metadata_dags import (
    EXPORT_DAG,
    IMPORT_DAG,
    deployment,
    read_cutover_record,
)
from mwaa_migrate.migration_bucket import (
    hands_on_dags_folder,
    migration_prefix,
    read_json_if_any,
    reports_prefix,
    source_migrations_prefix,
)
from mwaa_migrate.models import (
    AirflowApi,
    CutoverSettings,
    DagCompatibility,
    DagDeployment,
    HandsOnAccess,
    MigrationPlan,
    MigrationRequest,
    ReachedAccess,
    SelfManagedSource,
    SourceEnvironment,
    TargetEnvironment,
    WebserverRoute,
    WebserverRoutes,
    WebserverTransportKind,
    s3_parts,
)
from mwaa_migrate.redaction import shown_options
from mwaa_migrate.run.grants import migration_policies
from mwaa_migrate.run.migration_names import migration_id
from mwaa_migrate.settings import Settings

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


def _require_bucket(s3: S3Client, bucket: str, *, field: str) -> None:
    """The bucket exists; a missing one is the request's `field` at fault."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"404", "NoSuchBucket", "NotFound"}:
            raise InvalidMigrationRequest(f"{field}: bucket {bucket} does not exist") from None
        raise from_client_error(error, f"checking bucket {bucket}") from None


def _keys(s3: S3Client, bucket: str, prefix: str, **arguments: Any) -> tuple[list[str], list[str]]:
    """(keys, common prefixes) under a prefix, every page."""
    keys: list[str] = []
    prefixes: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, **arguments):
            keys.extend(item["Key"] for item in page.get("Contents", []))
            prefixes.extend(item["Prefix"] for item in page.get("CommonPrefixes", []))
    except ClientError as error:
        raise from_client_error(error, f"listing s3://{bucket}/{prefix}") from None
    return keys, prefixes


def _succeeded_report(s3: S3Client, bucket: str, prefix: str) -> tuple[str, dict[str, Any]] | None:
    """The newest report of a succeeded run of this migration: (its URI, the report)."""
    keys, _ = _keys(s3, bucket, reports_prefix(prefix))
    found: list[tuple[str, str, dict[str, Any]]] = []
    for key in keys:
        if not key.endswith(".json"):
            continue
        report = read_json_if_any(s3, bucket, key)
        if report is not None and report.get("status") == "SUCCEEDED":
            found.append((str(report.get("finishedAt", "")), key, report))
    if not found:
        return None
    _, key, report = max(found)
    return f"s3://{bucket}/{key}", report


def _live_since(record: dict[str, Any]) -> str:
    for entry in reversed(record.get("history") or []):
        if isinstance(entry, dict) and entry.get("state") == "live":
            return str(entry.get("at", "unknown"))
    return str(record.get("updated_at") or record.get("updatedAt") or "unknown")


def _after(finished_at: str, since: str) -> bool:
    """Whether a report's finishedAt is not before the time the record went live (unreadable: yes)."""
    try:
        finished = datetime.fromisoformat(finished_at.replace("Z", "+00:00"))
        live = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        return True
    return finished >= live


def _finished_migration(s3: S3Client, bucket: str, prefix: str, target_name: str) -> tuple[bool, list[str]]:
    """Refuse a re-run of a migration that finished with its target live. Returns whether the run
    resumes a migration that went live and stopped before it finished (a crash), and warnings."""
    record = read_cutover_record(s3, bucket, prefix)
    state = record.get("state") if record is not None else None
    if state == "rolled_back":
        return False, [
            f"an earlier run of this migration went live and was rolled back "
            f"(s3://{bucket}/{prefix}/cutover/record.json): it is migrated again"
        ]
    if record is not None and state != "live":
        return False, []
    report = _succeeded_report(s3, bucket, prefix)
    since = _live_since(record) if record is not None else ""
    if report is not None and (record is None or _after(str(report[1].get("finishedAt", "")), since)):
        raise MigrationConflict(
            f"already migrated: the target {target_name} runs the DAGs since "
            f"{since or report[1].get('finishedAt', 'unknown')}; report {report[0]}. "
            "Nothing to do (`mwaa-migrate rollback` reverses the cutover)"
        )
    if record is None:
        return False, []
    return True, [
        f"the target {target_name} runs the DAGs since {since} but the run that put it live did not "
        "finish: this run resumes after the cutover (no metadata is copied again)"
    ]


def _refuse_other_cutovers(s3: S3Client, bucket: str, source_name: str, target_name: str) -> None:
    """Another migration of the same source that left the source paused, or went live, stops this one."""
    _, prefixes = _keys(s3, bucket, source_migrations_prefix(source_name), Delimiter="/")
    for other in prefixes:
        other_target = other.rstrip("/").rsplit("/", 1)[-1]
        if other_target == target_name:
            continue
        record = read_cutover_record(s3, bucket, other.rstrip("/"))
        state = record.get("state") if record else None
        where = f"s3://{bucket}/{other}cutover/record.json"
        if state == "paused":
            dags = ", ".join(str(dag) for dag in record.get("active_dags", [])) if record else ""
            raise MigrationConflict(
                f"sourceEnvironmentName: the migration of {source_name} to {other_target} paused the "
                f"source's DAGs ({dags or 'none recorded'}) and has not finished ({where}): finish it, "
                "or let its failure path unpause them, before migrating the source again"
            )
        if state == "live" and record is not None:
            raise MigrationConflict(
                f"sourceEnvironmentName: {source_name} was already migrated to {other_target}, which runs "
                f"its DAGs since {_live_since(record)} ({where}): roll that migration back first "
                "(`mwaa-migrate rollback`) to migrate the source elsewhere"
            )


def _failure_of(environment: dict[str, Any]) -> str:
    error = environment.get("LastUpdate", {}).get("Error", {})
    return (
        f"{error.get('ErrorCode', 'Unknown')}: {error.get('ErrorMessage', '')}"
        if error
        else "no error detail"
    )


def _existing_target(
    existing: dict[str, Any],
    *,
    request: MigrationRequest,
    path: VersionPath,
    target_role: str,
    create_request: dict[str, Any],
) -> tuple[bool, list[str]]:
    """Whether an existing target is replaced (True) or reused (False), with the plan's warnings;
    raises MigrationConflict for a target this migration may not use."""
    source_name = request.source_name
    target_name = request.target_environment_name
    status = existing.get("Status")
    ours = existing.get("Tags", {}).get(SOURCE_TAG) == source_name
    if status in {"CREATE_FAILED", "DELETING"}:
        if not ours:
            raise MigrationConflict(
                f"targetEnvironmentName: environment {target_name} exists in {status} and was not created "
                f"by a migration from {source_name}: delete it (aws mwaa delete-environment --name "
                f"{target_name}) or choose another targetEnvironmentName"
            )
        if status == "CREATE_FAILED" and not request.replace_failed_target:
            raise MigrationConflict(
                f"targetEnvironmentName: environment {target_name} from an earlier run of this migration "
                f"is CREATE_FAILED ({_failure_of(existing)}) and replaceFailedTarget is false: delete it, "
                "or run again with replaceFailedTarget true"
            )
        if status == "CREATE_FAILED":
            return True, [
                f"will replace environment {target_name}: it is CREATE_FAILED from an earlier run "
                f"({_failure_of(existing)}); CloneEnvironment deletes it and creates it again"
            ]
        return True, [
            f"environment {target_name} is being deleted: CloneEnvironment creates it again once it is gone"
        ]
    if not ours:
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
    reads = (existing.get("SourceBucketArn"), str(existing.get("DagS3Path", "")).strip("/"))
    planned = (create_request["SourceBucketArn"], str(create_request["DagS3Path"]).strip("/"))
    if reads != planned:
        # An environment created before targets had their own copy parses the source's own folder.
        raise MigrationConflict(
            f"targetEnvironmentName: environment {target_name} exists from an earlier run but reads its "
            f"DAGs from {reads[0]} {reads[1]}, not its own copy {planned[0]} {planned[1]}: delete it "
            "(it runs none of the DAGs yet) or choose another targetEnvironmentName"
        )
    return False, [f"environment {target_name} exists from an earlier run of this migration: reused"]


def _preflight(
    s3: S3Client, source: dict[str, Any], files: FilesPlan, path: VersionPath, request: MigrationRequest
) -> tuple[DagCompatibility, list[str]]:
    """Will the source's files run on the target's Airflow? The requirements' constraint, the DAG
    files' scan (refused here under onIncompatibleDags "fail"), DAGs that would start unpaused."""
    warnings: list[str] = []
    source_bucket = source["SourceBucketArn"].split(":::", 1)[-1]
    dag_sources = read_dag_sources(s3, source_bucket, source["DagS3Path"])
    scanned = dict(dag_sources)
    for item in files.files:
        if item.kind == "requirements":
            text = read_source_file(s3, source_bucket, item).decode("utf-8", errors="replace")
            rewrite = rewrite_constraints(
                text, create_version=path.create_version, final_version=path.final_version
            )
            warnings.extend(f"requirements.txt: {change}" for change in rewrite.changes)
        elif item.kind == "plugins":
            plugins = plugin_sources(read_source_file(s3, source_bucket, item))
            scanned.update({f"plugins.zip/{name}": text for name, text in plugins.items()})
    compatibility = scan_dag_files(scanned, target_version=path.final_version)
    warnings.extend(dag_warning_lines(compatibility))
    # "fail" refuses here, before anything changes (and again once the target exists).
    enforce_dag_compatibility(compatibility, request.on_incompatible_dags)
    unpaused = unpaused_upon_creation(dag_sources, source["DagS3Path"])
    if unpaused:
        warnings.append(
            "these DAG files set is_paused_upon_creation=False: their DAGs would start unpaused on the "
            f"target before the cutover: {', '.join(unpaused)}"
        )
    return compatibility, warnings


# A self-managed source's files: the request's fields, by the path field they become.
_SELF_MANAGED_FILE_FIELDS = {
    "PluginsS3Path": "source.pluginsUri",
    "RequirementsS3Path": "source.requirementsUri",
    "StartupScriptS3Path": "source.startupScriptUri",
}


def _self_managed_description(s3: S3Client, source: SelfManagedSource, *, partition: str) -> dict[str, Any]:
    """A self-managed source as GetEnvironment would describe an MWAA one (what the plan reads of it):
    its name and version, and its files' bucket and keys. Checks the DAG folder's bucket is there."""
    bucket, dag_folder = s3_parts(source.dags_uri)
    _require_bucket(s3, bucket, field="source.dagsUri")
    description: dict[str, Any] = {
        "Name": source.name,
        "AirflowVersion": source.airflow_version,
        "SourceBucketArn": f"arn:{partition}:s3:::{bucket}",
        "DagS3Path": dag_folder.strip("/"),
    }
    paths = {
        "PluginsS3Path": source.plugins_uri,
        "RequirementsS3Path": source.requirements_uri,
        "StartupScriptS3Path": source.startup_script_uri,
    }
    description.update({field: s3_parts(uri)[1] for field, uri in paths.items() if uri})
    return description


def _self_managed_warnings(source: SelfManagedSource) -> list[str]:
    """What a self-managed source's plan says plainly: how its export runs, and what this pipeline
    does not do for it."""
    if isinstance(source.access, ReachedAccess):
        how = [
            f"{source.name} is a self-managed Apache Airflow {source.airflow_version}: the pipeline runs "
            f"the export on it through its REST API ({source.access.rest_api_url}, credentials in "
            "Secrets Manager), pausing and following it as it does an MWAA environment's",
            f"the export DAG's two files are written to {source.dags_uri}: your Airflow must read its DAG "
            "folder from there (or copy them into its dags/ folder: the trigger waits until they parse)",
            "the export needs no AWS credentials on your Airflow: it uploads through presigned URLs for "
            "this migration's prefix only, and seals its data keys with the stack's RSA key, which only "
            "the target's role may use",
        ]
    else:
        how = [
            f"{source.name} is a self-managed Apache Airflow {source.airflow_version} run by hand "
            "(hands_on): the pipeline writes the export DAG's files and each phase's conf to the "
            "migration bucket and waits; you copy the files into your Airflow's dags/ folder and trigger "
            "the export with that conf (mwaa-migrate hands-on prints the steps), once for the bulk and "
            "once for the cutover; the export's manifest landing in the bucket ends each wait",
            f"each wait lasts at most {source.access.export_deadline_hours} hours (exportDeadlineHours), "
            "as do the export's presigned forms: an export started later fails before it pauses anything",
            "in the cutover the export pauses your active DAGs itself; if the migration fails after that, "
            "the pipeline cannot reach your Airflow to unpause them: the report lists the commands, and "
            "mwaa-migrate rollback --source-unpaused records that you ran them",
            "once the migration has ended, remove the export DAG's two files from your dags/ folder: the "
            "pipeline removes its own copy in the migration bucket, not yours",
            "the export needs no AWS credentials on your Airflow: it uploads through presigned URLs for "
            "this migration's prefix only, and seals its data keys with the stack's RSA key, which only "
            "the target's role may use",
        ]
    return [
        *how,
        "task logs are not copied: a self-managed source has no MWAA CloudWatch log groups to copy from",
        "no source execution role is changed: a self-managed source has none (only the target's role "
        "gets the import's policy)",
        f"the target's settings are targetSettings' own ({', '.join(SELF_MANAGED_SETTINGS)}, "
        "NetworkConfiguration ...): there is no source environment to clone them from",
    ]


def _read_source(
    request: MigrationRequest, *, mwaa: MWAAClient, s3: S3Client, partition: str
) -> dict[str, Any]:
    """The source as GetEnvironment describes it; a self-managed source (no GetEnvironment) as its
    request does, in the same shape."""
    if request.source is not None:
        return _self_managed_description(s3, request.source, partition=partition)
    source_name = request.source_name
    source = get_environment(mwaa, source_name)
    if source is None:
        raise InvalidMigrationRequest(f"sourceEnvironmentName: environment {source_name} does not exist")
    if source["Status"] != "AVAILABLE":
        raise InvalidMigrationRequest(
            f"sourceEnvironmentName: environment {source_name} is {source['Status']}, it must be AVAILABLE"
        )
    return source


@dataclass(frozen=True)
class _Roles:
    """The target's execution role, and the partition, Region and account the grants are in."""

    target: str
    partition: str
    region: str
    account_id: str


def _check_roles(
    request: MigrationRequest,
    source: dict[str, Any],
    *,
    iam: IAMClient,
    kms_key_arn: str,
    execution_role_pattern: str,
) -> _Roles:
    if request.source is None:
        target_role = request.target_execution_role_arn or source["ExecutionRoleArn"]
        partition, region, account_id = _arn_parts(source["Arn"])
        # The grants go on both roles; the target's also opens the export: an MWAA-only role.
        require_allowed_role(
            source["ExecutionRoleArn"],
            pattern=execution_role_pattern,
            account_id=account_id,
            field="sourceEnvironmentName (its execution role)",
        )
        role_field = (
            "targetExecutionRoleArn"
            if request.target_execution_role_arn
            else "targetExecutionRoleArn (the source's role)"
        )
    else:
        # No source role: the target's own, from its settings, in the stack's account and Region.
        target_role = str((request.target_settings or {})["ExecutionRoleArn"])
        partition, region, account_id = _arn_parts(kms_key_arn)
        role_field = "targetSettings.ExecutionRoleArn"
    require_execution_role(
        iam, target_role, pattern=execution_role_pattern, account_id=account_id, field=role_field
    )
    return _Roles(target=target_role, partition=partition, region=region, account_id=account_id)


def _plan_files(s3: S3Client, request: MigrationRequest, source: dict[str, Any]) -> FilesPlan:
    """The target's own copy of the source's files: in targetBucket (default: the source's bucket),
    or for a self-managed source in the target's own bucket (targetSettings.SourceBucketArn)."""
    target_name = request.target_environment_name
    if request.source is None:
        return plan_target_files(s3, source, target_name=target_name, target_bucket=request.target_bucket)
    return plan_target_files(
        s3,
        source,
        target_name=target_name,
        target_bucket=bucket_name(str((request.target_settings or {})["SourceBucketArn"])),
        target_bucket_field="targetSettings.SourceBucketArn",
        file_fields=_SELF_MANAGED_FILE_FIELDS,
    )


def _routes(
    request: MigrationRequest,
    source: dict[str, Any],
    create_request: dict[str, Any],
    *,
    functions_in_vpc: bool | None,
) -> WebserverRoutes:
    if request.source is None:
        return choose_routes(source, create_request, functions_in_vpc=functions_in_vpc)
    access = request.source.access
    source_route = (
        WebserverRoute(
            transport="airflow_api",
            reason=f"{request.source_name} is a self-managed Apache Airflow: its own REST API at "
            f"{access.rest_api_url}, with the credentials of {access.credentials_secret_arn}",
        )
        if isinstance(access, ReachedAccess)
        else WebserverRoute(
            transport="hands_on",
            reason=f"{request.source_name} is a self-managed Apache Airflow run by hand (hands_on): the "
            "pipeline does not reach it; it waits for the export you run with the files and conf it "
            "writes to the migration bucket",
        )
    )
    return WebserverRoutes(
        source=source_route,
        target=choose_route(
            field="targetEnvironmentName",
            environment_name=request.target_environment_name,
            access_mode=str(create_request.get("WebserverAccessMode") or "PRIVATE_ONLY"),
            airflow_version=str(create_request["AirflowVersion"]),
            functions_in_vpc=functions_in_vpc,
        ),
    )


def _airflow_api(source: SelfManagedSource | None) -> AirflowApi | None:
    """How the functions reach a self-managed source (reached mode): its REST API and secret."""
    if source is None or not isinstance(source.access, ReachedAccess):
        return None
    return AirflowApi(
        rest_api_url=source.access.rest_api_url, credentials_secret_arn=source.access.credentials_secret_arn
    )


def _export_deployment(
    request: MigrationRequest,
    source: dict[str, Any],
    *,
    bucket: str,
    prefix: str,
    transport: WebserverTransportKind,
) -> DagDeployment:
    """Where the export DAG goes: the source's DAG folder, or for a source run by hand (hands_on)
    the migration bucket, from which you copy its files into your dags/ folder."""
    if request.source is not None and isinstance(request.source.access, HandsOnAccess):
        return deployment(EXPORT_DAG, request.source_name, bucket, hands_on_dags_folder(prefix), "hands_on")
    return deployment(
        EXPORT_DAG,
        request.source_name,
        source["SourceBucketArn"].split(":::", 1)[-1],
        source["DagS3Path"],
        transport,
        airflow_api=_airflow_api(request.source),
    )


def _export_key(request: MigrationRequest, *, kms_key_arn: str, sealing_key_arn: str | None) -> str:
    """The key that seals the export: the stack's migration key (the source's role makes data keys
    of it), or for a self-managed source, which holds no AWS credentials, the RSA sealing key."""
    if request.source is None:
        return kms_key_arn
    if sealing_key_arn is None:
        if not request.dry_run:
            raise InvalidMigrationRequest(
                "source: this stack has no sealing key (SEALING_KEY_ARN) for a self-managed source's "
                "export: deploy the current template"
            )
        return kms_key_arn
    return sealing_key_arn


def plan_migration(
    request: MigrationRequest, *, mwaa: MWAAClient, iam: IAMClient, s3: S3Client, stack: Settings
) -> MigrationPlan:
    """The plan of `request` on this stack (its bucket, keys, policy names, the roles it may grant
    to, where its functions run), refused with the field and the rule before anything changes."""
    default_bucket, kms_key_arn = stack.migration_bucket, stack.migration_key_arn
    policy_name_prefix, execution_role_pattern = stack.policy_name_prefix, stack.execution_role_arn_pattern
    functions_in_vpc, sealing_key_arn = stack.webserver_functions_in_vpc, stack.sealing_key_arn
    source_name = request.source_name
    target_name = request.target_environment_name
    self_managed = request.source

    source = _read_source(request, mwaa=mwaa, s3=s3, partition=_arn_parts(kms_key_arn)[0])
    source_field = "sourceEnvironmentName" if self_managed is None else "source.airflowVersion"
    try:
        path = version_path(source["AirflowVersion"], request.target_airflow_version)
    except UnsupportedSource as error:
        raise InvalidMigrationRequest(f"{source_field}: {error}") from None
    except ValueError as error:
        raise InvalidMigrationRequest(f"targetAirflowVersion: {error}") from None
    roles = _check_roles(
        request, source, iam=iam, kms_key_arn=kms_key_arn, execution_role_pattern=execution_role_pattern
    )
    target_role = roles.target
    export_key_arn = _export_key(request, kms_key_arn=kms_key_arn, sealing_key_arn=sealing_key_arn)
    bucket = request.migration_bucket or default_bucket
    if bucket != default_bucket:
        # The functions' and the grants' policies name the stack's bucket only.
        raise InvalidMigrationRequest(
            f"migrationBucket: {bucket} is not this stack's migration bucket {default_bucket}: the "
            "pipeline's functions may use only the stack's bucket (leave migrationBucket out)"
        )
    _require_bucket(s3, bucket, field="migrationBucket")
    prefix = migration_prefix(source_name, target_name)
    resume_after_live, warnings = _finished_migration(s3, bucket, prefix, target_name)
    _refuse_other_cutovers(s3, bucket, source_name, target_name)

    files = _plan_files(s3, request, source)
    create_request, request_warnings = build_create_request(
        source,
        name=target_name,
        airflow_version=path.create_version,
        execution_role_arn=target_role,
        final_version=path.final_version,
    )
    warnings.extend(request_warnings)
    replaced = apply_target_settings(create_request, request.target_settings)
    if self_managed is not None:
        warnings.extend(_self_managed_warnings(self_managed))
    elif replaced:
        warnings.append(f"targetSettings replace the source's {', '.join(replaced)} on the target")
    webserver = _routes(request, source, create_request, functions_in_vpc=functions_in_vpc)
    if path.final_version == source["AirflowVersion"]:
        # A real use (a new VPC, class or account settings), but never what an upgrade meant to do.
        warnings.append(
            f"the source and the target both run Airflow {path.final_version}: this is a move to a "
            "new environment on the same version (new name, network or settings), not an upgrade"
        )
    point_request_at_copy(create_request, files.bucket, files.files)
    compatibility, preflight_warnings = _preflight(s3, source, files, path, request)
    warnings.extend(preflight_warnings)

    existing = get_environment(mwaa, target_name)
    replace_failed = False
    if existing is not None:
        replace_failed, existing_warnings = _existing_target(
            existing, request=request, path=path, target_role=target_role, create_request=create_request
        )
        warnings.extend(existing_warnings)

    policies = migration_policies(
        prefix=policy_name_prefix,
        migration_id=migration_id(source_name, target_name),
        partition=roles.partition,
        region=roles.region,
        account_id=roles.account_id,
        bucket=bucket,
        object_prefix=prefix,
        source_role_arn=source.get("ExecutionRoleArn") if self_managed is None else None,
        target_role_arn=target_role,
        kms_key_arn=kms_key_arn,
        sealing_key_arn=export_key_arn if export_key_arn != kms_key_arn else None,
    )
    # The option values go to an encrypted object (not in a dry run, which writes nothing); the plan,
    # kept in the execution's history, names the options and references the object.
    options: dict[str, str] = create_request.pop("AirflowConfigurationOptions")
    configuration = (
        None
        if request.dry_run
        else store_configuration(
            s3,
            bucket=bucket,
            prefix=prefix,
            migration_id=migration_id(source_name, target_name),
            options=options,
            kms_key_arn=kms_key_arn,
        )
    )
    create_request["AirflowConfigurationOptions"] = shown_options(options)
    return MigrationPlan(
        migration_id=migration_id(source_name, target_name),
        source=SourceEnvironment(
            name=source_name,
            kind="mwaa" if self_managed is None else "self_managed",
            arn=source.get("Arn"),
            airflow_version=source["AirflowVersion"],
            execution_role_arn=source.get("ExecutionRoleArn") if self_managed is None else None,
            source_bucket_arn=source["SourceBucketArn"],
            dag_s3_path=source["DagS3Path"],
            task_logs_enabled=_logs_enabled(source, "TaskLogs"),
            # A self-managed source has no MWAA settings: the target's request is all its own.
            settings=source_settings(source) if self_managed is None else {},
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
            configuration=configuration,
            already_exists=existing is not None and not replace_failed,
            files=files.files,
            replace_failed=replace_failed,
        ),
        bucket=bucket,
        prefix=prefix,
        policies=policies,
        export_dag=_export_deployment(
            request, source, bucket=bucket, prefix=prefix, transport=webserver.source.transport
        ),
        import_dag=deployment(
            IMPORT_DAG,
            target_name,
            create_request["SourceBucketArn"].split(":::", 1)[-1],
            create_request["DagS3Path"],
            webserver.target.transport,
        ),
        webserver=webserver,
        hands_on_deadline_seconds=(
            self_managed.access.export_deadline_hours * 3600
            if self_managed is not None and isinstance(self_managed.access, HandsOnAccess)
            else 0
        ),
        log_days=request.log_days,
        kms_key_arn=export_key_arn,
        # A self-managed source has no CloudWatch log groups: nothing to copy.
        log_groups=request.log_groups if self_managed is None else [],
        failed_tasks_only=request.failed_tasks_only,
        on_conflict=request.on_conflict,
        on_incompatible_dags=request.on_incompatible_dags,
        dag_compatibility=compatibility,
        dry_run=request.dry_run,
        warnings=warnings,
        cutover=CutoverSettings(
            mode=request.cutover,
            approval_timeout_seconds=request.approval_timeout_hours * 3600,
            drain_timeout_minutes=request.drain_timeout_minutes,
            on_drain_timeout=request.on_drain_timeout,
            # MWAA's 2.11 -> 3 upgrade comes after the import: the DAGs are unpaused after it.
            unpause_in_import=path.upgrade_to is None,
            resume_after_live=resume_after_live,
        ),
    )
