"""Copy the recent task log streams of one CloudWatch Logs group to another (the pipeline's step 6).

What the copy keeps to (CloudWatch Logs API reference, botocore's `logs` model):

- The window is half-open, `since <= timestamp < until`. GetLogEvents' `endTime` is exclusive on AWS
  and inclusive on moto, so events are also filtered here: the result is the same on both.
- PutLogEvents batches hold at most 10,000 events and 1,048,576 bytes (UTF-8 message bytes + 26 per
  event), span less than 24 hours and are in chronological order (`plan_batches`). An event larger
  than `max_event_bytes` is truncated with a marker and counted, never dropped.
- Events older than 14 days or the target group's retention are left out by rule and counted;
  `rejectedLogEventsInfo` in a PutLogEvents answer is counted, never ignored.

Writing nothing twice. The copy of a stream is append-only and in the source's order, so the target
stream always holds a prefix of the source stream. A position in a stream is `(timestamp, ordinal)`:
the ordinal-th source event with that timestamp. Before copying a stream, the target's last event
gives the position the target already holds (after checking that those events really are the
source's: a stream of another origin is skipped and reported, never appended to). A position, unlike
a count of events, stays right when events age out of the 14-day rule between two runs. The copy
then writes only the source events after that position.

Lambda time. The copy stops between two AWS calls when less than `safety_margin_ms` remains and
returns a `LogCopyCursor` (stream and position) to call it again with. It stops only once the cursor
has moved, so every call gets further than the one before (no endless loop of calls that each stop
at once); a call that starts with less than two margins left is refused. The cursor is trusted over
the target's last event when that one is older (CloudWatch Logs reads may lag a moment behind
writes), so resuming is exact. Throttling is retried by botocore (`clients.RETRY_CONFIG`), not here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import ClientError
from pydantic import Field

from mwaa_migrate.errors import InvalidMigrationRequest, MigrationConflict, from_client_error
from mwaa_migrate.models import Model
from mwaa_migrate.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import (
        GetLogEventsResponseTypeDef,
        LogStreamTypeDef,
        RejectedLogEventsInfoTypeDef,
    )

# PutLogEvents' limits.
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
# 256 KB per event, message + 26 bytes. Newer botocore models document 1 MB per event; 256 KB is
# accepted everywhere, and callers may pass a larger `max_event_bytes`.
MAX_EVENT_BYTES = 262_144
# A batch spans strictly less than 24 hours (AWS refuses more than 24 hours).
MAX_BATCH_SPAN_MS = 24 * 60 * 60 * 1000
MAX_EVENT_AGE = timedelta(days=14)

# DescribeLogStreams' lastEventTimestamp "updates on an eventual consistency basis, typically in less
# than an hour", and no event is accepted more than 2 hours ahead of its ingestion: a stream whose
# newest timestamp (event, ingestion or creation) is older than `since` minus this has no event in
# the window.
STREAM_ACTIVITY_SLACK_MS = 2 * 60 * 60 * 1000
DEFAULT_SAFETY_MARGIN_MS = 60_000
# At most this many skipped streams are listed in a result (all are counted).
MAX_SKIPPED_LISTED = 20
TRUNCATION_MARKER = " ... [truncated by mwaa-migrate: the source event had {size} bytes]"

_NOT_FOUND = "ResourceNotFoundException"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def task_log_group(environment_name: str) -> str:
    """The CloudWatch Logs group MWAA writes an environment's task logs to."""
    return f"airflow-{environment_name}-Task"


# ---------------------------------------------------------------------------------------------------
# Results


class LogCopyCursor(Model):
    """Where to resume: source stream `stream`; of its events, those before `timestamp` and the first
    `events_at_timestamp` ones at `timestamp` are done (none when `timestamp` is absent). Streams are
    taken in DescribeLogStreams' name order, so every stream named before `stream` is done too."""

    stream: str = Field(min_length=1)
    timestamp: int | None = None
    events_at_timestamp: int = Field(default=0, ge=0)


class SkippedStream(Model):
    stream: str
    reason: str


class LogCopyProgress(Model):
    """What one call did. The counters of successive calls add up (`combined_with`); every event the
    copy handled is counted once: events_read = written + rejected + already_present + too_old (an
    event too old now counts as too old even when an earlier run copied it)."""

    done: bool
    resume_at: LogCopyCursor | None = None
    # Source streams looked at (each counted once, when finished), with events copied, and skipped.
    streams_listed: int = 0
    streams_copied: int = 0
    streams_skipped: int = 0
    events_read: int = 0
    events_written: int = 0
    events_already_present: int = 0
    events_too_old: int = 0
    events_truncated: int = 0
    events_rejected: int = 0
    put_calls: int = 0
    get_calls: int = 0
    skipped: list[SkippedStream] = Field(default_factory=list)

    def combined_with(self, later: LogCopyProgress) -> LogCopyProgress:
        """The progress of this call followed by `later`: counters summed, `later`'s cursor and state."""
        data = self.model_dump(by_alias=False)
        other = later.model_dump(by_alias=False)
        for name in _COUNTER_FIELDS:
            data[name] += other[name]
        data["done"] = later.done
        data["resume_at"] = other["resume_at"]
        data["skipped"] = (data["skipped"] + other["skipped"])[:MAX_SKIPPED_LISTED]
        return LogCopyProgress.model_validate(data)


# ---------------------------------------------------------------------------------------------------
# Events and batches (pure)


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One event as it is written to the target."""

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
        """The event for a source message, truncated with a marker when it is larger than one event may be."""
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


def plan_batches(
    events: Iterable[LogEvent],
    *,
    max_events: int = MAX_BATCH_EVENTS,
    max_bytes: int = MAX_BATCH_BYTES,
    max_span_ms: int = MAX_BATCH_SPAN_MS,
) -> Iterator[list[LogEvent]]:
    """Group chronological events, in order, into the fewest PutLogEvents batches that keep to the
    limits: at most `max_events` events and `max_bytes` bytes, and a span below `max_span_ms`.
    Each batch is full: the event after it would have broken a limit."""
    batch: list[LogEvent] = []
    batch_bytes = 0
    for event in events:
        if event.size > max_bytes:
            raise ValueError(f"an event of {event.size} bytes can never fit a batch of {max_bytes}")
        if batch and event.timestamp < batch[-1].timestamp:
            raise ValueError("events must be in chronological order")
        if batch and (
            len(batch) >= max_events
            or batch_bytes + event.size > max_bytes
            or event.timestamp - batch[0].timestamp >= max_span_ms
        ):
            yield batch
            batch, batch_bytes = [], 0
        batch.append(event)
        batch_bytes += event.size
    if batch:
        yield batch


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
# The copy


class _Position(NamedTuple):
    timestamp: int
    ordinal: int


@dataclass
class _Counts:
    streams_listed: int = 0
    streams_copied: int = 0
    streams_skipped: int = 0
    events_read: int = 0
    events_written: int = 0
    events_already_present: int = 0
    events_too_old: int = 0
    events_truncated: int = 0
    events_rejected: int = 0
    put_calls: int = 0
    get_calls: int = 0


_COUNTER_FIELDS = tuple(item.name for item in fields(_Counts))


class _OutOfTimeError(Exception):
    """Less than the safety margin is left: stop between two calls."""


class _StreamNotFoundError(Exception):
    """GetLogEvents answered ResourceNotFoundException."""


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
    counts: _Counts = field(default_factory=_Counts)
    skipped: list[SkippedStream] = field(default_factory=list)
    # Whether the cursor moved: a call stops only after it did, so calling again always gets further.
    moved: bool = False

    def out_of_time(self) -> bool:
        return self.moved and self.time_left_ms() < self.safety_margin_ms

    def check_time(self) -> None:
        if self.out_of_time():
            raise _OutOfTimeError

    def get_log_events(self, request: dict[str, Any], doing: str) -> GetLogEventsResponseTypeDef:
        try:
            response = self.logs.get_log_events(**request)
        except ClientError as error:
            if _code(error) == _NOT_FOUND:
                raise _StreamNotFoundError from error
            raise from_client_error(error, doing) from error
        self.counts.get_calls += 1
        return response

    def progress(self, resume_at: LogCopyCursor | None) -> LogCopyProgress:
        return LogCopyProgress.model_validate(
            {
                "done": resume_at is None,
                "resume_at": resume_at,
                "skipped": self.skipped[:MAX_SKIPPED_LISTED],
                **asdict(self.counts),
            }
        )


@dataclass
class _StreamState:
    name: str
    # The last source event handled (written, rejected, found present or too old).
    handled: _Position | None
    target_exists: bool
    events_in_window: int = 0

    def cursor(self) -> LogCopyCursor:
        if self.handled is None:
            return LogCopyCursor(stream=self.name)
        return LogCopyCursor(
            stream=self.name, timestamp=self.handled.timestamp, events_at_timestamp=self.handled.ordinal
        )


@dataclass(frozen=True)
class _Tail:
    """The target stream's last event and how many events it holds at that timestamp."""

    exists: bool
    position: _Position | None = None
    messages: tuple[str, ...] = ()


def copy_log_streams(
    logs: CloudWatchLogsClient,
    *,
    source_group: str,
    target_group: str,
    since: datetime,
    until: datetime,
    resume_at: LogCopyCursor | None,
    time_left_ms: Callable[[], int],
    safety_margin_ms: int = DEFAULT_SAFETY_MARGIN_MS,
    max_event_bytes: int = MAX_EVENT_BYTES,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> LogCopyProgress:
    """Copy the events of `source_group`'s streams with `since <= timestamp < until` to the streams of
    the same names in `target_group`, from `resume_at` on. Returns done, or the cursor to call again
    with when less than `safety_margin_ms` of `time_left_ms()` remained."""
    since_ms, until_ms = _window(since, until)
    if not 1024 <= max_event_bytes <= MAX_BATCH_BYTES:
        raise InvalidMigrationRequest(f"max_event_bytes must be between 1024 and {MAX_BATCH_BYTES}")
    budget_ms = time_left_ms()
    if budget_ms < 2 * safety_margin_ms:
        raise InvalidMigrationRequest(
            f"the log copy needs at least {2 * safety_margin_ms} ms to run, {budget_ms} ms are left: "
            "raise the function's timeout"
        )
    retention_days = _target_retention_days(logs, target_group)
    max_age = MAX_EVENT_AGE if retention_days is None else min(MAX_EVENT_AGE, timedelta(days=retention_days))
    # Every event kept must still be young enough at the last write this call may make.
    oldest_ms = _millis(now() - max_age) + budget_ms
    run = _Run(
        logs=logs,
        source_group=source_group,
        target_group=target_group,
        since_ms=since_ms,
        until_ms=until_ms,
        oldest_ms=oldest_ms,
        max_event_bytes=max_event_bytes,
        time_left_ms=time_left_ms,
        safety_margin_ms=safety_margin_ms,
    )
    for stream in _source_streams(run):
        name = stream.get("logStreamName", "")
        if resume_at is not None and name < resume_at.stream:
            continue
        resumed = resume_at if resume_at is not None and name == resume_at.stream else None
        if run.out_of_time():
            return _stopped(run, resumed or LogCopyCursor(stream=name))
        if _may_hold_window(stream, since_ms, until_ms):
            outcome = _copy_stream(run, name, resumed)
            if isinstance(outcome, LogCopyCursor):
                return _stopped(run, outcome)
            if isinstance(outcome, SkippedStream):
                run.counts.streams_skipped += 1
                run.skipped.append(outcome)
                logger.warning("log stream skipped", extra={"stream": name, "reason": outcome.reason})
            elif outcome:
                run.counts.streams_copied += 1
        run.counts.streams_listed += 1
        run.moved = True
    progress = run.progress(resume_at=None)
    logger.info("task logs copied", extra={"progress": progress.to_event()})
    return progress


def _stopped(run: _Run, cursor: LogCopyCursor) -> LogCopyProgress:
    progress = run.progress(resume_at=cursor)
    logger.info("task log copy paused to resume", extra={"progress": progress.to_event()})
    return progress


def _window(since: datetime, until: datetime) -> tuple[int, int]:
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidMigrationRequest("since and until must carry a time zone")
    if since >= until:
        raise InvalidMigrationRequest(
            f"since ({since.isoformat()}) must be before until ({until.isoformat()})"
        )
    return _millis(since), _millis(until)


def _millis(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _target_retention_days(logs: CloudWatchLogsClient, target_group: str) -> int | None:
    """The target group's retention (None: never expire); a missing group is a MigrationConflict."""
    try:
        for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=target_group):
            for group in page.get("logGroups", []):
                if group.get("logGroupName") == target_group:
                    return group.get("retentionInDays")
    except ClientError as error:
        raise from_client_error(error, f"describing log group {target_group}") from error
    raise _no_target_group(target_group)


def _no_target_group(target_group: str) -> MigrationConflict:
    return MigrationConflict(
        f"the target log group {target_group} does not exist: Task logs must be enabled on the target "
        "environment (LoggingConfiguration.TaskLogs) before its task logs can be copied"
    )


def _source_streams(run: _Run) -> Iterator[LogStreamTypeDef]:
    """Every source stream in name order (DescribeLogStreams' default order, which the cursor uses)."""
    pages = run.logs.get_paginator("describe_log_streams").paginate(
        logGroupName=run.source_group, orderBy="LogStreamName"
    )
    try:
        for page in pages:
            yield from page.get("logStreams", [])
    except ClientError as error:
        if _code(error) == _NOT_FOUND:
            raise MigrationConflict(
                f"the source log group {run.source_group} does not exist: the source environment has no "
                "Task logs to copy"
            ) from error
        raise from_client_error(error, f"listing the streams of {run.source_group}") from error


def _may_hold_window(stream: LogStreamTypeDef, since_ms: int, until_ms: int) -> bool:
    first = stream.get("firstEventTimestamp")
    if first is not None and first >= until_ms:
        return False
    marks = [
        stream[key] for key in ("lastEventTimestamp", "lastIngestionTime", "creationTime") if key in stream
    ]
    return not marks or max(marks) >= since_ms - STREAM_ACTIVITY_SLACK_MS


def _copy_stream(run: _Run, name: str, resumed: LogCopyCursor | None) -> bool | SkippedStream | LogCopyCursor:
    """Copy one stream: True when events of the window were found (and are all handled), False when
    it had none, a SkippedStream, or the cursor to resume at when time ran out."""
    resumed_at = (
        _Position(resumed.timestamp, resumed.events_at_timestamp)
        if resumed is not None and resumed.timestamp is not None
        else None
    )
    tail = _target_tail(run, name)
    # The target's events that may overlap the window, unless this run wrote them (the cursor).
    present: _Position | None = None
    if (
        tail.position is not None
        and tail.position.timestamp >= run.since_ms
        and (resumed_at is None or tail.position > resumed_at)
    ):
        try:
            problem = _check_target_prefix(run, name, tail.position, tail.messages)
        except _StreamNotFoundError:
            problem = "the source stream no longer exists (deleted or expired)"
        if problem:
            return SkippedStream(stream=name, reason=problem)
        present = tail.position
    state = _StreamState(name=name, handled=resumed_at, target_exists=tail.exists)
    start_ms = max(run.since_ms, resumed_at.timestamp) if resumed_at is not None else run.since_ms
    try:
        for batch in plan_batches(_events_to_write(run, state, start_ms, resumed_at, present)):
            run.check_time()
            _write(run, state, batch)
    except _OutOfTimeError:
        return state.cursor()
    except _StreamNotFoundError:
        return SkippedStream(stream=name, reason="the source stream no longer exists (deleted or expired)")
    return state.events_in_window > 0 or resumed_at is not None


def _events_to_write(
    run: _Run, state: _StreamState, start_ms: int, resumed_at: _Position | None, present: _Position | None
) -> Iterator[LogEvent]:
    """The source events to write; those before them are counted here. Events come in position order,
    and every test below marks a prefix of them, so the handled ones always precede the ones to write."""
    for event in _read_source(run, state.name, start_ms):
        state.events_in_window += 1
        position = _Position(event.timestamp, event.ordinal)
        if resumed_at is not None and position <= resumed_at:
            continue  # an earlier call handled and counted it
        if event.timestamp < run.oldest_ms:
            run.counts.events_too_old += 1
        elif present is not None and position <= present:
            run.counts.events_already_present += 1
        else:
            yield event
            continue
        run.counts.events_read += 1
        state.handled = position
        run.moved = True


def _read_source(run: _Run, stream: str, start_ms: int) -> Iterator[LogEvent]:
    """The source stream's events with start_ms <= timestamp < until, page by page to the end (the
    same forward token coming back), each with its ordinal among the events of its timestamp."""
    request: dict[str, Any] = {
        "logGroupName": run.source_group,
        "logStreamName": stream,
        "startTime": start_ms,
        # Exclusive on AWS, inclusive on moto: the filter below makes it exclusive on both.
        "endTime": run.until_ms,
        "startFromHead": True,
    }
    previous: int | None = None
    ordinal = 0
    while True:
        run.check_time()
        response = run.get_log_events(request, f"reading {run.source_group}/{stream}")
        for item in response["events"]:
            timestamp = item["timestamp"]
            if not start_ms <= timestamp < run.until_ms:
                continue
            if previous is not None and timestamp < previous:
                raise MigrationConflict(f"GetLogEvents returned {run.source_group}/{stream} out of order")
            ordinal = ordinal + 1 if timestamp == previous else 1
            previous = timestamp
            yield LogEvent.of(
                timestamp, item["message"], ordinal=ordinal, max_event_bytes=run.max_event_bytes
            )
        token = response["nextForwardToken"]
        if token == request.get("nextToken"):
            return
        request["nextToken"] = token


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


def _target_tail(run: _Run, stream: str) -> _Tail:
    """The target stream's last event (paging backwards past empty pages), and its events at that time."""
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
                return _Tail(exists=True, position=_Position(last, len(messages)), messages=tuple(messages))
            token = response["nextBackwardToken"]
            if token == request.get("nextToken"):
                return _Tail(exists=True)
            request["nextToken"] = token
    except _StreamNotFoundError:
        return _Tail(exists=False)


def _check_target_prefix(
    run: _Run, stream: str, position: _Position, messages: tuple[str, ...]
) -> str | None:
    """Why the target stream is not a prefix of the source stream, or None when it is: its events at
    its last timestamp must be the first ones of the source's at that timestamp (as written)."""
    timestamp, count = position
    source = [
        LogEvent.of(timestamp, message, max_event_bytes=run.max_event_bytes).message
        for message in _events_at(run, run.source_group, stream, timestamp)
    ]
    if len(source) >= count and Counter(source[:count]) == Counter(messages):
        return None
    moment = datetime.fromtimestamp(timestamp / 1000, UTC).isoformat()
    return (
        f"the target stream already holds events that are not this source stream's (its last events, "
        f"at {moment}, have no match in the source): nothing was written to it"
    )


def _write(run: _Run, state: _StreamState, batch: list[LogEvent]) -> None:
    target = f"{run.target_group}/{state.name}"
    if not state.target_exists:
        _create_target_stream(run, state.name)
        state.target_exists = True
    try:
        response = run.logs.put_log_events(
            logGroupName=run.target_group,
            logStreamName=state.name,
            logEvents=[{"timestamp": event.timestamp, "message": event.message} for event in batch],
        )
    except ClientError as error:
        raise from_client_error(error, f"writing {len(batch)} events to {target}") from error
    rejected = count_rejected(response.get("rejectedLogEventsInfo"), len(batch))
    if rejected:
        logger.warning(
            "PutLogEvents left events out",
            extra={"stream": target, "rejected": rejected, "info": response.get("rejectedLogEventsInfo")},
        )
    counts = run.counts
    counts.put_calls += 1
    counts.events_read += len(batch)
    counts.events_written += len(batch) - rejected
    counts.events_rejected += rejected
    counts.events_truncated += sum(1 for event in batch if event.truncated)
    state.handled = _Position(batch[-1].timestamp, batch[-1].ordinal)
    run.moved = True


def _create_target_stream(run: _Run, stream: str) -> None:
    try:
        run.logs.create_log_stream(logGroupName=run.target_group, logStreamName=stream)
    except ClientError as error:
        code = _code(error)
        if code == "ResourceAlreadyExistsException":
            return
        if code == _NOT_FOUND:
            raise _no_target_group(run.target_group) from error
        raise from_client_error(error, f"creating log stream {run.target_group}/{stream}") from error
