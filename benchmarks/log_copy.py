"""The log copy at scale, against moto with CloudWatch Logs' real limits (the emulation's), in the
unit that bounds it on AWS: quota-seconds.

    .venv/bin/python -m benchmarks.log_copy [--rounds 2] [--mwaa-streams 5000] [--large-streams 3]

Two workloads are seeded and each is copied, in the same process, three ways:

- today's per-stream plan: the pipeline (ListLogStreams, every item's CopyLogStreams calls until done,
  SummarizeLogCopy) with the listing's stream facts taken off the items, so every stream is read
  alone by GetLogEvents, its data pages and then the end-of-stream page;
- the read planner: the same pipeline as it runs, small streams read up to 100 a call by
  FilterLogEvents, large ones by GetLogEvents;
- a bare read-then-write loop (DescribeLogStreams, then per stream CreateLogStream, every GetLogEvents
  page, each written by PutLogEvents cut at 24 hours), with none of the pipeline's checks: the
  throughput baseline.

Workloads: "today" (200 streams, 200,000 events, sizes varied as before) and "mwaa" (MWAA's task
logs: 5,000 streams of 200 events, one per task attempt, plus a few busy tasks of 50,000 events).

CloudWatch Logs' quotas are per account and Region, in calls a second (`LOGS_QUOTAS_TPS`, us-east-1's
documented defaults; FilterLogEvents' is 10 in most other Regions): the time a plan needs on AWS is at
least its calls of each API divided by that API's quota. Read quota-seconds
sum that over DescribeLogStreams, GetLogEvents and FilterLogEvents; write quota-seconds over
CreateLogStream and PutLogEvents; the critical path is the larger. The lower bound is the fewest calls
any plan could make under the APIs' page limits: a DescribeLogStreams page per 50 streams; every event
read in pages of at most 10,000 events and 1 MB (and a FilterLogEvents call names at most 100 streams);
a target stream per stream and the fewest PutLogEvents batches its events allow. Throughput is events
per CPU second of this process (moto's work included), best of the rounds, against the bare loop's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber
from moto.logs.models import logs_backends

from emulation.logs_limits import enforce_logs_limits, event_size
from mwaa_migrate import clients
from mwaa_migrate.logs.log_copy import (
    LOGS_QUOTAS_TPS,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_BATCH_SPAN_MS,
    MAX_FILTER_STREAMS,
    PAGE_BYTES,
    PAGE_EVENTS,
    WorkItem,
    copy_work_item,
)
from mwaa_migrate.logs.log_listing import DESCRIBE_PAGE, list_log_streams, result_key
from mwaa_migrate.logs.log_report import ItemResult, summarize_log_copy, write_item_result
from mwaa_migrate.observability import logger
from mwaa_migrate.step_events import ListLogStreamsEvent

REGION = "us-east-1"
BUCKET = "mwaa-migrate-bench"
SOURCE = "airflow-bench-src-Task"
HOUR_MS = 3_600_000
PLENTY_MS = 900_000


@dataclass
class Stream:
    name: str
    events: list[tuple[int, str]]


def make_streams(count: int, total: int, now_ms: int, rng: random.Random) -> list[Stream]:
    """`count` streams holding `total` events: mostly small task logs, some with long lines (several
    batches by bytes), some with many events (several by count), some over more than 24 hours."""
    weights = [rng.uniform(0.5, 1.5) for _ in range(count)]
    for index in rng.sample(range(count), 4):
        weights[index] *= 12  # a few busy tasks
    sizes = [max(1, int(total * w / sum(weights))) for w in weights]
    sizes[-1] += total - sum(sizes)
    long_lines = set(rng.sample(range(count), 10))
    long_spans = set(rng.sample(range(count), 6))
    streams = []
    for index, size in enumerate(sizes):
        span_ms = 40 * HOUR_MS if index in long_spans else rng.randint(1, 6) * HOUR_MS
        start = now_ms - span_ms - HOUR_MS
        step = max(1, span_ms // size)
        width = (2_000, 4_000) if index in long_lines else (40, 300)
        events = [
            (
                start + i * step,
                f"[{index:03d}:{i:06d}] {'é' if i % 7 == 0 else 'x' * 3} " + "y" * rng.randint(*width),
            )
            for i in range(size)
        ]
        streams.append(Stream(f"dag_id=bench/run_id=run_{index:03d}/task_id=t/attempt=1.log", events))
    return streams


def make_mwaa_streams(
    count: int, events: int, *, large: int, large_events: int, now_ms: int, rng: random.Random
) -> list[Stream]:
    """MWAA's Task log group: `count` task attempts of `events` lines each, over the last two days, and
    `large` busy tasks of `large_events` lines, spread among them in name order."""
    busy = set(rng.sample(range(count), large))
    streams = []
    for index in range(count):
        size = large_events if index in busy else events
        start = now_ms - rng.randint(2 * HOUR_MS, 48 * HOUR_MS)
        step = max(1, rng.randint(5 * 60_000, 40 * 60_000) // size)
        lines = [
            (
                start + i * step,
                f"[2026-12-05, 10:{i % 60:02d}:00 UTC] {{taskinstance.py:{1000 + i % 400}}} INFO - "
                + "row batch processed " * rng.randint(1, 5),
            )
            for i in range(size)
        ]
        name = (
            f"dag_id=dag_{index % 40:02d}/run_id=scheduled__{index:05d}/task_id=t_{index % 7}/attempt=1.log"
        )
        streams.append(Stream(name, lines))
    return streams


def minimum_puts(streams: list[Stream]) -> int:
    """The fewest PutLogEvents batches the limits allow, per stream: at least ceil(events / 10,000),
    ceil(bytes / 1 MB) and one per 24 hours the events span."""
    puts = 0
    for stream in streams:
        count = len(stream.events)
        size = sum(event_size(message) for _, message in stream.events)
        span = stream.events[-1][0] - stream.events[0][0]
        puts += max(
            math.ceil(count / MAX_BATCH_EVENTS),
            math.ceil(size / MAX_BATCH_BYTES),
            span // MAX_BATCH_SPAN_MS + 1,
        )
    return puts


def lower_bound(streams: list[Stream]) -> Counter[str]:
    """The fewest calls of each API any plan could make (reads: all as one API, FilterLogEvents)."""
    events = sum(len(stream.events) for stream in streams)
    size = sum(event_size(message) for stream in streams for _, message in stream.events)
    pages = max(
        math.ceil(events / PAGE_EVENTS),
        math.ceil(size / PAGE_BYTES),
        math.ceil(len(streams) / MAX_FILTER_STREAMS),
    )
    return Counter(
        {
            "DescribeLogStreams": math.ceil(len(streams) / DESCRIBE_PAGE),
            "FilterLogEvents": pages,
            "CreateLogStream": len(streams),
            "PutLogEvents": minimum_puts(streams),
        }
    )


READS = ("DescribeLogStreams", "GetLogEvents", "FilterLogEvents")
WRITES = ("CreateLogStream", "PutLogEvents")


def quota_seconds(calls: Counter[str], apis: tuple[str, ...]) -> float:
    return sum(calls[api] / LOGS_QUOTAS_TPS[api] for api in apis)


@dataclass
class Counted:
    calls: Counter[str] = field(default_factory=Counter)

    def __call__(self, event_name: str, **_: Any) -> None:
        self.calls[event_name.rsplit(".", 1)[-1]] += 1


@dataclass
class ServiceCpu:
    """CPU seconds spent on the emulated services' side (moto's request handling, backends and
    responses): on AWS that work is the service's, not the copy's."""

    seconds: float = 0.0


@contextmanager
def timing_the_service() -> Iterator[ServiceCpu]:
    spent = ServiceCpu()
    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        started = time.process_time()
        try:
            return original(self, request)
        finally:
            spent.seconds += time.process_time() - started

    with mock.patch.object(BotocoreStubber, "process_request", process_request):
        yield spent


@contextmanager
def counting(logs: Any) -> Iterator[Counted]:
    counted = Counted()
    logs.meta.events.register("before-call.cloudwatch-logs", counted)
    try:
        yield counted
    finally:
        logs.meta.events.unregister("before-call.cloudwatch-logs", counted)


def pipeline_copy(logs: Any, s3: Any, target: str, until: datetime, *, per_stream: bool) -> dict[str, Any]:
    """ListLogStreams, every item's CopyLogStreams calls, SummarizeLogCopy: the Lambdas' logic. With
    `per_stream`, the items lose the listing's stream facts: today's plan, a GetLogEvents read a stream."""
    event = ListLogStreamsEvent.model_validate(
        {
            "executionId": f"arn:aws:states:{REGION}:123456789012:execution:bench:{target}",
            "sourceEnvironmentName": "bench-src",
            "targetEnvironmentName": target.removeprefix("airflow-").removesuffix("-Task"),
            "targetAirflowVersion": "2.10.3",
            "logGroups": ["Task"],
            "logDays": 3,
            "windowEnd": until.isoformat(),
            "bucket": BUCKET,
            "prefix": f"migrations/bench/{target}",
            "migrationId": f"bench-to-{target}",
            "maxConcurrency": 10,
        }
    )
    listing = list_log_streams(logs, s3, event, time_left_ms=lambda: PLENTY_MS)
    items = [WorkItem.model_validate(i) for i in _read_json(s3, listing.items_key)]
    if per_stream:
        items = [
            item.model_copy(
                update={"streams": [one.model_copy(update={"facts": None}) for one in item.streams]}
            )
            for item in items
        ]
    for index, item in enumerate(items):
        progress = copy_work_item(
            logs,
            item,
            since=listing.since,
            until=listing.until,
            resume_at=None,
            time_left_ms=lambda: PLENTY_MS,
        )
        assert progress.done
        result = ItemResult(index=index, group=item.group, streams=len(item.streams), progress=progress)
        write_item_result(s3, BUCKET, result_key(listing.results_prefix, index), result)
    return summarize_log_copy(s3, listing).to_event()


def bare_copy(logs: Any, target: str) -> int:
    """Read every page of every stream and write it, cut at 24 hours: nothing more."""
    written = 0
    for page in logs.get_paginator("describe_log_streams").paginate(logGroupName=SOURCE):
        for stream in page["logStreams"]:
            name = stream["logStreamName"]
            logs.create_log_stream(logGroupName=target, logStreamName=name)
            request: dict[str, Any] = {"logGroupName": SOURCE, "logStreamName": name, "startFromHead": True}
            while True:
                answer = logs.get_log_events(**request)
                events = [{"timestamp": e["timestamp"], "message": e["message"]} for e in answer["events"]]
                while events:
                    cut = next(
                        (
                            i
                            for i, e in enumerate(events)
                            if e["timestamp"] - events[0]["timestamp"] >= MAX_BATCH_SPAN_MS
                        ),
                        len(events),
                    )
                    logs.put_log_events(logGroupName=target, logStreamName=name, logEvents=events[:cut])
                    written += cut
                    events = events[cut:]
                if answer["nextForwardToken"] == request.get("nextToken"):
                    break
                request["nextToken"] = answer["nextForwardToken"]
    return written


def _read_json(s3: Any, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


PLANS = ("per-stream", "planner", "bare")


@dataclass
class Results:
    workload: str
    streams: int
    total: int
    rounds: int
    bound: Counter[str]
    calls: dict[str, Counter[str]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    # The same, less the emulated services' share: the copy's own CPU.
    own_cpu: dict[str, list[float]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)


def measure(workload: str, streams: list[Stream], rounds: int) -> Results:
    """Seed the source, then copy it each way in turns (the order rotating between rounds)."""
    with (
        mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": REGION}),
        mock_aws(),
        enforce_logs_limits() as put_log,
    ):
        clients.reset()
        logs, s3 = clients.logs(), clients.s3()
        s3.create_bucket(Bucket=BUCKET)
        logs.create_log_group(logGroupName=SOURCE)
        account = boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]
        backend = logs_backends[account][REGION]
        for stream in streams:
            backend.ensure_log_stream(SOURCE, stream.name)
            backend.groups[SOURCE].streams[stream.name].put_log_events(
                [{"timestamp": t, "message": m} for t, m in stream.events]
            )
        results = Results(
            workload=workload,
            streams=len(streams),
            total=sum(len(stream.events) for stream in streams),
            rounds=rounds,
            bound=lower_bound(streams),
            cpu={plan: [] for plan in PLANS},
            own_cpu={plan: [] for plan in PLANS},
        )
        now = datetime.now(UTC)
        for round_number in range(rounds):
            order = PLANS[round_number % 3 :] + PLANS[: round_number % 3]
            for plan in order:
                target = f"airflow-bench-{plan}-{round_number}-Task"
                logs.create_log_group(logGroupName=target)
                with counting(logs) as counted, timing_the_service() as service:
                    started_cpu = time.process_time()
                    if plan == "bare":
                        assert bare_copy(logs, target) == results.total
                    else:
                        report = pipeline_copy(
                            logs, s3, target, now + timedelta(seconds=1), per_stream=plan == "per-stream"
                        )
                        assert report["eventsWritten"] == results.total, report
                        if plan == "planner":
                            results.report = report
                    spent = time.process_time() - started_cpu
                    results.cpu[plan].append(spent)
                    results.own_cpu[plan].append(spent - service.seconds)
                results.calls[plan] = counted.calls
        assert put_log.refused == [], put_log.refused[:3]
    return results


def show(results: Results) -> None:
    today, planner, bound = results.calls["per-stream"], results.calls["planner"], results.bound
    quotas = ", ".join(f"{api} {LOGS_QUOTAS_TPS[api]:,.0f}" for api in READS + WRITES)
    print(
        f"{results.workload}: {results.total:,} events in {results.streams:,} streams "
        f"(moto with the limits; us-east-1's quotas {quotas} TPS)"
    )
    header = f"{'per-stream':>12}{'planner':>12}{'lower bound':>13}{'today/planner':>15}{'planner/bound':>15}"
    print(f"  {'':30}{header}")

    def row(label: str, values: list[float], digits: int = 0) -> None:
        per_stream, planned, least = values
        ratio = f"{per_stream / planned:.2f}" if planned else "-"
        against = f"{planned / least:.2f}" if least else "-"
        numbers = f"{per_stream:>12,.{digits}f}{planned:>12,.{digits}f}{least:>13,.{digits}f}"
        print(f"  {label:30}{numbers}{ratio:>15}{against:>15}")

    for api in READS:
        row(f"{api} calls", [today[api], planner[api], bound[api]])
    reads = [quota_seconds(calls, READS) for calls in (today, planner, bound)]
    row("read quota-seconds", reads, digits=1)
    for api in WRITES:
        row(f"{api} calls", [today[api], planner[api], bound[api]])
    writes = [quota_seconds(calls, WRITES) for calls in (today, planner, bound)]
    row("write quota-seconds", writes, digits=1)
    row("critical path (s)", [max(r, w) for r, w in zip(reads, writes, strict=True)], digits=1)
    for label, measured in (("all CPU", results.cpu), ("the copy's own CPU", results.own_cpu)):
        rates = {plan: results.total / min(times) for plan, times in measured.items()}
        print(
            f"  events per CPU second, {label} (best of {results.rounds}): per-stream "
            f"{rates['per-stream']:,.0f}, planner {rates['planner']:,.0f}, bare loop {rates['bare']:,.0f}; "
            f"planner against the bare loop {rates['planner'] / rates['bare']:.2f}x"
        )
    report = results.report
    print(
        f"  report: {report['streamsCopied']:,} streams copied, {report['eventsWritten']:,} events written, "
        f"{report['items']} work items, complete={report['complete']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--streams", type=int, default=200, help="today's workload: streams")
    parser.add_argument("--events", type=int, default=200_000, help="today's workload: events")
    parser.add_argument("--mwaa-streams", type=int, default=5_000)
    parser.add_argument("--mwaa-events", type=int, default=200)
    parser.add_argument("--large-streams", type=int, default=3)
    parser.add_argument("--large-events", type=int, default=50_000)
    parser.add_argument("--only", choices=["today", "mwaa"], default=None)
    args = parser.parse_args()
    logger.setLevel("WARNING")
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    if args.only in {None, "today"}:
        show(measure("today", make_streams(args.streams, args.events, now_ms, random.Random(4)), args.rounds))
    if args.only in {None, "mwaa"}:
        streams = make_mwaa_streams(
            args.mwaa_streams,
            args.mwaa_events,
            large=args.large_streams,
            large_events=args.large_events,
            now_ms=now_ms,
            rng=random.Random(14),
        )
        show(measure("mwaa", streams, args.rounds))


if __name__ == "__main__":
    main()
