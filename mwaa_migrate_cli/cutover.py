"""The operator's side of the cutover: answer the approval a migration waits for, and roll back a
cutover that went live.

`approve` and `reject` read the task token of the AwaitApproval wait from the execution's history
(the state passes `$$.Task.Token` to its Lambda, so the history's TaskScheduled event holds it) and
answer with SendTaskSuccess or SendTaskFailure. The token is a secret that lets anyone holding it
decide the migration: it is kept in memory only and never printed, logged, or put in an error (not
even AWS's error message, which may quote it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from mwaa_migrate.environment.airflow_cli import AirflowCli
from mwaa_migrate.environment.webserver_transport import WebserverTransport, open_transport
from mwaa_migrate.errors import MigrationConflict, MigrationError
from mwaa_migrate.execution import approval_wait, execution_history
from mwaa_migrate.models import AirflowApi, WebserverTransportKind
from mwaa_migrate.run import cutover
from mwaa_migrate.run.cutover import Settlement
from mwaa_migrate_cli.aws import Pipeline, aws_errors
from mwaa_migrate_cli.errors import CliError, ExitCode

PLAN_STATE = "PlanMigration"
REJECTED_ERROR = "CutoverRejected"
# A token Step Functions no longer waits for: the wait ended (answered, timed out, aborted).
_WAIT_OVER_CODES = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


def _history(pipeline: Pipeline, execution_arn: str) -> list[dict[str, Any]]:
    """Every event with its data (the TaskScheduled parameters hold the token)."""
    with aws_errors(f"reading the history of {execution_arn}"):
        return execution_history(pipeline.sfn, execution_arn, with_data=True)


def open_wait(pipeline: Pipeline, execution_arn: str) -> tuple[str, str]:
    """The execution's name and the token of its open approval wait, or a CliError saying where
    it stands instead."""
    with aws_errors(f"reading execution {execution_arn}"):
        described = pipeline.sfn.describe_execution(executionArn=execution_arn)
    name, status = described["name"], described["status"]
    if status != "RUNNING":
        raise CliError(f"{name} is not waiting for approval (state {status})", ExitCode.REFUSED)
    wait = approval_wait(_history(pipeline, execution_arn))
    if wait.token is None:
        raise CliError(
            f"{name} is not waiting for approval (state {wait.current_state or 'none yet'})", ExitCode.REFUSED
        )
    return name, wait.token


def _answer_refused(error: ClientError, name: str, doing: str) -> CliError:
    """AWS's answer to a token, without its message (which may quote the token)."""
    code = str(error.response.get("Error", {}).get("Code", "Unknown"))
    if code in _WAIT_OVER_CODES:
        return CliError(f"{name} is no longer waiting for approval ({code})", ExitCode.REFUSED)
    exit_code = ExitCode.AWS_ERROR
    hint = " (check the permissions of your AWS identity)" if "AccessDenied" in code else ""
    return CliError(f"{doing} {name}: {code}{hint}", exit_code)


def approver(pipeline: Pipeline) -> str:
    """Who approves: the caller's identity ARN, "local" on the emulation."""
    if pipeline.local:
        return "local"
    with aws_errors("reading your AWS identity"):
        return pipeline.sts.get_caller_identity()["Arn"]


def approve(pipeline: Pipeline, execution_arn: str, *, at: datetime | None = None) -> str:
    """Answer the open wait with success; returns the execution's name."""
    name, token = open_wait(pipeline, execution_arn)
    output = {"approvedBy": approver(pipeline), "at": (at or datetime.now(UTC)).isoformat()}
    with aws_errors(f"approving {name}"):
        try:
            pipeline.sfn.send_task_success(taskToken=token, output=json.dumps(output))
        except ClientError as error:
            raise _answer_refused(error, name, "approving") from None
    return name


def reject(pipeline: Pipeline, execution_arn: str, *, reason: str) -> str:
    """Answer the open wait with CutoverRejected; returns the execution's name."""
    name, token = open_wait(pipeline, execution_arn)
    with aws_errors(f"rejecting {name}"):
        try:
            # SendTaskFailure takes a cause of at most 32768 characters.
            pipeline.sfn.send_task_failure(taskToken=token, error=REJECTED_ERROR, cause=reason[:32768])
        except ClientError as error:
            raise _answer_refused(error, name, "rejecting") from None
    return name


# ------------------------------------------------------------------------------ rollback


@dataclass(frozen=True)
class Migration:
    """Where a migration keeps its cutover record."""

    source: str
    target: str
    bucket: str
    prefix: str
    # How each environment's Airflow is reached: the plan's choice (its DAG deployments' transport),
    # the CLI endpoint when the migration is named by --source and --target.
    source_transport: WebserverTransportKind = "cli"
    target_transport: WebserverTransportKind = "cli"
    # A self-managed source's REST API (the airflow_api transport): the plan's, its secret read with
    # the operator's own credentials.
    source_airflow_api: AirflowApi | None = None


def prefix_of(source: str, target: str) -> str:
    return f"migrations/{source}/{target}"


def planned(history: Iterable[Mapping[str, Any]]) -> Migration | None:
    """The migration from the PlanMigration state's output (the state's `plan`)."""
    for event in history:
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") != PLAN_STATE:
            continue
        try:
            state = json.loads(details.get("output") or "{}")
        except ValueError:
            return None
        plan = state.get("plan") if isinstance(state, dict) else None
        if not isinstance(plan, dict):
            return None
        source, target = plan.get("source") or {}, plan.get("target") or {}
        if plan.get("bucket") and source.get("name") and target.get("name"):
            return Migration(
                source=str(source["name"]),
                target=str(target["name"]),
                bucket=str(plan["bucket"]),
                prefix=str(plan.get("prefix") or prefix_of(source["name"], target["name"])),
                source_transport=_transport(plan.get("exportDag")),
                target_transport=_transport(plan.get("importDag")),
                source_airflow_api=_airflow_api(plan.get("exportDag")),
            )
    return None


def _transport(deployment: Any) -> WebserverTransportKind:
    kind = deployment.get("transport") if isinstance(deployment, dict) else None
    return kind if kind in ("rest_api", "airflow_api", "hands_on") else "cli"


def _airflow_api(deployment: Any) -> AirflowApi | None:
    access = deployment.get("airflowApi") if isinstance(deployment, dict) else None
    return AirflowApi.model_validate(access) if isinstance(access, dict) else None


def migration_of_execution(pipeline: Pipeline, execution_arn: str) -> Migration:
    found = planned(_history(pipeline, execution_arn))
    if found is None:
        raise CliError(
            f"{execution_arn.rsplit(':', 1)[-1]} has no plan (it ended before PlanMigration): "
            "pass --source and --target",
            ExitCode.NOT_FOUND,
        )
    return found


@dataclass(frozen=True)
class _Route:
    """One environment's route, as the plan chose it (webserver_transport.Route)."""

    environment_name: str
    transport: WebserverTransportKind
    airflow_api: AirflowApi | None = None


def _webserver(
    pipeline: Pipeline,
    environment: str,
    kind: WebserverTransportKind,
    scheme: str,
    airflow_api: AirflowApi | None = None,
) -> AirflowCli | WebserverTransport:
    if kind == "cli":
        return AirflowCli(pipeline.mwaa, environment, scheme=scheme)
    route = _Route(environment, kind, airflow_api)
    return open_transport(route, pipeline.mwaa, secretsmanager=lambda: pipeline.secretsmanager)


def rollback(
    pipeline: Pipeline, migration: Migration, *, source_unpaused_by_hand: bool = False
) -> Settlement:
    """Reverse the migration's cutover through each environment's transport as the plan chose it:
    the Airflow CLI endpoint (over http on the local emulation, whose MWAA serves it there) or
    InvokeRestApi."""
    scheme = "http" if pipeline.local else "https"
    try:
        return cutover.rollback(
            s3=pipeline.s3,
            bucket=migration.bucket,
            prefix=migration.prefix,
            source=migration.source,
            target=migration.target,
            source_cli=_webserver(
                pipeline, migration.source, migration.source_transport, scheme, migration.source_airflow_api
            ),
            target_cli=_webserver(pipeline, migration.target, migration.target_transport, scheme),
            source_unpaused_by_hand=source_unpaused_by_hand,
        )
    except MigrationConflict as error:
        raise CliError(str(error), ExitCode.REFUSED) from None
    except MigrationError as error:
        raise CliError(
            f"rolling back {migration.source} -> {migration.target}: {error} (run it again: "
            "each step does only what is left)",
            ExitCode.AWS_ERROR,
        ) from None
