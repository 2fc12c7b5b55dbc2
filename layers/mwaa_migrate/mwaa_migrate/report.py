"""Step 7: the migration's record. Written to the migration bucket as JSON whether the migration
succeeded or failed, so every execution ends with an outcome someone can read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError
from pydantic import Field

from mwaa_migrate.errors import from_client_error
from mwaa_migrate.models import Model

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class Failure(Model):
    state: str
    error: str
    cause: str


class MigrationReport(Model):
    status: Literal["SUCCEEDED", "FAILED"]
    migration_id: str
    execution_id: str
    source: dict[str, Any]
    target: dict[str, Any]
    started_at: str
    finished_at: str
    duration_seconds: float
    carried_settings: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    logs: dict[str, Any] = Field(default_factory=dict)
    policies_removed: list[str] = Field(default_factory=list)
    failure: Failure | None = None


def execution_name(execution_id: str) -> str:
    """arn:aws:states:...:execution:machine:NAME -> NAME."""
    return execution_id.rsplit(":", 1)[-1]


def now() -> datetime:
    return datetime.now(UTC)


def seconds_between(started_at: str, finished: datetime) -> float:
    started = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    return round((finished - started).total_seconds(), 3)


def report_key(prefix: str, execution_id: str) -> str:
    return f"{prefix}/reports/{execution_name(execution_id)}.json"


def write_report(s3: S3Client, bucket: str, key: str, report: MigrationReport) -> str:
    body = json.dumps(report.to_event(), indent=2, sort_keys=True).encode()
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    except ClientError as error:
        raise from_client_error(error, f"writing the report to s3://{bucket}/{key}") from None
    return f"s3://{bucket}/{key}"
