"""The log copy's record: each work item's result, and the summary the migration report carries.

The copy of work item N writes `results/N.json` when it is done (its counters, the streams it skipped
with the reason, notes on truncated or rejected events). The summary adds them up per log group with
what the listing found, and counts the streams of items that have no result (a child execution that
failed within the map's tolerated failure threshold) as failed, never as copied, with the item's own
error.

The figures reconcile (`LogCopyReport.unreconciled` says where they do not): every stream listed is
outside the window, not of a failed task instance, or selected; every selected stream is copied,
skipped with its reason, or failed with its item's error. A stream the copy finished without finding
an event of the window (its metadata, approximate as CloudWatch Logs keeps it, allowed some) is
skipped with the reason `NO_EVENTS_IN_WINDOW`: a result counts it in `streamsDone` but neither copied
nor skipped. A result that accounts for fewer streams than its item holds counts the rest as failed.

A failed item's own error (its child execution's Error and Cause: the AWS error and the call, as the
copy raised it) is read from the Distributed Map's ResultWriter export, as Step Functions writes it
(also when the Map Run fails on its tolerated failure threshold): `{mapRunPrefix}/{map run id}/
manifest.json` lists `FAILED_n.json` files, JSON arrays of the failed child executions with their
`Input`, `Error` and `Cause`. `explain_log_copy_failure` turns the first failed item into the
migration's error and cause.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import Field

from mwaa_migrate.errors import MigrationConflict, from_client_error
from mwaa_migrate.logs.log_copy import MAX_LISTED, LogCopyProgress, StreamNote, WorkItem
from mwaa_migrate.logs.log_counts import EVENT_COUNTERS, LISTING_COUNTERS, EventCounts, ListingCounts
from mwaa_migrate.logs.log_listing import LogListing
from mwaa_migrate.migration_bucket import read_bytes, write_json
from mwaa_migrate.models import LogGroupKind, Model
from mwaa_migrate.run.failure import readable_cause

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# What became of the selected streams: streams_selected = their sum.
_OUTCOME_COUNTERS = ("streams_copied", "streams_skipped", "streams_failed")
# Parallel S3 reads of the item results.
_READERS = 16


# Why a selected stream was not copied, when the copy found nothing to copy in it.
NO_EVENTS_IN_WINDOW = (
    "no event in the log window (the stream's times, approximate in CloudWatch Logs, allowed some)"
)
UNACCOUNTED = "the copy of its work item finished without accounting for it"


class ItemResult(Model):
    """What the copy of one work item did, written when it is done."""

    index: int = Field(ge=0)
    group: LogGroupKind
    streams: int
    progress: LogCopyProgress


# How much of a failed item's own error message reaches the migration's cause and report (an AWS
# error message, what was being done and the call: never the stack trace).
ITEM_CAUSE_LIMIT = 1000
_MAP_CAUSE_LIMIT = 500
# A failed child execution's Error is an error name (AwsAccessDenied, Sandbox.Timedout, States.Timeout).
_ERROR_NAME = re.compile(r"[A-Za-z][\w.:-]{0,127}")
FAILED_ITEM = "the copy of its work item failed"


class FailedItem(Model):
    """A work item whose child execution failed, timed out or was aborted, with its own error."""

    index: int | None = None
    error: str
    cause: str = ""

    @property
    def text(self) -> str:
        return f"{self.error}: {self.cause}" if self.cause else self.error


class LogCopyFailure(Model):
    """The migration's error and cause when the log copy's Map failed."""

    error: str
    cause: str


class ReportedSkip(Model):
    group: LogGroupKind
    # "*" when the whole group was skipped.
    stream: str
    reason: str


class GroupReport(ListingCounts, EventCounts):
    """One group: what the listing found (ListingCounts), what became of the selected streams, and the
    events (EventCounts)."""

    group: LogGroupKind
    source_group: str
    target_group: str
    streams_copied: int = 0
    streams_skipped: int = 0
    # Streams of work items whose copy failed (tolerated by the map's failure threshold).
    streams_failed: int = 0
    skipped_reason: str | None = None


class LogCopyReport(ListingCounts, EventCounts):
    """The `logs` section of the migration report. The totals are over every group:
    streams_listed = streams_outside_window + streams_not_failed + streams_selected, and
    streams_selected = streams_copied + streams_skipped + streams_failed (by reason:
    `skipped_by_reason` adds up to streams_skipped, `failed_by_reason` to streams_failed)."""

    since: datetime
    until: datetime
    failed_tasks_only: bool
    complete: bool
    groups: list[GroupReport]
    streams_copied: int = 0
    streams_skipped: int = 0
    streams_failed: int = 0
    items: int = 0
    items_failed: int = 0
    describe_log_streams_calls: int = 0
    get_log_events_calls: int = 0
    put_log_events_calls: int = 0
    filter_log_events_calls: int = 0
    # Whole groups skipped (stream "*"), then streams skipped and the first stream of failed items.
    skipped: list[ReportedSkip] = Field(default_factory=list)
    skipped_by_reason: dict[str, int] = Field(default_factory=dict)
    failed_by_reason: dict[str, int] = Field(default_factory=dict)
    notes: list[StreamNote] = Field(default_factory=list)

    def unreconciled(self) -> list[str]:
        """Where the figures do not add up ([] when they all do), for each group and the totals."""
        problems: list[str] = []
        for where, figures in [(group.source_group, group) for group in self.groups] + [("total", self)]:
            problems += _unreconciled(where, figures)
        if sum(self.skipped_by_reason.values()) != self.streams_skipped:
            problems.append(f"total: skipped by reason {self.skipped_by_reason} != {self.streams_skipped}")
        if sum(self.failed_by_reason.values()) != self.streams_failed:
            problems.append(f"total: failed by reason {self.failed_by_reason} != {self.streams_failed}")
        return problems


def _unreconciled(where: str, figures: GroupReport | LogCopyReport) -> list[str]:
    f = figures
    problems = []
    if f.streams_listed != f.streams_outside_window + f.streams_not_failed + f.streams_selected:
        problems.append(
            f"{where}: {f.streams_listed} listed != {f.streams_outside_window} outside the window + "
            f"{f.streams_not_failed} not of a failed task + {f.streams_selected} selected"
        )
    if f.streams_selected != f.streams_copied + f.streams_skipped + f.streams_failed:
        problems.append(
            f"{where}: {f.streams_selected} selected != {f.streams_copied} copied + "
            f"{f.streams_skipped} skipped + {f.streams_failed} failed"
        )
    handled = f.events_written + f.events_rejected + f.events_already_present + f.events_too_old
    if f.events_read != handled:
        problems.append(
            f"{where}: {f.events_read} events read != {f.events_written} written + {f.events_rejected} "
            f"rejected + {f.events_already_present} already there + {f.events_too_old} too old"
        )
    return problems


def write_item_result(s3: S3Client, bucket: str, key: str, result: ItemResult) -> None:
    write_json(s3, bucket, key, result.to_event(), what="the log copy result")


def _result_keys(s3: S3Client, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
    except ClientError as error:
        raise from_client_error(error, f"listing s3://{bucket}/{prefix}") from error
    return keys


def _results(s3: S3Client, listing: LogListing) -> Iterator[ItemResult]:
    keys = _result_keys(s3, listing.bucket, listing.results_prefix)
    with ThreadPoolExecutor(max_workers=_READERS) as pool:
        for body in pool.map(lambda key: read_bytes(s3, listing.bucket, key), keys):
            yield ItemResult.model_validate_json(body)


def summarize_log_copy(s3: S3Client, listing: LogListing) -> LogCopyReport:
    """Add up the item results per group, with what the listing found."""
    if not listing.done:
        raise MigrationConflict("the log listing has not finished: nothing to summarize yet")
    groups: dict[str, dict[str, Any]] = {
        group.group: {
            **group.model_dump(
                include={"group", "source_group", "target_group", *LISTING_COUNTERS, "skipped_reason"}
            ),
            **dict.fromkeys((*_OUTCOME_COUNTERS, *EVENT_COUNTERS), 0),
        }
        for group in listing.groups
    }
    skipped = [
        ReportedSkip(group=group.group, stream="*", reason=group.skipped_reason)
        for group in listing.groups
        if group.skipped_reason
    ]
    reasons: Counter[str] = Counter()
    failed_reasons: Counter[str] = Counter()
    notes = list(listing.notes)
    calls: Counter[str] = Counter()
    done: set[int] = set()
    for result in _results(s3, listing):
        if result.index in done:
            continue
        done.add(result.index)
        progress = result.progress
        totals = groups[result.group]
        totals["streams_copied"] += progress.streams_copied
        totals["streams_skipped"] += progress.streams_skipped
        # Finished with no event of the window: done, neither copied nor skipped by the copy.
        without_events = max(progress.streams_done - progress.streams_copied - progress.streams_skipped, 0)
        totals["streams_skipped"] += without_events
        reasons[NO_EVENTS_IN_WINDOW] += without_events
        accounted = max(progress.streams_done, progress.streams_copied + progress.streams_skipped)
        if result.streams > accounted:
            totals["streams_failed"] += result.streams - accounted
            failed_reasons[UNACCOUNTED] += result.streams - accounted
        for name in EVENT_COUNTERS:
            totals[name] += getattr(progress, name)
        calls["get"] += progress.get_calls
        calls["put"] += progress.put_calls
        calls["filter"] += getattr(progress, "filter_calls", 0)
        for skip in progress.skipped:
            skipped.append(ReportedSkip(group=result.group, stream=skip.stream, reason=skip.reason))
            reasons[skip.reason] += 1
        # A result lists its first MAX_LISTED skipped streams and counts all of them.
        reasons[_UNLISTED] += progress.streams_skipped - len(progress.skipped)
        notes.extend(progress.notes)
    failed_items = 0
    if len(done) < listing.items:
        own_errors = {item.index: item for item in failed_map_items(s3, listing)}
        for index, item in enumerate(_items(s3, listing)):
            if index not in done:
                failed_items += 1
                groups[item.group]["streams_failed"] += len(item.streams)
                failed = own_errors.get(index)
                reason = (
                    f"{FAILED_ITEM}: {failed.text}" if failed else f"{FAILED_ITEM} (no result of its own)"
                )
                skipped.append(ReportedSkip(group=item.group, stream=item.streams[0].source, reason=reason))
                failed_reasons[reason] += len(item.streams)
    reports = [GroupReport.model_validate(totals) for totals in groups.values()]
    totals = {
        name: sum(getattr(report, name) for report in reports)
        for name in (
            *LISTING_COUNTERS,
            "streams_copied",
            "streams_skipped",
            "streams_failed",
            *EVENT_COUNTERS,
        )
    }
    return LogCopyReport(
        since=listing.since,
        until=listing.until,
        failed_tasks_only=listing.failed_tasks_only,
        complete=(
            failed_items == 0 and not failed_reasons and not any(report.skipped_reason for report in reports)
        ),
        groups=reports,
        items=listing.items,
        items_failed=failed_items,
        describe_log_streams_calls=listing.describe_calls,
        get_log_events_calls=calls["get"],
        put_log_events_calls=calls["put"],
        filter_log_events_calls=calls["filter"],
        skipped=skipped[:MAX_LISTED],
        skipped_by_reason={reason: count for reason, count in reasons.most_common() if count},
        failed_by_reason={reason: count for reason, count in failed_reasons.most_common() if count},
        notes=notes[:MAX_LISTED],
        **totals,
    )


_UNLISTED = "more streams skipped than a work item's result lists: CopyLogStreams' log names each"


def _items(s3: S3Client, listing: LogListing) -> list[WorkItem]:
    items = json.loads(read_bytes(s3, listing.bucket, listing.items_key))
    return [WorkItem.model_validate(item) for item in items]


def _latest_manifest(s3: S3Client, listing: LogListing) -> str | None:
    """The key of the newest ResultWriter manifest under the listing's map run prefix (a re-run of the
    same execution's Map writes another), or None if the Map wrote none."""
    prefix = f"{listing.map_run_prefix}/"
    manifests: list[tuple[datetime, str]] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=listing.bucket, Prefix=prefix):
            manifests.extend(
                (item["LastModified"], item["Key"])
                for item in page.get("Contents", [])
                if item["Key"].endswith("/manifest.json")
            )
    except ClientError as error:
        raise from_client_error(error, f"listing s3://{listing.bucket}/{prefix}") from error
    return max(manifests)[1] if manifests else None


def _failed_item(execution: dict[str, Any]) -> FailedItem:
    try:
        child_input = json.loads(execution.get("Input") or "{}")
    except ValueError:
        child_input = {}
    index = child_input.get("index") if isinstance(child_input, dict) else None
    error = str(execution.get("Error") or execution.get("Status") or "States.Runtime")
    if not _ERROR_NAME.fullmatch(error):
        error = "LogCopyFailed"
    cause = readable_cause(str(execution.get("Cause") or ""))
    return FailedItem(
        index=index if isinstance(index, int) else None,
        error=error,
        cause=cause[:ITEM_CAUSE_LIMIT],
    )


def failed_map_items(s3: S3Client, listing: LogListing) -> list[FailedItem]:
    """The failed child executions of the log copy's last Map Run, by work item, from its ResultWriter
    export (manifest.json and its FAILED_n.json files); [] when the Map exported nothing."""
    manifest_key = _latest_manifest(s3, listing)
    if manifest_key is None:
        return []
    manifest = json.loads(read_bytes(s3, listing.bucket, manifest_key))
    failed: list[FailedItem] = []
    for result_file in manifest.get("ResultFiles", {}).get("FAILED", []):
        body = read_bytes(s3, listing.bucket, str(result_file["Key"])).decode()
        # OutputType JSON (the default) is one array; JSONL is one execution a line.
        stripped = body.strip()
        executions = (
            json.loads(stripped)
            if stripped.startswith("[")
            else [json.loads(line) for line in stripped.splitlines() if line.strip()]
        )
        failed.extend(_failed_item(execution) for execution in executions)
    return sorted(failed, key=lambda item: (item.index is None, item.index or 0))


def explain_log_copy_failure(s3: S3Client, listing: LogListing, map_error: dict[str, Any]) -> LogCopyFailure:
    """The migration's error and cause when the log copy's Map failed: the first failed work item's own
    error (its AWS error, what was being done and the call), with the Map's. Without a failed item
    (the Map could not read its items, say), the Map's own error as LogCopyFailed."""
    map_text = f"{map_error.get('Error', 'States.Runtime')}: {map_error.get('Cause', '')}"[:_MAP_CAUSE_LIMIT]
    failed = failed_map_items(s3, listing)
    if not failed:
        return LogCopyFailure(error="LogCopyFailed", cause=f"the log copy failed ({map_text})")
    first = failed[0]
    where = f"work item {first.index}" if first.index is not None else "a work item"
    return LogCopyFailure(
        error=first.error,
        cause=f"the log copy failed ({map_text}); {len(failed)} of {listing.items} work items failed, "
        f"{where} with {first.text}",
    )
