"""List the source's log streams to copy, every page, and write them to the migration bucket as the
work items of the state machine's Distributed Map (the log copy's fan-out).

For each log group the request names (`airflow-{source}-{kind}`, Task by default), every page of
DescribeLogStreams is read in name order. A stream is selected when its metadata says it may hold
events of the window (`may_hold_window`), when it is a failed task instance's log if the request asks
for those only (Task group; the export's `task_instance` rows say which failed), and it gets the name
the target's Airflow gives it (`log_names`). Each keeps what the description tells of it (first and
last event times, stored bytes where reported), which the copy's read planner sizes it by. The
selected streams are cut into work items of at most
`MAX_STREAMS_PER_ITEM` streams (more, smaller items when there are fewer streams than the map may run
at once), written as one JSON array the Distributed Map's ItemReader reads:

    s3://{bucket}/{prefix}/logs/{execution}/items.json          the work items
    s3://{bucket}/{prefix}/logs/{execution}/listing/part-N.json  streams found by each call
    s3://{bucket}/{prefix}/logs/{execution}/listing.json         what the listing found, per group
    s3://{bucket}/{prefix}/logs/{execution}/results/N.json       written by the copy of item N
    s3://{bucket}/{prefix}/logs/{execution}/map-run/             the Map Run's ResultWriter output

A group the source has no log group for is skipped with the reason. Streams to copy into a group the
target lacks stop the migration (MigrationConflict): the target's logging must be enabled first.
A listing near Lambda's time limit writes what it found so far as a part file and returns where to go
on; the state machine calls it again.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from mwaa_migrate.dags import mwaa_migrate_metadata as metadata
from mwaa_migrate.errors import (
    InvalidMigrationRequest,
    MigrationConflict,
    TransientAwsError,
    error_code,
    from_client_error,
)
from mwaa_migrate.logs.log_copy import (
    DEFAULT_SAFETY_MARGIN_MS,
    MAX_FILTER_STREAMS,
    MAX_LISTED,
    StreamFacts,
    StreamNote,
    StreamToCopy,
    WorkItem,
    no_target_group,
)
from mwaa_migrate.logs.log_counts import ListingCounts
from mwaa_migrate.logs.log_names import (
    DagRuns,
    FailedTaskInstances,
    epoch_millis,
    log_group_name,
    parse_task_stream,
    target_stream_name,
)
from mwaa_migrate.migration_bucket import logs_base_key, read_json, write_json
from mwaa_migrate.models import LogGroupKind, Model
from mwaa_migrate.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import LogStreamTypeDef
    from mypy_boto3_s3 import S3Client

    from mwaa_migrate.step_events import ListLogStreamsEvent

# As many streams as one FilterLogEvents call names: a work item of small streams is one read batch,
# and a batch's last page is part full, so fewer, fuller batches read in fewer calls.
MAX_STREAMS_PER_ITEM = MAX_FILTER_STREAMS
# DescribeLogStreams' largest page.
DESCRIBE_PAGE = 50
# DescribeLogStreams' lastEventTimestamp "updates on an eventual consistency basis, typically in less
# than an hour", and no event is accepted more than 2 hours ahead of its ingestion: a stream whose
# newest timestamp (event, ingestion or creation) is older than `since` minus this has no event in
# the window.
STREAM_ACTIVITY_SLACK_MS = 2 * 60 * 60 * 1000
_NOT_FOUND = "ResourceNotFoundException"


class GroupListing(ListingCounts):
    """What the listing found in one log group (ListingCounts: its streams, and what became of them)."""

    group: LogGroupKind
    source_group: str
    target_group: str
    target_retention_days: int | None = None
    target_exists: bool = True
    # Set when the whole group is skipped.
    skipped_reason: str | None = None


class ListingCursor(Model):
    """Where the listing goes on: group `group` (index into the groups), from page `next_token`."""

    group: int = Field(ge=0)
    next_token: str | None = None


class LogListing(Model):
    """The listing's progress between calls, and at the end what it wrote."""

    done: bool
    resume_at: ListingCursor | None = None
    bucket: str
    base_key: str
    since: datetime
    until: datetime
    failed_tasks_only: bool = False
    groups: list[GroupListing]
    parts: int = Field(default=0, ge=0)
    describe_calls: int = 0
    items: int = 0
    streams: int = 0
    notes: list[StreamNote] = Field(default_factory=list)

    @property
    def items_key(self) -> str:
        return f"{self.base_key}/items.json"

    @property
    def listing_key(self) -> str:
        return f"{self.base_key}/listing.json"

    @property
    def results_prefix(self) -> str:
        return f"{self.base_key}/results/"

    @property
    def map_run_prefix(self) -> str:
        return f"{self.base_key}/map-run"

    def part_key(self, number: int) -> str:
        return f"{self.base_key}/listing/part-{number:05d}.json"

    def to_output(self) -> dict[str, Any]:
        """The state machine's view: the progress plus the keys the map and the summary read."""
        return {**self.to_event(), **{key: getattr(self, name) for key, name in _DERIVED.items()}}

    @classmethod
    def from_output(cls, output: dict[str, Any]) -> dict[str, Any]:
        """`to_output`'s form without the keys it derives, to validate as a LogListing."""
        return {key: value for key, value in output.items() if key not in _DERIVED}


_DERIVED = {
    "itemsKey": "items_key",
    "listingKey": "listing_key",
    "resultsPrefix": "results_prefix",
    "mapRunPrefix": "map_run_prefix",
}


def result_key(results_prefix: str, index: int) -> str:
    return f"{results_prefix}{index:06d}.json"


def stream_facts(stream: LogStreamTypeDef) -> StreamFacts:
    """What the copy's read planner uses of a stream's description: its first and last event times
    and its stored bytes where reported (AWS reports 0 for streams since 2019: unknown)."""
    return StreamFacts(
        first_event=stream.get("firstEventTimestamp"),
        last_event=stream.get("lastEventTimestamp"),
        stored_bytes=stream.get("storedBytes") or None,
    )


def may_hold_window(stream: LogStreamTypeDef, since_ms: int, until_ms: int) -> bool:
    """Whether a stream's metadata allows events in [since, until)."""
    first = stream.get("firstEventTimestamp")
    if first is not None and first >= until_ms:
        return False
    marks = [
        stream[key] for key in ("lastEventTimestamp", "lastIngestionTime", "creationTime") if key in stream
    ]
    return not marks or max(marks) >= since_ms - STREAM_ACTIVITY_SLACK_MS


# ---------------------------------------------------------------------------------------------------


class _Export:
    """One of the migration's exports (`{prefix}/export/{phase}/`), read as its format documents it (see
    `mwaa_migrate_metadata`): `manifest.json` names each table's file with its sha256 and row count.
    Table files are gzipped (PostgreSQL's COPY text format since version 5, JSON Lines before),
    sealed with the migration's data key (which KMS opens for this migration only), plain in the
    first. Only the tables the listing needs are read, once per call."""

    def __init__(
        self, s3: S3Client, kms: Callable[[], KMSClient], event: ListLogStreamsEvent, phase: str
    ) -> None:
        self._s3, self._kms, self._bucket = s3, kms, event.bucket
        self._folder, self._migration_id = f"{event.prefix.strip('/')}/export/{phase}", event.migration_id
        self._manifest: dict[str, Any] | None = None
        self._box: metadata.SecretBox | None = None

    def _get(self, name: str) -> bytes | None:
        key = f"{self._folder}/{name}"
        try:
            return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error_code(error) in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise from_client_error(error, f"reading s3://{self._bucket}/{key}") from error

    def manifest(self) -> dict[str, Any]:
        if self._manifest is None:
            body = self._get(metadata.MANIFEST_FILE)
            try:
                manifest = json.loads(body) if body is not None else {}
            except ValueError as error:
                raise MigrationConflict(f"the export's {metadata.MANIFEST_FILE} is not JSON") from error
            if body is not None and (
                not isinstance(manifest, dict) or manifest.get("format") != metadata.FORMAT_NAME
            ):
                raise MigrationConflict(
                    f"the export's {metadata.MANIFEST_FILE} is not a {metadata.FORMAT_NAME} manifest"
                )
            self._manifest = manifest
        return self._manifest

    def _secret_box(self) -> metadata.SecretBox:
        if self._box is None:
            try:
                envelope = metadata.SecretsEnvelope.from_json(self.manifest().get("secrets"))
                self._box = metadata.open_secret_box(
                    metadata.KmsKeys(self._kms()), envelope, self._migration_id
                )
            except ClientError as error:
                raise from_client_error(error, "opening the export's data key with KMS") from error
            except metadata.MetadataError as error:
                raise MigrationConflict(f"the export's data key cannot be opened: {error}") from error
        return self._box

    def rows(self, table: str) -> list[dict[str, Any]] | None:
        """The table's rows, or None when the export does not carry it."""
        tables = self.manifest().get("tables")
        entry = tables.get(table) if isinstance(tables, dict) else None
        if not isinstance(entry, dict):
            return None
        name = str(entry.get("file", ""))
        body = self._get(name) if name and "/" not in name else None
        if body is None:
            raise MigrationConflict(f"the export's manifest lists {table} in {name!r}, which is missing")
        try:
            if name.endswith(metadata.TABLE_FILE_SUFFIX):
                return metadata.decode_table(
                    body, metadata.TableEntry.from_json(table, entry), self._secret_box()
                )
            return _plain_table(name, body, entry)
        except metadata.MetadataError as error:
            raise MigrationConflict(f"the export's {table} table cannot be read: {error}") from error


class _Exports:
    """Both exports of a migration, the bulk and the cutover's delta, read as one: a row the delta
    carries again (a run finished or changed after the bulk) replaces the bulk's."""

    _KEYS: ClassVar[dict[str, tuple[str, ...]]] = {
        "dag_run": ("dag_id", "run_id"),
        "task_instance": ("dag_id", "task_id", "run_id", "map_index"),
    }

    def __init__(self, s3: S3Client, kms: Callable[[], KMSClient], event: ListLogStreamsEvent) -> None:
        self._phases = [_Export(s3, kms, event, phase) for phase in ("bulk", "cutover")]
        self._runs: DagRuns | None = None

    def rows(self, table: str) -> list[dict[str, Any]] | None:
        found = [rows for rows in (export.rows(table) for export in self._phases) if rows is not None]
        if not found:
            return None
        key = self._KEYS.get(table)
        if key is None:
            return [row for rows in found for row in rows]
        merged = {tuple(row.get(part) for part in key): row for rows in found for row in rows}
        return list(merged.values())

    def runs(self) -> DagRuns:
        if self._runs is None:
            self._runs = DagRuns.from_rows(self.rows("dag_run") or [])
        return self._runs


def _plain_table(name: str, body: bytes, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """A table file of the first format: gzipped JSON Lines, its sha256 and row count in the manifest."""
    if hashlib.sha256(body).hexdigest() != entry.get("sha256"):
        raise MigrationConflict(f"the export's {name} does not match the sha256 its manifest gives")
    try:
        lines = [line for line in gzip.decompress(body).split(b"\n") if line]
    except (OSError, EOFError) as error:
        raise MigrationConflict(f"the export's {name} is not a gzip file ({error})") from error
    if len(lines) != entry.get("rows"):
        raise MigrationConflict(
            f"the export's {name} holds {len(lines)} rows, its manifest says {entry.get('rows')}"
        )
    return [json.loads(line) for line in lines]


def list_log_streams(
    logs: CloudWatchLogsClient,
    s3: S3Client,
    event: ListLogStreamsEvent,
    *,
    time_left_ms: Callable[[], int],
    kms: Callable[[], KMSClient] | None = None,
    safety_margin_ms: int = DEFAULT_SAFETY_MARGIN_MS,
) -> LogListing:
    """List (or go on listing) the streams to copy; when done, write the work items."""
    listing = (
        LogListing.model_validate(LogListing.from_output(event.progress))
        if event.progress
        else _start(logs, event)
    )
    if listing.done:
        return listing
    export = _Exports(s3, kms or _no_kms, event)
    failed, groups = _failed_task_instances(export, listing)
    cursor = listing.resume_at or ListingCursor(group=0)
    since_ms, until_ms = epoch_millis(listing.since), epoch_millis(listing.until)
    describe_calls = listing.describe_calls
    parts = listing.parts
    notes = list(listing.notes)
    moved = False
    for index in range(cursor.group, len(groups)):
        group = groups[index]
        if group.skipped_reason is not None:
            continue
        token = cursor.next_token if index == cursor.group else None
        found: list[StreamToCopy] = []
        while True:
            if moved and time_left_ms() < safety_margin_ms:
                groups[index] = group
                parts = _write_part(s3, listing, parts, group.group, found)
                progress = listing.model_copy(
                    update={
                        "resume_at": ListingCursor(group=index, next_token=token),
                        "groups": groups,
                        "parts": parts,
                        "describe_calls": describe_calls,
                        "notes": notes[:MAX_LISTED],
                    }
                )
                logger.info("log listing paused to resume", extra={"listing": progress.to_event()})
                return progress
            page, token = _describe_page(logs, group.source_group, token)
            describe_calls += 1
            moved = True
            group = _select(
                page,
                group,
                found=found,
                notes=notes,
                export=export,
                failed=failed,
                target_airflow_version=event.target_airflow_version,
                since_ms=since_ms,
                until_ms=until_ms,
            )
            if token is None:
                break
        if group.streams_selected and not group.target_exists:
            raise no_target_group(group.target_group)
        groups[index] = group
        parts = _write_part(s3, listing, parts, group.group, found)
    finished = listing.model_copy(
        update={
            "groups": groups,
            "parts": parts,
            "describe_calls": describe_calls,
            "notes": notes[:MAX_LISTED],
        }
    )
    return _write_items(s3, finished, max_concurrency=event.max_concurrency)


def _start(logs: CloudWatchLogsClient, event: ListLogStreamsEvent) -> LogListing:
    """The groups to list: which exist in the source and the target, and the target's retention."""
    until = event.window_end
    if until.tzinfo is None:
        raise InvalidMigrationRequest("windowEnd must carry a time zone")
    source_groups = _log_groups(logs, log_group_name(event.source_environment_name, ""))
    target_groups = _log_groups(logs, log_group_name(event.target_environment_name, ""))
    groups = []
    for kind in event.log_groups:
        source_group = log_group_name(event.source_environment_name, kind)
        target_group = log_group_name(event.target_environment_name, kind)
        skipped = None
        if source_group not in source_groups:
            skipped = (
                f"the source has no log group {source_group}: its {kind} logs were never sent to "
                "CloudWatch Logs"
            )
        groups.append(
            GroupListing(
                group=kind,
                source_group=source_group,
                target_group=target_group,
                target_retention_days=target_groups.get(target_group),
                target_exists=target_group in target_groups,
                skipped_reason=skipped,
            )
        )
    return LogListing(
        done=False,
        bucket=event.bucket,
        base_key=logs_base_key(event.prefix, event.execution_id),
        since=until - timedelta(days=event.log_days),
        until=until,
        failed_tasks_only=event.failed_tasks_only,
        groups=groups,
    )


def _no_kms() -> KMSClient:
    raise MigrationConflict("the export is sealed, and this listing was given no KMS client to open it")


def _failed_task_instances(
    export: _Exports, listing: LogListing
) -> tuple[FailedTaskInstances | None, list[GroupListing]]:
    """With failedTasksOnly, the failed task instances of the export; when the export cannot say
    (no task_instance table), the Task group is skipped with that reason."""
    groups = list(listing.groups)
    task = next((i for i, g in enumerate(groups) if g.group == "Task" and g.skipped_reason is None), None)
    if not listing.failed_tasks_only or task is None:
        return None, groups
    rows = export.rows("task_instance")
    if rows is not None:
        return FailedTaskInstances.from_rows(rows, export.runs()), groups
    groups[task] = groups[task].model_copy(
        update={
            "skipped_reason": (
                "failedTasksOnly: the migration's export has no task_instance table to tell failed "
                "task instances by, so no Task logs were copied"
            )
        }
    )
    return None, groups


def _log_groups(logs: CloudWatchLogsClient, prefix: str) -> dict[str, int | None]:
    """The log groups whose names start with prefix, with their retention (None: never expire)."""
    found: dict[str, int | None] = {}
    try:
        for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix):
            for group in page.get("logGroups", []):
                found[group["logGroupName"]] = group.get("retentionInDays")
    except ClientError as error:
        raise from_client_error(error, f"describing the log groups {prefix}*") from error
    return found


def _describe_page(
    logs: CloudWatchLogsClient, group: str, token: str | None
) -> tuple[list[LogStreamTypeDef], str | None]:
    request: dict[str, Any] = {"logGroupName": group, "orderBy": "LogStreamName", "limit": DESCRIBE_PAGE}
    if token:
        request["nextToken"] = token
    try:
        response = logs.describe_log_streams(**request)
    except ClientError as error:
        if error_code(error) == _NOT_FOUND:
            raise MigrationConflict(
                f"the source log group {group} disappeared while it was listed"
            ) from error
        raise from_client_error(error, f"listing the streams of {group}") from error
    except BotoCoreError as error:
        raise TransientAwsError(f"listing the streams of {group}: {type(error).__name__}: {error}") from error
    next_token = response.get("nextToken")
    # The last page may come with a token that leads to an empty page: that one ends the listing.
    return response.get("logStreams", []), next_token if next_token and next_token != token else None


def _select(
    page: list[LogStreamTypeDef],
    group: GroupListing,
    *,
    found: list[StreamToCopy],
    notes: list[StreamNote],
    export: _Exports,
    failed: FailedTaskInstances | None,
    target_airflow_version: str,
    since_ms: int,
    until_ms: int,
) -> GroupListing:
    counts = {
        "streams_listed": group.streams_listed,
        "streams_selected": group.streams_selected,
        "streams_outside_window": group.streams_outside_window,
        "streams_not_failed": group.streams_not_failed,
        "streams_renamed": group.streams_renamed,
    }
    for stream in page:
        name = stream["logStreamName"]
        counts["streams_listed"] += 1
        if not may_hold_window(stream, since_ms, until_ms):
            counts["streams_outside_window"] += 1
            continue
        target: str | None = None
        if group.group == "Task":
            parsed = parse_task_stream(name)
            if failed is not None and (parsed is None or not failed.holds(parsed)):
                counts["streams_not_failed"] += 1
                continue
            if parsed is not None and parsed.legacy:
                naming = target_stream_name(
                    name, export.runs(), target_airflow_version=target_airflow_version
                )
                if naming.renamed:
                    counts["streams_renamed"] += 1
                    target = naming.target
                elif naming.note and len(notes) < MAX_LISTED:
                    notes.append(StreamNote(stream=name, note=naming.note))
        found.append(StreamToCopy(source=name, target=target, facts=stream_facts(stream)))
        counts["streams_selected"] += 1
    return group.model_copy(update=counts)


def _write_part(s3: S3Client, listing: LogListing, parts: int, group: str, found: list[StreamToCopy]) -> int:
    """Write the streams found since the last part (if any) as the next part; the new part count."""
    if not found:
        return parts
    write_json(
        s3,
        listing.bucket,
        listing.part_key(parts + 1),
        {"group": group, "streams": [stream.to_event() for stream in found]},
    )
    found.clear()
    return parts + 1


def _parts(s3: S3Client, listing: LogListing) -> Iterator[tuple[str, list[StreamToCopy]]]:
    for number in range(1, listing.parts + 1):
        part = read_json(s3, listing.bucket, listing.part_key(number))
        yield part["group"], [StreamToCopy.model_validate(stream) for stream in part["streams"]]


def _write_items(s3: S3Client, listing: LogListing, *, max_concurrency: int) -> LogListing:
    """Cut the selected streams into work items and write them for the Distributed Map."""
    by_group: dict[str, list[StreamToCopy]] = {}
    for kind, found in _parts(s3, listing):
        by_group.setdefault(kind, []).extend(found)
    total = sum(len(streams) for streams in by_group.values())
    size = items_size(total, max_concurrency)
    items: list[dict[str, Any]] = []
    for group in listing.groups:
        streams = by_group.get(group.group, [])
        for start in range(0, len(streams), size):
            items.append(
                WorkItem(
                    group=group.group,
                    source_group=group.source_group,
                    target_group=group.target_group,
                    target_retention_days=group.target_retention_days,
                    streams=streams[start : start + size],
                ).to_event()
            )
    write_json(s3, listing.bucket, listing.items_key, items)
    done = listing.model_copy(update={"done": True, "resume_at": None, "items": len(items), "streams": total})
    write_json(s3, listing.bucket, listing.listing_key, done.to_event())
    logger.info("log streams listed", extra={"listing": done.to_event()})
    return done


def items_size(streams: int, max_concurrency: int) -> int:
    """Streams per work item: at most MAX_STREAMS_PER_ITEM, and few enough that the map has at least
    `max_concurrency` items to run at once when there are that many streams."""
    if streams == 0:
        return 1
    items = max(math.ceil(streams / MAX_STREAMS_PER_ITEM), min(streams, max_concurrency))
    return math.ceil(streams / items)
