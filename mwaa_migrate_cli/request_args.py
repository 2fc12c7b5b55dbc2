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
from mwaa_migrate.models import MigrationRequest, parse_model
from mwaa_migrate_cli.errors import CliError, ExitCode


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
    try:
        validated = parse_model(MigrationRequest, request)
    except InvalidMigrationRequest as error:
        raise CliError(f"{error} (nothing was started)", ExitCode.REFUSED) from None
    return validated.to_event()


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


def starter_request(source: str | None, target: str | None, version: str | None) -> dict[str, Any]:
    """A request with every field at its default (so that each one can be seen and changed), the
    environments and the version from the flags or placeholders; valid as it stands."""
    source = source or PLACEHOLDER_SOURCE
    version = version or STARTER_VERSION
    request = MigrationRequest.model_validate(
        {
            "sourceEnvironmentName": source,
            # analytics-prod -> analytics-prod-2-11: the version in the name, as the examples do.
            "targetEnvironmentName": target or f"{source}-{'-'.join(version.split('.')[:2])}",
            "targetAirflowVersion": version,
        }
    )
    return request.model_dump(mode="json", by_alias=True)


def field_notes() -> list[tuple[str, str]]:
    """Each request field and what it means (the model's own descriptions)."""
    return [
        (field.alias or name, field.description or "")
        for name, field in MigrationRequest.model_fields.items()
    ]
