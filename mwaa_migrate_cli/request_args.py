"""A migration request from the command line: --input (a request, or an EventBridge event carrying one)
and the flags, validated as the pipeline validates it; and back again, as the flags that repeat it."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from mwaa_migrate.environment.versions import TARGET_VERSIONS, AirflowVersion
from mwaa_migrate.errors import InvalidMigrationRequest
from mwaa_migrate.models import (
    HandsOnAccess,
    MigrationRequest,
    ReachedAccess,
    SelfManagedSource,
    parse_request,
)
from mwaa_migrate_cli.errors import CliError, ExitCode
from mwaa_migrate_cli.source_upload import Upload, stage_local_sources


def read_input(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}", ExitCode.USAGE) from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise CliError(f"{path} is not JSON: {error}", ExitCode.USAGE) from None
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a JSON object (a migration request)", ExitCode.USAGE)
    # An EventBridge event (events/eventbridge_migration_requested.json) carries the request as detail.
    detail = data.get("detail")
    return dict(detail) if isinstance(detail, dict) and "detail-type" in data else data


def migration_request(args: argparse.Namespace, *, dry_run: bool) -> dict[str, Any]:
    """The request from --input and the flags (the flags win), validated as the pipeline does."""
    return staged_request(args, dry_run=dry_run)[0]


def staged_request(args: argparse.Namespace, *, dry_run: bool) -> tuple[dict[str, Any], list[Upload]]:
    """The validated request, with a self-managed source's local paths as the S3 URIs their uploads
    will have, and those uploads (source_upload.py): nothing is uploaded until the request is valid."""
    request = read_input(args.input) if args.input else {}
    flags = {
        "sourceEnvironmentName": args.source,
        "targetEnvironmentName": args.target,
        "targetAirflowVersion": args.version,
        "targetExecutionRoleArn": args.role,
        "migrationBucket": args.bucket,
        "logDays": args.log_days,
        "logGroups": None
        if args.log_groups is None
        else [g.strip() for g in args.log_groups.split(",") if g.strip()],
        "failedTasksOnly": args.failed_tasks_only,
        "cutover": args.cutover,
        "approvalTimeoutHours": args.approval_timeout_hours,
        "drainTimeoutMinutes": args.drain_timeout_minutes,
        "onDrainTimeout": args.on_drain_timeout,
        "onConflict": args.on_conflict,
        "onIncompatibleDags": args.on_incompatible_dags,
    }
    request.update({key: value for key, value in flags.items() if value is not None})
    if dry_run:
        request["dryRun"] = True
    request, uploads = stage_local_sources(request)
    try:
        validated = parse_request(request)
    except InvalidMigrationRequest as error:
        raise CliError(f"{error} (nothing was started)", ExitCode.REFUSED) from None
    return validated.to_event(), uploads


def request_flags(request: dict[str, Any]) -> list[str]:
    """The start command's flags for a request (what differs from the defaults, for the lists)."""
    flags = {
        "sourceEnvironmentName": "--source",
        "targetEnvironmentName": "--target",
        "targetAirflowVersion": "--version",
        "targetExecutionRoleArn": "--role",
        "migrationBucket": "--bucket",
        "logDays": "--log-days",
    }
    shown = [f"{flag} {shlex.quote(str(request[key]))}" for key, flag in flags.items() if key in request]
    groups = request.get("logGroups")
    if groups is not None and groups != ["Task"]:
        shown.append(f"--log-groups {shlex.quote(','.join(groups))}")
    if request.get("failedTasksOnly") is True:
        shown.append("--failed-tasks-only")
    defaults = (
        ("cutover", "--cutover", "auto"),
        ("approvalTimeoutHours", "--approval-timeout-hours", 24),
        ("drainTimeoutMinutes", "--drain-timeout-minutes", 30),
        ("onDrainTimeout", "--on-drain-timeout", "fail"),
        ("onConflict", "--on-conflict", "fail"),
        ("onIncompatibleDags", "--on-incompatible-dags", "warn"),
    )
    shown += [
        f"{flag} {request[key]}" for key, flag, default in defaults if request.get(key, default) != default
    ]
    return shown


# What `mwaa-migrate init` writes where no flag names the environments.
PLACEHOLDER_SOURCE = "my-source-environment"
# The newest Airflow 2 MWAA runs: an Airflow 3 target asks for DAG changes first (the plan lists them).
STARTER_VERSION = max((v for v in TARGET_VERSIONS if v.startswith("2.")), key=AirflowVersion.parse)


# What `mwaa-migrate init --self-managed` writes where no flag names the source: placeholders to
# replace (the account, subnets and security group are examples), valid as they stand.
PLACEHOLDER_SELF_MANAGED_SOURCE = "my-airflow"
PLACEHOLDER_SELF_MANAGED_VERSION = "2.10.5"
PLACEHOLDER_ACCOUNT = "123456789012"


def _self_managed_placeholders(source: str, target: str) -> dict[str, Any]:
    bucket = f"airflow-{target.lower().replace('_', '-')}"[:63].rstrip("-.")
    return {
        "source": {
            "kind": "self_managed",
            "name": source,
            "airflowVersion": PLACEHOLDER_SELF_MANAGED_VERSION,
            "dagsUri": f"s3://{bucket}/{source}/dags/",
            "requirementsUri": f"s3://{bucket}/{source}/requirements.txt",
            "access": {
                "mode": "reached",
                "restApiUrl": "https://airflow.example.com/api/v1",
                "credentialsSecretArn": (
                    f"arn:aws:secretsmanager:us-east-1:{PLACEHOLDER_ACCOUNT}:secret:mwaa-migrate/{source}-AbCdEf"
                ),
            },
        },
        # The plan first: set false to run the migration.
        "dryRun": True,
        # No CloudWatch log groups to copy from.
        "logGroups": [],
        "targetSettings": {
            "ExecutionRoleArn": f"arn:aws:iam::{PLACEHOLDER_ACCOUNT}:role/service-role/AmazonMWAA-{target}",
            "SourceBucketArn": f"arn:aws:s3:::{bucket}",
            "NetworkConfiguration": {
                "SubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
                "SecurityGroupIds": ["sg-0123456789abcdef0"],
            },
            "EnvironmentClass": "mw1.small",
            "WebserverAccessMode": "PRIVATE_ONLY",
        },
    }


def starter_request(
    source: str | None, target: str | None, version: str | None, *, self_managed: bool = False
) -> dict[str, Any]:
    """A request with every field at its default (so that each one can be seen and changed), the
    environments and the version from the flags or placeholders; valid as it stands. Self-managed:
    a self-managed Apache Airflow source, with the target's own settings as placeholders."""
    source = source or (PLACEHOLDER_SELF_MANAGED_SOURCE if self_managed else PLACEHOLDER_SOURCE)
    version = version or STARTER_VERSION
    # analytics-prod -> analytics-prod-2-11: the version in the name, as the examples do.
    target = target or f"{source}-{'-'.join(version.split('.')[:2])}"
    named: dict[str, Any] = (
        _self_managed_placeholders(source, target) if self_managed else {"sourceEnvironmentName": source}
    )
    request = MigrationRequest.model_validate(
        {**named, "targetEnvironmentName": target, "targetAirflowVersion": version}
    )
    return request.model_dump(mode="json", by_alias=True)


def field_notes(*, self_managed: bool = False) -> list[tuple[str, str]]:
    """Each request field and what it means (the model's own descriptions); with self_managed, the
    source block's fields too (source.NAME), and its access modes'."""
    notes = [
        (field.alias or name, field.description or "")
        for name, field in MigrationRequest.model_fields.items()
    ]
    if not self_managed:
        return notes
    nested = [
        (f"{prefix}.{field.alias or name}", field.description or "")
        for prefix, model in (
            ("source", SelfManagedSource),
            ("source.access", ReachedAccess),
            ("source.access", HandsOnAccess),
        )
        for name, field in model.model_fields.items()
    ]
    return notes + nested
