"""One migration per target environment at a time: a lock object in the stack's bucket.

GrantPermissions, the first step that changes anything, takes the lock with a conditional write
(PutObject with If-None-Match: *): of two executions for the same target (a duplicate EventBridge
delivery, a second start by hand) exactly one writes the object. The other fails with
MigrationInProgress naming the execution that holds the lock; holding none, its failure path leaves
the running migration's grants and lock alone.

A lock whose holder is no longer RUNNING (stopped, timed out, or ended without releasing it) is
stale: the next execution takes it over with a conditional overwrite (If-Match on the stale lock's
ETag), so a crashed run never blocks the run that repairs it. FinishMigration and RecordFailure
release the lock only when their own execution holds it.

Every call here is safe to repeat: a conditional write whose answer was lost and that botocore sends
again meets its own lock and counts as taken.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from mwaa_migrate.errors import MigrationError, error_code, from_client_error
from mwaa_migrate.execution import now
from mwaa_migrate.migration_bucket import lock_key
from mwaa_migrate.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient

# A conditional write lost to another (412), or raced by a concurrent one (409): look again.
_LOST_RACE = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "404"})
_ATTEMPTS = 3


class MigrationInProgress(MigrationError):
    """Another execution is migrating to the same target environment. Not retried."""


class Holder(StrEnum):
    THIS_EXECUTION = "this-execution"
    ANOTHER_EXECUTION = "another-execution"
    NOBODY = "nobody"


@dataclass(frozen=True)
class Lock:
    execution_id: str
    etag: str


def read_lock(s3: S3Client, bucket: str, target_environment: str) -> Lock | None:
    key = lock_key(target_environment)
    try:
        answer = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) in {"NoSuchKey", "404"}:
            return None
        raise from_client_error(error, f"reading the migration lock s3://{bucket}/{key}") from None
    body = json.loads(answer["Body"].read())
    return Lock(execution_id=str(body.get("executionId", "")), etag=answer["ETag"])


def holder(s3: S3Client, bucket: str, target_environment: str, execution_id: str) -> Holder:
    lock = read_lock(s3, bucket, target_environment)
    if lock is None:
        return Holder.NOBODY
    return Holder.THIS_EXECUTION if lock.execution_id == execution_id else Holder.ANOTHER_EXECUTION


def _is_running(sfn: SFNClient, execution_id: str) -> bool:
    try:
        return sfn.describe_execution(executionArn=execution_id)["status"] == "RUNNING"
    except ClientError as error:
        if error_code(error) in {"ExecutionDoesNotExist", "InvalidArn"}:
            return False
        raise from_client_error(error, f"reading the status of {execution_id}") from None


def acquire(
    s3: S3Client,
    sfn: SFNClient,
    *,
    bucket: str,
    source_environment: str,
    target_environment: str,
    execution_id: str,
) -> None:
    """Take the target's lock for this execution, or raise MigrationInProgress."""
    key = lock_key(target_environment)
    body = json.dumps(
        {
            "executionId": execution_id,
            "sourceEnvironmentName": source_environment,
            "targetEnvironmentName": target_environment,
            "acquiredAt": now().isoformat(),
        }
    ).encode()
    doing = f"taking the migration lock s3://{bucket}/{key}"
    for _ in range(_ATTEMPTS):
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json", IfNoneMatch="*")
            return
        except ClientError as error:
            if error_code(error) not in _LOST_RACE:
                raise from_client_error(error, doing) from None
        current = read_lock(s3, bucket, target_environment)
        if current is None:
            continue  # released in between: try again
        if current.execution_id == execution_id:
            return  # ours already (a retried step, or a write whose answer was lost)
        if _is_running(sfn, current.execution_id):
            raise MigrationInProgress(
                f"execution {current.execution_id} is migrating to {target_environment}: "
                "this execution changed nothing; run it again once that one has ended"
            )
        try:
            s3.put_object(
                Bucket=bucket, Key=key, Body=body, ContentType="application/json", IfMatch=current.etag
            )
        except ClientError as error:
            if error_code(error) not in _LOST_RACE:
                raise from_client_error(error, doing) from None
            continue  # someone else took it over first: look again
        logger.warning(
            "took over the lock of an execution that is no longer running",
            extra={"stale_execution": current.execution_id, "target": target_environment},
        )
        return
    raise MigrationInProgress(f"the migration lock of {target_environment} kept changing hands")


def release(s3: S3Client, *, bucket: str, target_environment: str, execution_id: str) -> bool:
    """Remove the lock if this execution holds it; True when it did."""
    lock = read_lock(s3, bucket, target_environment)
    if lock is None or lock.execution_id != execution_id:
        return False
    key = lock_key(target_environment)
    try:
        s3.delete_object(Bucket=bucket, Key=key)
    except ClientError as error:
        raise from_client_error(error, f"releasing the migration lock s3://{bucket}/{key}") from None
    return True
