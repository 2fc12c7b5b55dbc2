"""The migration bucket: its key layout, its JSON records read and written in one way, and writing a
report (JSON for machines, Markdown beside it for people).

Every key is spelled here, under the migration's prefix `migrations/SOURCE/TARGET` (docs/cutover.md):

    export/{bulk,cutover}/manifest.json   the sealed export's manifest, beside its tables
    import/{bulk,cutover}/result.json     what the import DAG did and verified
    cutover/record.json                   the DAGs the cutover paused (the way back starts them again)
    target/files.json                     the DAG, plugin and requirements files copied to the target
    secrets/airflow-configuration.json    the target's sensitive Airflow options, encrypted
    hands-on/dags/, hands-on/PHASE/       an export run by hand: its DAG files, conf, steps and wait
    logs/EXECUTION/                       the task-log copy's (its listing, work items and results
                                          are named in logs/log_listing.py)
    reports/EXECUTION.json (and .md)      each run's report

and outside the migrations, `locks/TARGET.json` (the execution migrating to a target) and, for a run
refused before it had a plan, its report under `migrations/unplanned`.

The project's DAGs, which run inside Airflow and import nothing of the layer, spell the export's
and the import's keys themselves (dags/mwaa_migrate_metadata.py); tests hold the two the same
(tests/unit/test_migration_bucket.py).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mwaa_migrate.errors import MigrationConflict, error_code, from_client_error
from mwaa_migrate.execution import execution_name
from mwaa_migrate.run.report_markdown import render_markdown

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from mwaa_migrate.run.report import MigrationReport
    from mwaa_migrate.step_events import Phase


_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}


def read_bytes(s3: S3Client, bucket: str, key: str) -> bytes:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        raise from_client_error(error, f"reading s3://{bucket}/{key}") from None


def read_json_if_any(s3: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    """A JSON object of the migration bucket, or None when there is none at the key."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error_code(error) in _NOT_FOUND:
            return None
        raise from_client_error(error, f"reading s3://{bucket}/{key}") from None
    try:
        data = json.loads(body)
    except ValueError:
        raise MigrationConflict(f"s3://{bucket}/{key} is not JSON") from None
    if not isinstance(data, dict):
        raise MigrationConflict(f"s3://{bucket}/{key} is not a JSON object")
    return data


def read_json(s3: S3Client, bucket: str, key: str) -> dict[str, Any]:
    """A JSON object the migration wrote before: its absence is a conflict, not an empty record."""
    data = read_json_if_any(s3, bucket, key)
    if data is None:
        raise MigrationConflict(f"s3://{bucket}/{key} does not exist")
    return data


def write_json(s3: S3Client, bucket: str, key: str, data: Any, *, what: str = "") -> str:
    """Write a JSON record (compact: machines read it); returns its URI."""
    uri = f"s3://{bucket}/{key}"
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    except ClientError as error:
        raise from_client_error(error, f"writing {what + ' to ' if what else ''}{uri}") from None
    return uri


def migration_prefix(source_name: str, target_name: str) -> str:
    """The migration's keys in the bucket."""
    return f"migrations/{source_name}/{target_name}"


def lock_key(target_environment: str) -> str:
    """The target's lock: which execution is migrating to it (run/lock.py)."""
    return f"locks/{target_environment}.json"


# Where a run refused at its plan (no source and target known) writes its report.
UNPLANNED_PREFIX = "migrations/unplanned"


def source_migrations_prefix(source_name: str) -> str:
    """Every migration of one source (a folder of migration prefixes)."""
    return f"migrations/{source_name}/"


# An export's manifest: the prefix of the migration it belongs to, and its phase.
_EXPORT_MANIFEST = re.compile(
    r"^(?P<prefix>migrations/[A-Za-z][0-9A-Za-z_-]*/[A-Za-z][0-9A-Za-z_-]*)/export/(?P<phase>bulk|cutover)/manifest\.json$"
)


def export_manifest_key(prefix: str, phase: Phase) -> str:
    return f"{prefix}/export/{phase}/manifest.json"


def export_manifest_of(key: str) -> tuple[str, Phase] | None:
    """(the migration's prefix, the phase) of an export's manifest key; None for any other key."""
    found = _EXPORT_MANIFEST.match(key)
    if found is None:
        return None
    phase: Phase = "bulk" if found["phase"] == "bulk" else "cutover"
    return found["prefix"], phase


def import_result_key(prefix: str, phase: Phase) -> str:
    return f"{prefix}/import/{phase}/result.json"


def cutover_record_key(prefix: str) -> str:
    return f"{prefix}/cutover/record.json"


def files_record_key(prefix: str) -> str:
    return f"{prefix}/target/files.json"


def configuration_key(prefix: str) -> str:
    """The target's sensitive Airflow configuration options, encrypted."""
    return f"{prefix}/secrets/airflow-configuration.json"


def logs_base_key(prefix: str, execution_id: str) -> str:
    """One run's task-log copy: its listing, work items and the map's results below."""
    return f"{prefix.strip('/')}/logs/{execution_name(execution_id)}"


def hands_on_dags_folder(prefix: str) -> str:
    """Where a hands-on source's export DAG files wait for you to copy them into your dags/ folder."""
    return f"{prefix}/hands-on/dags"


def hands_on_key(prefix: str, phase: str, name: str) -> str:
    """A hands-on export's phase objects: `conf.json` (what you trigger it with), `steps.md`, and
    `wait.json` (the waiting execution's task token: the stack's functions read it, your Airflow
    cannot)."""
    return f"{prefix}/hands-on/{phase}/{name}"


def reports_prefix(prefix: str) -> str:
    return f"{prefix}/reports/"


def report_key(prefix: str, execution_id: str) -> str:
    return f"{reports_prefix(prefix)}{execution_name(execution_id)}.json"


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
