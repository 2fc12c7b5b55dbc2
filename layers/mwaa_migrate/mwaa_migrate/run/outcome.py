"""The two ways an execution ends: finish (remove the grants, write the report) or record the
failure (the same, plus where and why it failed). Both are safe to run twice."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mwaa_migrate.environment.dag_compatibility import target_dag_warnings
from mwaa_migrate.errors import from_client_error
from mwaa_migrate.execution import execution_history, finished_steps, now, task_results
from mwaa_migrate.metadata.metadata_dags import remove_dag
from mwaa_migrate.migration_bucket import UNPLANNED_PREFIX, migration_prefix, report_key, write_report
from mwaa_migrate.models import Model, source_name_of
from mwaa_migrate.observability import logger
from mwaa_migrate.run.cutover import MigrationPlace, settle_after_failure, standing, target_went_live
from mwaa_migrate.run.failure import error_from_state, failed_state, plan_from_state, readable_cause
from mwaa_migrate.run.grants import StackGrants, delete_policies, policies_to_remove
from mwaa_migrate.run.lock import Holder, holder, release
from mwaa_migrate.run.migration_names import migration_id
from mwaa_migrate.run.report import Failure, MigrationReport, downtime_of, seconds_between, table_counts
from mwaa_migrate.run.settings_diff import settings_diff
from mwaa_migrate.step_events import FinishMigrationEvent, RecordFailureEvent

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient

    from mwaa_migrate.environment.webserver_transport import TransportFactory
    from mwaa_migrate.models import MigrationPlan


class Outcome(Model):
    status: str
    report_uri: str | None
    source_environment_name: str | None = None
    target_environment_name: str | None = None
    error: str | None = None
    cause: str | None = None
    failed_state: str | None = None
    # Which environment runs the DAGs now, in one line (the report's and notification's first line).
    dags_running: str | None = None


@dataclass(frozen=True)
class Ending:
    """What ending an execution works with, whichever way it ends: the clients, and the stack (its
    migration bucket holds the target's lock and the report of a request refused at its plan; its
    grants say which policies are the migration's to remove)."""

    s3: S3Client
    iam: IAMClient
    sfn: SFNClient
    stack: StackGrants


def finish_migration(event: FinishMigrationEvent, ending: Ending) -> Outcome:
    s3, iam, sfn, stack = ending.s3, ending.iam, ending.sfn, ending.stack
    plan = event.plan
    # Another execution holding the target's lock uses the same grants: they are its to remove.
    locked_by = holder(s3, stack.bucket, plan.target.name, event.execution_id)
    removed = (
        []
        if locked_by is Holder.ANOTHER_EXECUTION
        else delete_policies(iam, policies_to_remove(plan, stack=stack))
    )
    # The project's DAGs have done their work: their files leave both DAG folders.
    dag_files_removed = [key for dag in (plan.export_dag, plan.import_dag) for key in remove_dag(s3, dag)]
    finished = now()
    report = MigrationReport(
        status="SUCCEEDED",
        migration_id=plan.migration_id,
        execution_id=event.execution_id,
        source={
            "name": plan.source.name,
            "kind": plan.source.kind,
            "airflowVersion": plan.source.airflow_version,
            "arn": plan.source.arn,
        },
        target={
            "name": plan.target.name,
            "airflowVersion": plan.target.final_version,
            "createdVersion": plan.target.create_version,
            "upgradedTo": plan.target.upgrade_to,
            "arn": event.clone.get("arn"),
            "created": event.clone.get("created"),
        },
        started_at=event.started_at,
        finished_at=finished.isoformat(),
        duration_seconds=seconds_between(event.started_at, finished),
        settings=settings_diff(plan.source.settings, plan.target.create_request),
        warnings=[*plan.warnings, *target_dag_warnings(event.imported)],
        tables=table_counts(event.exported, event.imported),
        cutover_tables=table_counts(event.cutover_exported, event.cutover_imported),
        metadata={
            "export": event.exported,
            "import": event.imported,
            "cutoverExport": event.cutover_exported,
            "cutoverImport": event.cutover_imported,
            "dagFilesRemoved": dag_files_removed,
        },
        dags_running=str(event.live.get("line") or ""),
        cutover=event.live,
        downtime=downtime_of(event.cutover_exported, event.cutover_imported, event.live),
        logs=event.logs,
        steps=finished_steps(sfn, event.execution_id),
        policies_removed=removed,
    )
    uri = write_report(s3, plan.bucket, report_key(plan.prefix, event.execution_id), report)
    release(s3, bucket=stack.bucket, target_environment=plan.target.name, execution_id=event.execution_id)
    return Outcome(
        status="SUCCEEDED",
        report_uri=uri,
        source_environment_name=plan.source.name,
        target_environment_name=plan.target.name,
        dags_running=str(event.live.get("line") or "") or None,
    )


def _valid_names(*names: str) -> bool:
    return all(re.fullmatch(r"[a-zA-Z][0-9a-zA-Z_-]{0,79}", name) for name in names)


def _metadata_so_far(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The export and import results the execution had when it failed, by phase (a failed step's
    own result is not among them)."""
    found = {
        "export": ((state.get("prepared") or {}).get("export") or {}).get("exported"),
        "import": (state.get("importRun") or {}).get("result"),
        "cutoverExport": (state.get("cutoverExportRun") or {}).get("result"),
        "cutoverImport": (state.get("cutoverImportRun") or {}).get("result"),
    }
    return {phase: result for phase, result in found.items() if isinstance(result, dict)}


def _downtime_so_far(state: dict[str, Any]) -> Any:
    """The window as far as it went, when the failure came inside it."""
    exported = (state.get("cutoverExportRun") or {}).get("result") or {}
    imported = (state.get("cutoverImportRun") or {}).get("result") or {}
    live = (state.get("live") or {}).get("live") or {}
    return downtime_of(exported, imported, live)


def _place(
    plan: MigrationPlan | None, source_name: str, target_name: str, bucket: str
) -> MigrationPlace | None:
    """Where the migration's cutover record and report are: the plan's. Refused at its plan (an
    earlier run may have migrated it): where the request's names put them in the stack's bucket (the
    only one a migration may use), unless the names are invalid: those stay out of keys (None)."""
    if plan is not None:
        return MigrationPlace.of(plan)
    if not _valid_names(source_name, target_name):
        return None
    return MigrationPlace(
        bucket=bucket,
        prefix=migration_prefix(source_name, target_name),
        source=source_name,
        target=target_name,
        migration_id=migration_id(source_name, target_name),
    )


def record_failure(
    event: RecordFailureEvent,
    ending: Ending,
    *,
    # Opens the transport the plan chose for an environment (webserver_transport.transports).
    webserver: TransportFactory,
) -> Outcome:
    s3, iam, sfn, stack = ending.s3, ending.iam, ending.sfn, ending.stack
    caught = error_from_state(event.state)
    cause = readable_cause(caught.cause)
    where = failed_state(sfn, event.execution_id, caught)
    plan = plan_from_state(event.state)
    request: dict[str, Any] = event.state.get("request") or {}
    source_name = plan.source.name if plan else str(source_name_of(request) or "unknown")
    target_name = plan.target.name if plan else str(request.get("targetEnvironmentName", "unknown"))
    place = _place(plan, source_name, target_name, stack.bucket)
    # First the DAGs: whatever else fails, exactly one environment must run them.
    settlement = (
        settle_after_failure(
            s3,
            place,
            # The plan's route to each environment, as its DAG deployment carries it.
            source_cli=webserver(plan.export_dag),
            target_cli=webserver(plan.import_dag),
            target_live=target_went_live(s3, place),
        )
        if plan and place and not plan.dry_run and event.state.get("grants") is not None
        else None
    )
    if settlement is not None:
        dags_running = settlement.line
    elif place is not None:
        dags_running = standing(s3, place)
    else:
        dags_running = f"The source {source_name} runs the DAGs: this execution changed nothing."
    # Without a plan nothing was granted: the plan is the first step and changes nothing.
    # An execution that lost the target's lock to another (MigrationInProgress) leaves that one's
    # grants and lock alone.
    locked_by = holder(s3, stack.bucket, plan.target.name, event.execution_id) if plan else Holder.NOBODY
    removed = (
        delete_policies(iam, policies_to_remove(plan, stack=stack))
        if plan and locked_by is not Holder.ANOTHER_EXECUTION
        else []
    )
    started_at = str(event.state.get("startedAt") or now().isoformat())
    finished = now()
    metadata = _metadata_so_far(event.state)
    report = MigrationReport(
        status="FAILED",
        migration_id=plan.migration_id if plan else migration_id(source_name, target_name),
        execution_id=event.execution_id,
        source={
            "name": source_name,
            **({"kind": plan.source.kind, "airflowVersion": plan.source.airflow_version} if plan else {}),
        },
        target={"name": target_name},
        started_at=started_at,
        finished_at=finished.isoformat(),
        duration_seconds=seconds_between(started_at, finished),
        settings=settings_diff(plan.source.settings, plan.target.create_request) if plan else None,
        warnings=[*plan.warnings, *target_dag_warnings(metadata.get("import") or {})] if plan else [],
        tables=table_counts(metadata.get("export") or {}, metadata.get("import") or {}),
        cutover_tables=table_counts(metadata.get("cutoverExport") or {}, metadata.get("cutoverImport") or {}),
        metadata=metadata,
        steps=finished_steps(sfn, event.execution_id),
        policies_removed=removed,
        failure=Failure(state=where, error=caught.error, cause=cause),
        dags_running=dags_running,
        cutover=settlement.to_event() if settlement else {},
        downtime=_downtime_so_far(event.state),
    )
    # Refused at its plan: the report goes where the migration's would (`mwaa-migrate report` and
    # the next plan find it).
    bucket, prefix = (place.bucket, place.prefix) if place else (stack.bucket, UNPLANNED_PREFIX)
    uri = write_report(s3, bucket, report_key(prefix, event.execution_id), report)
    if plan and locked_by is Holder.THIS_EXECUTION:
        release(s3, bucket=stack.bucket, target_environment=plan.target.name, execution_id=event.execution_id)
    return Outcome(
        status="FAILED",
        report_uri=uri,
        source_environment_name=source_name,
        target_environment_name=target_name,
        error=caught.error,
        cause=f"{where}: {cause}",
        failed_state=where,
        dags_running=dags_running,
    )


# Statuses of an execution that ended without its failure path running (StopExecution, a timeout).
STOPPED_STATUSES = frozenset({"ABORTED", "TIMED_OUT"})


def settle_stopped_execution(
    execution_arn: str,
    ending: Ending,
    *,
    state_machine_arn: str,
    webserver: TransportFactory,
) -> Outcome | None:
    """An execution stopped (StopExecution) or timed out never reaches RecordFailure: do what it
    would have done, from the execution's own history. The event that calls this is not trusted:
    the execution must be this state machine's and stopped, or nothing happens (None)."""
    if not execution_arn.startswith(state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":"):
        logger.warning("not an execution of this state machine: ignored")
        return None
    sfn = ending.sfn
    try:
        described = sfn.describe_execution(executionArn=execution_arn)
    except ClientError as error:
        raise from_client_error(error, f"reading execution {execution_arn}") from None
    if described["status"] not in STOPPED_STATUSES:
        logger.warning("the execution is not stopped: ignored", extra={"status": described["status"]})
        return None
    outputs = task_results(execution_history(sfn, execution_arn, with_data=True))
    if "RecordFailure" in outputs or "FinishMigration" in outputs:
        return None  # its own last step ran: the outcome is recorded
    try:
        request = json.loads(described.get("input") or "{}")
    except ValueError:
        request = {}
    state: dict[str, Any] = {
        "request": request if isinstance(request, dict) else {},
        "startedAt": described["startDate"].isoformat(),
        "error": {
            "Error": "ExecutionTimedOut" if described["status"] == "TIMED_OUT" else "ExecutionAborted",
            "Cause": f"the execution was {described['status']} before it ended: "
            f"{described.get('cause') or 'no cause given'}",
        },
    }
    if "PlanMigration" in outputs:
        state["plan"] = outputs["PlanMigration"]
    if "GrantPermissions" in outputs:
        state["grants"] = outputs["GrantPermissions"]
    return record_failure(
        RecordFailureEvent(execution_id=execution_arn, state=state), ending, webserver=webserver
    )
