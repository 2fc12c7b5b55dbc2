"""A self-managed Airflow's export run by hand (access mode hands_on): the hand-over and the landing.

The hand-over (HandOverExport, invoked with `.waitForTaskToken`) writes what the operator needs
under the migration's prefix, `{prefix}/hands-on/{phase}/`: `conf.json` (the conf to trigger the
export DAG with: presigned forms and URLs, the sealing key's public half, lasting until the wait's
deadline), `steps.md` (the exact steps) and `wait.json` (the execution's task token). The DAG's
files are DeployDag's, in `{prefix}/hands-on/dags/`.

The landing (ExportLanded, on S3's "Object Created" event for an export's manifest) reads the wait
and the manifest again from S3, never trusting the event's content: a manifest older than the wait,
of another migration, or with no wait for it, changes nothing. A manifest that is not a sound
export fails the wait (the execution then records its failure); a sound one ends the wait with
what CheckDagRun returns for an export run that succeeded. Each wait ends once: Step Functions
refuses a token twice, so a repeated event finds the wait over.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from mwaa_migrate.errors import InvalidMigrationRequest, MigrationConflict, error_code, from_client_error
from mwaa_migrate.execution import now
from mwaa_migrate.metadata.metadata_dags import EXPORT_DAG, read_export
from mwaa_migrate.metadata.self_managed_access import export_access
from mwaa_migrate.migration_bucket import export_manifest_of, hands_on_key, write_json
from mwaa_migrate.models import DagDeployment, Model
from mwaa_migrate.redaction import redact_text

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient

    from mwaa_migrate.step_events import MetadataConf

CONF_FILE, STEPS_FILE, WAIT_FILE = "conf.json", "steps.md", "wait.json"
# The error a wait ends with when the landed manifest is not a sound export of this migration.
EXPORT_INVALID = "HandsOnExportInvalid"
# Step Functions' answers for a token whose wait is over (answered, timed out, execution ended).
_WAIT_OVER = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}


class HandOver(Model):
    """Where a hands-on export's steps are, and until when (no token, no signature: this is the
    function's output, kept in the execution's history)."""

    phase: str
    dags_uri: str
    conf_uri: str
    steps_uri: str
    deadline: str
    run_id: str


def hand_over(
    s3: S3Client,
    *,
    deployment: DagDeployment,
    conf: MetadataConf,
    execution_id: str,
    run_id: str,
    task_token: str,
    deadline_seconds: int,
    public_key: bytes,
) -> HandOver:
    """Write the phase's conf, steps and wait. The presigned forms last as long as the wait, so an
    export started after the deadline cannot write its record, and so pauses nothing."""
    bucket, prefix, phase = conf.bucket, conf.prefix, conf.phase
    deadline = now() + timedelta(seconds=deadline_seconds)
    run_conf = conf.to_event()
    run_conf["selfManaged"] = export_access(
        s3, bucket=bucket, prefix=prefix, public_key=public_key, expires_in=deadline_seconds
    )
    # Written first: the export can run only with the conf written after it, so every manifest of
    # this hand-over lands after the wait exists, and is newer than it.
    write_json(
        s3,
        bucket,
        hands_on_key(prefix, phase, WAIT_FILE),
        {
            "taskToken": task_token,
            "executionId": execution_id,
            "migrationId": conf.migration_id,
            "phase": phase,
            "runId": run_id,
            "deadline": deadline.isoformat(),
        },
        what="the execution's wait",
    )
    dags_uri = f"s3://{deployment.bucket}/{deployment.folder}/"
    conf_uri = write_json(
        s3, bucket, hands_on_key(prefix, phase, CONF_FILE), run_conf, what="the export's conf"
    )
    steps = steps_text(
        source=conf.source_environment,
        phase=phase,
        dags_uri=dags_uri,
        conf_uri=conf_uri,
        run_id=run_id,
        deadline=deadline,
        files=deployment.files,
    )
    steps_key = hands_on_key(prefix, phase, STEPS_FILE)
    try:
        s3.put_object(Bucket=bucket, Key=steps_key, Body=steps.encode(), ContentType="text/markdown")
    except ClientError as error:
        raise from_client_error(error, f"writing s3://{bucket}/{steps_key}") from None
    return HandOver(
        phase=phase,
        dags_uri=dags_uri,
        conf_uri=conf_uri,
        steps_uri=f"s3://{bucket}/{steps_key}",
        deadline=deadline.isoformat(),
        run_id=run_id,
    )


def steps_text(
    *,
    source: str,
    phase: str,
    dags_uri: str,
    conf_uri: str,
    run_id: str,
    deadline: datetime,
    files: list[str],
) -> str:
    """What the operator does, in their Airflow, for one phase (mwaa-migrate hands-on prints it)."""
    dag_id = EXPORT_DAG.dag_id
    window = (
        "This run opens the downtime window: it records your active DAGs and pauses exactly those, "
        "waits for their running tasks, then exports what changed since the bulk. If the migration "
        "fails after that, its report lists the DAGs to unpause."
        if phase == "cutover"
        else "Nothing is paused: production runs on while the history that is already final is copied."
    )
    return "\n".join(
        [
            f"# mwaa-migrate: the {phase} export of {source}, run by hand",
            "",
            f"Before {deadline.strftime('%Y-%m-%d %H:%M')} UTC (then the execution stops waiting, and the "
            "conf's upload forms expire). " + window,
            "",
            f"1. Copy the export DAG's files ({', '.join(files)}) into your Airflow's dags/",
            "   folder (once: the same files serve both phases), e.g.",
            f'   aws s3 cp --recursive {dags_uri} "$AIRFLOW_HOME/dags/"',
            "   or `mwaa-migrate hands-on --to DIR`, which downloads them with this phase's conf. If your",
            "   dags/ folder is synced from elsewhere (S3, git), put them where it syncs from instead.",
            f"2. Wait until Airflow lists the DAG: airflow dags list | grep {dag_id}",
            f"3. Get this phase's conf ({conf_uri}, e.g. aws s3 cp {conf_uri} conf.json). It holds",
            "   presigned upload URLs: keep it out of tickets and chats.",
            "4. Unpause and trigger the export with it:",
            f"   airflow dags unpause {dag_id}",
            f'   airflow dags trigger {dag_id} --run-id {run_id} --conf "$(cat conf.json)"',
            "5. Nothing else: the execution goes on by itself once the export's manifest lands in the",
            "   migration bucket. If the run fails, fix what its log says and clear its failed task.",
            *(
                [
                    "6. Once the migration has ended, remove the two files from your dags/ folder",
                    f"   (the pipeline cannot) and the DAG's runs: airflow dags delete {dag_id}",
                ]
                if phase == "cutover"
                else []
            ),
            "",
        ]
    )


class Landing(Model):
    """What one manifest's arrival did to a waiting execution."""

    outcome: Literal["resumed", "failed", "ignored"]
    reason: str
    key: str
    execution_id: str | None = None
    phase: str | None = None


def export_landed(s3: S3Client, sfn: SFNClient, *, bucket: str, key: str, stack_bucket: str) -> Landing:
    """End the wait of the execution whose hands-on export wrote s3://bucket/key, if one waits."""
    # An export's manifest in the migration bucket: the only keys a landing looks at.
    found = export_manifest_of(key)
    if bucket != stack_bucket or found is None:
        return Landing(outcome="ignored", reason="not an export's manifest in the migration bucket", key=key)
    prefix, phase = found
    wait_key = hands_on_key(prefix, phase, WAIT_FILE)
    wait, waiting_since = _object_json(s3, bucket, wait_key)
    if wait is None or waiting_since is None:
        return Landing(outcome="ignored", reason="no hands-on export waits for it", key=key, phase=phase)
    execution_id = str(wait.get("executionId"))
    token = str(wait["taskToken"])
    try:
        manifest, written_at = _object_json(s3, bucket, key)
        if manifest is None or written_at is None:
            return Landing(
                outcome="ignored",
                reason="the manifest is gone",
                key=key,
                execution_id=execution_id,
                phase=phase,
            )
        if written_at < waiting_since:
            return Landing(
                outcome="ignored",
                reason="the manifest was written before this execution's wait began (an earlier run's): "
                "run the export with this phase's conf",
                key=key,
                execution_id=execution_id,
                phase=phase,
            )
        if manifest.get("migrationId") != wait.get("migrationId"):
            raise MigrationConflict(
                f"s3://{bucket}/{key} is the export of migration {manifest.get('migrationId')!r}, not "
                f"{wait.get('migrationId')!r}"
            )
        result = read_export(s3, bucket, prefix, "cutover" if phase == "cutover" else "bulk")
    # A manifest of the wrong shape (a table without its rows, ...) is as unsound as a foreign one:
    # raising would only have EventBridge deliver it again until the deadline.
    except (MigrationConflict, InvalidMigrationRequest, KeyError, TypeError, ValueError) as error:
        cause = redact_text(f"the hands-on {phase} export is not sound: {type(error).__name__}: {error}")
        ended = _answer(
            lambda: sfn.send_task_failure(taskToken=token, error=EXPORT_INVALID, cause=cause[:32768])
        )
        return Landing(
            outcome="failed" if ended else "ignored",
            reason=cause if ended else "the execution no longer waits",
            key=key,
            execution_id=execution_id,
            phase=phase,
        )
    output = json.dumps({"result": result.to_event()})
    ended = _answer(lambda: sfn.send_task_success(taskToken=token, output=output))
    return Landing(
        outcome="resumed" if ended else "ignored",
        reason=f"the {phase} export landed" if ended else "the execution no longer waits",
        key=key,
        execution_id=execution_id,
        phase=phase,
    )


def _answer(send: Any) -> bool:
    """Answer the wait; False when it is over already (answered before, timed out, stopped)."""
    try:
        send()
    except ClientError as error:
        if error_code(error) in _WAIT_OVER:
            return False
        raise from_client_error(error, "answering the execution's wait") from None
    return True


def _object_json(s3: S3Client, bucket: str, key: str) -> tuple[dict[str, Any] | None, datetime | None]:
    """A JSON object and when S3 says it was written (S3's clock, not the writer's); (None, None)
    when there is no such object."""
    try:
        answer = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) in {"NoSuchKey", "404", "NotFound"}:
            return None, None
        raise from_client_error(error, f"reading s3://{bucket}/{key}") from None
    try:
        data = json.loads(answer["Body"].read())
    except ValueError:
        raise MigrationConflict(f"s3://{bucket}/{key} is not JSON") from None
    if not isinstance(data, dict):
        raise MigrationConflict(f"s3://{bucket}/{key} is not a JSON object")
    return data, answer["LastModified"]
