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
- FilterLogEvents interleaves the streams' events by time whatever `interleaved` says (ignored by AWS
  since June 2019; moto returns them stream after stream unless asked) and pages at 1 MB as well as
  10,000 events, with a nextToken that carries on after the page's last event.

`enforce_quotas()` adds what moto lacks most for a copy at scale: each API's transactions-per-second
quota, per account and Region, shared by every caller in the process (every Distributed Map child, every
thread). A call past its budget is answered as AWS answers it, HTTP 400 `ThrottlingException` "Rate
exceeded", before the backend does anything, so botocore's retry handles it and a throttled
PutLogEvents stored nothing. Concurrency above the quota then only adds retries, as on AWS. The
budgets are the documented defaults unless given: us-east-1's (`mwaa_migrate.logs.log_copy.LOGS_QUOTAS_TPS`),
or another Region's (`region=`: its read quotas differ, `logs_quotas_tps`); each is a token bucket
holding one second of calls.

    with mock_aws(), enforce_logs_limits(), enforce_quotas({"GetLogEvents": 5}) as quotas:
        ...
        assert quotas.throttled("GetLogEvents") > 0
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import wraps
from itertools import pairwise
from typing import Any
from unittest import mock

from moto.core.exceptions import JsonRESTError
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
def enforce_filter_log_events_pages(max_page_bytes: int = MAX_PAGE_BYTES) -> Iterator[None]:
    """Make moto's FilterLogEvents interleave the streams' events by time and page at 1 MB, as AWS.

    Without a filter pattern the page is made here: moto's own builds, filters and sorts every event
    of the named streams as dictionaries on every call, which would make the emulator, not the copy,
    the cost of a FilterLogEvents read. The order is moto's (timestamp, then the streams' order, then
    each stream's), and so is the token (group@stream@eventId of the page's last event)."""
    original = LogGroup.filter_log_events
    orders: dict[tuple[Any, ...], list[tuple[int, int, int]]] = {}

    @wraps(original)
    def filter_log_events(  # noqa: PLR0917 (moto's own signature, called positionally)
        self: LogGroup,
        log_group_name: str,
        log_stream_names: list[str],
        start_time: int,
        end_time: int,
        limit: int | None,
        next_token: str | None,
        filter_pattern: str,
        interleaved: bool,
    ) -> tuple[list[dict[str, Any]], str | None, list[dict[str, Any]]]:
        limit = min(limit or MAX_PAGE_EVENTS, MAX_PAGE_EVENTS)
        if filter_pattern:
            found, token, searched = original(
                self,
                log_group_name,
                log_stream_names,
                start_time,
                end_time,
                limit,
                next_token,
                filter_pattern,
                True,  # moto's `interleaved`: AWS always interleaves
            )
            kept = _events_that_fit(found, max_page_bytes, forward=True)
            if kept < len(found):
                last = found[kept - 1]
                found, token = found[:kept], f"{log_group_name}@{last['logStreamName']}@{last['eventId']}"
            return found, token, searched
        wanted = set(log_stream_names or ())
        streams = [stream for name, stream in self.streams.items() if not wanted or name in wanted]
        # The order of a request's events, kept while its streams hold the same events: the pages of
        # one read are cut from one order without sorting it again.
        signature = (
            log_group_name,
            start_time,
            end_time,
            tuple((stream.log_stream_name, len(stream.events)) for stream in streams),
        )
        keys = orders.get(signature)
        if keys is None:
            keys = [
                (event.timestamp, rank, index)
                for rank, stream in enumerate(streams)
                for index, event in enumerate(stream.events)
                if (not start_time or event.timestamp >= start_time)
                and (not end_time or event.timestamp <= end_time)
            ]
            keys.sort()
            orders.clear()
            orders[signature] = keys
        first = 0
        if next_token:
            first = _after_token(next_token, log_group_name, streams, keys)
            if first < 0:
                return [], None, []  # AWS answers an invalid token with no events
        page: list[dict[str, Any]] = []
        total = 0
        position = first
        end = min(len(keys), first + limit)
        while position < end:
            _, rank, index = keys[position]
            stream = streams[rank]
            event = stream.events[index]
            message = event.message
            total += (
                len(message) if message.isascii() else event_size(message) - EVENT_OVERHEAD_BYTES
            ) + EVENT_OVERHEAD_BYTES
            if total > max_page_bytes and page:
                break
            page.append(
                {
                    "logStreamName": stream.log_stream_name,
                    "timestamp": event.timestamp,
                    "message": message,
                    "ingestionTime": event.ingestion_time,
                    "eventId": str(event.event_id),
                }
            )
            position += 1
        token = None
        if position < len(keys):
            last = page[-1]
            token = f"{log_group_name}@{last['logStreamName']}@{last['eventId']}"
        searched = [
            {"logStreamName": stream.log_stream_name, "searchedCompletely": True} for stream in streams
        ]
        return page, token, searched

    with mock.patch.object(LogGroup, "filter_log_events", filter_log_events):
        yield


def _after_token(token: str, group: str, streams: list[LogStream], keys: list[tuple[int, int, int]]) -> int:
    """The position after the event a token names, or -1 for a token that names none."""
    try:
        token_group, stream_name, event_id = token.split("@")
    except ValueError:
        return -1
    rank = next((i for i, stream in enumerate(streams) if stream.log_stream_name == stream_name), None)
    if token_group != group or rank is None:
        return -1
    events = streams[rank].events
    index = next((i for i, event in enumerate(events) if str(event.event_id) == event_id), None)
    if index is None:
        return -1
    return bisect.bisect_right(keys, (events[index].timestamp, rank, index))


@contextmanager
def enforce_logs_limits(*, max_event_bytes: int = MAX_EVENT_BYTES) -> Iterator[PutLogEventsLog]:
    """Every limit above: PutLogEvents', GetLogEvents' and FilterLogEvents' pages, CreateLogStream's
    names. The quotas are apart (`enforce_quotas`): the copy's logic is tested at moto's speed."""
    with (
        enforce_put_log_events_limits(max_event_bytes=max_event_bytes) as log,
        enforce_get_log_events_page_size(),
        enforce_filter_log_events_pages(),
        enforce_log_stream_names(),
    ):
        yield log


# ---------------------------------------------------------------------------------------------------
# Quotas

# The backend methods each quota'd API reaches (every client, account and Region goes through them).
_QUOTA_METHODS = {
    "GetLogEvents": "get_log_events",
    "FilterLogEvents": "filter_log_events",
    "DescribeLogStreams": "describe_log_streams",
    "CreateLogStream": "create_log_stream",
    "PutLogEvents": "put_log_events",
}


class ThrottlingException(JsonRESTError):
    """AWS's answer past a quota: HTTP 400, `__type` ThrottlingException, "Rate exceeded"."""

    code = 400

    def __init__(self) -> None:
        super().__init__("ThrottlingException", "Rate exceeded")


@dataclass
class _Bucket:
    tps: float
    tokens: float
    stamp: float
    allowed: int = 0
    throttled: int = 0


class Quotas:
    """Token buckets, one an API, holding one second of its quota and refilled at its rate; shared by
    every thread. `take` spends a call, or says the call is throttled."""

    def __init__(self, tps: Mapping[str, float], clock: Callable[[], float] = time.monotonic) -> None:
        if any(rate <= 0 for rate in tps.values()):
            raise ValueError("a quota is a positive number of calls a second")
        self._clock = clock
        now = clock()
        self._buckets = {api: _Bucket(tps=rate, tokens=float(rate), stamp=now) for api, rate in tps.items()}
        self._lock = threading.Lock()

    def take(self, api: str) -> bool:
        bucket = self._buckets.get(api)
        if bucket is None:
            return True
        with self._lock:
            now = self._clock()
            bucket.tokens = min(bucket.tps, bucket.tokens + (now - bucket.stamp) * bucket.tps)
            bucket.stamp = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                bucket.allowed += 1
                return True
            bucket.throttled += 1
            return False

    def allowed(self, api: str) -> int:
        return self._buckets[api].allowed

    def throttled(self, api: str) -> int:
        return self._buckets[api].throttled


@contextmanager
def enforce_quotas(
    tps: Mapping[str, float] | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    region: str = "us-east-1",
) -> Iterator[Quotas]:
    """Throttle the CloudWatch Logs APIs past their quotas (`region`'s documented defaults, overridden
    by `tps`), for every client in the process; yield the buckets to read what was allowed and throttled.
    Use it inside `mock_aws()` (after `enforce_logs_limits()`, so that a throttled call is refused before
    those limits are checked and recorded)."""
    # Imported here: the layer's modules create Powertools' logger when imported, and the emulation
    # is imported before LocalStack sets the service name and level they read.
    from mwaa_migrate.logs.log_copy import logs_quotas_tps  # noqa: PLC0415

    quotas = Quotas({**logs_quotas_tps(region), **(tps or {})}, clock)
    with ExitStack() as stack:
        for api, name in _QUOTA_METHODS.items():
            throttled = _throttled(getattr(LogsBackend, name), api, quotas)
            stack.enter_context(mock.patch.object(LogsBackend, name, throttled))
        yield quotas


def _throttled(method: Callable[..., Any], api: str, quotas: Quotas) -> Callable[..., Any]:
    @wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        if not quotas.take(api):
            raise ThrottlingException
        return method(*args, **kwargs)

    return call
