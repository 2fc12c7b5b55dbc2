"""The migration bucket's objects that say how a migration went: where its reports are, and writing one
(JSON for machines, Markdown beside it for people)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from mwaa_migrate.errors import from_client_error
from mwaa_migrate.execution import execution_name
from mwaa_migrate.run.report_markdown import render_markdown

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from mwaa_migrate.run.report import MigrationReport


def report_key(prefix: str, execution_id: str) -> str:
    return f"{prefix}/reports/{execution_name(execution_id)}.json"


def markdown_key(json_key: str) -> str:
    """The Markdown report beside the JSON one."""
    return json_key.removesuffix(".json") + ".md"


def write_report(s3: S3Client, bucket: str, key: str, report: MigrationReport) -> str:
    """Write the report as JSON at `key` and as Markdown beside it; returns the JSON's URI."""
    uri = f"s3://{bucket}/{key}"
    bodies = (
        (key, json.dumps(report.to_event(), indent=2, sort_keys=True), "application/json"),
        (markdown_key(key), render_markdown(report, uri=uri), "text/markdown; charset=utf-8"),
    )
    for object_key, body, content_type in bodies:
        try:
            s3.put_object(Bucket=bucket, Key=object_key, Body=body.encode(), ContentType=content_type)
        except ClientError as error:
            raise from_client_error(error, f"writing the report to s3://{bucket}/{object_key}") from None
    return uri
