"""The log copy's summary: the listing and every work item's result added up per log group (moto S3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from mwaa_migrate.errors import MigrationConflict
from mwaa_migrate.logs.log_copy import LogCopyProgress, SkippedStream, StreamNote, StreamToCopy, WorkItem
from mwaa_migrate.logs.log_listing import GroupListing, LogListing, result_key
from mwaa_migrate.logs.log_report import (
    NO_EVENTS_IN_WINDOW,
    UNACCOUNTED,
    ItemResult,
    summarize_log_copy,
    write_item_result,
)
from tests.emulated_dags import BUCKET

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

UNTIL = datetime(2026, 11, 23, tzinfo=UTC)


def listing(items: int, **changes: object) -> LogListing:
    return LogListing.model_validate(
        {
            "done": True,
            "bucket": BUCKET,
            "baseKey": "migrations/a/b/logs/run-1",
            "since": UNTIL - timedelta(days=3),
            "until": UNTIL,
            "groups": [
                GroupListing(
                    group="Task",
                    source_group="airflow-a-Task",
                    target_group="airflow-b-Task",
                    streams_listed=10,
                    streams_selected=6,
                    streams_outside_window=4,
                ),
                GroupListing(
                    group="Worker",
                    source_group="airflow-a-Worker",
                    target_group="airflow-b-Worker",
                    skipped_reason="the source has no log group airflow-a-Worker",
                ),
            ],
            "items": items,
            "streams": 6,
            "describeCalls": 1,
            **changes,
        }
    )


def task_only(items: int, **task: object) -> LogListing:
    """A listing of the Task group alone, its figures changed by `task`."""
    return listing(items, groups=[listing(0).groups[0].model_copy(update=task)])


def item(*names: str) -> WorkItem:
    return WorkItem(
        group="Task",
        source_group="airflow-a-Task",
        target_group="airflow-b-Task",
        streams=[StreamToCopy(source=name) for name in names],
    )


def write_items(s3: S3Client, done: LogListing, items: list[WorkItem]) -> None:
    s3.put_object(Bucket=BUCKET, Key=done.items_key, Body=json.dumps([i.to_event() for i in items]))


def write_result(s3: S3Client, done: LogListing, index: int, streams: int, **counts: object) -> None:
    """Work item `index`'s result, as the copy of its `streams` streams writes it."""
    progress = LogCopyProgress.model_validate({"done": True, **counts})
    result = ItemResult(index=index, group="Task", streams=streams, progress=progress)
    write_item_result(s3, BUCKET, result_key(done.results_prefix, index), result)


def test_the_results_of_every_item_add_up_per_group_with_what_was_listed(s3: S3Client) -> None:
    done = listing(2)
    write_result(s3, done, 0, 3, streamsDone=3, streamsCopied=3, eventsRead=30, eventsWritten=28,
        eventsTooOld=2, putCalls=3, getCalls=6)  # fmt: skip
    write_result(s3, done, 1, 3, streamsDone=3, streamsCopied=2, streamsSkipped=1, eventsRead=10,
        eventsWritten=5, eventsAlreadyPresent=5, putCalls=1, getCalls=5,
        skipped=[SkippedStream(stream="s5", reason="foreign")],
        notes=[StreamNote(stream="s4", note="1 event(s) truncated")])  # fmt: skip

    report = summarize_log_copy(s3, done)

    task, worker = report.groups
    assert (task.streams_listed, task.streams_selected, task.streams_outside_window) == (10, 6, 4)
    assert (task.streams_copied, task.streams_skipped, task.streams_failed) == (5, 1, 0)
    assert (task.events_read, task.events_written, task.events_already_present, task.events_too_old) == (
        40,
        33,
        5,
        2,
    )
    assert worker.skipped_reason == "the source has no log group airflow-a-Worker"
    assert (report.events_written, report.streams_copied, report.items, report.items_failed) == (33, 5, 2, 0)
    assert (report.get_log_events_calls, report.put_log_events_calls, report.describe_log_streams_calls) == (
        11,
        4,
        1,
    )
    assert [(s.group, s.stream, s.reason) for s in report.skipped] == [
        ("Worker", "*", "the source has no log group airflow-a-Worker"),
        ("Task", "s5", "foreign"),
    ]
    assert report.skipped_by_reason == {"foreign": 1}
    assert report.notes == [StreamNote(stream="s4", note="1 event(s) truncated")]
    assert not report.complete  # a group was skipped
    assert report.unreconciled() == []


def test_the_streams_of_an_item_without_a_result_are_counted_failed_never_copied(s3: S3Client) -> None:
    done = task_only(2, streams_selected=5, streams_outside_window=5)
    write_items(s3, done, [item("s1", "s2"), item("s3", "s4", "s5")])
    write_result(s3, done, 0, 2, streamsDone=2, streamsCopied=2, eventsRead=4, eventsWritten=4)

    report = summarize_log_copy(s3, done)

    assert (report.items_failed, report.streams_failed, report.streams_copied) == (1, 3, 2)
    assert report.skipped[0].stream == "s3"
    assert "the copy of its work item failed" in report.skipped[0].reason
    assert list(report.failed_by_reason.values()) == [3]
    assert not report.complete
    assert report.unreconciled() == []


def test_an_item_result_written_twice_counts_once(s3: S3Client) -> None:
    done = task_only(1)
    write_result(s3, done, 0, 1, streamsDone=1, streamsCopied=1, eventsWritten=7)
    write_result(s3, done, 0, 1, streamsDone=1, streamsCopied=1, eventsAlreadyPresent=7)

    report = summarize_log_copy(s3, done)

    assert (report.events_written, report.events_already_present, report.complete) == (0, 7, True)


def test_a_listing_not_done_cannot_be_summarized(s3: S3Client) -> None:
    with pytest.raises(MigrationConflict, match="has not finished"):
        summarize_log_copy(s3, listing(0, done=False))


def test_a_selected_stream_with_no_event_in_the_window_is_skipped_with_that_reason(s3: S3Client) -> None:
    # The copy finished 3 streams: 2 with events copied, 1 whose events all fell outside the window
    # (its metadata allowed some): done, neither copied nor skipped by the copy.
    done = task_only(1, streams_selected=3, streams_outside_window=7)
    write_result(s3, done, 0, 3, streamsDone=3, streamsCopied=2, eventsRead=9, eventsWritten=9)

    report = summarize_log_copy(s3, done)

    assert (report.streams_selected, report.streams_copied, report.streams_skipped) == (3, 2, 1)
    assert report.skipped_by_reason == {NO_EVENTS_IN_WINDOW: 1}
    assert report.complete, "nothing was lost: the stream had nothing to copy"
    assert report.unreconciled() == []


def test_streams_an_items_result_does_not_account_for_are_counted_failed(s3: S3Client) -> None:
    done = task_only(1, streams_selected=3, streams_outside_window=7)
    write_result(s3, done, 0, 3, streamsDone=2, streamsCopied=2, eventsRead=4, eventsWritten=4)

    report = summarize_log_copy(s3, done)

    assert (report.streams_copied, report.streams_skipped, report.streams_failed) == (2, 0, 1)
    assert report.failed_by_reason == {UNACCOUNTED: 1}
    assert not report.complete
    assert report.unreconciled() == []


def test_figures_that_do_not_add_up_are_named_with_their_parts(s3: S3Client) -> None:
    done = task_only(1)
    write_result(s3, done, 0, 6, streamsDone=6, streamsCopied=6, eventsRead=10, eventsWritten=8)

    report = summarize_log_copy(s3, done)

    assert report.unreconciled() == [
        "airflow-a-Task: 10 events read != 8 written + 0 rejected + 0 already there + 0 too old",
        "total: 10 events read != 8 written + 0 rejected + 0 already there + 0 too old",
    ]
