"""Place the project's export/import DAGs in an environment's DAG folder, trigger them
through the transport the plan chose for the environment (its CLI endpoint or InvokeRestApi,
webserver_transport.py) and follow their runs to a verified result."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError
from pydantic import Field

from mwaa_migrate.dags import mwaa_migrate_metadata as library
from mwaa_migrate.environment.webserver_transport import WebserverTransport, as_transport
from mwaa_migrate.errors import DagRunFailed, MigrationConflict, from_client_error
from mwaa_migrate.logs.log_names import log_group_name
from mwaa_migrate.migration_bucket import (
    cutover_record_key,
    export_manifest_key,
    import_result_key,
    read_json,
    read_json_if_any,
)
from mwaa_migrate.models import AirflowApi, DagDeployment, Model, WebserverTransportKind
from mwaa_migrate.step_events import Phase

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client

    from mwaa_migrate.environment.airflow_cli import AirflowCli

LIBRARY_FILE = f"{library.__name__.rsplit('.', 1)[-1]}.py"
TERMINAL_FAILED = frozenset({"failed", "upstream_failed"})
_LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class ProjectDag:
    """One of the project's DAGs: its id (the library's, which the DAG file uses too) and its file,
    which is named after it."""

    dag_id: str

    @property
    def file(self) -> str:
        return f"{self.dag_id}.py"

    @property
    def files(self) -> tuple[str, ...]:
        # The library goes first, so the DAG file never parses without it.
        return (LIBRARY_FILE, self.file)


EXPORT_DAG = ProjectDag(library.EXPORT_DAG_ID)
IMPORT_DAG = ProjectDag(library.IMPORT_DAG_ID)


def deployment(
    dag: ProjectDag,
    environment_name: str,
    bucket: str,
    dag_s3_path: str,
    transport: WebserverTransportKind = "cli",
    *,
    airflow_api: AirflowApi | None = None,
) -> DagDeployment:
    return DagDeployment(
        environment_name=environment_name,
        dag_id=dag.dag_id,
        bucket=bucket,
        folder=dag_s3_path.strip("/"),
        files=list(dag.files),
        transport=transport,
        airflow_api=airflow_api,
    )


def dag_file(name: str) -> bytes:
    return resources.files("mwaa_migrate.dags").joinpath(name).read_bytes()


class DeployResult(Model):
    dag_id: str
    uploaded: list[str]
    unchanged: list[str]


def deploy_dag(s3: S3Client, target: DagDeployment) -> DeployResult:
    """Upload the DAG's files; a file already there with the same content is left alone, so a
    re-run does not make the scheduler parse it again."""
    uploaded, unchanged = [], []
    for name in target.files:
        body = dag_file(name)
        digest = hashlib.sha256(body).hexdigest()
        key = target.key(name)
        try:
            try:
                current = s3.head_object(Bucket=target.bucket, Key=key).get("Metadata", {}).get("sha256")
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
                    raise
                current = None
            if current == digest:
                unchanged.append(key)
                continue
            s3.put_object(
                Bucket=target.bucket,
                Key=key,
                Body=body,
                ContentType="text/x-python",
                Metadata={"sha256": digest},
            )
        except ClientError as error:
            raise from_client_error(error, f"uploading s3://{target.bucket}/{key}") from None
        uploaded.append(key)
    return DeployResult(dag_id=target.dag_id, uploaded=uploaded, unchanged=unchanged)


def _exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return False
        raise from_client_error(error, f"reading s3://{bucket}/{key}") from None
    return True


def remove_dag(s3: S3Client, target: DagDeployment) -> list[str]:
    """Delete the DAG's files from its environment's DAG folder: its own file, then the library,
    unless the other project DAG's file is still in that folder and needs it. Files already gone
    are skipped, so a second call removes nothing. Returns the keys deleted."""
    others = [dag.file for dag in (EXPORT_DAG, IMPORT_DAG) if dag.dag_id != target.dag_id]
    names = [name for name in target.files if name != LIBRARY_FILE]
    if LIBRARY_FILE in target.files and not any(_exists(s3, target.bucket, target.key(n)) for n in others):
        names.append(LIBRARY_FILE)
    removed = []
    for name in names:
        key = target.key(name)
        if not _exists(s3, target.bucket, key):
            continue
        try:
            s3.delete_object(Bucket=target.bucket, Key=key)
        except ClientError as error:
            raise from_client_error(error, f"deleting s3://{target.bucket}/{key}") from None
        removed.append(key)
    return removed


class TriggerResult(Model):
    dag_id: str
    run_id: str
    # False while the scheduler has not parsed the file yet: the state machine waits and asks again.
    parsed: bool
    attempt: int


def trigger_dag(
    webserver: WebserverTransport | AirflowCli,
    target: DagDeployment,
    *,
    run_id: str,
    conf: dict[str, Any],
    attempt: int,
) -> TriggerResult:
    """Unpause and trigger the DAG once it is parsed. Triggering twice with the same run id
    (a retried invocation) finds the first run instead of starting another."""
    airflow = as_transport(webserver)
    if target.dag_id not in airflow.dags():
        for error in airflow.import_errors():
            if any(error.filepath.endswith(name) for name in target.files):
                raise DagRunFailed(f"{error.filepath} does not import: {error.error}")
        return TriggerResult(dag_id=target.dag_id, run_id=run_id, parsed=False, attempt=attempt + 1)

    if airflow.run_state(target.dag_id, run_id) is None:
        airflow.set_paused(target.dag_id, paused=False)
        airflow.trigger(target.dag_id, run_id=run_id, conf=conf)
    return TriggerResult(dag_id=target.dag_id, run_id=run_id, parsed=True, attempt=attempt + 1)


class DagRunCheck(Model):
    dag_id: str
    run_id: str
    state: str
    done: bool
    attempt: int


def _task_log_tail(
    logs: CloudWatchLogsClient, environment: str, dag_id: str, run_id: str, task_id: str
) -> str:
    """The end of the task's last attempt's log (Airflow 2.4+ stream names), or '' if there is none."""
    group = log_group_name(environment, "Task")
    prefix = f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/"
    try:
        streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=prefix)["logStreams"]
        if not streams:
            return ""
        latest = max(streams, key=lambda stream: stream["logStreamName"])
        events = logs.get_log_events(
            logGroupName=group,
            logStreamName=latest["logStreamName"],
            startFromHead=False,
            limit=_LOG_TAIL_LINES,
        )["events"]
    except ClientError:
        return ""  # the log is a detail of the failure message; the failure itself is already certain
    return "\n".join(event["message"] for event in events)


def check_dag_run(
    webserver: WebserverTransport | AirflowCli,
    logs: CloudWatchLogsClient,
    target: DagDeployment,
    *,
    run_id: str,
    attempt: int,
) -> DagRunCheck:
    airflow = as_transport(webserver)
    state = airflow.run_state(target.dag_id, run_id)
    if state is None:
        raise MigrationConflict(f"run {run_id} of {target.dag_id} is not in {target.environment_name}")
    if state in TERMINAL_FAILED:
        raise DagRunFailed(_failure_message(airflow, logs, target, run_id))
    return DagRunCheck(
        dag_id=target.dag_id, run_id=run_id, state=state, done=state == "success", attempt=attempt + 1
    )


def _failure_message(
    airflow: WebserverTransport, logs: CloudWatchLogsClient, target: DagDeployment, run_id: str
) -> str:
    # The tasks that failed themselves, not those that did not run because of them (upstream_failed).
    failed = [task_id for task_id, state in airflow.task_states(target.dag_id, run_id) if state == "failed"]
    message = f"{target.dag_id} run {run_id} in {target.environment_name} failed"
    if failed:
        message += f" in task {', '.join(failed)}"
        if target.transport == "airflow_api":
            # A self-managed Airflow keeps its task logs itself (no MWAA log group to read).
            return message + f"; its log is in {target.environment_name}'s own Airflow"
        tail = _task_log_tail(logs, target.environment_name, target.dag_id, run_id, failed[0])
        if tail:
            message += f"; its log ends:\n{tail}"
    return message


RecordState = Literal["paused", "restored", "live", "rolled_back"]
RECORD_STATES: tuple[RecordState, ...] = ("paused", "restored", "live", "rolled_back")


class MetadataResult(Model):
    """What a finished export or import DAG left in the migration bucket for one phase."""

    kind: Literal["export", "import"]
    phase: Phase
    tables: dict[str, dict[str, int]]
    active_dags: list[str] = Field(default_factory=list)
    unpaused_dags: list[str] = Field(default_factory=list)
    # Active in the source, unknown to the target (the cutover import's).
    missing_dags: list[str] = Field(default_factory=list)
    # Export: paused_at, drain_started_at, drained_at, exported_at (cutover). Import:
    # import_started_at, imported_at, verified_at, unpaused_at (cutover). ISO 8601 UTC.
    timings: dict[str, str] = Field(default_factory=dict)
    # The cutover export's drain: waited_seconds, timed_out, still_running.
    drain: dict[str, Any] = Field(default_factory=dict)
    # The bulk's watermark (both phases' manifests name it).
    watermark: str | None = None
    # The import's conflicts by table: count, refused, differing, resolution and the listed keys
    # ({"key": {column: value}, "reason": "refused" | "differs"}), at most 20 a table.
    conflicts: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # The import's onConflict: fail, keep-target or overwrite.
    on_conflict: str | None = None
    # Tables with history not carried: {"table", "rows", "reason"} (the export's; the import's adds
    # the tables its Airflow lacks and what Airflow 3's migration will drop).
    not_carried: list[dict[str, Any]] = Field(default_factory=list)
    # The import's: history written for the target's next version, by table (task_instance_history
    # from task_fail before Airflow 3): from, candidates, written, unnumbered, why.
    synthesized: dict[str, dict[str, Any]] = Field(default_factory=dict)


def read_export(s3: S3Client, bucket: str, prefix: str, phase: Phase) -> MetadataResult:
    key = export_manifest_key(prefix, phase)
    manifest = read_json(s3, bucket, key)
    if manifest.get("phase") != phase:
        raise MigrationConflict(
            f"s3://{bucket}/{key} is not a {phase} export (phase {manifest.get('phase')!r})"
        )
    tables = {name: {"rows": int(entry["rows"])} for name, entry in manifest.get("tables", {}).items()}
    return MetadataResult(
        kind="export",
        phase=phase,
        tables=tables,
        active_dags=list(manifest.get("active_dags", [])),
        timings={str(k): str(v) for k, v in manifest.get("timings", {}).items()},
        drain=dict(manifest.get("drain", {})),
        watermark=manifest.get("watermark") or None,
        not_carried=list(manifest.get("not_carried", [])),
    )


_COUNTS = ("read", "inserted", "updated", "identical", "conflicts", "dropped")
# Conflicts a result may hold: left to the target, or overwritten with the source's values.
_RESOLVED = {"keep-target": "kept-target", "overwrite": "overwritten"}


def _conflict_problems(name: str, conflicts: int, found: Any, on_conflict: Any) -> list[str]:
    """A table's conflicts must be listed as counted and resolved as the request said."""
    if not conflicts:
        return [f"{name}: conflicts listed but none counted"] if found else []
    if not isinstance(found, dict) or found.get("count") != conflicts:
        return [f"{name}: {conflicts} conflicts counted but not listed as such"]
    resolution = _RESOLVED.get(str(on_conflict))
    if resolution is None or found.get("resolution") != resolution:
        return [
            f"{name}: {conflicts} conflicts, resolved {found.get('resolution')!r} under onConflict "
            f"{on_conflict!r}"
        ]
    return []


def _listed(result: dict[str, Any], table: str) -> int:
    """The rows of `table` the import lists as not carried."""
    entries = result.get("not_carried") or []
    return sum(
        int(entry.get("rows", 0))
        for entry in entries
        if isinstance(entry, dict) and entry.get("table") == table
    )


def read_verified_import(
    s3: S3Client, bucket: str, prefix: str, phase: Phase, exported: MetadataResult
) -> MetadataResult:
    """The phase's import result, checked against its export: every exported row read, and each
    one inserted, updated, identical or a conflict as the target's database counted them
    (`read == inserted + updated + identical + conflicts`; rows of a table the target's Airflow no
    longer has aside), and conflicts only as the request's onConflict allows. A mismatch fails the
    migration."""
    result = read_json(s3, bucket, import_result_key(prefix, phase))
    tables = {
        name: {k: int(v) for k, v in counts.items()} for name, counts in result.get("tables", {}).items()
    }
    columns = result.get("columns", {})
    conflicts = result.get("conflicts") or {}
    on_conflict = result.get("on_conflict")
    problems = []
    if not result.get("verified"):
        problems.append("the import DAG did not verify its input")
    if result.get("phase") != phase or exported.phase != phase:
        problems.append(f"the {phase} import's result or export is of another phase")
    if not isinstance(conflicts, dict):
        problems.append("the import's conflicts are not listed by table")
        conflicts = {}
    for name in sorted(set(conflicts) - set(exported.tables)):
        problems.append(f"{name}: conflicts listed for a table not exported")
    for name, counts in exported.tables.items():
        got = tables.get(name)
        if got is None:
            problems.append(f"{name}: not imported")
            continue
        read, inserted, updated, identical, conflicted, dropped = (got.get(count, 0) for count in _COUNTS)
        absent = bool(columns.get(name, {}).get("table_missing"))
        if read != counts["rows"]:
            problems.append(f"{name}: exported {counts['rows']} rows, import read {read}")
        elif absent and dropped == read:
            continue  # the target's Airflow has no such table (task_fail after 2.10): reported
        elif inserted + updated + identical + conflicted + dropped != read or dropped > _listed(result, name):
            # Rows dropped (a dataset trigger for a DAG the target lacks) only as not carried.
            problems.append(
                f"{name}: read {read}, inserted {inserted}, updated {updated}, identical {identical}, "
                f"conflicts {conflicted}" + (f", dropped {dropped}" if dropped else "")
            )
        else:
            problems += _conflict_problems(name, conflicted, conflicts.get(name), on_conflict)
    if problems:
        raise DagRunFailed(f"{phase} import verification failed: " + "; ".join(problems))
    return MetadataResult(
        kind="import",
        phase=phase,
        tables=tables,
        active_dags=list(result.get("active_dags", [])),
        unpaused_dags=list(result.get("unpaused_dags", [])),
        missing_dags=list(result.get("missing_dags", [])),
        timings={str(k): str(v) for k, v in result.get("timings", {}).items()},
        drain=dict(exported.drain),
        watermark=exported.watermark,
        conflicts=dict(conflicts),
        on_conflict=str(on_conflict) if on_conflict is not None else None,
        not_carried=list(result.get("not_carried", [])),
        synthesized=dict(result.get("synthesized", {})),
    )


def read_cutover_record(s3: S3Client, bucket: str, prefix: str) -> dict[str, Any] | None:
    """The cutover record (docs/cutover.md), or None when the export DAG has not written one."""
    return read_json_if_any(s3, bucket, cutover_record_key(prefix))


def write_cutover_record_state(
    s3: S3Client, bucket: str, prefix: str, state: RecordState, **extra: Any
) -> dict[str, Any]:
    """Move the record to `state` (restored, live, rolled_back, ...): updated_at, one more history
    entry, and `extra` fields (snake_case, e.g. `restored_dags=[...]`) merged in. Written only if
    the record did not change since it was read (S3 conditional write on its ETag), so two writers
    cannot lose each other's entry. Returns the record as written."""
    if state not in RECORD_STATES:
        raise ValueError(f"a cutover record's state is one of {', '.join(RECORD_STATES)}, not {state!r}")
    key = cutover_record_key(prefix)
    try:
        answer = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
            raise MigrationConflict(
                f"s3://{bucket}/{key} does not exist: the source's DAGs were never paused by this pipeline"
            ) from None
        raise from_client_error(error, f"reading s3://{bucket}/{key}") from None
    record = json.loads(answer["Body"].read())
    if not isinstance(record, dict):
        raise MigrationConflict(f"s3://{bucket}/{key} is not a JSON object")
    at = datetime.now(UTC).isoformat()
    history = list(record.get("history", []))
    history.append({"state": state, "at": at, "migration_id": record.get("migration_id")})
    record = {**record, **extra, "state": state, "updated_at": at, "history": history}
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(record, indent=2, sort_keys=True).encode("utf-8"),
            ContentType="application/json",
            IfMatch=answer["ETag"],
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {
            "PreconditionFailed",
            "ConditionalRequestConflict",
        }:
            # A write whose answer was lost and that botocore sent again meets itself: the record
            # is where this call moves it, so the move is done (moving to a state twice is one move).
            current = read_cutover_record(s3, bucket, prefix)
            if current is not None and current.get("state") == state:
                return current
            raise MigrationConflict(f"s3://{bucket}/{key} changed while it was being updated") from None
        raise from_client_error(error, f"writing s3://{bucket}/{key}") from None
    return record
