"""The migrations as Step Functions executions: naming and starting one, finding the latest (never a
dry run), running the plan's dry run, and where an execution's report is."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from mwaa_migrate.execution import DRY_RUN_PREFIX, execution_history, new_execution_name, task_results
from mwaa_migrate.models import source_name_of
from mwaa_migrate_cli import progress
from mwaa_migrate_cli.arguments import PROGRAM
from mwaa_migrate_cli.aws import Pipeline, aws_errors
from mwaa_migrate_cli.errors import CliError, ExitCode

# Errors of a refused request: nothing was changed.
REFUSALS = frozenset({"InvalidMigrationRequest", "MigrationConflict", "IncompatibleDags"})


def execution_name(request: dict[str, Any], prefix: str = "") -> str:
    """SOURCE-to-TARGET-TIME-RANDOM: sortable by time, never the same for two starts."""
    return new_execution_name(
        str(source_name_of(request)), str(request["targetEnvironmentName"]), prefix=prefix
    )


def check_new_name(pipeline: Pipeline, name: str) -> None:
    """A name Step Functions takes and holds no execution under."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name):
        raise CliError(f"--name {name!r}: 1-80 letters, digits, - and _", ExitCode.USAGE)
    # Step Functions answers a start under a running execution's name with that execution (same
    # input) or ExecutionAlreadyExists: either way nothing new starts, so say so first.
    existing = existing_execution(pipeline, name)
    if existing is not None:
        raise existing


def start_execution(pipeline: Pipeline, name: str, request: dict[str, Any]) -> str:
    check_new_name(pipeline, name)
    with aws_errors(f"starting execution {name}"):
        try:
            started = pipeline.sfn.start_execution(
                stateMachineArn=pipeline.state_machine_arn, name=name, input=json.dumps(request)
            )
        except pipeline.sfn.exceptions.ExecutionAlreadyExists:
            raise already_exists(pipeline, name) from None
    return started["executionArn"]


def existing_execution(pipeline: Pipeline, name: str) -> CliError | None:
    with aws_errors(f"reading execution {name}"):
        try:
            pipeline.sfn.describe_execution(executionArn=pipeline.execution_arn(name))
        except pipeline.sfn.exceptions.ExecutionDoesNotExist:
            return None
    return already_exists(pipeline, name)


def already_exists(pipeline: Pipeline, name: str) -> CliError:
    """One line for a name that Step Functions already holds: its status and what to do."""
    with aws_errors(f"reading execution {name}"):
        described = pipeline.sfn.describe_execution(executionArn=pipeline.execution_arn(name))
    started = described["startDate"].strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return CliError(
        f"execution {name} already exists ({described['status']}, started {started}): see it with "
        f"'{PROGRAM} status {name}', or start again without --name (or with another)",
        ExitCode.REFUSED,
    )


def latest_migration(pipeline: Pipeline) -> str:
    """The newest execution that is not a dry run (the plan's, or any started with "dryRun": true)."""
    with aws_errors("listing the migrations"):
        paginator = pipeline.sfn.get_paginator("list_executions")
        for page in paginator.paginate(stateMachineArn=pipeline.state_machine_arn):
            for execution in page["executions"]:
                if not is_dry_run(pipeline, execution["executionArn"]):
                    return execution["executionArn"]
    raise CliError(f"no migration has run on {pipeline.state_machine_arn} yet", ExitCode.NOT_FOUND)


def is_dry_run(pipeline: Pipeline, execution_arn: str) -> bool:
    """What the execution was asked: its input says dryRun, whatever its name."""
    with aws_errors(f"reading execution {execution_arn}"):
        described = pipeline.sfn.describe_execution(executionArn=execution_arn)
    try:
        request = json.loads(described.get("input") or "{}")
    except ValueError:
        return False
    return isinstance(request, dict) and request.get("dryRun") is True


def execution_arn_of(pipeline: Pipeline, execution: str | None) -> str:
    return pipeline.execution_arn(execution) if execution else latest_migration(pipeline)


@dataclass(frozen=True)
class DryRun:
    """A plan the pipeline made: the dry run's execution name and its output."""

    name: str
    plan: dict[str, Any]


def run_plan(
    pipeline: Pipeline, request: dict[str, Any], *, timeout: float, refused_suffix: str = ""
) -> DryRun:
    """Run the pipeline's own plan without changing anything: an execution named dryrun-... with
    "dryRun": true, whose output is the plan, or whose failure is the refusal (a CliError)."""
    request = {**request, "dryRun": True}
    name = execution_name(request, prefix=DRY_RUN_PREFIX)
    execution_arn = start_execution(pipeline, name, request)
    watcher = progress.Watcher(pipeline, execution_arn)
    deadline = time.monotonic() + timeout
    while True:
        described = watcher.describe()
        if described["status"] in progress.TERMINAL:
            break
        if time.monotonic() > deadline:
            raise CliError(f"the dry run {name} is still running after {timeout:g}s", ExitCode.RUNNING)
        time.sleep(0.2 if pipeline.local else 1.0)
    if described["status"] != "SUCCEEDED":
        error = described.get("error") or described["status"]
        cause = " ".join((described.get("cause") or "").split())
        code = ExitCode.REFUSED if error in REFUSALS else ExitCode.MIGRATION_FAILED
        raise CliError(f"the plan was refused: {error}: {cause}{refused_suffix}", code)
    return DryRun(name=name, plan=json.loads(described.get("output") or "{}"))


def report_uri(pipeline: Pipeline, execution_arn: str) -> str:
    """Where the execution's last step wrote the report: its output, or the failure path's result."""
    with aws_errors(f"reading execution {execution_arn}"):
        described = pipeline.sfn.describe_execution(executionArn=execution_arn)
        name, status = described["name"], described["status"]
        if status == "RUNNING":
            raise CliError(f"{name} is still RUNNING: its report is written when it ends", ExitCode.RUNNING)
        request = json.loads(described.get("input") or "{}")
        if isinstance(request, dict) and request.get("dryRun") is True:
            raise CliError(
                f"{name} is a dry run: it writes no report, its plan is its output (mwaa-migrate plan)",
                ExitCode.NOT_FOUND,
            )
        output = json.loads(described.get("output") or "{}")
        if isinstance(output, dict) and output.get("reportUri"):
            return str(output["reportUri"])
        # A failure's report: RecordFailure's (or SettleStoppedExecution's) result says where.
        results = task_results(execution_history(pipeline.sfn, execution_arn, with_data=True))
        uri = next(
            (str(result["reportUri"]) for result in reversed(results.values()) if result.get("reportUri")),
            None,
        )
    if uri is None:
        raise CliError(f"{name} ended {status} without writing a report", ExitCode.NOT_FOUND)
    return uri
