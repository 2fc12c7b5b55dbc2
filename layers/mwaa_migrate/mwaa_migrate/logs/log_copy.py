"""Copy the log streams of one work item from a source CloudWatch Logs group to a target group.

The state machine lists the streams to copy (`log_listing`), cuts the list into work items and runs
one Distributed Map child per item; each child calls this copy until it says done. What the copy
keeps to (CloudWatch Logs API reference, botocore's `logs` model):

- The window is half-open, `since <= timestamp < until`. GetLogEvents' `endTime` is exclusive on AWS
  and inclusive on moto, so events are also filtered here: the result is the same on both.
- PutLogEvents batches hold at most 10,000 events and 1,048,576 bytes (UTF-8 message bytes + 26 per
  event), span less than 24 hours and are in chronological order (`plan_batches`, which packs each
  stream into the fewest batches those limits allow).
- Events older than 14 days or than the target group's retention are left out by rule and counted
  (`events_too_old`): PutLogEvents would reject them. `rejectedLogEventsInfo` in an answer is counted
  (`events_rejected`), never ignored.
- An event larger than one event may be (1 MB, message + 26, since April 2025; it cannot occur in a
  source of the same service) is written truncated with a marker saying its size, counted and noted
  per stream: never dropped silently.
- Throttling is retried by botocore (`clients.LOGS_RETRY_CONFIG`: adaptive client-side rate limiting,
  backoff with jitter); what outlives those retries is a TransientAwsError, which the state retries.
  A PutLogEvents that fails otherwise (a 5xx, a timeout, a lost connection) may still have stored its
  batch, so botocore must not send it again blindly (`no_blind_put_retries`): the call ends with a
  TransientAwsError, and the state's retry resumes from the checkpoint, reading the target first.

Reading at the account's quota. GetLogEvents, FilterLogEvents and DescribeLogStreams each have a
per-account, per-Region quota in calls a second (`LOGS_QUOTAS_TPS`), shared with everything else in
the Region: on AWS the copy's time is its read calls over that quota, not this function's CPU. MWAA's
task logs are thousands of small streams, and GetLogEvents reads one stream a call and needs one more
call to learn its end (the same token back). So the read planner (`plan_reads`) reads runs of small
streams (by the listing's DescribeLogStreams facts) up to 100 a call with FilterLogEvents, whose last
page carries no nextToken, groups the interleaved events back by stream and writes each stream in
turn; a large stream (or one listed without facts) is read alone with GetLogEvents and written page by
page. A stream the listing saw with events in the window and the batch finds empty is read alone, which
tells a deleted stream from an expired one.

Writing nothing twice. A stream's copy is append-only and in the source's order, so the target stream
always holds a prefix of the source stream. A position in a stream is `(timestamp, ordinal)`: the
ordinal-th source event with that timestamp. The checkpoint of the stream being copied is its last
written position, returned as `resume_at` when time runs short and carried by the state machine into
the next call. Whether the target already holds events is learnt from CreateLogStream, which the copy
needs anyway: a stream it creates is empty, so a first copy reads nothing from the target. When the
stream already exists (a retry after a crash, a resumed call, a re-run of the migration), its last
event gives the position the target holds, after checking that those events really are the source's
(a stream of another origin is skipped and reported, never appended to); the copy then writes only
the source events after the later of that position and the checkpoint. A position, unlike a count,
stays right when events age out of the 14-day rule between two runs. The checkpoint wins over a target
tail that looks older (reads may lag a moment behind writes), so a resumed copy is exact. The one
case a checkpoint cannot cover, a call that dies after a write it never reported, relies on reading
that write back: the state waits before such a retry (10 s after Lambda's timeout or a crash, 2 s and
more after a TransientAwsError) so that CloudWatch Logs shows it. A FilterLogEvents batch changes none of
this: it is read whole before its first stream is written, and a call stopped or killed inside it
resumes at the stream being written, reading the batch again; the positions above make the events
already written count as present.

Lambda time. The copy stops between two AWS calls when less than `safety_margin_ms` remains and
returns the cursor (stream and position) to call it again with. It stops only once the cursor has
moved, so every call gets further than the one before; a call that starts with less than two
margins left is refused.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import accumulate, compress, count
from operator import add, itemgetter, not_
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from mwaa_migrate.errors import (
    InvalidMigrationRequest,
    MigrationConflict,
    TransientAwsError,
    error_code,
    from_client_error,
)
from mwaa_migrate.logs.log_counts import COUNTER_FIELDS, CopyCounts
from mwaa_migrate.logs.log_names import epoch_millis
from mwaa_migrate.models import LogGroupKind, Model
from mwaa_migrate.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import (
        FilterLogEventsResponseTypeDef,
        GetLogEventsResponseTypeDef,
        RejectedLogEventsInfoTypeDef,
    )

# PutLogEvents' limits.
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
# One event, message + 26 bytes: 1 MB since April 2025 (botocore's model: "no larger than 1 MB").
MAX_EVENT_BYTES = 1_048_576
# A batch spans strictly less than 24 hours (AWS refuses more than 24 hours).
MAX_BATCH_SPAN_MS = 24 * 60 * 60 * 1000
MAX_EVENT_AGE = timedelta(days=14)

DEFAULT_SAFETY_MARGIN_MS = 60_000
# At most this many skipped streams and notes are listed in a result (all are counted).
MAX_LISTED = 20
TRUNCATION_MARKER = " ... [truncated by mwaa-migrate: the source event had {size} bytes]"
FOREIGN_TARGET = (
    "the target stream already holds events that are not this source stream's (its last events have "
    "no match in the source): nothing was written to it"
)
SOURCE_GONE = "the source stream no longer exists (deleted or expired)"

_NOT_FOUND = "ResourceNotFoundException"
_PUT_NEEDS_RETRY = "needs-retry.cloudwatch-logs.PutLogEvents"
_EXISTS = "ResourceAlreadyExistsException"


# ---------------------------------------------------------------------------------------------------
# Work items and results


class StreamFacts(Model):
    """What DescribeLogStreams told of a source stream when it was listed: the read planner sizes the
    stream with it. AWS has reported `storedBytes` as 0 for log streams since June 2019, so a size is
    known only where it is above 0 (moto reports one); None is unknown."""

    first_event: int | None = None
    last_event: int | None = None
    stored_bytes: int | None = Field(default=None, ge=1)


class StreamToCopy(Model):
    """A source stream and, when it differs, the name it gets in the target."""

    source: str = Field(min_length=1, max_length=512)
    target: str | None = Field(default=None, min_length=1, max_length=512)
    # Set by the listing; a stream without facts (an item from before the planner) is read alone.
    facts: StreamFacts | None = None

    @property
    def target_name(self) -> str:
        return self.target or self.source


class WorkItem(Model):
    """What one Distributed Map child copies: streams of one group, in name order."""

    group: LogGroupKind
    source_group: str
    target_group: str
    # The target group's retention when the streams were listed; None: it never expires.
    target_retention_days: int | None = None
    streams: list[StreamToCopy] = Field(min_length=1)


class LogCopyCursor(Model):
    """Where to resume: source stream `stream` of the item; of its events, those before `timestamp`
    and the first `events_at_timestamp` ones at `timestamp` are done (none when `timestamp` is absent).
    Every stream before `stream` in the item is done too."""

    stream: str = Field(min_length=1)
    timestamp: int | None = None
    events_at_timestamp: int = Field(default=0, ge=0)


class SkippedStream(Model):
    stream: str
    reason: str


class StreamNote(Model):
    """Something the report should say about a copied stream (truncated or rejected events)."""

    stream: str
    note: str


class LogCopyProgress(CopyCounts):
    """What the calls of one item did so far. The counters of successive calls add up
    (`combined_with`); every event handled is counted once (EventCounts)."""

    done: bool
    resume_at: LogCopyCursor | None = None
    skipped: list[SkippedStream] = Field(default_factory=list)
    notes: list[StreamNote] = Field(default_factory=list)

    def combined_with(self, later: LogCopyProgress) -> LogCopyProgress:
        """This call followed by `later`: counters summed, `later`'s cursor and state."""
        data = self.model_dump(by_alias=False)
        other = later.model_dump(by_alias=False)
        for name in COUNTER_FIELDS:
            data[name] += other[name]
        data["done"] = later.done
        data["resume_at"] = other["resume_at"]
        data["skipped"] = (data["skipped"] + other["skipped"])[:MAX_LISTED]
        data["notes"] = (data["notes"] + other["notes"])[:MAX_LISTED]
        return LogCopyProgress.model_validate(data)


# ---------------------------------------------------------------------------------------------------
# Events and batches (pure)


class LogEvent(NamedTuple):
    """One event as it is written to the target (a tuple: the copy makes one per event)."""

    timestamp: int
    message: str
    # As PutLogEvents counts it: UTF-8 bytes of the message + 26.
    size: int
    truncated: bool = False
    # 1-based rank among the source stream's events with this timestamp.
    ordinal: int = 1

    @classmethod
    def of(
        cls, timestamp: int, message: str, *, ordinal: int = 1, max_event_bytes: int = MAX_EVENT_BYTES
    ) -> LogEvent:
        """The event for a source message, truncated with a marker when larger than one event may be."""
        if len(message) * 4 + EVENT_OVERHEAD_BYTES <= max_event_bytes:  # surely small enough: no encoding
            return cls(timestamp, message, _utf8_size(message) + EVENT_OVERHEAD_BYTES, False, ordinal)
        encoded = _utf8(message)
        if len(encoded) + EVENT_OVERHEAD_BYTES <= max_event_bytes:
            return cls(timestamp, message, len(encoded) + EVENT_OVERHEAD_BYTES, False, ordinal)
        marker = TRUNCATION_MARKER.format(size=len(encoded)).encode()
        keep = max_event_bytes - EVENT_OVERHEAD_BYTES - len(marker)
        # Cut on a character boundary: a character split by the cut is dropped whole.
        head = encoded[:keep].decode("utf-8", errors="ignore").encode()
        text = (head + marker).decode()
        return cls(timestamp, text, len(head) + len(marker) + EVENT_OVERHEAD_BYTES, True, ordinal)


def _utf8(message: str) -> bytes:
    # A lone surrogate (possible from JSON) must not crash the copy; it counts as its 3 bytes.
    return message.encode("utf-8", errors="surrogatepass")


def _utf8_size(message: str) -> int:
    return len(message) if message.isascii() else len(_utf8(message))


def plan_batches(
    events: Iterable[LogEvent],
    *,
    max_events: int = MAX_BATCH_EVENTS,
    max_bytes: int = MAX_BATCH_BYTES,
    max_span_ms: int = MAX_BATCH_SPAN_MS,
) -> Iterator[list[LogEvent]]:
    """Group chronological events, in order, into the fewest PutLogEvents batches that keep to the
    limits: at most `max_events` events and `max_bytes` bytes, and a span below `max_span_ms`.
    Each batch is full: the event after it would have broken a limit. (The copy cuts its columns of
    events with the same `batch_ends`.)"""
    listed = list(events)
    timestamps = [event.timestamp for event in listed]
    if timestamps != sorted(timestamps):
        raise ValueError("events must be in chronological order")
    start = 0
    for end in batch_ends(
        timestamps,
        [event.size for event in listed],
        max_events=max_events,
        max_bytes=max_bytes,
        max_span_ms=max_span_ms,
    ):
        yield listed[start:end]
        start = end


def batch_ends(
    timestamps: Sequence[int],
    sizes: Iterable[int],
    start: int = 0,
    *,
    max_events: int = MAX_BATCH_EVENTS,
    max_bytes: int = MAX_BATCH_BYTES,
    max_span_ms: int = MAX_BATCH_SPAN_MS,
) -> list[int]:
    """Where each batch of `plan_batches` ends, for events from `start` on given as columns
    (chronological timestamps, sizes): the end (exclusive) of each batch, greedily, the last one at
    the end of the events. A batch's end is the first of three bounds: `max_events` on, the last event
    within `max_bytes` (by running totals of the sizes) and the first at `max_span_ms` or more after
    its first (both found by bisection: the copy cuts 10,000-event batches without a step an event)."""
    totals = list(accumulate(sizes, initial=0))
    count = len(timestamps)
    ends: list[int] = []
    first = start
    while first < count:
        end = min(
            count,
            first + max_events,
            bisect_right(totals, totals[first] + max_bytes, first + 1) - 1,
            bisect_left(timestamps, timestamps[first] + max_span_ms, first + 1),
        )
        if end <= first:
            raise ValueError(
                f"an event of {totals[first + 1] - totals[first]} bytes can never fit a batch of {max_bytes}"
            )
        ends.append(end)
        first = end
    return ends


def count_rejected(info: RejectedLogEventsInfoTypeDef | None, batch_size: int) -> int:
    """How many events of a batch PutLogEvents' `rejectedLogEventsInfo` says were left out: the
    too-old and expired ones before an exclusive end index, the too-new ones from an inclusive start."""
    if not info:
        return 0
    old_end = max(info.get("tooOldLogEventEndIndex", 0), info.get("expiredLogEventEndIndex", 0))
    old_end = min(max(old_end, 0), batch_size)
    new_start = min(max(info.get("tooNewLogEventStartIndex", batch_size), old_end), batch_size)
    return old_end + batch_size - new_start


# ---------------------------------------------------------------------------------------------------
# The read planner (pure)

# FilterLogEvents reads at most this many named streams a call (botocore: InputLogStreamNames, max 100).
MAX_FILTER_STREAMS = 100
# A page of GetLogEvents or FilterLogEvents holds at most 10,000 events and 1 MB.
PAGE_EVENTS = 10_000
PAGE_BYTES = 1_048_576
# A stream this large is read alone with GetLogEvents: written page by page as it is read (a stop
# resumes inside it, nothing is held), for one end-of-stream call, at most a quarter of its pages.
LARGE_STREAM_BYTES = 4 * PAGE_BYTES
# A FilterLogEvents batch is held in memory until its last page, since its streams' events come
# interleaved by time and a stream is written only once it is read whole: at most this many bytes of
# events (message + 26 each), a small part of the function's 1,024 MB.
FILTER_BATCH_BYTES = 32 * PAGE_BYTES
ReadApi = Literal["GetLogEvents", "FilterLogEvents"]
GET_LOG_EVENTS: ReadApi = "GetLogEvents"
FILTER_LOG_EVENTS: ReadApi = "FilterLogEvents"

# CloudWatch Logs' default quotas in transactions per second, per account and Region and shared with
# everything else there, as the "CloudWatch Logs quotas" page gives them (Amazon CloudWatch Logs User
# Guide, https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html, read
# 2026-12): these are us-east-1's, where the emulation and the benchmark run; `logs_quotas_tps` has
# the Regions whose read quotas differ. GetLogEvents and FilterLogEvents cannot be raised;
# DescribeLogStreams, CreateLogStream and PutLogEvents can, through Service Quotas. (Older versions
# of the page said 5 for FilterLogEvents and DescribeLogStreams and 10 for GetLogEvents, and gave
# PutLogEvents 800 to 1,500 by Region: it is now 5,000 in every Region.)
LOGS_QUOTAS_TPS: dict[str, float] = {
    "GetLogEvents": 25,
    "FilterLogEvents": 25,
    "DescribeLogStreams": 25,
    "CreateLogStream": 50,
    "PutLogEvents": 5_000,
}
# The page's other figures for the read APIs: GetLogEvents is 25 a second except in these Regions,
# FilterLogEvents 10 except in these (us-east-1's 25 above among them).
_GET_LOG_EVENTS_TPS_BY_REGION: dict[str, float] = {
    "us-west-2": 10,
    "ap-northeast-3": 10,
    "ap-southeast-3": 10,
    "ca-west-1": 10,
    "eu-central-1": 10,
    "eu-west-1": 10,
    "eu-west-3": 30,
    "il-central-1": 10,
}
_FILTER_LOG_EVENTS_TPS_BY_REGION: dict[str, float] = {
    "us-east-1": 25,
    "ap-northeast-3": 5,
    "ap-southeast-3": 5,
    "ca-west-1": 5,
    "eu-central-1": 5,
    "il-central-1": 5,
}
_FILTER_LOG_EVENTS_TPS_ELSEWHERE = 10


def logs_quotas_tps(region: str) -> dict[str, float]:
    """The default quotas of `region` (`LOGS_QUOTAS_TPS` is us-east-1's)."""
    return {
        **LOGS_QUOTAS_TPS,
        "GetLogEvents": _GET_LOG_EVENTS_TPS_BY_REGION.get(region, LOGS_QUOTAS_TPS["GetLogEvents"]),
        "FilterLogEvents": _FILTER_LOG_EVENTS_TPS_BY_REGION.get(region, _FILTER_LOG_EVENTS_TPS_ELSEWHERE),
    }


# The time of one CloudWatch Logs call from a Lambda in the same Region (tens of ms to about 100 ms):
# the longer end, so that the concurrency below does not overshoot when calls are quick.
LOGS_CALL_SECONDS = 0.1


def log_copy_max_concurrency(
    quotas: dict[str, float] = LOGS_QUOTAS_TPS, call_seconds: float = LOGS_CALL_SECONDS
) -> int:
    """The log copy's Distributed Map concurrency that the quotas call for (the template's default).

    A child makes one call at a time, so N children make at most N / call_seconds calls a second
    (Little's law). Per stream of an MWAA-shaped item the copy makes one CreateLogStream, one
    PutLogEvents and a small share of a FilterLogEvents page: half its calls are CreateLogStream, the
    quota no read plan can spare (a target stream per source stream), so N = quota x call_seconds / 0.5
    children just fill it. Reads then stay far below theirs (a FilterLogEvents page per ~25 streams:
    about 2 a second, under the 5 of the Regions with the lowest FilterLogEvents quota); more children
    would only be throttled and retried. CreateLogStream's quota is the same in every Region, so is
    this default. Items of large streams read by GetLogEvents (a call per page, each followed by a
    PutLogEvents) can outrun a 10-a-second GetLogEvents quota at this concurrency: they are throttled
    and retried, not lost. `call_seconds` is an estimate, not a documented figure."""
    share_of_creates = 0.5
    return max(1, math.floor(quotas["CreateLogStream"] * call_seconds / share_of_creates))


class ReadStep(NamedTuple):
    """Streams read with one API: one stream by GetLogEvents, up to 100 by FilterLogEvents."""

    api: ReadApi
    streams: tuple[StreamToCopy, ...]


def plan_reads(
    streams: Iterable[StreamToCopy],
    *,
    large_bytes: int = LARGE_STREAM_BYTES,
    batch_bytes: int = FILTER_BATCH_BYTES,
    max_streams: int = MAX_FILTER_STREAMS,
) -> list[ReadStep]:
    """Cut an item's streams, in their order, into the read steps that cost the fewest calls.

    Read quota is counted in calls, and a FilterLogEvents page holds the events of up to 100 streams
    where a GetLogEvents page holds one stream's and its end needs one more call (the same token
    back); FilterLogEvents ends on a page without nextToken. So runs of streams known to be small (or
    of unknown size: AWS no longer reports stored bytes) go together, at most `max_streams` and
    `batch_bytes` of known size a batch; a stream known to be large, or without the listing's facts,
    is read alone with GetLogEvents. The order stays the item's: the checkpoint says every stream
    before the cursor's is done."""
    steps: list[ReadStep] = []
    batch: list[StreamToCopy] = []
    held = 0
    for stream in streams:
        size = (stream.facts.stored_bytes or 0) if stream.facts is not None else 0
        if stream.facts is None or size >= min(large_bytes, batch_bytes):
            if batch:
                steps.append(ReadStep(FILTER_LOG_EVENTS, tuple(batch)))
                batch, held = [], 0
            steps.append(ReadStep(GET_LOG_EVENTS, (stream,)))
            continue
        if batch and (len(batch) >= max_streams or held + size > batch_bytes):
            steps.append(ReadStep(FILTER_LOG_EVENTS, tuple(batch)))
            batch, held = [], 0
        batch.append(stream)
        held += size
    if batch:
        steps.append(ReadStep(FILTER_LOG_EVENTS, tuple(batch)))
    return steps


def facts_promise_events(stream: StreamToCopy, since_ms: int, until_ms: int) -> bool:
    """Whether the listing saw an event of the window in the stream (its first or last one)."""
    facts = stream.facts
    if facts is None:
        return False
    return any(
        stamp is not None and since_ms <= stamp < until_ms for stamp in (facts.first_event, facts.last_event)
    )


# ---------------------------------------------------------------------------------------------------
# Retries


def _put_retry_guard(response: Any = None, caught_exception: Any = None, **_: Any) -> bool | None:
    """botocore's retry decision for PutLogEvents, asked before its own: False (do not retry) when the
    call failed in a way that may have stored the batch (a 5xx, a timeout, a lost connection); None
    (let botocore decide) otherwise, so throttled calls, which stored nothing, are retried."""
    if caught_exception is not None:
        return False
    if response is None:
        return None
    status = getattr(response[0], "status_code", 0)
    return False if status >= 500 else None


def no_blind_put_retries(logs: CloudWatchLogsClient) -> None:
    """Keep botocore from sending a PutLogEvents again after a failure that may have stored it."""
    # The stubs type handlers as returning None; botocore uses what needs-retry handlers return.
    guard = cast("Callable[..., None]", _put_retry_guard)
    logs.meta.events.register_first(_PUT_NEEDS_RETRY, guard, unique_id="mwaa-migrate-put-retry-guard")


def _unsure(error: BotoCoreError, doing: str) -> TransientAwsError:
    return TransientAwsError(f"{doing}: {type(error).__name__}: {error}")


def _read[R](call: Callable[..., R], request: dict[str, Any], doing: str) -> R:
    """A read of the source: a stream gone is _StreamNotFoundError, the rest the project's errors."""
    try:
        return call(**request)
    except ClientError as error:
        if error_code(error) == _NOT_FOUND:
            raise _StreamNotFoundError from error
        raise from_client_error(error, doing) from error
    except BotoCoreError as error:
        raise _unsure(error, doing) from error


# ---------------------------------------------------------------------------------------------------
# The copy


class _Position(NamedTuple):
    timestamp: int
    ordinal: int


_TIMESTAMP = itemgetter("timestamp")
_MESSAGE = itemgetter("message")
_PLUS_OVERHEAD = partial(add, EVENT_OVERHEAD_BYTES)


@dataclass
class _Events:
    """A run of one source stream's events, in the stream's order, as it will be written: columns
    rather than an object an event, because the copy handles every event of the history and a column
    is built and cut at C speed (`_Events.of`, `batch_ends`), where an object an event costs a few
    Python steps each. `before` is the position of the stream's event just before the first one
    (None: none read before); an event's position is counted from it on demand (`position`)."""

    timestamps: list[int]
    messages: list[str]
    # As PutLogEvents counts them: UTF-8 bytes of the message + 26.
    sizes: list[int]
    # Indexes of the events written truncated (larger than an event may be).
    truncated: list[int]
    before: _Position | None

    def __len__(self) -> int:
        return len(self.timestamps)

    @classmethod
    def of(
        cls,
        run: _Run,
        timestamps: list[int],
        messages: list[str],
        *,
        start_ms: int,
        before: _Position | None,
        where: str,
    ) -> _Events:
        """The events with start_ms <= timestamp < until of a stream's next events as read, checked
        to be in order, sized, and truncated with a marker where larger than an event may be."""
        until_ms = run.until_ms
        if timestamps and (min(timestamps) < start_ms or max(timestamps) >= until_ms):
            kept = [(t, m) for t, m in zip(timestamps, messages, strict=True) if start_ms <= t < until_ms]
            timestamps, messages = [t for t, _ in kept], [m for _, m in kept]
        if timestamps != sorted(timestamps) or (
            before is not None and timestamps and timestamps[0] < before.timestamp
        ):
            raise MigrationConflict(f"{where} out of order")
        # Characters first: the bytes of an ASCII message. Only messages that might be larger than an
        # event may be (4 bytes a character at most) are measured, and only non-ASCII ones encoded.
        sizes = list(map(len, messages))
        truncated: list[int] = []
        max_event_bytes = run.max_event_bytes
        if sizes and max(sizes) * 4 + EVENT_OVERHEAD_BYTES > max_event_bytes:
            messages = list(messages)
            for index, length in enumerate(sizes):
                if length * 4 + EVENT_OVERHEAD_BYTES > max_event_bytes:
                    event = LogEvent.of(timestamps[index], messages[index], max_event_bytes=max_event_bytes)
                    messages[index] = event.message
                    sizes[index] = event.size - EVENT_OVERHEAD_BYTES
                    if event.truncated:
                        truncated.append(index)
        for index in compress(count(), map(not_, map(str.isascii, messages))):
            sizes[index] = len(_utf8(messages[index]))
        return cls(timestamps, messages, list(map(_PLUS_OVERHEAD, sizes)), truncated, before)

    def position(self, index: int) -> _Position:
        """The position of the event at `index`: its timestamp and its rank among the stream's events
        with that timestamp."""
        timestamp = self.timestamps[index]
        first = bisect_left(self.timestamps, timestamp, 0, index)
        ordinal = index - first + 1
        if first == 0 and self.before is not None and self.before.timestamp == timestamp:
            ordinal += self.before.ordinal
        return _Position(timestamp, ordinal)

    def index_after(self, position: _Position, start: int) -> int:
        """The index of the first event from `start` on whose position is after `position`."""
        timestamps = self.timestamps
        low = bisect_left(timestamps, position.timestamp, start)
        high = bisect_right(timestamps, position.timestamp, low)
        if low == high:
            return low
        return min(high, low + max(0, position.ordinal - self.position(low).ordinal + 1))

    def after_index(self, index: int) -> _Events:
        """The events from `index` on."""
        return _Events(
            self.timestamps[index:],
            self.messages[index:],
            self.sizes[index:],
            [at - index for at in self.truncated if at >= index],
            self.position(index - 1) if index > 0 else self.before,
        )

    def followed_by(self, later: _Events) -> _Events:
        """These events, then `later` (the stream's next ones)."""
        return _Events(
            self.timestamps + later.timestamps,
            self.messages + later.messages,
            self.sizes + later.sizes,
            self.truncated + [at + len(self) for at in later.truncated],
            self.before,
        )


class _Counts(CopyCounts, frozen=False):
    """The counters of the call under way, added to as it goes."""


class _OutOfTimeError(Exception):
    """Less than the safety margin is left: stop between two calls."""


class _StreamNotFoundError(Exception):
    """GetLogEvents answered ResourceNotFoundException."""


class _BatchTooLargeError(Exception):
    """A FilterLogEvents batch outgrew FILTER_BATCH_BYTES (its streams' sizes were unknown): its
    streams with what was learnt of their sizes, to plan again."""

    def __init__(self, resized: list[StreamToCopy]) -> None:
        super().__init__("batch too large")
        self.resized = resized


class _SkipStreamError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Run:
    logs: CloudWatchLogsClient
    source_group: str
    target_group: str
    since_ms: int
    until_ms: int
    # Events older than this are left out (14 days or the target's retention).
    oldest_ms: int
    max_event_bytes: int
    time_left_ms: Callable[[], int]
    safety_margin_ms: int
    batch_bytes: int = FILTER_BATCH_BYTES
    counts: _Counts = field(default_factory=_Counts)
    skipped: list[SkippedStream] = field(default_factory=list)
    notes: list[StreamNote] = field(default_factory=list)
    # Whether the cursor moved: a call stops only after it did, so calling again always gets further.
    moved: bool = False

    def out_of_time(self) -> bool:
        return self.moved and self.time_left_ms() < self.safety_margin_ms

    def check_time(self) -> None:
        if self.out_of_time():
            raise _OutOfTimeError

    def get_log_events(self, request: dict[str, Any], doing: str) -> GetLogEventsResponseTypeDef:
        response = _read(self.logs.get_log_events, request, doing)
        self.counts.get_calls += 1
        return response

    def filter_log_events(self, request: dict[str, Any], doing: str) -> FilterLogEventsResponseTypeDef:
        response = _read(self.logs.filter_log_events, request, doing)
        self.counts.filter_calls += 1
        return response

    def note(self, stream: str, text: str) -> None:
        if len(self.notes) < MAX_LISTED:
            self.notes.append(StreamNote(stream=stream, note=text))

    def progress(self, resume_at: LogCopyCursor | None) -> LogCopyProgress:
        return LogCopyProgress.model_validate(
            {
                "done": resume_at is None,
                "resume_at": resume_at,
                "skipped": self.skipped[:MAX_LISTED],
                "notes": self.notes[:MAX_LISTED],
                **self.counts.model_dump(by_alias=False),
            }
        )


@dataclass
class _StreamState:
    source: str
    target: str
    # The checkpoint: the last source event handled (written, rejected, found present or too old).
    handled: _Position | None
    # The position the target holds beyond the checkpoint (learnt once, before the first write).
    present: _Position | None = None
    target_known: bool = False
    # Whether an event to write was found: every later one is to write too (the handled are a prefix).
    writing: bool = False
    events_in_window: int = 0
    truncated: int = 0
    rejected: int = 0

    def cursor(self) -> LogCopyCursor:
        if self.handled is None:
            return LogCopyCursor(stream=self.source)
        return LogCopyCursor(
            stream=self.source, timestamp=self.handled.timestamp, events_at_timestamp=self.handled.ordinal
        )


def copy_work_item(
    logs: CloudWatchLogsClient,
    item: WorkItem,
    *,
    since: datetime,
    until: datetime,
    resume_at: LogCopyCursor | None,
    time_left_ms: Callable[[], int],
    safety_margin_ms: int = DEFAULT_SAFETY_MARGIN_MS,
    max_event_bytes: int = MAX_EVENT_BYTES,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    filter_batch_bytes: int = FILTER_BATCH_BYTES,
) -> LogCopyProgress:
    """Copy the events with `since <= timestamp < until` of the item's source streams to their target
    streams, from `resume_at` on. Returns done, or the cursor to call again with when less than
    `safety_margin_ms` of `time_left_ms()` remained."""
    since_ms, until_ms = _window(since, until)
    if not 1024 <= max_event_bytes <= MAX_BATCH_BYTES:
        raise InvalidMigrationRequest(f"max_event_bytes must be between 1024 and {MAX_BATCH_BYTES}")
    names = [stream.source for stream in item.streams]
    if len(set(names)) != len(names):
        raise InvalidMigrationRequest("a work item names a stream more than once")
    start = 0
    if resume_at is not None:
        if resume_at.stream not in names:
            raise InvalidMigrationRequest(
                f"resumeAt.stream {resume_at.stream!r} is not a stream of this item"
            )
        start = names.index(resume_at.stream)
    no_blind_put_retries(logs)
    budget_ms = time_left_ms()
    if budget_ms < 2 * safety_margin_ms:
        raise InvalidMigrationRequest(
            f"the log copy needs at least {2 * safety_margin_ms} ms to run, {budget_ms} ms are left: "
            "raise the function's timeout"
        )
    retention = item.target_retention_days
    max_age = MAX_EVENT_AGE if retention is None else min(MAX_EVENT_AGE, timedelta(days=retention))
    # Every event kept must still be young enough at the last write this call may make.
    oldest_ms = epoch_millis(now() - max_age) + budget_ms
    run = _Run(
        logs=logs,
        source_group=item.source_group,
        target_group=item.target_group,
        since_ms=since_ms,
        until_ms=until_ms,
        oldest_ms=oldest_ms,
        max_event_bytes=max_event_bytes,
        time_left_ms=time_left_ms,
        safety_margin_ms=safety_margin_ms,
        batch_bytes=filter_batch_bytes,
    )
    stopped_at = _copy_streams(run, item.streams[start:], resume_at, filter_batch_bytes)
    if stopped_at is not None:
        return _stopped(run, stopped_at)
    progress = run.progress(resume_at=None)
    logger.info("work item copied", extra={"progress": progress.to_event()})
    return progress


def _copy_streams(
    run: _Run, streams: list[StreamToCopy], resume_at: LogCopyCursor | None, filter_batch_bytes: int
) -> LogCopyCursor | None:
    """Copy the streams step by step as the read planner cuts them: None when all are done, else the
    cursor to resume at."""
    # The unit of work is a read step; the checkpoint stays a position in one stream, every stream
    # before it done. A batch is read whole before its first stream is written, so a stop or a crash
    # inside a batch resumes at the stream it was writing: the batch is read again from the window's
    # start, and the positions (target tail, checkpoint) keep what was written from being written again.
    steps = deque(plan_reads(streams, batch_bytes=filter_batch_bytes))
    while steps:
        step = steps.popleft()
        first = step.streams[0].source
        if run.out_of_time():
            return _resume_cursor(resume_at, first)
        read: dict[str, _Events] | None = None
        if step.api == FILTER_LOG_EVENTS:
            try:
                read = _read_batch(run, step.streams)
            except _OutOfTimeError:
                return _resume_cursor(resume_at, first)
            except _BatchTooLargeError as too_large:
                steps.extendleft(reversed(plan_reads(too_large.resized, batch_bytes=filter_batch_bytes)))
                continue
            except _StreamNotFoundError:
                # A named stream (or the group) is gone: read each alone, GetLogEvents tells which.
                steps.extendleft(reversed([ReadStep(GET_LOG_EVENTS, (one,)) for one in step.streams]))
                continue
        for stream in step.streams:
            resumed = resume_at if resume_at is not None and stream.source == resume_at.stream else None
            if run.out_of_time():
                return resumed or LogCopyCursor(stream=stream.source)
            events = None if read is None else read[stream.source]
            if events is not None and not events and facts_promise_events(stream, run.since_ms, run.until_ms):
                # Listed with events in the window, found with none: gone or expired since. Reading it
                # alone says which (a gone stream is skipped with the reason).
                events = None
            outcome = _copy_stream(run, stream, resumed, events)
            if isinstance(outcome, LogCopyCursor):
                return outcome
            if isinstance(outcome, SkippedStream):
                run.counts.streams_skipped += 1
                if len(run.skipped) < MAX_LISTED:
                    run.skipped.append(outcome)
                logger.warning(
                    "log stream skipped", extra={"stream": stream.source, "reason": outcome.reason}
                )
            elif outcome:
                run.counts.streams_copied += 1
            run.counts.streams_done += 1
            run.moved = True
    return None


def _resume_cursor(resume_at: LogCopyCursor | None, stream: str) -> LogCopyCursor:
    """Where to resume when stopping before `stream` was written: its start, or the checkpoint
    inside it that this call was given."""
    if resume_at is not None and resume_at.stream == stream:
        return resume_at
    return LogCopyCursor(stream=stream)


def _stopped(run: _Run, cursor: LogCopyCursor) -> LogCopyProgress:
    progress = run.progress(resume_at=cursor)
    logger.info("log copy paused to resume", extra={"progress": progress.to_event()})
    return progress


def _window(since: datetime, until: datetime) -> tuple[int, int]:
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidMigrationRequest("since and until must carry a time zone")
    if since >= until:
        raise InvalidMigrationRequest(
            f"since ({since.isoformat()}) must be before until ({until.isoformat()})"
        )
    return epoch_millis(since), epoch_millis(until)


def no_target_group(target_group: str) -> MigrationConflict:
    kind = target_group.rsplit("-", 1)[-1]
    return MigrationConflict(
        f"the target log group {target_group} does not exist: {kind} logs must be enabled on the target "
        "environment (its LoggingConfiguration) before they can be copied into it"
    )


def _copy_stream(
    run: _Run, stream: StreamToCopy, resumed: LogCopyCursor | None, read: _Events | None = None
) -> bool | SkippedStream | LogCopyCursor:
    """Copy one stream: True when events of the window were found (and are all handled), False when it
    had none, a SkippedStream, or the cursor to resume at when time ran out. `read` is the stream's
    events in the window when a batch read them already; without it, GetLogEvents reads them."""
    resumed_at = (
        _Position(resumed.timestamp, resumed.events_at_timestamp)
        if resumed is not None and resumed.timestamp is not None
        else None
    )
    state = _StreamState(source=stream.source, target=stream.target_name, handled=resumed_at)
    start_ms = max(run.since_ms, resumed_at.timestamp) if resumed_at is not None else run.since_ms
    try:
        source = _read_source(run, stream.source, start_ms) if read is None else iter((read,))
        _write_stream(run, state, source, resumed_at)
    except _OutOfTimeError:
        return state.cursor()
    except _SkipStreamError as skip:
        return SkippedStream(stream=stream.source, reason=skip.reason)
    except _StreamNotFoundError:
        return SkippedStream(stream=stream.source, reason=SOURCE_GONE)
    if state.truncated:
        run.note(
            stream.source,
            f"{state.truncated} event(s) larger than {run.max_event_bytes} bytes were written truncated, "
            "with a marker giving the original size",
        )
    if state.rejected:
        run.note(stream.source, f"PutLogEvents left out {state.rejected} event(s) as too old or too new")
    return state.events_in_window > 0 or resumed_at is not None


def _write_stream(
    run: _Run, state: _StreamState, source: Iterator[_Events], resumed_at: _Position | None
) -> None:
    """Write the source's runs of events (pages, or a batch's whole stream) in the fewest batches:
    a batch is written once full, the last one at the stream's end, so a batch may join the end of
    one page to the start of the next."""
    pending: _Events | None = None  # events to write whose batch is not full yet
    for events in source:
        state.events_in_window += len(events)
        start = 0 if state.writing else _skip_handled(run, state, events, resumed_at)
        if start == len(events):
            continue
        state.writing = True
        if pending is not None:
            events = pending.followed_by(events)  # noqa: PLW2901 (the pending batch joins this run)
            start = 0
        # The last batch may still grow with the next run's events: it is written with them, or at the
        # stream's end.
        *full, _ = batch_ends(events.timestamps, events.sizes, start)
        first = start
        for end in full:
            run.check_time()
            _write(run, state, events, first, end)
            first = end
        pending = events.after_index(first)
    if pending is not None:
        run.check_time()
        _write(run, state, pending, 0, len(pending))


def _skip_handled(run: _Run, state: _StreamState, events: _Events, resumed_at: _Position | None) -> int:
    """Count the events not to write and return the index of the first one to write. They are a
    prefix, found by bisection (positions and timestamps grow along a stream): those up to the
    checkpoint (an earlier call handled and counted them), then those too old to write, then those
    the target stream holds already (learnt, with the target's creation, at the first event that is
    neither)."""
    counts = run.counts
    timestamps = events.timestamps
    after_checkpoint = events.index_after(resumed_at, 0) if resumed_at is not None else 0
    young = max(after_checkpoint, bisect_left(timestamps, run.oldest_ms))
    counts.events_too_old += young - after_checkpoint
    first = young
    if young < len(timestamps):
        if not state.target_known:
            state.present = _learn_target(run, state, resumed_at)
            state.target_known = True
        if state.present is not None:
            first = events.index_after(state.present, young)
        counts.events_already_present += first - young
    counts.events_read += first - after_checkpoint
    if first > after_checkpoint:
        state.handled = events.position(first - 1)
        run.moved = True
    return first


def _learn_target(run: _Run, state: _StreamState, resumed_at: _Position | None) -> _Position | None:
    """Make sure the target stream exists and return the position it already holds beyond the
    checkpoint (None when it holds nothing more). A stream created here is empty: nothing to read."""
    try:
        run.logs.create_log_stream(logGroupName=run.target_group, logStreamName=state.target)
    except ClientError as error:
        code = error_code(error)
        if code == _NOT_FOUND:
            raise no_target_group(run.target_group) from error
        if code != _EXISTS:
            raise from_client_error(
                error, f"creating log stream {run.target_group}/{state.target}"
            ) from error
    except BotoCoreError as error:
        raise _unsure(error, f"creating log stream {run.target_group}/{state.target}") from error
    else:
        run.counts.streams_created += 1
        return None
    tail = _target_tail(run, state.target)
    if (
        tail is None
        or tail.position.timestamp < run.since_ms
        or (resumed_at is not None and tail.position <= resumed_at)
    ):
        return None
    problem = _check_target_prefix(run, state.source, tail)
    if problem:
        raise _SkipStreamError(problem)
    return tail.position


def _read_source(run: _Run, stream: str, start_ms: int) -> Iterator[_Events]:
    """The source stream's events with start_ms <= timestamp < until, a page at a time to the end (the
    same forward token coming back)."""
    request: dict[str, Any] = {
        "logGroupName": run.source_group,
        "logStreamName": stream,
        "startTime": start_ms,
        # Exclusive on AWS, inclusive on moto: the window is applied again to what comes back.
        "endTime": run.until_ms,
        "startFromHead": True,
    }
    before: _Position | None = None
    doing = f"reading {run.source_group}/{stream}"
    while True:
        run.check_time()
        response = run.get_log_events(request, doing)
        page = response["events"]
        events = _Events.of(
            run,
            list(map(_TIMESTAMP, page)),
            list(map(_MESSAGE, page)),
            start_ms=start_ms,
            before=before,
            where=f"GetLogEvents returned {run.source_group}/{stream}",
        )
        if events:
            before = events.position(len(events) - 1)
            yield events
        token = response["nextForwardToken"]
        if token == request.get("nextToken"):
            return
        request["nextToken"] = token


def _read_batch(run: _Run, streams: tuple[StreamToCopy, ...]) -> dict[str, _Events]:
    """Every event of the window of up to 100 streams, by FilterLogEvents, grouped back by stream.

    Pages come interleaved by time across the streams and may cut between events of one timestamp;
    nextToken carries on exactly where a page stopped, and a stream's events are gathered over the
    whole read before their positions are counted, so a cut loses and doubles nothing. `endTime` is
    inclusive here: until - 1."""
    # Per stream, its events' timestamps and messages as they come (the one step an event: the rest
    # is done a stream at a time by `_Events.of`).
    found: dict[str, tuple[list[int], list[str]]] = {stream.source: ([], []) for stream in streams}
    request: dict[str, Any] = {
        "logGroupName": run.source_group,
        "logStreamNames": list(found),
        "startTime": run.since_ms,
        "endTime": run.until_ms - 1,
    }
    doing = f"reading {len(found)} streams of {run.source_group}"
    held = 0  # bytes of the events held so far (message + 26 each)
    while True:
        run.check_time()
        response = run.filter_log_events(request, doing)
        page = response["events"]
        for item in page:
            columns = found.get(item["logStreamName"])
            if columns is not None:  # AWS answers for the streams named only
                columns[0].append(item["timestamp"])
                columns[1].append(item["message"])
        held += _bytes(list(map(_MESSAGE, page)))
        if held > run.batch_bytes:
            raise _BatchTooLargeError([_resized(stream, found[stream.source][1]) for stream in streams])
        token = response.get("nextToken")
        if not token or (token == request.get("nextToken") and not page):
            break
        request["nextToken"] = token
    return {
        name: _Events.of(
            run,
            timestamps,
            messages,
            start_ms=run.since_ms,
            before=None,
            where=f"FilterLogEvents returned {name}",
        )
        for name, (timestamps, messages) in found.items()
    }


def _bytes(messages: list[str]) -> int:
    """The events' bytes as PutLogEvents counts them (message + 26 each); only non-ASCII ones encoded."""
    held = sum(map(len, messages)) + EVENT_OVERHEAD_BYTES * len(messages)
    for message in compress(messages, map(not_, map(str.isascii, messages))):
        held += len(_utf8(message)) - len(message)
    return held


def _resized(stream: StreamToCopy, messages: list[str]) -> StreamToCopy:
    """The stream with at least the bytes a read found in it as its known size."""
    held = _bytes(messages)
    facts = stream.facts or StreamFacts()
    if held <= (facts.stored_bytes or 0):
        return stream
    return stream.model_copy(update={"facts": facts.model_copy(update={"stored_bytes": held})})


def _events_at(run: _Run, group: str, stream: str, timestamp: int) -> list[str]:
    """The messages of a stream's events at one timestamp, in order."""
    request: dict[str, Any] = {
        "logGroupName": group,
        "logStreamName": stream,
        "startTime": timestamp,
        "endTime": timestamp + 1,
        "startFromHead": True,
    }
    messages: list[str] = []
    while True:
        response = run.get_log_events(request, f"reading {group}/{stream}")
        messages.extend(item["message"] for item in response["events"] if item["timestamp"] == timestamp)
        token = response["nextForwardToken"]
        if token == request.get("nextToken"):
            return messages
        request["nextToken"] = token


@dataclass(frozen=True)
class _Tail:
    """The target stream's last event and its events at that timestamp."""

    position: _Position
    messages: tuple[str, ...]


def _target_tail(run: _Run, stream: str) -> _Tail | None:
    """The target stream's last event (paging backwards past empty pages) with its events at that
    time, or None when the stream holds none."""
    request: dict[str, Any] = {
        "logGroupName": run.target_group,
        "logStreamName": stream,
        "startFromHead": False,
        "limit": 1,
    }
    doing = f"reading {run.target_group}/{stream}"
    try:
        while True:
            response = run.get_log_events(request, doing)
            if response["events"]:
                last = response["events"][-1]["timestamp"]
                messages = _events_at(run, run.target_group, stream, last)
                return _Tail(position=_Position(last, len(messages)), messages=tuple(messages))
            token = response["nextBackwardToken"]
            if token == request.get("nextToken"):
                return None
            request["nextToken"] = token
    except _StreamNotFoundError:
        return None


def _check_target_prefix(run: _Run, source_stream: str, tail: _Tail) -> str | None:
    """Why the target stream is not a prefix of the source stream, or None when it is: its events at
    its last timestamp must be the first ones of the source's at that timestamp (as written)."""
    timestamp, count = tail.position
    try:
        source = [
            LogEvent.of(timestamp, message, max_event_bytes=run.max_event_bytes).message
            for message in _events_at(run, run.source_group, source_stream, timestamp)
        ]
    except _StreamNotFoundError:
        return SOURCE_GONE
    if len(source) >= count and Counter(source[:count]) == Counter(tail.messages):
        return None
    logger.warning(
        "target stream of another origin",
        extra={
            "stream": source_stream,
            "last_event_at": datetime.fromtimestamp(timestamp / 1000, UTC).isoformat(),
        },
    )
    return FOREIGN_TARGET


def _write(run: _Run, state: _StreamState, events: _Events, first: int, end: int) -> None:
    """Write events[first:end] as one PutLogEvents batch."""
    target = f"{run.target_group}/{state.target}"
    size = end - first
    try:
        response = run.logs.put_log_events(
            logGroupName=run.target_group,
            logStreamName=state.target,
            logEvents=[
                {"timestamp": timestamp, "message": message}
                for timestamp, message in zip(
                    events.timestamps[first:end], events.messages[first:end], strict=True
                )
            ],
        )
    except ClientError as error:
        # A 5xx becomes a TransientAwsError: the state's retry resumes from the checkpoint.
        raise from_client_error(error, f"writing {size} events to {target}") from error
    except BotoCoreError as error:
        raise _unsure(error, f"writing {size} events to {target}") from error
    rejected = count_rejected(response.get("rejectedLogEventsInfo"), size)
    if rejected:
        logger.warning(
            "PutLogEvents left events out",
            extra={"stream": target, "rejected": rejected, "info": response.get("rejectedLogEventsInfo")},
        )
    truncated = sum(first <= index < end for index in events.truncated)
    counts = run.counts
    counts.put_calls += 1
    counts.events_read += size
    counts.events_written += size - rejected
    counts.events_rejected += rejected
    counts.events_truncated += truncated
    state.truncated += truncated
    state.rejected += rejected
    state.handled = events.position(end - 1)
    run.moved = True
