"""Copying a work item's log streams between CloudWatch Logs groups, against moto with AWS's limits
(PutLogEvents' batches, GetLogEvents' 1 MB pages, stream names)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict
from unittest import mock

import boto3
import pytest
from botocore.retries.bucket import TokenBucket
from botocore.retries.standard import ExponentialBackoff
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.core.exceptions import JsonRESTError
from moto.logs.models import LogsBackend, LogStream, logs_backends

from emulation.logs_limits import PutLogEventsLog, enforce_logs_limits
from mwaa_migrate import clients
from mwaa_migrate.errors import InvalidMigrationRequest, MigrationConflict, TransientAwsError
from mwaa_migrate.logs.log_copy import (
    FOREIGN_TARGET,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    MAX_LISTED,
    SOURCE_GONE,
    LogCopyCursor,
    LogCopyProgress,
    LogEvent,
    SkippedStream,
    StreamToCopy,
    WorkItem,
    copy_work_item,
    count_rejected,
    plan_batches,
)
from mwaa_migrate.logs.log_names import log_group_name

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

REGION = "us-east-1"
SOURCE = log_group_name("source-env", "Task")
TARGET = log_group_name("target-env", "Task")
SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
PLENTY_MS = 900_000


def plenty() -> int:
    return PLENTY_MS


class Budget:
    """A Lambda's time_left_ms that answers plenty `checks` times (the first is the call's own check
    on entry), then says time is up. The copy asks only once its cursor has moved."""

    def __init__(self, checks: int) -> None:
        self.checks = checks

    def __call__(self) -> int:
        self.checks -= 1
        return PLENTY_MS if self.checks >= 0 else 0


@dataclass
class Calls:
    """GetLogEvents calls by log group, as botocore sent them."""

    reads: dict[str, int] = field(default_factory=dict)

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        group = params["logGroupName"]
        self.reads[group] = self.reads.get(group, 0) + 1


@dataclass
class Aws:
    logs: CloudWatchLogsClient
    puts: PutLogEventsLog
    backend: LogsBackend
    now: datetime
    calls: Calls

    @property
    def now_ms(self) -> int:
        return int(self.now.timestamp() * 1000)

    def seed(self, stream: str, events: list[tuple[int, str]], group: str = SOURCE) -> None:
        """Put events straight into moto's store (any age or size, as a real source may hold)."""
        self.backend.ensure_log_stream(group, stream)
        self.backend.groups[group].streams[stream].put_log_events(
            [{"timestamp": timestamp, "message": message} for timestamp, message in events]
        )

    def held(self, stream: str, group: str = TARGET) -> list[tuple[int, str]]:
        """A stream's events in the order they were written."""
        return [
            (event.timestamp, event.message) for event in self.backend.groups[group].streams[stream].events
        ]

    def target_streams(self) -> list[str]:
        return sorted(self.backend.groups[TARGET].streams)

    def item(
        self, *names: str, targets: dict[str, str] | None = None, retention: int | None = None
    ) -> WorkItem:
        """A work item of the named source streams (all of them by default), in name order."""
        chosen = sorted(names or self.backend.groups[SOURCE].streams)
        return WorkItem(
            group="Task",
            source_group=SOURCE,
            target_group=TARGET,
            target_retention_days=retention,
            streams=[StreamToCopy(source=name, target=(targets or {}).get(name)) for name in chosen],
        )

    def copy(
        self,
        *,
        since: datetime,
        until: datetime,
        item: WorkItem | None = None,
        resume_at: LogCopyCursor | None = None,
        time_left_ms: Callable[[], int] = plenty,
        **options: Any,
    ) -> LogCopyProgress:
        return copy_work_item(
            self.logs,
            item or self.item(),
            since=since,
            until=until,
            resume_at=resume_at,
            time_left_ms=time_left_ms,
            **options,
        )

    def copy_to_the_end(
        self, *, since: datetime, until: datetime, checks_per_call: int, max_calls: int = 200
    ) -> tuple[LogCopyProgress, int]:
        """Call the copy again and again from its cursor, as the state machine does; the sum and the calls."""
        item = self.item()
        total = self.copy(since=since, until=until, item=item, time_left_ms=Budget(checks_per_call))
        calls = 1
        while not total.done:
            assert calls < max_calls, "the copy makes no progress"
            part = self.copy(
                since=since,
                until=until,
                item=item,
                resume_at=total.resume_at,
                time_left_ms=Budget(checks_per_call),
            )
            total = total.combined_with(part)
            calls += 1
        return total, calls


@contextmanager
def logs_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """moto with CloudWatch Logs' limits, the source and target groups, GetLogEvents calls counted."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(), enforce_logs_limits() as puts:
        clients.reset()
        logs = clients.logs()
        logs.create_log_group(logGroupName=SOURCE)
        logs.create_log_group(logGroupName=TARGET)
        calls = Calls()
        logs.meta.events.register("provide-client-params.cloudwatch-logs.GetLogEvents", calls)
        account = boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]
        yield Aws(
            logs=logs, puts=puts, backend=logs_backends[account][REGION], now=datetime.now(UTC), calls=calls
        )
    clients.reset()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    with logs_world(monkeypatch) as world:
        yield world


def without_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retries without their real sleeps: no backoff, no adaptive client-side rate limit."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
    monkeypatch.setattr(TokenBucket, "acquire", lambda self, amount=1, block=True: True)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    without_backoff(monkeypatch)


class Window(TypedDict):
    since: datetime
    until: datetime


def window(aws: Aws, days: float = 3) -> Window:
    """The last `days` days, up to now."""
    return {"since": aws.now - timedelta(days=days), "until": aws.now}


def stream_name(index: int) -> str:
    return f"dag_id=etl/run_id=scheduled__{index:04d}/task_id=load/attempt=1.log"


def hourly(aws: Aws, hours: int, prefix: str = "line") -> list[tuple[int, str]]:
    """One event an hour up to a minute ago."""
    last = aws.now_ms - MINUTE
    return [(last - (hours - 1 - i) * HOUR, f"{prefix} {i}") for i in range(hours)]


def assert_limits_kept(puts: PutLogEventsLog) -> None:
    assert puts.refused == []
    for call in puts.calls:
        assert call.events <= MAX_BATCH_EVENTS
        assert call.bytes <= MAX_BATCH_BYTES
        assert call.span_ms < DAY


def failing_on_call(
    method: Callable[..., Any], calls: set[int], error: Callable[[], BaseException], *, after: bool = False
) -> tuple[Callable[..., Any], list[int]]:
    """`method` failing with `error()` on the given 1-based calls (after doing its work when `after`)."""
    seen: list[int] = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        seen.append(len(seen) + 1)
        if len(seen) in calls and not after:
            raise error()
        result = method(*args, **kwargs)
        if len(seen) in calls:
            raise error()
        return result

    return wrapped, seen


def throttled() -> Exception:
    return JsonRESTError("ThrottlingException", "Rate exceeded")


def internal_failure() -> Exception:
    failure = JsonRESTError("ServiceUnavailableException", "The service is unavailable")
    failure.code = 503
    return failure


# --------------------------------------------------------------------------------------------------
# Pure parts


def test_log_group_names_are_mwaas() -> None:
    assert log_group_name("prod", "Task") == "airflow-prod-Task"
    assert log_group_name("prod", "DAGProcessing") == "airflow-prod-DAGProcessing"


def test_an_event_counts_its_utf8_bytes_plus_26() -> None:
    assert LogEvent.of(1, "héllo €").size == len("héllo €".encode()) + 26
    assert LogEvent.of(1, "ascii").size == 5 + 26


def test_an_event_at_the_size_limit_is_kept_whole() -> None:
    event = LogEvent.of(1, "a" * (MAX_EVENT_BYTES - 26))

    assert (event.truncated, event.size) == (False, MAX_EVENT_BYTES)


@pytest.mark.parametrize("char", ["a", "€", "😀"])
def test_an_oversized_event_is_truncated_to_the_limit_with_a_marker_on_a_character_boundary(
    char: str,
) -> None:
    message = char * (1_100_000 // len(char.encode()))

    event = LogEvent.of(7, message, ordinal=3)

    encoded = event.message.encode()
    assert event.truncated
    assert event.size == len(encoded) + 26 <= MAX_EVENT_BYTES
    assert len(encoded) + 26 > MAX_EVENT_BYTES - len(char.encode())  # nothing more was cut than needed
    assert event.message.endswith(
        f"[truncated by mwaa-migrate: the source event had {len(message.encode())} bytes]"
    )
    assert message.startswith(event.message.split(" ... [truncated")[0])
    assert (event.timestamp, event.ordinal) == (7, 3)


def small(timestamp: int, size: int = 1) -> LogEvent:
    return LogEvent.of(timestamp, "x" * size)


def test_batches_split_at_10000_events() -> None:
    batches = list(plan_batches(small(1) for _ in range(25_000)))

    assert [len(batch) for batch in batches] == [10_000, 10_000, 5_000]


def test_a_batch_of_exactly_1_mb_stays_whole_and_one_byte_more_splits() -> None:
    quarter = 262_144 - 26  # 4 events of 262,144 bytes: exactly 1,048,576

    assert [len(b) for b in plan_batches([small(1, quarter)] * 4)] == [4]
    assert [len(b) for b in plan_batches([small(1, quarter)] * 4 + [small(1)])] == [4, 1]


def test_a_batch_spans_less_than_24_hours() -> None:
    events = [small(0), small(DAY - 1), small(DAY), small(2 * DAY - 1)]

    assert [[e.timestamp for e in b] for b in plan_batches(events)] == [[0, DAY - 1], [DAY, 2 * DAY - 1]]


def test_batches_refuse_events_out_of_order_or_too_large_for_any_batch() -> None:
    with pytest.raises(ValueError, match="chronological"):
        list(plan_batches([small(2), small(1)]))
    with pytest.raises(ValueError, match="can never fit"):
        list(plan_batches([small(1, 100)], max_bytes=50))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 60)), max_size=60),
    st.integers(1, 6),
    st.integers(90, 200),
    st.integers(1, 100),
)
def test_batches_keep_every_event_in_order_within_the_limits_and_are_full(
    steps: list[tuple[int, int]], max_events: int, max_bytes: int, max_span_ms: int
) -> None:
    timestamps = [sum(step for step, _ in steps[: i + 1]) for i in range(len(steps))]
    events = [small(timestamp, size) for timestamp, (_, size) in zip(timestamps, steps, strict=True)]

    batches = list(plan_batches(events, max_events=max_events, max_bytes=max_bytes, max_span_ms=max_span_ms))

    assert [event for batch in batches for event in batch] == events
    for index, batch in enumerate(batches):
        following = batches[index + 1] if index + 1 < len(batches) else None
        assert 0 < len(batch) <= max_events
        assert sum(event.size for event in batch) <= max_bytes
        assert batch[-1].timestamp - batch[0].timestamp < max_span_ms
        if following is not None:  # the next event did not fit
            grown = [*batch, following[0]]
            assert (
                len(grown) > max_events
                or sum(event.size for event in grown) > max_bytes
                or grown[-1].timestamp - grown[0].timestamp >= max_span_ms
            )


@pytest.mark.parametrize(
    ("info", "rejected"),
    [
        (None, 0),
        ({}, 0),
        ({"tooOldLogEventEndIndex": 3}, 3),
        ({"expiredLogEventEndIndex": 2, "tooOldLogEventEndIndex": 1}, 2),
        ({"tooNewLogEventStartIndex": 8}, 2),
        ({"tooOldLogEventEndIndex": 4, "tooNewLogEventStartIndex": 6}, 8),
        ({"tooOldLogEventEndIndex": 10, "tooNewLogEventStartIndex": 0}, 10),
    ],
)
def test_rejected_log_events_info_is_counted_with_awss_index_semantics(info: Any, rejected: int) -> None:
    assert count_rejected(info, 10) == rejected


def test_progress_of_successive_calls_adds_up_and_keeps_the_later_cursor() -> None:
    cursor = LogCopyCursor(stream="b", timestamp=5, events_at_timestamp=2)
    first = LogCopyProgress(
        done=False,
        resume_at=LogCopyCursor(stream="a"),
        events_read=3,
        events_written=3,
        put_calls=1,
        streams_skipped=MAX_LISTED,
        skipped=[SkippedStream(stream=f"s{i}", reason="r") for i in range(MAX_LISTED)],
    )
    later = LogCopyProgress(
        done=False,
        resume_at=cursor,
        events_read=2,
        events_written=1,
        events_rejected=1,
        put_calls=1,
        streams_skipped=1,
        skipped=[SkippedStream(stream="late", reason="r")],
    )

    total = first.combined_with(later)

    assert (total.done, total.resume_at) == (False, cursor)
    assert (total.events_read, total.events_written, total.events_rejected, total.put_calls) == (5, 4, 1, 2)
    assert total.streams_skipped == MAX_LISTED + 1
    assert len(total.skipped) == MAX_LISTED
    assert total.to_event()["resumeAt"] == {"stream": "b", "timestamp": 5, "eventsAtTimestamp": 2}


def test_a_work_item_needs_streams_named_once() -> None:
    with pytest.raises(ValueError, match="at least 1 item"):
        WorkItem(group="Task", source_group=SOURCE, target_group=TARGET, streams=[])


# --------------------------------------------------------------------------------------------------
# The copy against moto


def test_empty_streams_create_no_target_stream_and_read_no_target(aws: Aws) -> None:
    aws.logs.create_log_stream(logGroupName=SOURCE, logStreamName=stream_name(1))
    aws.logs.create_log_stream(logGroupName=SOURCE, logStreamName=stream_name(2))

    progress = aws.copy(**window(aws))

    assert (progress.done, progress.streams_done, progress.streams_copied) == (True, 2, 0)
    assert aws.target_streams() == []
    assert aws.puts.calls == []
    assert aws.calls.reads == {SOURCE: 4}  # per stream: an empty page, and the same token back


def test_a_first_copy_reads_nothing_from_the_target_and_makes_the_fewest_calls(aws: Aws) -> None:
    names = [stream_name(i) for i in range(30)]
    for index, name in enumerate(names):
        aws.seed(name, [(aws.now_ms - HOUR, f"start {index}"), (aws.now_ms - MINUTE, f"end {index}")])

    progress = aws.copy(**window(aws))

    assert aws.target_streams() == names
    for name in names:
        assert aws.held(name) == aws.held(name, SOURCE)
    # One page of events and one that returns the same token, per stream; one batch per stream.
    assert aws.calls.reads == {SOURCE: 60}
    assert (progress.get_calls, progress.put_calls, progress.streams_created) == (60, 30, 30)
    assert (progress.streams_done, progress.streams_copied, progress.events_written) == (30, 30, 60)


def test_streams_are_copied_under_their_target_names(aws: Aws) -> None:
    legacy = "etl/load/2026-01-01T00_00_00+00_00/1.log"
    renamed = "dag_id=etl/run_id=scheduled__2026-01-01T00_00_00+00_00/task_id=load/attempt=1.log"
    aws.seed(legacy, hourly(aws, 3))

    aws.copy(**window(aws), item=aws.item(legacy, targets={legacy: renamed}))

    assert aws.target_streams() == [renamed]
    assert aws.held(renamed) == aws.held(legacy, SOURCE)


def test_a_stream_over_several_get_pages_is_copied_whole_in_order(aws: Aws) -> None:
    source = [(aws.now_ms - HOUR + i * 100, f"event {i}") for i in range(12_345)]
    aws.seed(stream_name(1), source)

    progress = aws.copy(**window(aws))

    assert aws.held(stream_name(1)) == source
    assert [call.events for call in aws.puts.calls] == [10_000, 2_345]
    assert progress.get_calls == 3  # 10,000 + 2,345 + the page that returns the same token
    assert (progress.events_read, progress.events_written) == (12_345, 12_345)
    assert_limits_kept(aws.puts)


def test_100_000_events_of_one_stream_are_copied_once_across_calls_in_the_fewest_batches(aws: Aws) -> None:
    source = [(aws.now_ms - 2 * HOUR + i * 50, f"{i:06d} " + "x" * (i % 97)) for i in range(100_000)]
    aws.seed(stream_name(1), source)

    total, calls = aws.copy_to_the_end(**window(aws), checks_per_call=4)

    assert calls > 1
    assert aws.held(stream_name(1)) == source
    assert [call.events for call in aws.puts.calls] == [10_000] * 10
    assert (total.events_read, total.events_written, total.events_already_present) == (100_000, 100_000, 0)
    assert_limits_kept(aws.puts)


def test_events_over_1_mb_are_split_into_batches_under_the_byte_limit(aws: Aws) -> None:
    source = [(aws.now_ms - HOUR + i, "a" * 4_000) for i in range(300)]
    aws.seed(stream_name(1), source)

    aws.copy(**window(aws))

    assert [call.events for call in aws.puts.calls] == [260, 40]  # 260 x 4,026 bytes <= 1,048,576
    assert aws.held(stream_name(1)) == source
    assert_limits_kept(aws.puts)


def test_batch_bytes_count_utf8_not_characters(aws: Aws) -> None:
    source = [(aws.now_ms - HOUR + i, "€" * 3_000) for i in range(150)]  # 9,026 bytes each
    aws.seed(stream_name(1), source)

    aws.copy(**window(aws))

    assert [call.events for call in aws.puts.calls] == [116, 34]
    assert aws.held(stream_name(1)) == source
    assert_limits_kept(aws.puts)


def test_unicode_messages_are_copied_byte_for_byte(aws: Aws) -> None:
    messages = [
        "naïve café — 東京 — Привет — مرحبا",
        "emoji 😀👩‍👩‍👧‍👦 and combining e\u0301",
        "zero\u200bwidth, tab\tand newline\nin one event",
        "\u202eright-to-left override",
        "astral plane \U0001d11e \U0002000b " * 500,
    ]
    source = [(aws.now_ms - HOUR + i, message) for i, message in enumerate(messages)]
    aws.seed(stream_name(1), source)

    progress = aws.copy(**window(aws))

    assert aws.held(stream_name(1)) == source
    assert aws.puts.calls[0].bytes == sum(len(m.encode()) + 26 for m in messages)
    assert progress.events_truncated == 0


def test_events_spanning_more_than_24_hours_go_in_several_batches(aws: Aws) -> None:
    source = hourly(aws, 51)
    aws.seed(stream_name(1), source)

    aws.copy(**window(aws))

    assert [call.events for call in aws.puts.calls] == [24, 24, 3]
    assert aws.held(stream_name(1)) == source
    assert_limits_kept(aws.puts)


def test_a_batch_joins_the_end_of_one_get_page_to_the_start_of_the_next(aws: Aws) -> None:
    # Every 9 s for 30 hours: GetLogEvents pages of 10,000 events, batches of 24 hours (9,600 events).
    source = [(aws.now_ms - 31 * HOUR + i * 9_000, f"event {i}") for i in range(12_345)]
    aws.seed(stream_name(1), source)

    progress = aws.copy(**window(aws))

    assert progress.get_calls == 3
    assert [call.events for call in aws.puts.calls] == [9_600, 2_745]  # 400 of page 1, 2,345 of page 2
    assert aws.held(stream_name(1)) == source
    assert_limits_kept(aws.puts)


def test_an_event_over_the_event_limit_is_written_truncated_counted_and_noted(aws: Aws) -> None:
    big = "€" * 400_000  # 1,200,000 bytes: more than one event (or batch) may hold
    aws.seed(
        stream_name(1),
        [(aws.now_ms - 3 * MINUTE, "before"), (aws.now_ms - 2 * MINUTE, big), (aws.now_ms - MINUTE, "after")],
    )

    progress = aws.copy(**window(aws))

    held = aws.held(stream_name(1))
    assert [message for _, message in held][::2] == ["before", "after"]
    assert big.startswith(held[1][1].split(" ... [truncated")[0])
    assert held[1][1].endswith("the source event had 1200000 bytes]")
    assert (progress.events_truncated, progress.events_written) == (1, 3)
    assert progress.notes[0].stream == stream_name(1)
    assert "written truncated" in progress.notes[0].note
    assert_limits_kept(aws.puts)


def test_only_events_in_the_half_open_window_are_copied(aws: Aws) -> None:
    since, until = aws.now - timedelta(days=3), aws.now - timedelta(days=1)
    since_ms, until_ms = int(since.timestamp() * 1000), int(until.timestamp() * 1000)
    aws.seed(
        stream_name(1), [(t, str(t)) for t in (since_ms - 1, since_ms, until_ms - 1, until_ms, until_ms + 1)]
    )
    aws.seed(stream_name(2), [(since_ms - 5 * HOUR, "long before")])
    aws.seed(stream_name(3), [(until_ms, "at the end"), (until_ms + HOUR, "after")])

    progress = aws.copy(since=since, until=until)

    assert aws.target_streams() == [stream_name(1)]
    assert aws.held(stream_name(1)) == [(since_ms, str(since_ms)), (until_ms - 1, str(until_ms - 1))]
    assert (progress.streams_done, progress.streams_copied, progress.events_read) == (3, 1, 2)


def test_events_older_than_14_days_are_left_out_and_counted(aws: Aws) -> None:
    old, kept = aws.now_ms - 15 * DAY, [(aws.now_ms - 13 * DAY, "13 days"), (aws.now_ms - HOUR, "1 hour")]
    aws.seed(stream_name(1), [(old, "15 days"), *kept])

    progress = aws.copy(**window(aws, days=16))

    assert aws.held(stream_name(1)) == kept
    assert (progress.events_too_old, progress.events_written, progress.events_rejected) == (1, 2, 0)


def test_events_older_than_the_targets_retention_are_left_out_and_counted(aws: Aws) -> None:
    aws.seed(stream_name(1), [(aws.now_ms - 2 * DAY, "2 days"), (aws.now_ms - HOUR, "1 hour")])

    progress = aws.copy(**window(aws), item=aws.item(retention=1))

    assert aws.held(stream_name(1)) == [(aws.now_ms - HOUR, "1 hour")]
    assert (progress.events_too_old, progress.events_written) == (1, 1)


def test_a_stream_whose_events_are_all_too_old_gets_no_target_stream(aws: Aws) -> None:
    aws.seed(stream_name(1), [(aws.now_ms - 15 * DAY, "15 days")])

    progress = aws.copy(**window(aws, days=16))

    assert aws.target_streams() == []
    assert (progress.events_too_old, progress.streams_created) == (1, 0)


def test_events_putlogevents_leaves_out_are_counted_as_rejected(aws: Aws) -> None:
    # A clock 2 days behind makes 15-day-old events look copyable: AWS (the emulation) leaves them out.
    aws.seed(stream_name(1), [(aws.now_ms - 15 * DAY, "old 1"), (aws.now_ms - 15 * DAY + 1, "old 2")])
    aws.seed(stream_name(1), [(aws.now_ms - HOUR, "fresh")])

    progress = aws.copy(**window(aws, days=16), now=lambda: aws.now - timedelta(days=2))

    assert aws.held(stream_name(1)) == [(aws.now_ms - HOUR, "fresh")]
    assert (progress.events_rejected, progress.events_written, progress.events_too_old) == (2, 1, 0)
    assert progress.events_read == 3
    assert "left out 2 event(s)" in progress.notes[0].note


def test_a_rerun_after_a_complete_copy_writes_nothing(aws: Aws) -> None:
    for index in range(3):
        aws.seed(stream_name(index), hourly(aws, 30, prefix=f"s{index}"))
    first = aws.copy(**window(aws))
    calls = len(aws.puts.calls)

    again = aws.copy(**window(aws))

    assert len(aws.puts.calls) == calls
    assert (again.events_written, again.put_calls, again.events_already_present) == (0, 0, 90)
    assert (again.done, again.streams_copied, again.streams_created) == (True, 3, 0)
    assert first.events_written == 90
    for index in range(3):
        assert aws.held(stream_name(index)) == aws.held(stream_name(index), SOURCE)


def test_a_rerun_with_a_later_window_appends_only_the_new_events(aws: Aws) -> None:
    events = hourly(aws, 30)
    aws.seed(stream_name(1), events[:20])
    aws.copy(since=aws.now - timedelta(days=3), until=aws.now - timedelta(hours=9, minutes=30))
    aws.seed(stream_name(1), events[20:])

    progress = aws.copy(**window(aws))

    assert aws.held(stream_name(1)) == events
    assert (progress.events_already_present, progress.events_written) == (20, 10)


def test_events_sharing_a_timestamp_are_neither_lost_nor_doubled_across_stops(aws: Aws) -> None:
    moment = aws.now_ms - HOUR
    # 100,026 bytes each: batches of 10, so two stops fall between events of the same millisecond.
    source = [(moment, f"{i:02d} " + "a" * 99_997) for i in range(25)] + [(moment + 1, "next")]
    aws.seed(stream_name(1), source)

    total, calls = aws.copy_to_the_end(**window(aws), checks_per_call=1)

    assert [call.events for call in aws.puts.calls] == [10, 10, 6]
    assert calls == 3  # one batch a call
    assert aws.held(stream_name(1)) == source
    assert (total.events_written, total.events_already_present) == (26, 0)


@pytest.mark.parametrize("checks_per_call", [1, 2, 3, 5, 8])
def test_a_copy_stopped_for_time_and_resumed_ends_with_every_source_event_once(
    aws: Aws, checks_per_call: int
) -> None:
    streams = {stream_name(i): hourly(aws, 60, prefix=f"s{i}") for i in range(3)}  # 3 batches each
    for name, events in streams.items():
        aws.seed(name, events)

    total, calls = aws.copy_to_the_end(**window(aws), checks_per_call=checks_per_call)

    assert calls > 1
    for name, events in streams.items():
        assert aws.held(name) == events
    assert (total.events_read, total.events_written, total.events_already_present) == (180, 180, 0)
    assert (total.streams_done, total.streams_copied) == (3, 3)
    assert_limits_kept(aws.puts)


def test_a_stop_returns_a_cursor_and_resuming_from_it_writes_the_rest(aws: Aws) -> None:
    aws.seed(stream_name(1), hourly(aws, 60))

    first = aws.copy(**window(aws), time_left_ms=Budget(1))  # time is up after the first batch

    assert not first.done
    assert first.resume_at is not None
    assert first.resume_at.stream == stream_name(1)
    written = aws.held(stream_name(1))
    assert len(written) == first.events_written == 24
    assert (first.resume_at.timestamp, first.resume_at.events_at_timestamp) == (written[-1][0], 1)

    rest = aws.copy(**window(aws), resume_at=first.resume_at)

    assert rest.done
    assert aws.held(stream_name(1)) == aws.held(stream_name(1), SOURCE)
    assert (rest.events_written, rest.events_already_present) == (36, 0)


def test_a_fresh_rerun_after_a_partial_copy_skips_what_the_target_holds(aws: Aws) -> None:
    for index in range(2):
        aws.seed(stream_name(index), hourly(aws, 60, prefix=f"s{index}"))
    partial = aws.copy(**window(aws), time_left_ms=Budget(9))
    assert not partial.done

    rerun = aws.copy(**window(aws))  # no cursor: as after a failed execution

    for index in range(2):
        assert aws.held(stream_name(index)) == aws.held(stream_name(index), SOURCE)
    assert rerun.events_already_present == partial.events_written > 0
    assert partial.events_written + rerun.events_written == 120


def test_a_crash_mid_stream_then_a_retry_from_the_last_checkpoint_writes_nothing_twice(aws: Aws) -> None:
    aws.seed(stream_name(1), hourly(aws, 30, prefix="a"))
    # 60 events of 100,000 bytes: 6 batches (and GetLogEvents pages) of 10.
    aws.seed(stream_name(2), [(aws.now_ms - HOUR + i, f"b {i:02d} " + "b" * 99_990) for i in range(60)])
    checkpoint = aws.copy(**window(aws), time_left_ms=Budget(6))  # stream 1 and a batch of stream 2
    assert checkpoint.resume_at is not None
    assert checkpoint.resume_at.stream == stream_name(2)

    # The next call writes 4 batches, then its Lambda is killed: it returns nothing.
    crash, seen = failing_on_call(LogsBackend.put_log_events, {4}, lambda: SystemExit("killed"), after=True)
    with mock.patch.object(LogsBackend, "put_log_events", crash), pytest.raises(SystemExit):
        aws.copy(**window(aws), resume_at=checkpoint.resume_at)
    assert len(seen) == 4

    # Step Functions retries the call with the same input: the last checkpoint.
    retry = aws.copy(**window(aws), resume_at=checkpoint.resume_at)

    assert retry.done
    assert aws.held(stream_name(1)) == aws.held(stream_name(1), SOURCE)
    assert aws.held(stream_name(2)) == aws.held(stream_name(2), SOURCE)
    assert retry.events_already_present == 4 * 10
    assert checkpoint.events_written + 4 * 10 + retry.events_written == 30 + 60


def test_a_put_that_fails_after_storing_its_batch_is_not_sent_again_blindly(
    aws: Aws, no_backoff: None
) -> None:
    aws.seed(stream_name(1), hourly(aws, 60))
    # The second batch is stored, then the call answers 503: botocore would send it again.
    flaky, seen = failing_on_call(LogsBackend.put_log_events, {2}, internal_failure, after=True)

    with (
        mock.patch.object(LogsBackend, "put_log_events", flaky),
        pytest.raises(TransientAwsError, match="503|Unavailable"),
    ):
        aws.copy(**window(aws))
    assert len(seen) == 2

    retry = aws.copy(**window(aws))  # the state's retry, from the same (empty) checkpoint

    assert aws.held(stream_name(1)) == aws.held(stream_name(1), SOURCE)
    assert (retry.events_already_present, retry.events_written) == (48, 12)


def test_a_put_that_fails_before_storing_is_written_by_the_retry(aws: Aws, no_backoff: None) -> None:
    aws.seed(stream_name(1), hourly(aws, 30))
    flaky, _ = failing_on_call(LogsBackend.put_log_events, {1}, internal_failure)

    with mock.patch.object(LogsBackend, "put_log_events", flaky), pytest.raises(TransientAwsError):
        aws.copy(**window(aws))
    retry = aws.copy(**window(aws))

    assert aws.held(stream_name(1)) == aws.held(stream_name(1), SOURCE)
    assert (retry.events_already_present, retry.events_written) == (0, 30)


def test_a_throttled_put_is_retried_by_botocore(aws: Aws, no_backoff: None) -> None:
    aws.seed(stream_name(1), hourly(aws, 5))
    throttle, seen = failing_on_call(LogsBackend.put_log_events, {1, 2}, throttled)

    with mock.patch.object(LogsBackend, "put_log_events", throttle):
        progress = aws.copy(**window(aws))

    assert len(seen) == 3
    assert progress.put_calls == 1
    assert aws.held(stream_name(1)) == aws.held(stream_name(1), SOURCE)


def test_a_throttle_on_the_nth_call_of_a_long_copy_is_retried_without_a_gap_or_a_double(
    aws: Aws, no_backoff: None
) -> None:
    for index in range(4):
        aws.seed(stream_name(index), hourly(aws, 72, prefix=f"s{index}"))  # 3 batches each
    put_throttle, puts = failing_on_call(LogsBackend.put_log_events, {5}, throttled)
    get_throttle, gets = failing_on_call(LogStream.get_log_events, {3, 7}, throttled)

    with (
        mock.patch.object(LogsBackend, "put_log_events", put_throttle),
        mock.patch.object(LogStream, "get_log_events", get_throttle),
    ):
        progress = aws.copy(**window(aws))

    assert (len(puts), progress.put_calls) == (13, 12)
    assert len(gets) == progress.get_calls + 2
    for index in range(4):
        assert aws.held(stream_name(index)) == aws.held(stream_name(index), SOURCE)


def test_throttling_beyond_botocores_retries_is_a_transient_error(aws: Aws, no_backoff: None) -> None:
    aws.seed(stream_name(1), hourly(aws, 5))
    throttle, _ = failing_on_call(LogsBackend.put_log_events, set(range(1, 100)), throttled)

    with mock.patch.object(LogsBackend, "put_log_events", throttle), pytest.raises(TransientAwsError):
        aws.copy(**window(aws))


def test_a_target_stream_of_another_origin_is_skipped_and_left_untouched(aws: Aws) -> None:
    aws.seed(stream_name(1), hourly(aws, 5))
    aws.seed(stream_name(2), hourly(aws, 5))
    foreign = [(aws.now_ms - 2 * HOUR, "written by the target environment")]
    aws.seed(stream_name(1), foreign, group=TARGET)

    progress = aws.copy(**window(aws))

    assert aws.held(stream_name(1)) == foreign
    assert aws.held(stream_name(2)) == aws.held(stream_name(2), SOURCE)
    assert (progress.streams_skipped, progress.streams_copied) == (1, 1)
    assert progress.skipped == [SkippedStream(stream=stream_name(1), reason=FOREIGN_TARGET)]


def test_an_existing_empty_target_stream_is_used(aws: Aws) -> None:
    aws.logs.create_log_stream(logGroupName=TARGET, logStreamName=stream_name(1))
    aws.seed(stream_name(1), hourly(aws, 3))

    progress = aws.copy(**window(aws))

    assert aws.held(stream_name(1)) == aws.held(stream_name(1), SOURCE)
    assert (progress.events_written, progress.streams_created) == (3, 0)


def test_a_source_stream_gone_since_the_listing_is_skipped_with_the_reason(aws: Aws) -> None:
    aws.seed(stream_name(2), hourly(aws, 3))

    progress = aws.copy(**window(aws), item=aws.item(stream_name(1), stream_name(2)))

    assert progress.skipped == [SkippedStream(stream=stream_name(1), reason=SOURCE_GONE)]
    assert aws.target_streams() == [stream_name(2)]


def test_a_missing_target_log_group_is_a_conflict_naming_the_logging_setting(aws: Aws) -> None:
    aws.logs.delete_log_group(logGroupName=TARGET)
    aws.seed(stream_name(1), hourly(aws, 3))

    with pytest.raises(MigrationConflict, match="Task logs must be enabled on the target"):
        aws.copy(**window(aws))


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        (datetime(2025, 1, 1), datetime(2025, 1, 2), "time zone"),
        (datetime(2025, 1, 2, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC), "must be before"),
    ],
)
def test_a_bad_window_is_refused(aws: Aws, since: datetime, until: datetime, message: str) -> None:
    aws.seed(stream_name(1), hourly(aws, 1))
    with pytest.raises(InvalidMigrationRequest, match=message):
        aws.copy(since=since, until=until)


def test_a_cursor_outside_the_item_is_refused(aws: Aws) -> None:
    aws.seed(stream_name(1), hourly(aws, 1))
    with pytest.raises(InvalidMigrationRequest, match="not a stream of this item"):
        aws.copy(**window(aws), resume_at=LogCopyCursor(stream="elsewhere"))


def test_a_call_without_time_for_two_safety_margins_is_refused(aws: Aws) -> None:
    aws.seed(stream_name(1), hourly(aws, 1))
    with pytest.raises(InvalidMigrationRequest, match="timeout"):
        aws.copy(**window(aws), time_left_ms=lambda: 100_000)
