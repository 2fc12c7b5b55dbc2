"""The log copy's read planner: which API reads which streams, events grouped back by stream and
written in chronological batches within PutLogEvents' limits, and exactly-once at every point of a
FilterLogEvents batch (moto with CloudWatch Logs' limits)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from moto.logs.models import LogGroup, LogsBackend

from mwaa_migrate.logs.log_copy import (
    FILTER_LOG_EVENTS,
    GET_LOG_EVENTS,
    MAX_FILTER_STREAMS,
    SOURCE_GONE,
    LogCopyProgress,
    SkippedStream,
    StreamFacts,
    StreamToCopy,
    WorkItem,
    log_copy_max_concurrency,
    logs_quotas_tps,
    plan_reads,
)
from mwaa_migrate.logs.log_listing import stream_facts
from tests.unit.test_log_copy import (
    DAY,
    HOUR,
    SOURCE,
    TARGET,
    Aws,
    Budget,
    assert_limits_kept,
    failing_on_call,
    hourly,
    logs_world,
    stream_name,
    throttled,
    window,
    without_backoff,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    with logs_world(monkeypatch) as world:
        yield world


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    without_backoff(monkeypatch)


def small(name: str, size: int | None = 2_000) -> StreamToCopy:
    return StreamToCopy(source=name, facts=StreamFacts(first_event=1, last_event=2, stored_bytes=size))


def described_item(aws: Aws, *names: str) -> WorkItem:
    """A work item as the listing makes it: each stream with what DescribeLogStreams tells."""
    chosen = sorted(names or aws.backend.groups[SOURCE].streams)
    described = {
        stream["logStreamName"]: stream
        for page in aws.logs.get_paginator("describe_log_streams").paginate(logGroupName=SOURCE)
        for stream in page["logStreams"]
    }
    return WorkItem(
        group="Task",
        source_group=SOURCE,
        target_group=TARGET,
        streams=[
            StreamToCopy(
                source=name, facts=stream_facts(described[name]) if name in described else StreamFacts()
            )
            for name in chosen
        ],
    )


def copy_to_the_end(
    aws: Aws, item: WorkItem, checks_per_call: int, max_calls: int = 200, **options: Any
) -> tuple[LogCopyProgress, int]:
    total = aws.copy(**window(aws), item=item, time_left_ms=Budget(checks_per_call), **options)
    calls = 1
    while not total.done:
        assert calls < max_calls, "the copy makes no progress"
        part = aws.copy(
            **window(aws),
            item=item,
            resume_at=total.resume_at,
            time_left_ms=Budget(checks_per_call),
            **options,
        )
        total = total.combined_with(part)
        calls += 1
    return total, calls


def assert_copied_once(aws: Aws, names: list[str]) -> None:
    for name in names:
        assert aws.held(name) == aws.held(name, SOURCE), name


def seed_small_streams(aws: Aws, count: int, events: int = 5) -> list[str]:
    names = [stream_name(i) for i in range(count)]
    for index, name in enumerate(names):
        aws.seed(name, hourly(aws, events, prefix=f"s{index}"))
    return names


# --------------------------------------------------------------------------------------------------
# The plan (pure)


def test_small_streams_are_read_together_by_filter_log_events_in_item_order() -> None:
    streams = [small(f"s{i}") for i in range(5)]

    assert plan_reads(streams) == [(FILTER_LOG_EVENTS, tuple(streams))]


def test_a_large_stream_is_read_alone_by_get_log_events_between_the_batches() -> None:
    before, large, after = small("a"), small("b", size=50_000_000), small("c")

    steps = plan_reads([before, large, after])

    assert steps == [
        (FILTER_LOG_EVENTS, (before,)),
        (GET_LOG_EVENTS, (large,)),
        (FILTER_LOG_EVENTS, (after,)),
    ]


def test_a_stream_without_the_listings_facts_is_read_alone_as_before() -> None:
    bare = StreamToCopy(source="old-item")

    assert plan_reads([bare]) == [(GET_LOG_EVENTS, (bare,))]


def test_a_batch_names_at_most_filter_log_events_limit_of_streams() -> None:
    streams = [small(f"s{i:03d}", size=None) for i in range(2 * MAX_FILTER_STREAMS + 1)]

    steps = plan_reads(streams)

    assert [len(step.streams) for step in steps] == [MAX_FILTER_STREAMS, MAX_FILTER_STREAMS, 1]
    assert [stream for step in steps for stream in step.streams] == streams


def test_a_batch_holds_at_most_its_bytes_of_known_size() -> None:
    streams = [small(f"s{i}", size=400) for i in range(5)]

    steps = plan_reads(streams, batch_bytes=1_000)

    assert [len(step.streams) for step in steps] == [2, 2, 1]
    assert {step.api for step in steps} == {FILTER_LOG_EVENTS}


def test_the_listing_keeps_what_describe_log_streams_tells() -> None:
    described = {"logStreamName": "s", "firstEventTimestamp": 5, "lastEventTimestamp": 9, "storedBytes": 0}

    assert stream_facts(described) == StreamFacts(first_event=5, last_event=9, stored_bytes=None)  # type: ignore[arg-type]


def test_the_maps_default_concurrency_is_the_one_the_quotas_call_for() -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)  # noqa: S506 (SafeLoader)

    assert template["Parameters"]["LogCopyMaxConcurrency"]["Default"] == log_copy_max_concurrency() == 10


def test_the_default_concurrency_is_the_same_in_every_region() -> None:
    # CreateLogStream's 50 a second is every Region's; the read quotas differ (FilterLogEvents 5 to 25).
    regions = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "eu-west-3", "ap-southeast-2")

    assert {log_copy_max_concurrency(logs_quotas_tps(region)) for region in regions} == {10}
    assert [logs_quotas_tps(region)["FilterLogEvents"] for region in regions] == [25, 10, 10, 5, 10, 10]
    assert [logs_quotas_tps(region)["GetLogEvents"] for region in regions] == [25, 10, 10, 10, 30, 25]


# --------------------------------------------------------------------------------------------------
# The copy with the plan


def test_small_streams_are_copied_with_one_filter_page_and_no_end_of_stream_calls(aws: Aws) -> None:
    names = seed_small_streams(aws, 30)

    progress = aws.copy(**window(aws), item=described_item(aws))

    assert_copied_once(aws, names)
    assert (progress.filter_calls, progress.get_calls, progress.put_calls) == (1, 0, 30)
    assert aws.calls.reads == {}
    assert (progress.streams_done, progress.streams_copied, progress.events_written) == (30, 30, 150)


def test_a_large_stream_among_small_ones_is_read_by_get_log_events_and_all_are_exact(aws: Aws) -> None:
    names = seed_small_streams(aws, 4)
    large = stream_name(2)
    aws.backend.groups[SOURCE].streams[large].events.clear()
    aws.seed(large, [(aws.now_ms - HOUR + i, f"big {i:05d} " + "x" * 400) for i in range(12_000)])

    progress = aws.copy(**window(aws), item=described_item(aws))

    assert_copied_once(aws, names)
    # Streams 0-1 and 3 by FilterLogEvents (two batches), stream 2 by 5 GetLogEvents pages + the end.
    assert (progress.filter_calls, progress.get_calls) == (2, 6)
    assert_limits_kept(aws.puts)


def test_events_are_grouped_back_by_stream_and_written_in_chronological_batches_within_the_limits(
    aws: Aws,
) -> None:
    start = aws.now_ms - 2 * DAY
    streams = {
        stream_name(0): [(aws.now_ms - HOUR + i // 3, f"count {i}") for i in range(12_345)],  # > 10,000
        stream_name(1): [(aws.now_ms - HOUR + i, f"{i:03d} " + "b" * 9_000) for i in range(150)],  # > 1 MB
        stream_name(2): [(start + i * 6 * HOUR, f"span {i}") for i in range(8)],  # > 24 hours
    }
    for name, events in streams.items():
        aws.seed(name, events)
    item = WorkItem.model_validate(
        {**described_item(aws).to_event(), "streams": [small(name).to_event() for name in streams]}
    )

    progress = aws.copy(**window(aws), item=item)

    assert_copied_once(aws, list(streams))
    assert progress.get_calls == 0
    by_stream = [(call.log_stream, call.events) for call in aws.puts.calls]
    assert by_stream == [
        (stream_name(0), 10_000),
        (stream_name(0), 2_345),
        (stream_name(1), 116),
        (stream_name(1), 34),
        (stream_name(2), 4),
        (stream_name(2), 4),
    ]
    assert_limits_kept(aws.puts)


def test_equal_timestamps_across_streams_and_pages_are_neither_lost_nor_doubled(aws: Aws) -> None:
    moment = aws.now_ms - HOUR
    # 12 streams, 40 events each at one millisecond, 20,026 bytes each: FilterLogEvents pages of 52
    # events cut between events of one timestamp, within a stream and across streams.
    names = [stream_name(i) for i in range(12)]
    for index, name in enumerate(names):
        aws.seed(name, [(moment, f"{index:02d}:{i:02d} " + "t" * 19_994) for i in range(40)])

    progress = aws.copy(**window(aws), item=described_item(aws))

    assert_copied_once(aws, names)
    assert progress.filter_calls == 10  # 480 events, 52 a page
    assert progress.events_written == 480


def test_a_stream_gone_since_the_listing_is_skipped_with_the_reason(aws: Aws) -> None:
    names = seed_small_streams(aws, 3)
    item = described_item(aws)
    del aws.backend.groups[SOURCE].streams[names[1]]

    progress = aws.copy(**window(aws), item=item)

    assert progress.skipped == [SkippedStream(stream=names[1], reason=SOURCE_GONE)]
    assert aws.target_streams() == [names[0], names[2]]
    assert_copied_once(aws, [names[0], names[2]])


def test_a_batch_larger_than_its_memory_bound_is_planned_again_and_copied_exactly(aws: Aws) -> None:
    names = seed_small_streams(aws, 6, events=30)
    item = WorkItem.model_validate(
        {**described_item(aws).to_event(), "streams": [small(name, size=None).to_event() for name in names]}
    )

    progress = aws.copy(**window(aws), item=item, filter_batch_bytes=2_000)

    assert_copied_once(aws, names)
    assert (progress.events_written, progress.events_already_present) == (180, 0)


def test_a_throttled_filter_page_is_retried_by_botocore_without_a_gap_or_a_double(
    aws: Aws, no_backoff: None
) -> None:
    names = seed_small_streams(aws, 12)
    throttle, seen = failing_on_call(LogGroup.filter_log_events, {1, 2}, throttled)

    with mock.patch.object(LogGroup, "filter_log_events", throttle):
        progress = aws.copy(**window(aws), item=described_item(aws))

    assert (len(seen), progress.filter_calls) == (3, 1)
    assert_copied_once(aws, names)


# --------------------------------------------------------------------------------------------------
# Exactly once at every point of a batch


@pytest.mark.parametrize("checks_per_call", [1, 2, 3, 4, 6, 9])
def test_a_batch_stopped_for_time_anywhere_and_resumed_copies_every_event_once(
    aws: Aws, checks_per_call: int
) -> None:
    names = seed_small_streams(aws, 8, events=30)
    item = described_item(aws)

    total, calls = copy_to_the_end(aws, item, checks_per_call)

    assert calls > 1
    assert_copied_once(aws, names)
    assert (total.events_read, total.events_written, total.events_already_present) == (240, 240, 0)
    assert (total.streams_done, total.streams_copied) == (8, 8)


def test_a_crash_while_reading_a_batch_then_a_retry_writes_every_event_once(aws: Aws) -> None:
    names = seed_small_streams(aws, 5)
    item = described_item(aws)
    crash, seen = failing_on_call(LogGroup.filter_log_events, {1}, lambda: SystemExit("killed"), after=True)

    with mock.patch.object(LogGroup, "filter_log_events", crash), pytest.raises(SystemExit):
        aws.copy(**window(aws), item=item)
    assert (len(seen), aws.puts.calls) == (1, [])

    retry = aws.copy(**window(aws), item=item)

    assert_copied_once(aws, names)
    assert (retry.events_written, retry.events_already_present) == (25, 0)


@pytest.mark.parametrize("crash_on_put", [1, 2, 3, 4, 5])
def test_a_crash_after_any_write_of_a_batch_then_a_retry_writes_nothing_twice(
    aws: Aws, crash_on_put: int
) -> None:
    names = seed_small_streams(aws, 5)
    item = described_item(aws)
    crash, seen = failing_on_call(
        LogsBackend.put_log_events, {crash_on_put}, lambda: SystemExit("killed"), after=True
    )

    with mock.patch.object(LogsBackend, "put_log_events", crash), pytest.raises(SystemExit):
        aws.copy(**window(aws), item=item)
    assert len(seen) == crash_on_put

    retry = aws.copy(**window(aws), item=item)  # the same input: no checkpoint reached the state machine

    assert retry.done
    assert_copied_once(aws, names)
    assert (retry.events_already_present, retry.events_written) == (5 * crash_on_put, 25 - 5 * crash_on_put)


def test_a_crash_between_creating_a_target_stream_and_writing_it_then_a_retry_writes_once(aws: Aws) -> None:
    names = seed_small_streams(aws, 4)
    item = described_item(aws)
    crash, _ = failing_on_call(LogGroup.create_log_stream, {3}, lambda: SystemExit("killed"), after=True)

    with mock.patch.object(LogGroup, "create_log_stream", crash), pytest.raises(SystemExit):
        aws.copy(**window(aws), item=item)

    retry = aws.copy(**window(aws), item=item)

    assert_copied_once(aws, names)
    assert (retry.events_already_present, retry.events_written, retry.streams_created) == (10, 10, 1)


def test_a_crash_mid_stream_of_a_batch_resumed_from_its_checkpoint_writes_nothing_twice(aws: Aws) -> None:
    names = seed_small_streams(aws, 2, events=3)
    # 60 events of 100,000 bytes, small by its facts: 6 batches of 10 from one FilterLogEvents read.
    heavy = stream_name(5)
    aws.seed(heavy, [(aws.now_ms - HOUR + i, f"h {i:02d} " + "h" * 99_990) for i in range(60)])
    names.append(heavy)
    item = WorkItem.model_validate(
        {**described_item(aws).to_event(), "streams": [small(name).to_event() for name in sorted(names)]}
    )
    checkpoint = aws.copy(**window(aws), item=item, time_left_ms=Budget(6))
    assert checkpoint.resume_at is not None
    assert checkpoint.resume_at.stream == heavy
    assert checkpoint.resume_at.timestamp is not None

    crash, seen = failing_on_call(LogsBackend.put_log_events, {3}, lambda: SystemExit("killed"), after=True)
    with mock.patch.object(LogsBackend, "put_log_events", crash), pytest.raises(SystemExit):
        aws.copy(**window(aws), item=item, resume_at=checkpoint.resume_at)
    assert len(seen) == 3

    retry = aws.copy(**window(aws), item=item, resume_at=checkpoint.resume_at)

    assert retry.done
    assert_copied_once(aws, names)
    assert retry.events_already_present == 3 * 10
    assert checkpoint.events_written + 3 * 10 + retry.events_written == 66


def test_a_fresh_rerun_after_a_partial_batch_skips_what_the_target_holds(aws: Aws) -> None:
    names = seed_small_streams(aws, 6, events=10)
    item = described_item(aws)
    partial = aws.copy(**window(aws), item=item, time_left_ms=Budget(4))
    assert not partial.done

    rerun = aws.copy(**window(aws), item=item)  # no cursor: as after a failed execution

    assert_copied_once(aws, names)
    assert rerun.events_already_present == partial.events_written > 0
    assert partial.events_written + rerun.events_written == 60


def test_a_rerun_after_a_complete_copy_writes_nothing(aws: Aws) -> None:
    names = seed_small_streams(aws, 5)
    item = described_item(aws)
    aws.copy(**window(aws), item=item)
    puts = len(aws.puts.calls)

    again = aws.copy(**window(aws), item=item)

    assert len(aws.puts.calls) == puts
    assert (again.events_written, again.events_already_present, again.streams_created) == (0, 25, 0)
    assert_copied_once(aws, names)


def test_events_shared_timestamps_in_a_batch_survive_a_stop_between_them(aws: Aws) -> None:
    moment = aws.now_ms - HOUR
    name = stream_name(1)
    # 100,026 bytes each: write batches of 10, so stops fall between events of one millisecond.
    source = [(moment, f"{i:02d} " + "a" * 99_997) for i in range(25)] + [(moment + 1, "next")]
    aws.seed(name, source)
    aws.seed(stream_name(2), [(moment, "other stream, same millisecond")])
    item = WorkItem.model_validate(
        {**described_item(aws).to_event(), "streams": [small(n).to_event() for n in (name, stream_name(2))]}
    )

    total, calls = copy_to_the_end(aws, item, checks_per_call=1)

    assert calls > 2
    assert aws.held(name) == source
    assert_copied_once(aws, [stream_name(2)])
    assert (total.events_written, total.events_already_present) == (27, 0)


def test_a_stream_read_by_both_apis_across_calls_keeps_one_copy(aws: Aws) -> None:
    """A call stopped inside a stream read by a batch; the next call reads it alone (as after a
    re-plan): the positions agree, whichever API read the events."""
    name = stream_name(1)
    aws.seed(name, [(aws.now_ms - HOUR + i // 4, f"{i:03d} " + "q" * 99_990) for i in range(40)])
    batch_item = WorkItem.model_validate(
        {**described_item(aws).to_event(), "streams": [small(name).to_event()]}
    )
    first = aws.copy(**window(aws), item=batch_item, time_left_ms=Budget(2))
    assert first.resume_at is not None

    rest = aws.copy(**window(aws), item=aws.item(name), resume_at=first.resume_at)

    assert aws.held(name) == aws.held(name, SOURCE)
    assert first.events_written + rest.events_written == 40
    assert rest.events_already_present == 0
