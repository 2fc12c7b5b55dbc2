"""CloudWatch Logs as strict as AWS, for moto.

moto 5's logs backend stores any batch in chronological order; AWS refuses a batch of more than
10,000 events, more than 1,048,576 bytes (UTF-8 message bytes + 26 per event), with an event larger
than the event limit (1 MB since April 2025, as botocore's model documents it), out of chronological
order, or whose valid events span more than 24 hours. AWS also leaves out (and reports in
`rejectedLogEventsInfo`) events older than 14 days or than the log group's retention and events more
than 2 hours ahead, where moto knows no retention and reports the too-old end index inclusively (AWS
documents it exclusive).

`enforce_put_log_events_limits()` patches `moto.logs.models.LogsBackend.put_log_events`, the method
every PutLogEvents request reaches whichever client, account or region sends it, so that it behaves
as AWS does; it yields a `PutLogEventsLog` recording every call, refused or not.

    with mock_aws(), enforce_put_log_events_limits() as put_log:
        ...
        assert put_log.refused == []

`enforce_logs_limits()` does that and two more things moto does not:

- GetLogEvents answers at most 1 MB a page (AWS: "as many log events as can fit in a response size
  of 1 MB, up to 10,000"); moto pages by count only. The page here ends before the event that would
  take it past 1,048,576 bytes, counted as PutLogEvents counts them (message bytes + 26 per event, an
  approximation of the response's size), and always holds at least one event.
- CreateLogStream refuses a name with `:` or `*` (botocore's model: pattern `[^:*]*`, which botocore
  does not check client-side), so a stream name AWS would refuse fails the tests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import wraps
from itertools import pairwise
from typing import Any
from unittest import mock

from moto.core.utils import unix_time_millis, utcnow
from moto.logs.exceptions import InvalidParameterException
from moto.logs.models import LogGroup, LogsBackend, LogStream

MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
# One event, message + 26 bytes: 1 MB since April 2025 (before, 256 KB: pass max_event_bytes=262_144).
MAX_EVENT_BYTES = 1_048_576
# The most GetLogEvents answers in one page.
MAX_PAGE_BYTES = 1_048_576
MAX_PAGE_EVENTS = 10_000
MAX_SPAN_MS = 24 * 60 * 60 * 1000
MAX_AGE_MS = 14 * 24 * 60 * 60 * 1000
MAX_AHEAD_MS = 2 * 60 * 60 * 1000
DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class PutLogEventsCall:
    """One PutLogEvents request as the backend received it."""

    log_group: str
    log_stream: str
    events: int
    # As AWS counts a batch: UTF-8 message bytes + 26 per event.
    bytes: int
    # Last timestamp minus first.
    span_ms: int
    # AWS's message when the request was refused, else None.
    refused: str | None = None
    # Events accepted in the request but left out (too old, expired or too new).
    rejected: int = 0


@dataclass
class PutLogEventsLog:
    """Every PutLogEvents call made while the enforcement was on, in order."""

    calls: list[PutLogEventsCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, call: PutLogEventsCall) -> None:
        with self._lock:
            self.calls.append(call)

    @property
    def accepted(self) -> list[PutLogEventsCall]:
        return [call for call in self.calls if call.refused is None]

    @property
    def refused(self) -> list[PutLogEventsCall]:
        return [call for call in self.calls if call.refused is not None]

    @property
    def events_stored(self) -> int:
        return sum(call.events - call.rejected for call in self.accepted)


def event_size(message: str) -> int:
    """The size PutLogEvents counts for one event."""
    return len(message.encode("utf-8", errors="surrogatepass")) + EVENT_OVERHEAD_BYTES


def limit_broken(
    log_events: list[dict[str, Any]], *, now_ms: int, max_event_bytes: int = MAX_EVENT_BYTES
) -> str | None:
    """AWS's message for the first PutLogEvents limit `log_events` breaks, or None."""
    if len(log_events) > MAX_BATCH_EVENTS:
        return (
            "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_BATCH_EVENTS}"
        )
    sizes = [event_size(event["message"]) for event in log_events]
    for size in sizes:
        if size > max_event_bytes:
            return f"Log event too large: {size} bytes exceeds limit of {max_event_bytes}"
    if sum(sizes) > MAX_BATCH_BYTES:
        return f"Upload too large: {sum(sizes)} bytes exceeds limit of {MAX_BATCH_BYTES}"
    timestamps = [int(event["timestamp"]) for event in log_events]
    if any(later < earlier for earlier, later in pairwise(timestamps)):
        return "Log events in a single PutLogEvents request must be in chronological order."
    valid = [stamp for stamp in timestamps if now_ms - MAX_AGE_MS <= stamp <= now_ms + MAX_AHEAD_MS]
    if valid and valid[-1] - valid[0] > MAX_SPAN_MS:
        return "The batch of log events in a single PutLogEvents request cannot span more than 24 hours."
    return None


def left_out(
    log_events: list[dict[str, Any]], *, now_ms: int, retention_days: int | None
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The events AWS stores from a valid batch, and its `rejectedLogEventsInfo` for the others (end
    indexes exclusive, start index inclusive, as the API reference documents them)."""
    info: dict[str, int] = {}
    kept: list[dict[str, Any]] = []
    for index, event in enumerate(log_events):
        stamp = int(event["timestamp"])
        too_old = stamp < now_ms - MAX_AGE_MS
        expired = retention_days is not None and stamp < now_ms - retention_days * DAY_MS
        too_new = stamp > now_ms + MAX_AHEAD_MS
        if too_old:
            info["tooOldLogEventEndIndex"] = index + 1
        if expired:
            info["expiredLogEventEndIndex"] = index + 1
        if too_new:
            info.setdefault("tooNewLogEventStartIndex", index)
        if not (too_old or expired or too_new):
            kept.append(event)
    return kept, info


@contextmanager
def enforce_put_log_events_limits(*, max_event_bytes: int = MAX_EVENT_BYTES) -> Iterator[PutLogEventsLog]:
    """Make moto's PutLogEvents refuse and leave out what AWS does, for every client in the process;
    yield the log of the calls. Use it inside `mock_aws()`."""
    log = PutLogEventsLog()
    original = LogsBackend.put_log_events

    @wraps(original)
    def put_log_events(
        self: LogsBackend, log_group_name: str, log_stream_name: str, log_events: list[dict[str, Any]]
    ) -> tuple[str, dict[str, Any]]:
        now_ms = int(unix_time_millis(utcnow()))
        sizes = [event_size(event["message"]) for event in log_events]
        stamps = [int(event["timestamp"]) for event in log_events]
        call = PutLogEventsCall(
            log_group=log_group_name,
            log_stream=log_stream_name,
            events=len(log_events),
            bytes=sum(sizes),
            span_ms=stamps[-1] - stamps[0] if stamps else 0,
        )
        problem = limit_broken(log_events, now_ms=now_ms, max_event_bytes=max_event_bytes)
        if problem is not None:
            log.add(_refused(call, problem))
            raise InvalidParameterException(msg=problem)
        group = self.groups.get(log_group_name)
        retention = group.retention_in_days if group is not None else None
        kept, info = left_out(
            log_events, now_ms=now_ms, retention_days=int(retention) if retention is not None else None
        )
        try:
            token, _ = original(self, log_group_name, log_stream_name, kept)
        except InvalidParameterException as error:
            log.add(_refused(call, error.message))
            raise
        except Exception as error:
            log.add(_refused(call, type(error).__name__))
            raise
        log.add(replace(call, rejected=len(log_events) - len(kept)))
        return token, info

    with mock.patch.object(LogsBackend, "put_log_events", put_log_events):
        yield log


def _refused(call: PutLogEventsCall, message: str) -> PutLogEventsCall:
    return replace(call, refused=message)


@contextmanager
def enforce_get_log_events_page_size(max_page_bytes: int = MAX_PAGE_BYTES) -> Iterator[None]:
    """Make moto's GetLogEvents pages hold at most `max_page_bytes` (and 10,000 events), as AWS's do."""
    original = LogStream.get_log_events

    @wraps(original)
    def get_log_events(  # noqa: PLR0917 (moto's own signature, called positionally)
        self: LogStream,
        start_time: Any,
        end_time: Any,
        limit: int | None,
        next_token: str | None,
        start_from_head: Any,
    ) -> tuple[list[dict[str, Any]], str | None, str | None]:
        page, backward, forward = original(
            self,
            start_time,
            end_time,
            min(limit or MAX_PAGE_EVENTS, MAX_PAGE_EVENTS),
            next_token,
            start_from_head,
        )
        kept = _events_that_fit(page, max_page_bytes, forward=_forward(next_token, start_from_head))
        if kept == len(page):
            return page, backward, forward
        if _forward(next_token, start_from_head):
            first = int(str(backward)[2:])
            return page[:kept], backward, f"f/{first + kept - 1:056d}"
        last = int(str(forward)[2:])
        return page[len(page) - kept :], f"b/{last - kept + 1:056d}", forward

    with mock.patch.object(LogStream, "get_log_events", get_log_events):
        yield


def _forward(next_token: str | None, start_from_head: Any) -> bool:
    return next_token.startswith("f") if next_token else bool(start_from_head)


def _events_that_fit(page: list[dict[str, Any]], max_bytes: int, *, forward: bool) -> int:
    """How many events of the page, from its start (forward) or its end, fit in max_bytes (at least 1)."""
    total, kept = 0, 0
    for event in page if forward else reversed(page):
        total += event_size(event["message"])
        if total > max_bytes and kept:
            break
        kept += 1
    return kept


_STREAM_NAME_CONSTRAINT = "Member must satisfy regular expression pattern: [^:*]*"


@contextmanager
def enforce_log_stream_names() -> Iterator[None]:
    """Make moto's CreateLogStream refuse names with ':' or '*', as AWS does."""
    original = LogGroup.create_log_stream

    @wraps(original)
    def create_log_stream(self: LogGroup, log_stream_name: str) -> None:
        if ":" in log_stream_name or "*" in log_stream_name:
            raise InvalidParameterException(
                constraint=_STREAM_NAME_CONSTRAINT, parameter="logStreamName", value=log_stream_name
            )
        original(self, log_stream_name)

    with mock.patch.object(LogGroup, "create_log_stream", create_log_stream):
        yield


@contextmanager
def enforce_logs_limits(*, max_event_bytes: int = MAX_EVENT_BYTES) -> Iterator[PutLogEventsLog]:
    """Every limit above: PutLogEvents', GetLogEvents' page size and CreateLogStream's names."""
    with (
        enforce_put_log_events_limits(max_event_bytes=max_event_bytes) as log,
        enforce_get_log_events_page_size(),
        enforce_log_stream_names(),
    ):
        yield log
