"""Listing the streams to copy, every page, into the Distributed Map's work items (moto)."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws
from moto.logs.models import LogsBackend, logs_backends

from emulation.logs_limits import enforce_logs_limits
from mwaa_migrate import clients
from mwaa_migrate.dags import mwaa_migrate_metadata as metadata
from mwaa_migrate.errors import MigrationConflict
from mwaa_migrate.logs.log_copy import WorkItem
from mwaa_migrate.logs.log_listing import (
    MAX_STREAMS_PER_ITEM,
    LogListing,
    items_size,
    list_log_streams,
)
from mwaa_migrate.step_events import ListLogStreamsEvent

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client

REGION = "us-east-1"
BUCKET = "mwaa-migrate-listing"
PREFIX = "migrations/src/dst"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:mwaa-migrate-migration:run-1"
HOUR_MS = 3_600_000
PLENTY_MS = 900_000


@dataclass
class World:
    logs: CloudWatchLogsClient
    s3: S3Client
    backend: LogsBackend
    now: datetime

    @property
    def now_ms(self) -> int:
        return int(self.now.timestamp() * 1000)

    def stream(self, group: str, name: str, *, hours_ago: float = 1, events: int = 1) -> None:
        self.backend.ensure_log_stream(group, name)
        start = self.now_ms - int(hours_ago * HOUR_MS)
        self.backend.groups[group].streams[name].put_log_events(
            [{"timestamp": start + i, "message": f"line {i}"} for i in range(events)]
        )

    def age(self, group: str, name: str, days: int) -> None:
        """Make a stream look as AWS shows one last written `days` ago."""
        stream = self.backend.groups[group].streams[name]
        stream.creation_time = stream.last_ingestion_time = datetime.now(UTC).replace(
            tzinfo=None
        ) - timedelta(days=days)

    def export(self, tables: dict[str, list[dict[str, Any]]], phase: str = "bulk") -> None:
        """An export of the first format: plain gzipped JSON Lines per table and a manifest."""
        entries = {}
        for table, rows in tables.items():
            body = gzip.compress("".join(json.dumps(row) + "\n" for row in rows).encode())
            self.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/export/{phase}/{table}.jsonl.gz", Body=body)
            entries[table] = {
                "file": f"{table}.jsonl.gz",
                "rows": len(rows),
                "sha256": hashlib.sha256(body).hexdigest(),
                "key": [],
                "columns": [],
            }
        manifest = {"format": "mwaa-migrate-metadata", "format_version": 2, "tables": entries}
        self.s3.put_object(
            Bucket=BUCKET, Key=f"{PREFIX}/export/{phase}/manifest.json", Body=json.dumps(manifest)
        )

    def event(self, **changes: Any) -> ListLogStreamsEvent:
        base: dict[str, Any] = {
            "executionId": EXECUTION,
            "sourceEnvironmentName": "src",
            "targetEnvironmentName": "dst",
            "targetAirflowVersion": "2.10.3",
            "logGroups": ["Task"],
            "logDays": 3,
            "windowEnd": self.now.isoformat(),
            "bucket": BUCKET,
            "prefix": PREFIX,
            "migrationId": "src-to-dst",
            "maxConcurrency": 4,
        }
        return ListLogStreamsEvent.model_validate({**base, **changes})

    def items(self, listing: LogListing) -> list[WorkItem]:
        body = self.s3.get_object(Bucket=BUCKET, Key=listing.items_key)["Body"].read()
        return [WorkItem.model_validate(item) for item in json.loads(body)]

    def sealed_export(
        self,
        tables: dict[str, list[dict[str, Any]]],
        migration_id: str = "src-to-dst",
        phase: str = "bulk",
        suffix: str = metadata.COPY_FILE_SUFFIX,
    ) -> None:
        """An export as the export DAG writes it now (with `suffix` JSONL_FILE_SUFFIX, as format 4
        wrote it): each table sealed with a KMS data key."""
        key = clients.kms().create_key()["KeyMetadata"]["Arn"]
        box, envelope = metadata.new_secret_box(metadata.KmsKeys(clients.kms()), key, migration_id)
        entries = {}
        for table, rows in tables.items():
            name = f"{table}{suffix}"
            columns = tuple(
                metadata.Column(column, "integer" if isinstance(value, int) else "string")
                for column, value in (rows[0] if rows else {"dag_id": ""}).items()
            )
            body, count = metadata.encode_table(rows, box, name, columns)
            self.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/export/{phase}/{name}", Body=body)
            entries[table] = metadata.TableEntry(
                file=name, rows=count, sha256=metadata.sha256_hex(body), key=(), columns=columns
            ).to_json()
        manifest = {"format": metadata.FORMAT_NAME, "tables": entries, "secrets": envelope.to_json()}
        self.s3.put_object(
            Bucket=BUCKET, Key=f"{PREFIX}/export/{phase}/manifest.json", Body=json.dumps(manifest)
        )

    def list(self, event: ListLogStreamsEvent, budget: Any = lambda: PLENTY_MS) -> LogListing:
        return list_log_streams(self.logs, self.s3, event, time_left_ms=budget, kms=clients.kms)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(), enforce_logs_limits():
        clients.reset()
        logs, s3 = clients.logs(), clients.s3()
        s3.create_bucket(Bucket=BUCKET)
        for group in ("airflow-src-Task", "airflow-src-Worker", "airflow-dst-Task", "airflow-dst-Worker"):
            logs.create_log_group(logGroupName=group)
        logs.put_retention_policy(logGroupName="airflow-dst-Task", retentionInDays=7)
        account = boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]
        yield World(logs=logs, s3=s3, backend=logs_backends[account][REGION], now=datetime.now(UTC))
    clients.reset()


def task(index: int, task_id: str = "load") -> str:
    return f"dag_id=etl/run_id=scheduled__{index:04d}/task_id={task_id}/attempt=1.log"


def test_every_page_of_every_requested_group_is_listed_into_items(world: World) -> None:
    for index in range(120):
        world.stream("airflow-src-Task", task(index))
    world.stream("airflow-src-Worker", "ip-10-0-0-1.worker.log")
    pages: list[int] = []
    world.logs.meta.events.register(
        "after-call.cloudwatch-logs.DescribeLogStreams",
        lambda parsed, **_: pages.append(len(parsed["logStreams"])),
    )

    listing = world.list(world.event(logGroups=["Task", "Worker"]))

    assert pages == [50, 50, 20, 1]
    assert (listing.done, listing.streams, listing.describe_calls) == (True, 121, 4)
    items = world.items(listing)
    assert [stream.source for item in items for stream in item.streams] == [
        *[task(i) for i in range(120)],
        "ip-10-0-0-1.worker.log",
    ]
    assert all(len(item.streams) <= MAX_STREAMS_PER_ITEM for item in items)
    assert {(item.group, item.target_group, item.target_retention_days) for item in items} == {
        ("Task", "airflow-dst-Task", 7),
        ("Worker", "airflow-dst-Worker", None),
    }
    assert listing.items == len(items)


@pytest.mark.parametrize(
    ("streams", "concurrency", "size"),
    [(0, 4, 1), (1, 4, 1), (5, 4, 2), (200, 4, 50), (200, 10, 20), (10_001, 10, 100), (30, 100, 1)],
)
def test_items_are_at_most_100_streams_and_enough_to_keep_the_map_busy(
    streams: int, concurrency: int, size: int
) -> None:
    assert items_size(streams, concurrency) == size


def test_streams_that_cannot_hold_the_window_are_not_selected(world: World) -> None:
    world.stream("airflow-src-Task", task(1), hours_ago=1)
    world.stream("airflow-src-Task", task(2), hours_ago=24 * 10)
    world.age("airflow-src-Task", task(2), days=10)
    world.stream("airflow-src-Task", task(3), hours_ago=-3)  # first event after the window's end

    listing = world.list(world.event())

    (group,) = listing.groups
    assert (group.streams_listed, group.streams_selected, group.streams_outside_window) == (3, 1, 2)
    assert [s.source for item in world.items(listing) for s in item.streams] == [task(1)]


def test_a_group_the_source_lacks_is_skipped_with_the_reason(world: World) -> None:
    world.stream("airflow-src-Task", task(1))

    listing = world.list(world.event(logGroups=["Task", "Scheduler"]))

    scheduler = listing.groups[1]
    assert scheduler.group == "Scheduler"
    assert scheduler.skipped_reason is not None
    assert "no log group airflow-src-Scheduler" in scheduler.skipped_reason
    assert listing.streams == 1


def test_streams_to_copy_into_a_group_the_target_lacks_stop_the_migration(world: World) -> None:
    world.logs.delete_log_group(logGroupName="airflow-dst-Worker")
    world.stream("airflow-src-Worker", "worker.log")

    with pytest.raises(MigrationConflict, match="Worker logs must be enabled on the target"):
        world.list(world.event(logGroups=["Worker"]))


def test_an_empty_source_group_needs_no_target_group(world: World) -> None:
    world.logs.delete_log_group(logGroupName="airflow-dst-Worker")

    listing = world.list(world.event(logGroups=["Worker"]))

    assert (listing.done, listing.items, listing.streams) == (True, 0, 0)


def test_failed_tasks_only_selects_every_attempt_of_failed_task_instances(world: World) -> None:
    for name in (
        task(1, "extract"),
        task(1, "load"),
        task(1, "load").replace("attempt=1", "attempt=2"),
        task(2, "load"),
    ):
        world.stream("airflow-src-Task", name)
    world.export(
        {
            "task_instance": [
                {
                    "dag_id": "etl",
                    "task_id": "load",
                    "run_id": "scheduled__0001",
                    "map_index": -1,
                    "state": "failed",
                },
                {
                    "dag_id": "etl",
                    "task_id": "extract",
                    "run_id": "scheduled__0001",
                    "map_index": -1,
                    "state": "success",
                },
                {
                    "dag_id": "etl",
                    "task_id": "load",
                    "run_id": "scheduled__0002",
                    "map_index": -1,
                    "state": "success",
                },
            ],
            "dag_run": [],
        }
    )

    listing = world.list(world.event(failedTasksOnly=True))

    selected = [s.source for item in world.items(listing) for s in item.streams]
    assert selected == [task(1, "load"), task(1, "load").replace("attempt=1", "attempt=2")]
    assert (listing.groups[0].streams_not_failed, listing.groups[0].streams_selected) == (2, 2)


def test_failed_tasks_only_reads_both_exports_and_the_cutovers_row_wins(world: World) -> None:
    # Given run 1's load failed before the bulk, run 2's load failed after it (in the delta), and
    # run 1's load was cleared and succeeded on a retry after the bulk (the delta carries it again)
    for name in (task(1, "load"), task(2, "load")):
        world.stream("airflow-src-Task", name)

    def row(run: int, state: str) -> dict[str, Any]:
        return {
            "dag_id": "etl",
            "task_id": "load",
            "run_id": f"scheduled__000{run}",
            "map_index": -1,
            "state": state,
        }

    world.export({"task_instance": [row(1, "failed")], "dag_run": []}, phase="bulk")
    world.export({"task_instance": [row(1, "success"), row(2, "failed")], "dag_run": []}, phase="cutover")

    listing = world.list(world.event(failedTasksOnly=True))

    selected = [s.source for item in world.items(listing) for s in item.streams]
    assert selected == [task(2, "load")]


def test_failed_tasks_only_without_task_instances_in_the_export_skips_task_logs_saying_why(
    world: World,
) -> None:
    world.stream("airflow-src-Task", task(1))
    world.export({"dag_run": []})

    listing = world.list(world.event(failedTasksOnly=True))

    assert listing.streams == 0
    assert listing.groups[0].skipped_reason is not None
    assert "no task_instance table" in listing.groups[0].skipped_reason


def test_old_task_log_names_get_the_name_the_target_airflow_writes(world: World) -> None:
    world.stream("airflow-src-Task", "etl/load/2026-01-01T00_00_00+00_00/1.log")
    world.stream("airflow-src-Task", "etl/load/2026-01-09T00_00_00+00_00/1.log")
    world.export(
        {
            "dag_run": [
                {
                    "dag_id": "etl",
                    "run_id": "scheduled__2026-01-01T00:00:00+00:00",
                    "execution_date": "2026-01-01T00:00:00+00:00",
                }
            ]
        }
    )

    listing = world.list(world.event())

    streams = {s.source: s.target_name for item in world.items(listing) for s in item.streams}
    assert streams == {
        "etl/load/2026-01-01T00_00_00+00_00/1.log": (
            "dag_id=etl/run_id=scheduled__2026-01-01T00_00_00+00_00/task_id=load/attempt=1.log"
        ),
        "etl/load/2026-01-09T00_00_00+00_00/1.log": "etl/load/2026-01-09T00_00_00+00_00/1.log",
    }
    assert listing.groups[0].streams_renamed == 1
    assert listing.notes[0].stream == "etl/load/2026-01-09T00_00_00+00_00/1.log"


def test_a_listing_out_of_time_resumes_where_it_stopped_and_lists_each_stream_once(world: World) -> None:
    for index in range(130):
        world.stream("airflow-src-Task", task(index))
    world.stream("airflow-src-Worker", "worker.log")
    event = world.event(logGroups=["Task", "Worker"])
    # Time runs out after 2 of the 3 Task pages, then before the Worker group.
    answers = iter([PLENTY_MS, 0, 0, *[PLENTY_MS] * 5])

    first = world.list(event, budget=lambda: next(answers))
    assert (first.done, first.parts, first.groups[0].streams_listed) == (False, 1, 100)
    second = world.list(
        event.model_copy(update={"progress": first.to_output(), "calls": 1}), lambda: next(answers)
    )
    assert (second.done, second.parts, second.groups[0].streams_listed) == (False, 2, 130)
    third = world.list(
        event.model_copy(update={"progress": second.to_output(), "calls": 2}), lambda: next(answers)
    )

    assert third.done
    sources = [s.source for item in world.items(third) for s in item.streams]
    assert sources == [*sorted(task(i) for i in range(130)), "worker.log"]
    assert (third.streams, third.groups[0].streams_listed, third.describe_calls) == (131, 130, 4)


def test_a_sealed_export_is_opened_with_the_migrations_data_key(world: World) -> None:
    world.stream("airflow-src-Task", task(1))
    world.stream("airflow-src-Task", task(2))
    world.sealed_export(
        {
            "task_instance": [
                {
                    "dag_id": "etl",
                    "task_id": "load",
                    "run_id": "scheduled__0002",
                    "map_index": -1,
                    "state": "failed",
                }
            ]
        }
    )

    listing = world.list(world.event(failedTasksOnly=True))

    assert [s.source for item in world.items(listing) for s in item.streams] == [task(2)]


def test_a_sealed_export_of_json_lines_format_4_is_still_read(world: World) -> None:
    world.stream("airflow-src-Task", task(1))
    world.stream("airflow-src-Task", task(2))
    failed = {
        "dag_id": "etl",
        "task_id": "load",
        "run_id": "scheduled__0002",
        "map_index": -1,
        "state": "failed",
    }
    world.sealed_export({"task_instance": [failed]}, suffix=metadata.JSONL_FILE_SUFFIX)

    listing = world.list(world.event(failedTasksOnly=True))

    assert [s.source for item in world.items(listing) for s in item.streams] == [task(2)]


def test_an_export_sealed_for_another_migration_is_not_read(world: World) -> None:
    world.stream("airflow-src-Task", task(1))
    world.sealed_export({"task_instance": []}, migration_id="another-migration")

    with pytest.raises(MigrationConflict, match="data key cannot be opened"):
        world.list(world.event(failedTasksOnly=True))
