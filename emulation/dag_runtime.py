"""What the project's export and import DAGs do, run against an emulated environment.

`MigrationDagRuntime` is the MWAA emulator's DagRuntime: when a run of `mwaa_migrate_export` or
`mwaa_migrate_import` completes, it runs the DAG's tasks in order through the same library the
real DAGs use (`mwaa_migrate_metadata`: format, sealing with a KMS data key, checksums, column
mapping, id resolution, the two phases, pause, drain), with `EmulatedDatabase` (`RowwiseTables`:
the reference semantics of the library's SQL, row by row over in-memory tables) standing in for
Airflow's PostgreSQL, and the migration bucket and KMS in moto.

Time in a run is emulated: the drain's sleep advances the run's clock at once, and a task instance
of the source in `running`/`queued`/`restarting` finishes (success) after `drain_polls` polls of
the drain (never when None), as if the workers finished it, so a drain that waits, one that
finishes and one that times out are all deterministic and instant.
`emulation.real_airflow.RealAirflowDagRuntime` runs the same DAGs in real Airflow instead. Any other
DAG just succeeds. As in Airflow, a task's changes land together or not at all, and the first task
that raises fails the run.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from emulation.mwaa import DagRunResult, EmulatedEnvironment
from mwaa_migrate.dags import mwaa_migrate_metadata as metadata
from mwaa_migrate.dags.mwaa_migrate_metadata import Column, ColumnMapping, TableCounts, TableSpec, Window
from mwaa_migrate.environment.versions import AirflowVersion

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client

_EVERY = AirflowVersion(2, 0, 0)
_DATASETS = AirflowVersion(2, 4, 0)


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


# The Airflow 2.x columns of the tables the emulation carries, with the version that added each one
# (MWAA_FACTS.md): enough for the column mapping to meet real differences between versions. Tables
# not listed here do not exist in the emulation (as task_instance_history before 2.10 in Airflow).
SCHEMA: dict[str, tuple[_EmulatedColumn, ...]] = {
    "variable": (
        _col("id", "integer", nullable=False, default=True),
        _col("key", nullable=False),
        _col("val"),
        _col("description"),
        _col("is_encrypted", "boolean", default=True),
    ),
    "connection": (
        _col("id", "integer", nullable=False, default=True),
        _col("conn_id", nullable=False),
        _col("conn_type", nullable=False),
        _col("description"),
        _col("host"),
        _col("schema"),
        _col("login"),
        _col("password"),
        _col("port", "integer"),
        _col("is_encrypted", "boolean", default=True),
        _col("is_extra_encrypted", "boolean", default=True),
        _col("extra"),
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
    "task_instance": (
        _col("task_id", nullable=False),
        _col("dag_id", nullable=False),
        _col("run_id", nullable=False),
        _col("map_index", "integer", nullable=False, default=True),
        _col("start_date", "datetime"),
        _col("end_date", "datetime"),
        _col("state"),
        _col("try_number", "integer"),
        _col("max_tries", "integer", default=True),
        _col("hostname"),
        _col("job_id", "integer"),
        _col("pool", nullable=False, default=True),
        _col("queue"),
        _col("operator"),
        _col("trigger_id", "integer"),
        _col("executor", since=AirflowVersion(2, 10, 0)),
    ),
    "xcom": (
        _col("dag_run_id", "integer", nullable=False),
        _col("task_id", nullable=False),
        _col("map_index", "integer", nullable=False, default=True),
        _col("key", nullable=False),
        _col("dag_id", nullable=False),
        _col("run_id", nullable=False),
        _col("value", "json"),
        _col("timestamp", "datetime", nullable=False),
    ),
    "log": (
        _col("id", "integer", nullable=False, default=True),
        _col("dttm", "datetime"),
        _col("dag_id"),
        _col("task_id"),
        _col("map_index", "integer"),
        _col("event"),
        _col("execution_date", "datetime"),
        _col("run_id", since=AirflowVersion(2, 9, 0)),
        _col("owner"),
        _col("extra"),
        _col("try_number", "integer", since=AirflowVersion(2, 10, 0)),
    ),
    "task_instance_history": (
        _col("id", "integer", nullable=False, default=True, since=AirflowVersion(2, 10, 0)),
        _col("task_id", nullable=False, since=AirflowVersion(2, 10, 0)),
        _col("dag_id", nullable=False, since=AirflowVersion(2, 10, 0)),
        _col("run_id", nullable=False, since=AirflowVersion(2, 10, 0)),
        _col("map_index", "integer", nullable=False, default=True, since=AirflowVersion(2, 10, 0)),
        _col("try_number", "integer", nullable=False, since=AirflowVersion(2, 10, 0)),
        _col("start_date", "datetime", since=AirflowVersion(2, 10, 0)),
        _col("end_date", "datetime", since=AirflowVersion(2, 10, 0)),
        _col("duration", "float", since=AirflowVersion(2, 10, 0)),
        _col("state", since=AirflowVersion(2, 10, 0)),
        _col("max_tries", "integer", default=True, since=AirflowVersion(2, 10, 0)),
        _col("hostname", since=AirflowVersion(2, 10, 0)),
        _col("pool", nullable=False, since=AirflowVersion(2, 10, 0)),
        _col("queue", since=AirflowVersion(2, 10, 0)),
        _col("operator", since=AirflowVersion(2, 10, 0)),
        _col("executor", since=AirflowVersion(2, 10, 0)),
    ),
    "task_fail": (
        _col("id", "integer", nullable=False, default=True),
        _col("task_id", nullable=False),
        _col("dag_id", nullable=False),
        _col("run_id", nullable=False),
        _col("map_index", "integer", nullable=False, default=True),
        _col("start_date", "datetime"),
        _col("end_date", "datetime"),
        _col("duration", "integer"),
    ),
    "dag_run_note": (
        _col("user_id", "integer", since=AirflowVersion(2, 5, 0)),
        _col("dag_run_id", "integer", nullable=False, since=AirflowVersion(2, 5, 0)),
        _col("content", since=AirflowVersion(2, 5, 0)),
        _col("created_at", "datetime", nullable=False, since=AirflowVersion(2, 5, 0)),
        _col("updated_at", "datetime", nullable=False, since=AirflowVersion(2, 5, 0)),
    ),
    "task_instance_note": (
        _col("user_id", "integer", since=AirflowVersion(2, 5, 0)),
        _col("task_id", nullable=False, since=AirflowVersion(2, 5, 0)),
        _col("dag_id", nullable=False, since=AirflowVersion(2, 5, 0)),
        _col("run_id", nullable=False, since=AirflowVersion(2, 5, 0)),
        _col("map_index", "integer", nullable=False, since=AirflowVersion(2, 5, 0)),
        _col("content", since=AirflowVersion(2, 5, 0)),
        _col("created_at", "datetime", nullable=False, since=AirflowVersion(2, 5, 0)),
        _col("updated_at", "datetime", nullable=False, since=AirflowVersion(2, 5, 0)),
    ),
    "sla_miss": (
        _col("task_id", nullable=False),
        _col("dag_id", nullable=False),
        _col("execution_date", "datetime", nullable=False),
        _col("email_sent", "boolean"),
        _col("timestamp", "datetime"),
        _col("description"),
        _col("notification_sent", "boolean"),
    ),
    "dataset": (
        _col("id", "integer", nullable=False, default=True, since=_DATASETS),
        _col("uri", nullable=False, since=_DATASETS),
        _col("extra", "json", nullable=False, since=_DATASETS),
        _col("created_at", "datetime", nullable=False, since=_DATASETS),
        _col("updated_at", "datetime", nullable=False, since=_DATASETS),
        _col("is_orphaned", "boolean", nullable=False, default=True, since=AirflowVersion(2, 6, 0)),
    ),
    "dataset_event": (
        _col("id", "integer", nullable=False, default=True, since=_DATASETS),
        _col("dataset_id", "integer", nullable=False, since=_DATASETS),
        _col("extra", "json", nullable=False, since=_DATASETS),
        _col("source_task_id", since=_DATASETS),
        _col("source_dag_id", since=_DATASETS),
        _col("source_run_id", since=_DATASETS),
        _col("source_map_index", "integer", default=True, since=_DATASETS),
        _col("timestamp", "datetime", nullable=False, since=_DATASETS),
    ),
    "dagrun_dataset_event": (
        _col("dag_run_id", "integer", nullable=False, since=_DATASETS),
        _col("event_id", "integer", nullable=False, since=_DATASETS),
    ),
    "dataset_dag_run_queue": (
        _col("dataset_id", "integer", nullable=False, since=_DATASETS),
        _col("target_dag_id", nullable=False, since=_DATASETS),
        _col("created_at", "datetime", nullable=False, since=_DATASETS),
    ),
    # Not Airflow's: the import's ledger of the row versions it left (metadata.LEDGER_TABLE).
    metadata.LEDGER_TABLE: (_col("digest", nullable=False), _col("exported_at", "datetime", nullable=False)),
}


class RowwiseTables:
    """export_table and import_table over tables a subclass holds as lists of dicts (values as the
    export writes them: ISO strings for datetimes): the reference semantics of PostgresDatabase's
    SQL. It keeps the keys of exported rows, so children follow their parents."""

    def __init__(self) -> None:
        self._exported: dict[str, set[tuple[Any, ...]]] = {}

    # What a subclass provides
    def table_rows(self, table: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def add_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        raise NotImplementedError

    def update_row(self, table: str, row: dict[str, Any], values: Mapping[str, Any]) -> None:
        """Set values on a row table_rows returned."""
        raise NotImplementedError

    def columns(self, table: str) -> list[Column] | None:
        raise NotImplementedError

    # MetadataDatabase
    def read_rows(self, spec: TableSpec) -> Iterator[dict[str, Any]]:
        yield from (dict(row) for row in self.table_rows(spec.name))

    def count_rows(self, table: str) -> int | None:
        return None if self.columns(table) is None else len(self.table_rows(table))

    def _keyed_rows(self, spec: TableSpec) -> list[dict[str, Any]]:
        """The table's rows with the key of each row their ids refer to (IdRef.exported) joined in,
        as the export reads them."""
        refs = [ref for ref in spec.id_refs if ref.exported]
        rows = self.table_rows(spec.name)
        if not refs:
            return rows
        by_id = {}
        for ref in refs:
            referenced = metadata.TABLES_BY_NAME.get(ref.table)
            found = self._keyed_rows(referenced) if referenced else self.table_rows(ref.table)
            by_id[ref.column] = {row.get("id"): row for row in found}
        keyed = []
        for row in rows:
            extra: dict[str, Any] = {}
            for ref in refs:
                target = by_id[ref.column].get(row.get(ref.column)) or {}
                extra.update({part: target.get(part) for part in ref.key})
            keyed.append({**row, **extra})
        return keyed

    def _whole_keys(self, spec: TableSpec) -> set[tuple[Any, ...]]:
        """The keys of the rows of spec either phase carries, parents included: the parents of a
        whole_in_delta table in the delta."""
        parents = self._whole_keys(metadata.table_spec(spec.parent.table)) if spec.parent else set()
        return {
            spec.key_of(row)
            for row in self._keyed_rows(spec)
            if metadata.row_in_any_export(spec, row)
            and (not spec.parent or tuple(row.get(c) for c in spec.parent.columns) in parents)
        }

    def export_table(
        self, spec: TableSpec, columns: Sequence[Column], sink: metadata.LineSink, window: Window
    ) -> None:
        exported = self._exported.setdefault(spec.name, set())
        parent_keys = self._exported.get(spec.parent.table, set()) if spec.parent else set()
        if spec.parent and spec.whole_in_delta and not window.bulk:
            parent_keys = self._whole_keys(metadata.table_spec(spec.parent.table))
        for row in self._keyed_rows(spec):
            if not metadata.row_in_export(spec, row, window):
                continue
            if spec.parent and tuple(row.get(c) for c in spec.parent.columns) not in parent_keys:
                continue
            exported.add(spec.key_of(row))
            carried = metadata.cleared_for_delta(spec, row, window)
            sink(metadata.copy_line(metadata.encode_row(spec.name, carried, columns), columns))

    def synthesize_try_history(self) -> metadata.TryHistory:
        """PostgresDatabase.synthesize_try_history row by row (see metadata.TryHistory)."""
        history = self.columns("task_instance_history")
        if history is None or self.columns("task_fail") is None or self.columns("task_instance") is None:
            return metadata.TryHistory(unsupported=True)
        names = {column.name for column in history}
        key = metadata.TRY_KEY
        instances = {tuple(row.get(c) for c in key): row for row in self.table_rows("task_instance")}
        held = {
            (*(row.get(c) for c in key), self._instant(row.get("start_date")))
            for row in self.table_rows("task_instance_history")
        }
        taken = {
            (*(row.get(c) for c in key), row.get("try_number"))
            for row in self.table_rows("task_instance_history")
        }
        earlier: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for fail in self.table_rows("task_fail"):
            ti = instances.get(tuple(fail.get(c) for c in key))
            if ti is None or self._instant(fail.get("start_date")) == self._instant(ti.get("start_date")):
                continue
            earlier.setdefault(tuple(fail.get(c) for c in key), []).append(fail)
        result = metadata.TryHistory()
        written = []
        for ti_key, fails in earlier.items():
            ti = instances[ti_key]
            fails.sort(
                key=lambda f: (
                    f.get("start_date") is not None,
                    self._instant(f.get("start_date")),
                    f.get("id") or 0,
                )
            )
            for number, fail in enumerate(fails, start=1):
                if (*ti_key, self._instant(fail.get("start_date"))) in held:
                    continue
                result.candidates += 1
                try_number = int(ti.get("try_number") or 0) - len(fails) - 1 + number
                if try_number < 1:
                    result.unnumbered += 1
                    continue
                if (*ti_key, try_number) in taken:
                    continue
                row = {c: fail.get(c) for c in key}
                row |= {
                    "try_number": try_number,
                    "start_date": fail.get("start_date"),
                    "end_date": fail.get("end_date"),
                }
                row |= {"duration": fail.get("duration"), "state": "failed"}
                row |= {c: ti.get(c) for c in metadata.TRY_COPIED if c in names and c in ti}
                taken.add((*ti_key, try_number))
                written.append(row)
        self.add_rows("task_instance_history", written)
        result.written = len(written)
        return result

    @staticmethod
    def _instant(value: Any) -> Any:
        return metadata.parse_datetime(value) if value is not None else None

    def newest_import(self) -> str | None:
        stamps = [
            metadata.parse_datetime(row["exported_at"]) for row in self.table_rows(metadata.LEDGER_TABLE)
        ]
        return metadata.format_datetime(max(stamps)) if stamps else None

    def import_table(
        self,
        spec: TableSpec,
        mapping: ColumnMapping,
        lines: Iterable[bytes],
        *,
        on_conflict: str,
        exported_at: str,
    ) -> TableCounts:
        types = dict(mapping.source_types)
        exported = [Column(name, kind) for name, kind in mapping.source_types]
        compared = [target for target, _ in mapping.kept] + [ref.column for ref in mapping.id_refs]
        if spec.target_defines:
            compared = []  # the target's own row once it holds the key (a dataset)
        kinds = {column.name: column.type for column in self.columns(spec.name) or []}
        counts = TableCounts()
        staged: list[tuple[tuple[Any, ...], dict[str, Any] | None, dict[str, Any]]] = []
        known_dags = {row.get("dag_id") for row in self.table_rows("dag")}
        dropped: set[str] = set()
        for line in lines:
            counts.read += 1
            row = metadata.copy_row_values(line, exported)
            if spec.requires_dag and row.get(spec.requires_dag) not in known_dags:
                counts.dropped += 1  # the target lacks the DAG (a foreign key to dag refuses it)
                dropped.add(str(row.get(spec.requires_dag)))
                continue
            staged.append((self._norm_key(spec, row, types), self._mapped(spec, mapping, row, types), row))
        counts.dropped_dags = sorted(dropped)
        recorded = {str(row.get("digest")): row for row in self.table_rows(metadata.LEDGER_TABLE)}
        ledger = set(recorded)

        def same(row: Mapping[str, Any], out: Mapping[str, Any] | None) -> bool:
            return out is not None and self._same(row, out, compared, kinds)

        def ours(row: Mapping[str, Any]) -> bool:
            return self._digest(spec, row, compared, kinds) in ledger

        def listing(row: Mapping[str, Any], reason: str) -> None:
            if len(counts.listed) < metadata.CONFLICTS_LISTED:
                counts.listed.append({"key": metadata.shown_key(spec, row), "reason": reason})

        index = self._index(spec)
        held = [any(same(row, out) for row in index.get(key, [])) for key, out, _ in staged]
        counts.identical = sum(held)
        differing = [
            (key, out, row)
            for (key, out, row), is_held in zip(staged, held, strict=True)
            if not is_held and any(not same(x, out) and not ours(x) for x in index.get(key, []))
        ]
        for _, _, row in differing:
            listing(row, "differs")
        for (key, out, _), is_held in zip(staged, held, strict=True):
            if out is None or is_held:
                continue
            for x in index.get(key, []):
                if not same(x, out) and ours(x):
                    self.update_row(spec.name, x, {name: out.get(name) for name in compared})
                    counts.updated += 1
        if on_conflict == metadata.ON_CONFLICT_OVERWRITE:
            for key, out, _ in differing:
                for x in index.get(key, []):
                    if out is not None and not same(x, out):
                        self.update_row(spec.name, x, {name: out.get(name) for name in compared})
                        counts.overwritten += 1
        counts.inserted = self._insert_new(spec, [(key, out) for key, out, _ in staged])
        index = self._index(spec)
        for key, _, row in staged:
            if key not in index:
                counts.refused += 1
                listing(row, "refused")
        counts.conflicts = len(differing) + counts.refused
        left = [(key, out) for key, out, _ in staged if any(same(x, out) for x in index.get(key, []))]
        counts.missing = counts.read - counts.dropped - len(left)
        written = {
            self._digest(spec, x, compared, kinds) for key, out in left for x in index[key] if same(x, out)
        }
        self._write_ledger(written, recorded, exported_at)
        return counts

    # Helpers
    def _insert_new(
        self, spec: TableSpec, staged: Sequence[tuple[tuple[Any, ...], dict[str, Any] | None]]
    ) -> int:
        """Insert the rows the target lacks by natural key (INSERT ... ON CONFLICT DO NOTHING)."""
        index = self._index(spec)
        taken_unique = self._unique_sets(spec)
        new_rows: list[dict[str, Any]] = []
        inserted_keys: set[tuple[Any, ...]] = set()
        for key, out in staged:
            if out is None or key in index or (spec.unique_key and key in inserted_keys):
                continue
            if any(self._values(out, cols) in taken for cols, taken in taken_unique.items()):
                continue  # another unique constraint refuses it (ON CONFLICT DO NOTHING)
            for cols, taken in taken_unique.items():
                taken.add(self._values(out, cols))
            inserted_keys.add(key)
            new_rows.append(out)
        self.add_rows(spec.name, new_rows)
        return len(new_rows)

    def _write_ledger(
        self, written: set[str], recorded: Mapping[str, dict[str, Any]], exported_at: str
    ) -> None:
        """Each digest with the newest export that left it (as the SQL's GREATEST)."""
        for digest in written & set(recorded):
            row = recorded[digest]
            if metadata.parse_datetime(row["exported_at"]) < metadata.parse_datetime(exported_at):
                self.update_row(metadata.LEDGER_TABLE, row, {"exported_at": exported_at})
        self.add_rows(
            metadata.LEDGER_TABLE,
            [{"digest": digest, "exported_at": exported_at} for digest in sorted(written - set(recorded))],
        )

    def _mapped(
        self, spec: TableSpec, mapping: ColumnMapping, row: Mapping[str, Any], types: Mapping[str, str]
    ) -> dict[str, Any] | None:
        """The row as the target stores it, or None when its parent (or an id it refers to) is not
        in the target."""
        if spec.parent and self._find(spec.parent.table, spec.parent.columns, row) is None:
            return None
        out: dict[str, Any] = {}
        for target, source in mapping.kept:
            value = row.get(source)
            if types.get(source) == "datetime" and value is not None:
                value = metadata.format_datetime(metadata.parse_datetime(value))
            out[target] = value
        for name, value in mapping.refill:
            if out.get(name) is None:
                out[name] = value
        for name, value in mapping.filled:
            out[name] = value
        for ref in mapping.id_refs:
            parent = self._find(ref.table, ref.key, row)
            if parent is None:
                return None
            out[ref.column] = parent.get("id")
        for column, parent_table in mapping.newest_refs:
            ids = [int(r["id"]) for r in self.table_rows(parent_table) if r.get("id") is not None]
            out[column] = max(ids) if ids else None
        return out

    def _index(self, spec: TableSpec) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
        index: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for row, keyed in zip(self.table_rows(spec.name), self._keyed_rows(spec), strict=True):
            index.setdefault(self._norm_key(spec, keyed), []).append(row)
        return index

    @staticmethod
    def _same(
        row: Mapping[str, Any], out: Mapping[str, Any], compared: Sequence[str], kinds: Mapping[str, str]
    ) -> bool:
        def norm(value: Any, kind: str) -> Any:
            if value is not None and kind == "datetime":
                return metadata.parse_datetime(value)
            return metadata.encode_value(value)

        return all(
            norm(row.get(c), kinds.get(c, "json")) == norm(out.get(c), kinds.get(c, "json")) for c in compared
        )

    @staticmethod
    def _digest(
        spec: TableSpec, row: Mapping[str, Any], compared: Sequence[str], kinds: Mapping[str, str]
    ) -> str:
        """The ledger's digest of a target row: its table, natural key and carried columns."""

        def norm(value: Any, kind: str) -> Any:
            if value is not None and kind == "datetime":
                return metadata.format_datetime(metadata.parse_datetime(value))
            return metadata.encode_value(value)

        names = [*spec.key, *(name for name in compared if name not in spec.key)]
        values = [norm(row.get(name), kinds.get(name, "json")) for name in names]
        return hashlib.sha256(json.dumps([spec.name, values], sort_keys=True).encode("utf-8")).hexdigest()

    @staticmethod
    def _values(row: Mapping[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
        return tuple(metadata.encode_value(row.get(column)) for column in columns)

    def _norm_key(
        self, spec: TableSpec, row: Mapping[str, Any], types: Mapping[str, str] | None = None
    ) -> tuple[Any, ...]:
        return tuple(
            metadata.encode_value(row.get(column), (types or {}).get(column, "json")) for column in spec.key
        )

    def _unique_sets(self, spec: TableSpec) -> dict[tuple[str, ...], set[tuple[Any, ...]]]:
        """Other unique constraints the emulated tables enforce (dag_run's logical date)."""
        constraints = [("dag_id", "execution_date")] if spec.name == "dag_run" else []
        return {cols: {self._values(row, cols) for row in self.table_rows(spec.name)} for cols in constraints}

    def _find(self, table: str, key: Sequence[str], row: Mapping[str, Any]) -> dict[str, Any] | None:
        wanted = tuple(row.get(column) for column in key)
        spec = metadata.TABLES_BY_NAME.get(table)
        candidates = self._keyed_rows(spec) if spec and key != ("id",) else self.table_rows(table)
        for candidate in candidates:
            if tuple(candidate.get(column) for column in key) == wanted:
                return candidate
        return None


class EmulatedDatabase(RowwiseTables):
    """metadata.MetadataDatabase over an emulated environment's tables (datetimes kept as ISO
    strings, as the emulator stores them). Changes are buffered and applied by `commit()`, in
    place, so rows the emulator holds on to (the running DAG's own run) stay the same objects.
    The emulated Fernet key stores values as they are and says they are encrypted."""

    def __init__(
        self,
        environment: EmulatedEnvironment,
        *,
        now: datetime,
        drain_polls: int | None = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__()
        self.environment = environment
        self.version = AirflowVersion.parse(environment.airflow_version)
        self._now = now
        self._clock = clock or (lambda: now)
        # Polls of unfinished_task_instances after which the source's workers finish the task
        # instances in flight (None: never, so a drain times out).
        self.drain_polls = drain_polls
        self.polls = 0
        self._inserts: dict[str, list[dict[str, Any]]] = {}
        # id of a stored row -> (the row, its new values), applied in place by commit().
        self._updates: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._paused: dict[str, bool] = {}

    def airflow_version(self) -> str:
        return str(self.version)

    def schema_revision(self) -> str:
        return f"emulated-{self.version}"

    def columns(self, table: str) -> list[Column] | None:
        if table not in SCHEMA:
            return None
        # A table whose every column is newer than this version is not there (None, as Airflow's).
        found = [entry.column for entry in SCHEMA[table] if entry.since <= self.version]
        return found or None

    def table_rows(self, table: str) -> list[dict[str, Any]]:
        stored = [
            self._updates[id(row)][1] if id(row) in self._updates else row
            for row in self.environment.metadata.get(table, [])
        ]
        return [*stored, *self._inserts.get(table, [])]

    def update_row(self, table: str, row: dict[str, Any], values: Mapping[str, Any]) -> None:
        changed = {
            name: metadata.format_datetime(value) if isinstance(value, datetime) else value
            for name, value in values.items()
        }
        for _original, pending in self._updates.values():
            if pending is row:
                pending.update(changed)
                return
        if any(row is inserted for inserted in self._inserts.get(table, [])):
            row.update(changed)
            return
        self._updates[id(row)] = (row, {**row, **changed})

    def add_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        columns = {column.name: column for column in self.columns(table) or []}
        pending = self._inserts.setdefault(table, [])
        next_id = max((int(row.get("id") or 0) for row in self.table_rows(table)), default=0) + 1
        for row in rows:
            unknown = sorted(set(row) - set(columns))
            if unknown:
                raise ValueError(f"{table} has no column {', '.join(unknown)} in Airflow {self.version}")
            stored: dict[str, Any] = {}
            for name, column in columns.items():
                if name in row:
                    value = row[name]
                elif column.has_default:
                    value = self._default(name, next_id)
                else:
                    value = None
                if value is None and not column.nullable:
                    raise ValueError(f"NOT NULL constraint failed: {table}.{name}")
                stored[name] = metadata.format_datetime(value) if isinstance(value, datetime) else value
            if "id" in columns:
                next_id += 1
            pending.append(stored)

    def _default(self, name: str, next_id: int) -> Any:
        defaults: dict[str, Any] = {
            "id": next_id,
            # The target's Fernet key encrypts every value a variable is created with.
            "is_encrypted": True,
            "is_extra_encrypted": True,
            "updated_at": self._now,
            "clear_number": 0,
            "map_index": -1,
            "source_map_index": -1,
            "is_orphaned": False,
            "max_tries": -1,
            "pool": "default_pool",
        }
        return defaults[name]

    def fernet_decrypt(self, token: str) -> str:
        return token

    def fernet_encrypt(self, value: str) -> tuple[str, bool]:
        return value, True

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

    def unfinished_task_instances(self, dag_ids: Collection[str]) -> list[dict[str, Any]]:
        """What the drain sees now. The workers outside this task's transaction finish the task
        instances in flight after `drain_polls` polls: changed in the environment at once."""
        self.polls += 1
        wanted = set(dag_ids)
        in_flight = [
            row
            for row in self.environment.metadata.get("task_instance", [])
            if row.get("dag_id") in wanted and row.get("state") in metadata.DRAIN_STATES
        ]
        if in_flight and self.drain_polls is not None and self.polls > self.drain_polls:
            for row in in_flight:
                row["state"] = "success"
                row["end_date"] = metadata.format_datetime(self._clock())
            in_flight = []
        names = ("dag_id", "run_id", "task_id", "map_index", "state")
        return [{name: row.get(name) for name in names} for row in in_flight]

    def commit(self) -> None:
        for original, pending in self._updates.values():
            original.clear()
            original.update(pending)
        for table, rows in self._inserts.items():
            self.environment.metadata.setdefault(table, []).extend(rows)
        for row in self.environment.metadata.get("dag", []):
            if row.get("dag_id") in self._paused:
                row["is_paused"] = self._paused[row["dag_id"]]
        self._inserts, self._updates, self._paused = {}, {}, {}


@dataclass
class _ScriptedFailure:
    message: str
    task_id: str | None
    times: int | None
    # Only runs of this phase (the conf's "phase") fail; None: every run.
    phase: str | None = None


# The drain's poll interval on real time (the local stack): the emulated workers finish a task in
# a few polls, so a drain takes a fraction of a second.
_REAL_DRAIN_POLL_SECONDS = 0.05


@dataclass
class MigrationDagRuntime:
    """The emulator's DagRuntime for the project's DAGs (constructed with a boto3 S3 client)."""

    s3: S3Client
    # KMS (moto's in the emulation): the export's data key, decrypted again by the import.
    kms: KMSClient
    # Drain polls a source's task instance in flight needs to finish (None: it never does).
    drain_polls: int | None = 2
    # The start of each run's emulated time (the bulk's watermark); now when None.
    clock: Callable[[], datetime] | None = None
    _failures: dict[str, _ScriptedFailure] = field(default_factory=dict, init=False, repr=False)

    def fail_dag(
        self,
        dag_id: str,
        message: str,
        *,
        task_id: str | None = None,
        times: int | None = None,
        phase: str | None = None,
    ) -> None:
        """Make runs of `dag_id` (of `phase` only, when given) fail in `task_id` (the first task
        when None) with `message`: the next `times` runs, or every run when None. Tasks before it
        run (and commit) first."""
        steps = metadata.DAG_TASKS.get(dag_id)
        if steps is not None and task_id is not None and task_id not in dict(steps):
            raise ValueError(f"{dag_id} has no task {task_id}; its tasks are {', '.join(dict(steps))}")
        self._failures[dag_id] = _ScriptedFailure(message, task_id, times, phase)

    def run(self, environment: EmulatedEnvironment, dag_id: str, conf: dict[str, Any]) -> DagRunResult:
        failure = self._take_failure(dag_id, conf.get("phase"))
        steps = metadata.DAG_TASKS.get(dag_id)
        if steps is None:
            if failure is not None:
                return DagRunResult("failed", failed_task=failure.task_id, stderr=failure.message)
            return DagRunResult("success")
        failing_task = None if failure is None else failure.task_id or steps[0][0]
        upstream: dict[str, Any] = {}
        # With a clock given (tests), the run's time is emulated: the drain's sleeps advance it at
        # once. Without one (the local stack, make demo), time is real and the drain polls often,
        # so that every moment the DAGs record (pause, drain, export) is on the same clock.
        now = [self.clock() if self.clock else datetime.now(metadata.UTC)]
        poll_seconds = metadata.DRAIN_POLL_SECONDS if self.clock else _REAL_DRAIN_POLL_SECONDS

        def sleep(seconds: float) -> None:
            if self.clock is None:
                time.sleep(seconds)
            now[0] += timedelta(seconds=seconds)

        def clock() -> datetime:
            return now[0] if self.clock else datetime.now(metadata.UTC)

        for task_id, step in steps:
            if failure is not None and task_id == failing_task:
                return DagRunResult("failed", failed_task=task_id, stderr=failure.message)
            db = EmulatedDatabase(environment, now=clock(), drain_polls=self.drain_polls, clock=clock)
            # A task that raises fails the run, as in Airflow, and nothing it did lands.
            try:
                run_conf = metadata.RunConf.from_conf(conf)
                storage: metadata.Storage = metadata.S3Storage(self.s3, run_conf.bucket)
                keys: metadata.KeyService | None = metadata.KmsKeys(self.kms)
                if run_conf.self_managed is not None:
                    # A self-managed Airflow's export: its presigned URLs (over HTTP, as the DAG
                    # sends them) and the sealing key's public half, never the emulator's clients.
                    storage, keys = run_conf.storage(), None
                context = metadata.TaskContext(
                    db, storage, run_conf, upstream, keys, sleep=sleep, clock=clock, poll_seconds=poll_seconds
                )
                upstream[task_id] = step(context)
            except Exception as error:
                return DagRunResult("failed", failed_task=task_id, stderr=f"{type(error).__name__}: {error}")
            db.commit()
        return DagRunResult("success")

    def _take_failure(self, dag_id: str, phase: Any) -> _ScriptedFailure | None:
        failure = self._failures.get(dag_id)
        if failure is None or (failure.phase is not None and failure.phase != phase):
            return None
        if failure.times is not None:
            failure.times -= 1
            if failure.times <= 0:
                del self._failures[dag_id]
        return failure


def opened_table_file(s3: S3Client, kms: KMSClient, bucket: str, key: str) -> bytes:
    """The lines inside one sealed table file of an export, opened as the target's role does
    (the export's manifest, next to it, names the data key). For comparing exports by content: the
    sealed bytes differ between two exports of the same rows (a new data key and nonces each time)."""
    folder = key.rsplit("/", 1)[0]
    storage = metadata.S3Storage(s3, bucket)
    manifest = metadata.Manifest.from_json(json.loads(storage.get(f"{folder}/{metadata.MANIFEST_FILE}")))
    box = metadata.open_secret_box(metadata.KmsKeys(kms), manifest.secrets, manifest.migration_id)
    [entry] = [entry for entry in manifest.tables.values() if key.endswith(f"/{entry.file}")]
    with tempfile.TemporaryDirectory() as work:
        path = f"{work}/{entry.file}"
        storage.get_file(key, path)
        return b"".join(line + b"\n" for line in metadata.file_lines(path, box, entry.file))
