"""The log copy at scale, against moto with CloudWatch Logs' real limits (the emulation's).

    .venv/bin/python -m benchmarks.log_copy [--streams 200] [--events 200000] [--rounds 2]

200 streams holding 200,000 events between them (sizes, lengths and spans varied: some streams need
several batches for their bytes, some for their 24-hour span) are copied twice in the same process:

- by the pipeline: ListLogStreams (every page, items to S3), then CopyLogStreams for every work item
  (each call until done, as the Distributed Map's children do), then SummarizeLogCopy;
- by a bare read-then-write loop: every page of DescribeLogStreams, and for each stream CreateLogStream,
  every GetLogEvents page to the end, each page written by PutLogEvents (cut at 24 hours, which AWS
  requires), with none of the pipeline's checks (window, age, target state, checkpoints, report).

It prints the PutLogEvents and GetLogEvents calls of each against the minimum the limits allow, and
the throughput of each (events per second of wall-clock time, best of the rounds). In process, moto's
work dominates both: the figures compare the two copies, not what AWS would take.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws
from moto.logs.models import logs_backends

from emulation.logs_limits import enforce_logs_limits, event_size
from mwaa_migrate import clients
from mwaa_migrate.log_copy import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_BATCH_SPAN_MS,
    WorkItem,
    copy_work_item,
)
from mwaa_migrate.log_listing import ListLogStreamsEvent, list_log_streams, result_key
from mwaa_migrate.log_report import ItemResult, summarize_log_copy, write_item_result
from mwaa_migrate.observability import logger

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


def minimum_calls(streams: list[Stream]) -> tuple[int, int]:
    """The fewest PutLogEvents batches and GetLogEvents data pages the limits allow, per stream:
    at least ceil(events / 10,000), ceil(bytes / 1 MB) and one per 24 hours the events span."""
    puts = pages = 0
    for stream in streams:
        count = len(stream.events)
        size = sum(event_size(message) for _, message in stream.events)
        span = stream.events[-1][0] - stream.events[0][0]
        by_count, by_bytes = math.ceil(count / MAX_BATCH_EVENTS), math.ceil(size / MAX_BATCH_BYTES)
        puts += max(by_count, by_bytes, span // MAX_BATCH_SPAN_MS + 1)
        pages += max(by_count, by_bytes)
    return puts, pages


@dataclass
class Counted:
    get: int = 0
    put: int = 0
    describe: int = 0

    def __call__(self, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        if operation == "GetLogEvents":
            self.get += 1
        elif operation == "PutLogEvents":
            self.put += 1
        elif operation == "DescribeLogStreams":
            self.describe += 1


@contextmanager
def counting(logs: Any) -> Iterator[Counted]:
    counted = Counted()
    logs.meta.events.register("before-call.cloudwatch-logs", counted)
    try:
        yield counted
    finally:
        logs.meta.events.unregister("before-call.cloudwatch-logs", counted)


def pipeline_copy(logs: Any, s3: Any, target: str, until: datetime) -> dict[str, Any]:
    """ListLogStreams, every item's CopyLogStreams calls, SummarizeLogCopy: the Lambdas' logic."""
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


@dataclass
class Results:
    streams: int
    total: int
    rounds: int
    min_puts: int
    min_pages: int
    calls: dict[str, Counted]
    times: dict[str, list[float]]
    cpu: dict[str, list[float]]
    report: dict[str, Any]


def measure(streams_count: int, events: int, rounds: int) -> Results:
    """Seed the source, then copy it with each way in turns (alternating which goes first)."""
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
        now = datetime.now(UTC)
        streams = make_streams(streams_count, events, int(now.timestamp() * 1000), random.Random(4))
        for stream in streams:
            backend.ensure_log_stream(SOURCE, stream.name)
            backend.groups[SOURCE].streams[stream.name].put_log_events(
                [{"timestamp": t, "message": m} for t, m in stream.events]
            )
        min_puts, min_pages = minimum_calls(streams)
        results = Results(
            streams=len(streams),
            total=sum(len(stream.events) for stream in streams),
            rounds=rounds,
            min_puts=min_puts,
            min_pages=min_pages,
            calls={},
            times={"pipeline": [], "bare": []},
            cpu={"pipeline": [], "bare": []},
            report={},
        )
        for round_number in range(rounds):
            for kind in ("pipeline", "bare") if round_number % 2 == 0 else ("bare", "pipeline"):
                target = f"airflow-bench-{kind}-{round_number}-Task"
                logs.create_log_group(logGroupName=target)
                with counting(logs) as counted:
                    started, started_cpu = time.perf_counter(), time.process_time()
                    if kind == "pipeline":
                        results.report = pipeline_copy(logs, s3, target, now + timedelta(seconds=1))
                        assert results.report["eventsWritten"] == results.total, results.report
                    else:
                        assert bare_copy(logs, target) == results.total
                    results.times[kind].append(time.perf_counter() - started)
                    results.cpu[kind].append(time.process_time() - started_cpu)
                results.calls[kind] = counted
        assert put_log.refused == [], put_log.refused[:3]
    return results


def show(results: Results) -> None:
    pipe, bare = results.calls["pipeline"], results.calls["bare"]
    best = {kind: min(times) for kind, times in results.times.items()}
    best_cpu = {kind: min(times) for kind, times in results.cpu.items()}
    rows = [
        ("PutLogEvents calls", pipe.put, bare.put, results.min_puts),
        ("GetLogEvents calls", pipe.get, bare.get, results.min_pages + results.streams),
        ("  data pages (the limits' minimum)", None, None, results.min_pages),
        ("  end-of-stream pages (one a stream)", None, None, results.streams),
        ("DescribeLogStreams calls", pipe.describe, bare.describe, math.ceil(results.streams / 50)),
    ]
    print(f"log copy benchmark: {results.total:,} events in {results.streams} streams, moto with the limits")
    print(f"  {'':38}{'pipeline':>10}{'bare loop':>11}{'minimum':>10}{'pipeline/min':>14}")
    for label, ours, theirs, least in rows:
        if ours is None or theirs is None:
            print(f"  {label:38}{'':>10}{'':>11}{least:>10,}")
        else:
            print(f"  {label:38}{ours:>10,}{theirs:>11,}{least:>10,}{ours / least:>14.3f}")
    print(f"  {f'seconds (best of {results.rounds})':38}{best['pipeline']:>10.2f}{best['bare']:>11.2f}")
    print(f"  {'CPU seconds (best)':38}{best_cpu['pipeline']:>10.2f}{best_cpu['bare']:>11.2f}")
    rates = {kind: results.total / seconds for kind, seconds in best.items()}
    print(f"  {'events per second':38}{rates['pipeline']:>10,.0f}{rates['bare']:>11,.0f}")
    for kind, times in results.times.items():
        print(f"  {kind} rounds (s): {', '.join(f'{t:.2f}' for t in times)}")
    print(
        f"  throughput, pipeline against the bare loop: {best['bare'] / best['pipeline']:.2f}x wall clock, "
        f"{best_cpu['bare'] / best_cpu['pipeline']:.2f}x CPU"
    )
    report = results.report
    print(
        f"  report: {report['streamsCopied']} streams copied, {report['eventsWritten']:,} events written, "
        f"{report['items']} work items, complete={report['complete']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logger.setLevel("WARNING")
    show(measure(args.streams, args.events, args.rounds))


if __name__ == "__main__":
    main()
