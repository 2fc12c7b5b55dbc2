"""The CloudWatch Logs enforcement refuses, leaves out and pages what AWS does, for every client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff
from moto import mock_aws

from emulation.logs_limits import (
    PutLogEventsLog,
    Quotas,
    enforce_filter_log_events_pages,
    enforce_get_log_events_page_size,
    enforce_log_stream_names,
    enforce_put_log_events_limits,
    enforce_quotas,
)

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

REGION = "us-east-1"
GROUP = "airflow-limits-Task"
STREAM = "dag_id=d/run_id=r/task_id=t/attempt=1.log"
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@pytest.fixture
def logs() -> Iterator[CloudWatchLogsClient]:
    with mock_aws():
        client = boto3.client("logs", region_name=REGION)
        client.create_log_group(logGroupName=GROUP)
        client.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
        yield client


@pytest.fixture
def put_log(logs: CloudWatchLogsClient) -> Iterator[PutLogEventsLog]:
    with enforce_put_log_events_limits() as log:
        yield log


def now_ms() -> int:
    return int(time.time() * 1000)


def events(*sizes: int, start: int | None = None, step_ms: int = 0, char: str = "a") -> list[dict[str, Any]]:
    """Events whose messages are `size` repetitions of `char`, `step_ms` apart."""
    first = now_ms() - HOUR_MS if start is None else start
    return [{"timestamp": first + i * step_ms, "message": char * size} for i, size in enumerate(sizes)]


def stored(logs: CloudWatchLogsClient) -> int:
    """How many events the stream holds (GetLogEvents page by page to the end)."""
    count, token = 0, None
    while True:
        page = (
            logs.get_log_events(logGroupName=GROUP, logStreamName=STREAM, startFromHead=True, nextToken=token)
            if token
            else logs.get_log_events(logGroupName=GROUP, logStreamName=STREAM, startFromHead=True)
        )
        count += len(page["events"])
        if page["nextForwardToken"] == token:
            return count
        token = page["nextForwardToken"]


def put(logs: CloudWatchLogsClient, batch: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=batch))  # type: ignore[arg-type]


# 5 events: 3 of 262,144 bytes and 2 adding up to 262,145 (26 bytes per event counted).
ONE_BYTE_OVER_1_MB = (262_118, 262_118, 262_118, 131_046, 131_047)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        pytest.param(
            lambda: events(*[1] * 10_001),
            "Member must have length less than or equal to 10000",
            id="10,001 events",
        ),
        pytest.param(
            lambda: events(*ONE_BYTE_OVER_1_MB),
            "Upload too large: 1048577 bytes exceeds limit of 1048576",
            id="1,048,577 bytes",
        ),
        pytest.param(
            # 5 x (70,000 x 3 bytes + 26): 1,050,130 bytes, though only 350,130 characters.
            lambda: events(*[70_000] * 5, char="€"),
            "Upload too large: 1050130 bytes exceeds limit of 1048576",
            id="UTF-8 bytes over 1 MB",
        ),
        pytest.param(
            lambda: events(1_048_551),
            "Log event too large: 1048577 bytes exceeds limit of 1048576",
            id="one event over 1 MB",
        ),
        pytest.param(
            lambda: events(1, 1, start=now_ms() - DAY_MS - 2 * HOUR_MS, step_ms=DAY_MS + 1),
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
            id="24 h + 1 ms",
        ),
        pytest.param(
            lambda: events(1, 1, step_ms=-1),
            "Log events in a single PutLogEvents request must be in chronological order.",
            id="out of order",
        ),
    ],
)
def test_a_batch_breaking_a_limit_is_refused_as_aws_refuses_it_and_nothing_is_stored(
    logs: CloudWatchLogsClient, put_log: PutLogEventsLog, batch: Any, message: str
) -> None:
    with pytest.raises(ClientError) as refused:
        put(logs, batch())

    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert message in refused.value.response["Error"]["Message"]
    assert stored(logs) == 0
    assert [call.refused for call in put_log.calls] == [refused.value.response["Error"]["Message"]]


@pytest.mark.parametrize(
    "batch",
    [
        pytest.param(lambda: events(*[1] * 10_000), id="10,000 events"),
        pytest.param(lambda: events(*[262_118] * 4), id="1,048,576 bytes"),
        pytest.param(lambda: events(1_048_550), id="one event of 1 MB"),
        pytest.param(lambda: events(1, 1, start=now_ms() - DAY_MS - 2 * HOUR_MS, step_ms=DAY_MS), id="24 h"),
        pytest.param(lambda: events(1, 1, step_ms=0), id="equal timestamps"),
    ],
)
def test_a_batch_at_the_limits_is_accepted_whole(
    logs: CloudWatchLogsClient, put_log: PutLogEventsLog, batch: Any
) -> None:
    sent = batch()

    response = put(logs, sent)

    assert "rejectedLogEventsInfo" not in response
    assert put_log.refused == []
    assert put_log.events_stored == len(sent)


def test_the_call_log_records_count_bytes_and_span(
    logs: CloudWatchLogsClient, put_log: PutLogEventsLog
) -> None:
    put(logs, events(10, 20, step_ms=5, char="é"))

    (call,) = put_log.calls
    assert (call.log_group, call.log_stream) == (GROUP, STREAM)
    assert (call.events, call.bytes, call.span_ms) == (2, 20 + 26 + 40 + 26, 5)
    assert call.refused is None


def test_events_older_than_14_days_are_left_out_and_reported_with_an_exclusive_end_index(
    logs: CloudWatchLogsClient, put_log: PutLogEventsLog
) -> None:
    old = now_ms() - 15 * DAY_MS
    batch = [*events(1, 1, start=old), *events(1)]

    response = put(logs, batch)

    # Two too-old events (indexes 0 and 1): the end index is exclusive. The span counts valid events only.
    assert response["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 2}
    assert stored(logs) == 1
    assert put_log.calls[0].rejected == 2


def test_events_older_than_the_groups_retention_are_left_out_as_expired(
    logs: CloudWatchLogsClient, put_log: PutLogEventsLog
) -> None:
    logs.put_retention_policy(logGroupName=GROUP, retentionInDays=1)

    # 25 h and 1 h old: 24 h apart, the most one batch may span.
    response = put(logs, events(1, 1, start=now_ms() - 25 * HOUR_MS, step_ms=DAY_MS))

    assert response["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 1}
    assert stored(logs) == 1


def test_events_more_than_2_hours_ahead_are_left_out_from_an_inclusive_start_index(
    logs: CloudWatchLogsClient, put_log: PutLogEventsLog
) -> None:
    response = put(logs, [*events(1), *events(1, 1, start=now_ms() + 3 * HOUR_MS)])

    assert response["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    assert stored(logs) == 1


def test_the_limits_hold_for_every_client_and_region(
    logs: CloudWatchLogsClient, put_log: PutLogEventsLog
) -> None:
    other = boto3.client("logs", region_name="eu-west-1")
    other.create_log_group(logGroupName=GROUP)
    other.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)

    with pytest.raises(ClientError, match="Upload too large"):
        other.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=events(*ONE_BYTE_OVER_1_MB))  # type: ignore[arg-type]

    assert len(put_log.refused) == 1


def test_moto_is_lax_again_once_the_enforcement_ends(logs: CloudWatchLogsClient) -> None:
    with enforce_put_log_events_limits(), pytest.raises(ClientError):
        put(logs, events(*[1] * 10_001))

    put(logs, events(*[1] * 10_001))

    assert stored(logs) == 10_001


def test_the_older_256_kb_event_limit_can_be_chosen(logs: CloudWatchLogsClient) -> None:
    with enforce_put_log_events_limits(max_event_bytes=262_144) as log, pytest.raises(ClientError):
        put(logs, events(262_119))

    assert log.refused[0].refused == "Log event too large: 262145 bytes exceeds limit of 262144"


def pages(logs: CloudWatchLogsClient, *, forward: bool = True) -> list[int]:
    """The event count of each GetLogEvents page, reading the whole stream one way."""
    sizes: list[int] = []
    token_key = "nextForwardToken" if forward else "nextBackwardToken"
    request: dict[str, Any] = {"logGroupName": GROUP, "logStreamName": STREAM, "startFromHead": forward}
    while True:
        page = logs.get_log_events(**request)
        if page[token_key] == request.get("nextToken"):
            return sizes
        sizes.append(len(page["events"]))
        request["nextToken"] = page[token_key]


def test_get_log_events_pages_hold_at_most_1_mb(logs: CloudWatchLogsClient) -> None:
    put(logs, events(*[100_000 - 26] * 25))  # 25 events of 100,000 bytes (moto alone takes 2.5 MB)
    with enforce_get_log_events_page_size():
        forward, backward = pages(logs), pages(logs, forward=False)

    assert forward == [10, 10, 5]  # 10 x 100,000 fit in 1,048,576; 11 do not
    assert backward == [10, 10, 5]


def test_get_log_events_pages_of_small_events_hold_10_000(logs: CloudWatchLogsClient) -> None:
    for start in range(0, 25_000, 10_000):
        put(logs, events(*[1] * min(10_000, 25_000 - start)))
    with enforce_get_log_events_page_size():
        assert pages(logs) == [10_000, 10_000, 5_000]


def test_a_page_holds_an_event_larger_than_the_page_limit_alone(logs: CloudWatchLogsClient) -> None:
    put(logs, events(600_000))
    put(logs, events(600_000))
    with enforce_get_log_events_page_size(max_page_bytes=500_000):
        assert pages(logs) == [1, 1]


@pytest.mark.parametrize("name", ["run_id=scheduled__2026-01-01T00:00:00+00:00", "a*b"])
def test_a_stream_name_with_a_colon_or_asterisk_is_refused(logs: CloudWatchLogsClient, name: str) -> None:
    with enforce_log_stream_names(), pytest.raises(ClientError) as refused:
        logs.create_log_stream(logGroupName=GROUP, logStreamName=name)

    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "[^:*]*" in refused.value.response["Error"]["Message"]


def test_a_stream_name_as_mwaa_writes_it_is_accepted(logs: CloudWatchLogsClient) -> None:
    name = "dag_id=d/run_id=scheduled__2026-01-01T00_00_00+00_00/task_id=t/attempt=1.log"
    with enforce_log_stream_names():
        logs.create_log_stream(logGroupName=GROUP, logStreamName=name)

    assert logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="dag_id=d/run")["logStreams"]


def test_filter_log_events_interleaves_streams_by_time_and_pages_at_1_mb(logs: CloudWatchLogsClient) -> None:
    other = "dag_id=d/run_id=r/task_id=u/attempt=1.log"
    logs.create_log_stream(logGroupName=GROUP, logStreamName=other)
    start = now_ms() - HOUR_MS
    put(logs, events(*[100_000] * 12, start=start, step_ms=2))
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName=other,
        logEvents=events(*[100_000] * 12, start=start + 1, step_ms=2),  # type: ignore[arg-type]
    )
    found: list[tuple[int, str]] = []
    pages = 0
    request: dict[str, Any] = {"logGroupName": GROUP, "logStreamNames": [STREAM, other]}

    with enforce_filter_log_events_pages():
        while True:
            page = logs.filter_log_events(**request)
            pages += 1
            found += [(event["timestamp"], event["logStreamName"]) for event in page["events"]]
            if "nextToken" not in page:
                break
            request["nextToken"] = page["nextToken"]

    assert pages == 3  # 24 events of 100,026 bytes, 10 a page
    assert [stamp for stamp, _ in found] == sorted(stamp for stamp, _ in found)
    assert len(found) == len(set(found)) == 24


def test_a_quota_allows_one_second_of_calls_then_its_rate() -> None:
    clock = [0.0]
    quotas = Quotas({"GetLogEvents": 25}, clock=lambda: clock[0])

    assert [quotas.take("GetLogEvents") for _ in range(26)] == [True] * 25 + [False]
    clock[0] = 0.04  # a 25th of a second: one more call
    assert [quotas.take("GetLogEvents"), quotas.take("GetLogEvents")] == [True, False]
    assert (quotas.allowed("GetLogEvents"), quotas.throttled("GetLogEvents")) == (26, 2)


def test_a_call_past_its_quota_is_answered_as_aws_throttles_and_stores_nothing(
    logs: CloudWatchLogsClient,
) -> None:
    once = boto3.client(
        "logs", region_name=REGION, config=Config(retries={"mode": "standard", "total_max_attempts": 1})
    )

    with enforce_quotas({"PutLogEvents": 1}) as quotas:
        put(logs, events(10))
        with pytest.raises(ClientError) as raised:
            once.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=events(10))  # type: ignore[arg-type]

    error = raised.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ThrottlingException",
        400,
    )
    assert error["Error"]["Message"] == "Rate exceeded"
    assert quotas.throttled("PutLogEvents") == 1
    assert stored(logs) == 1


def test_another_regions_quotas_are_its_documented_ones(logs: CloudWatchLogsClient) -> None:
    once = boto3.client(
        "logs", region_name=REGION, config=Config(retries={"mode": "standard", "total_max_attempts": 1})
    )

    with enforce_quotas(clock=lambda: 0.0, region="eu-central-1") as quotas:  # FilterLogEvents: 5 there
        for _ in range(5):
            once.filter_log_events(logGroupName=GROUP)
        with pytest.raises(ClientError):
            once.filter_log_events(logGroupName=GROUP)

    assert (quotas.allowed("FilterLogEvents"), quotas.throttled("FilterLogEvents")) == (5, 1)


def _read_concurrently(callers: int, calls: int) -> list[int]:
    """`callers` threads, each with its own client, making `calls` GetLogEvents each: the retries
    botocore made for each call."""
    retries: list[int] = []
    lock = threading.Lock()

    def caller() -> None:
        client = boto3.client(
            "logs", region_name=REGION, config=Config(retries={"mode": "standard", "max_attempts": 50})
        )
        for _ in range(calls):
            answer = client.get_log_events(logGroupName=GROUP, logStreamName=STREAM)
            with lock:
                retries.append(answer["ResponseMetadata"]["RetryAttempts"])

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return retries


def test_concurrent_callers_past_a_shared_quota_are_throttled_and_retried_to_success(
    logs: CloudWatchLogsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.05)

    with enforce_quotas({"GetLogEvents": 20}) as quotas:
        retries = _read_concurrently(callers=4, calls=10)

    assert len(retries) == 40  # every call succeeded in the end
    assert quotas.allowed("GetLogEvents") == 40
    assert quotas.throttled("GetLogEvents") == sum(retries) > 0


def test_concurrent_callers_within_the_quota_are_never_throttled(logs: CloudWatchLogsClient) -> None:
    with enforce_quotas() as quotas:  # the documented 25 a second
        retries = _read_concurrently(callers=4, calls=5)

    assert (len(retries), sum(retries), quotas.throttled("GetLogEvents")) == (20, 0, 0)
