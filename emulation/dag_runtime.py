"""What the project's export and import DAGs do, run against an emulated environment.

`MigrationDagRuntime` is the MWAA emulator's DagRuntime: when a run of `mwaa_migrate_export` or
`mwaa_migrate_import` completes, it runs the DAG's tasks in order through the same library the
real DAGs use (`mwaa_migrate_metadata`: format, checksums, column mapping, merge plan, cutover), with
`EmulatedDatabase` standing in for Airflow's ORM and the migration bucket in (moto's) S3. Any other
DAG just succeeds. As in Airflow, a task's changes land together or not at all, and the first task
that raises fails the run.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from emulation.mwaa import DagRunResult, EmulatedEnvironment
from mwaa_migrate.dags import mwaa_migrate_metadata as metadata
from mwaa_migrate.dags.mwaa_migrate_metadata import Column
from mwaa_migrate.versions import AirflowVersion

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_EVERY = AirflowVersion(2, 0, 0)


@dataclass(frozen=True)
class _EmulatedColumn:
    column: Column
    since: AirflowVersion = _EVERY


def _col(
    name: str,
    kind: str = "string",
    *,
    nullable: bool = True,
    default: bool = False,
    since: AirflowVersion = _EVERY,
) -> _EmulatedColumn:
    return _EmulatedColumn(Column(name, kind, nullable=nullable, has_default=default), since)


# The Airflow 2.x columns of the tables the DAGs carry, with the version that added each one
# (MWAA_FACTS.md): enough for the column mapping to meet real differences between versions.
SCHEMA: dict[str, tuple[_EmulatedColumn, ...]] = {
    "variable": (
        _col("id", "integer", nullable=False, default=True),
        _col("key", nullable=False),
        _col("val"),
        _col("description"),
        _col("is_encrypted", "boolean", default=True),
    ),
    "slot_pool": (
        _col("id", "integer", nullable=False, default=True),
        _col("pool", nullable=False),
        _col("slots", "integer"),
        _col("description"),
        _col("include_deferred", "boolean", nullable=False, since=AirflowVersion(2, 7, 0)),
    ),
    "dag_run": (
        _col("id", "integer", nullable=False, default=True),
        _col("dag_id", nullable=False),
        _col("queued_at", "datetime"),
        _col("execution_date", "datetime", nullable=False),
        _col("start_date", "datetime"),
        _col("end_date", "datetime"),
        _col("state"),
        _col("run_id", nullable=False),
        _col("creating_job_id", "integer"),
        _col("external_trigger", "boolean"),
        _col("run_type", nullable=False),
        _col("conf", "json"),
        _col("data_interval_start", "datetime"),
        _col("data_interval_end", "datetime"),
        _col("last_scheduling_decision", "datetime"),
        _col("dag_hash"),
        _col("log_template_id", "integer"),
        _col("updated_at", "datetime", default=True, since=AirflowVersion(2, 5, 0)),
        _col("clear_number", "integer", nullable=False, default=True, since=AirflowVersion(2, 8, 0)),
    ),
}


class EmulatedDatabase:
    """metadata.MetadataDatabase over an emulated environment's tables (datetimes kept as ISO
    strings, as the emulator stores them). Changes are buffered and applied by `commit()`, in
    place, so rows the emulator holds on to (the running DAG's own run) stay the same objects."""

    def __init__(self, environment: EmulatedEnvironment, *, now: datetime) -> None:
        self.environment = environment
        self.version = AirflowVersion.parse(environment.airflow_version)
        self._now = now
        self._inserts: dict[str, list[dict[str, Any]]] = {}
        self._paused: dict[str, bool] = {}

    def airflow_version(self) -> str:
        return str(self.version)

    def columns(self, table: str) -> list[Column]:
        return [entry.column for entry in SCHEMA[table] if entry.since <= self.version]

    def _rows(self, table: str) -> Iterator[dict[str, Any]]:
        yield from self.environment.metadata.get(table, [])
        yield from self._inserts.get(table, [])

    def read_rows(self, table: str) -> Iterator[dict[str, Any]]:
        names = [column.name for column in self.columns(table)]
        for row in self._rows(table):
            yield {name: row.get(name) for name in names}

    def existing_keys(self, table: str, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        for row in self._rows(table):
            yield tuple(row.get(name) for name in columns)

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        columns = {column.name: column for column in self.columns(table)}
        pending = self._inserts.setdefault(table, [])
        next_id = max((int(row.get("id") or 0) for row in self._rows(table)), default=0) + 1
        for row in rows:
            unknown = sorted(set(row) - set(columns))
            if unknown:
                raise ValueError(f"{table} has no column {', '.join(unknown)} in Airflow {self.version}")
            stored: dict[str, Any] = {}
            for name, column in columns.items():
                if name in row:
                    value = row[name]
                elif column.has_default:
                    value = self._default(table, name, next_id)
                else:
                    value = None
                if value is None and not column.nullable:
                    raise ValueError(f"NOT NULL constraint failed: {table}.{name}")
                stored[name] = metadata.format_datetime(value) if isinstance(value, datetime) else value
            if "id" in columns:
                next_id += 1
            pending.append(stored)

    def _default(self, table: str, name: str, next_id: int) -> Any:
        defaults: dict[str, Any] = {
            "id": next_id,
            # The target's Fernet key encrypts every value a variable is created with.
            "is_encrypted": True,
            "updated_at": self._now,
            "clear_number": 0,
        }
        return defaults[name]

    def dag_pause_states(self) -> dict[str, bool]:
        states = {
            str(row["dag_id"]): bool(row.get("is_paused", False))
            for row in self.environment.metadata.get("dag", [])
            if row.get("is_active", True)
        }
        return {dag_id: self._paused.get(dag_id, paused) for dag_id, paused in states.items()}

    def set_paused(self, dag_ids: Collection[str], *, paused: bool) -> None:
        for dag_id in dag_ids:
            self._paused[dag_id] = paused

    def commit(self) -> None:
        for table, rows in self._inserts.items():
            self.environment.metadata.setdefault(table, []).extend(rows)
        for row in self.environment.metadata.get("dag", []):
            if row.get("dag_id") in self._paused:
                row["is_paused"] = self._paused[row["dag_id"]]
        self._inserts, self._paused = {}, {}


@dataclass
class _ScriptedFailure:
    message: str
    task_id: str | None
    times: int | None


@dataclass
class MigrationDagRuntime:
    """The emulator's DagRuntime for the project's DAGs (constructed with a boto3 S3 client)."""

    s3: S3Client
    _failures: dict[str, _ScriptedFailure] = field(default_factory=dict, init=False, repr=False)

    def fail_dag(
        self, dag_id: str, message: str, *, task_id: str | None = None, times: int | None = None
    ) -> None:
        """Make runs of `dag_id` fail in `task_id` (the first task when None) with `message`:
        the next `times` runs, or every run when None. Tasks before it run (and commit) first."""
        steps = metadata.DAG_TASKS.get(dag_id)
        if steps is not None and task_id is not None and task_id not in dict(steps):
            raise ValueError(f"{dag_id} has no task {task_id}; its tasks are {', '.join(dict(steps))}")
        self._failures[dag_id] = _ScriptedFailure(message, task_id, times)

    def run(self, environment: EmulatedEnvironment, dag_id: str, conf: dict[str, Any]) -> DagRunResult:
        failure = self._take_failure(dag_id)
        steps = metadata.DAG_TASKS.get(dag_id)
        if steps is None:
            if failure is not None:
                return DagRunResult("failed", failed_task=failure.task_id, stderr=failure.message)
            return DagRunResult("success")
        failing_task = None if failure is None else failure.task_id or steps[0][0]
        upstream: dict[str, Any] = {}
        for task_id, step in steps:
            if failure is not None and task_id == failing_task:
                return DagRunResult("failed", failed_task=task_id, stderr=failure.message)
            db = EmulatedDatabase(environment, now=datetime.now(metadata.UTC))
            # A task that raises fails the run, as in Airflow, and nothing it did lands.
            try:
                run_conf = metadata.RunConf.from_conf(conf)
                storage = metadata.S3Storage(self.s3, run_conf.bucket)
                upstream[task_id] = step(metadata.TaskContext(db, storage, run_conf, upstream))
            except Exception as error:
                return DagRunResult("failed", failed_task=task_id, stderr=f"{type(error).__name__}: {error}")
            db.commit()
        return DagRunResult("success")

    def _take_failure(self, dag_id: str) -> _ScriptedFailure | None:
        failure = self._failures.get(dag_id)
        if failure is None:
            return None
        if failure.times is not None:
            failure.times -= 1
            if failure.times <= 0:
                del self._failures[dag_id]
        return failure
