"""mwaa-migrate's metadata library, shared by the export and import DAGs.

This file is uploaded next to `mwaa_migrate_export.py` and `mwaa_migrate_import.py` into an
environment's DAG folder (MWAA puts that folder on sys.path), so it is one self-contained module:
the standard library at module level; boto3, cryptography and Airflow (all in every MWAA
environment) imported only inside the functions that need them. MWAA runs Airflow 2.4-2.6 on
Python 3.10, so nothing here needs a newer Python.

A migration copies in two phases (docs/cutover.md): the bulk while the source runs (pauses
nothing; history final before its watermark), then the cutover in the downtime window (record the
active DAGs in `{prefix}/cutover/record.json`, pause exactly those, drain the tasks running or
queued, export the delta: everything the bulk did not carry; the import inserts or updates it,
checks every row, and unpauses exactly the recorded DAGs).

The export format (FORMAT_VERSION 5) under `s3://{bucket}/{prefix}/export/{phase}/`:

- `manifest.json`: format name and version, migrationId, `phase` (bulk | cutover), `watermark`
  (the bulk's start; the delta names the bulk's), source_airflow_version, schema_revision (the
  source database's Alembic revision), exported_at, `active_dags` (the cutover record's),
  `timings` and `drain` (the delta's), `secrets` (the KMS key, the data key's KMS ciphertext and
  its encryption context, never the key itself), per table `{"file", "rows", "sha256", "key",
  "columns": [{"name", "type"}]}` (the file's columns, in its order), and `mac`: HMAC-SHA256 of
  the rest (canonical JSON: keys sorted, no whitespace) under a key derived with HKDF-SHA256 from
  the data key. Only a holder of the data
  key can write a manifest the import accepts: an edited active_dags, count or sha256 is refused.
- one file per table (`task_instance.tsv.gz.sealed`, ...): PostgreSQL's COPY text format, one line
  per row, the manifest's columns in its order (fields split by a tab; backslash escapes for tab,
  newline, carriage return and backslash; `\\N` null; datetimes ISO 8601 in UTC, `bytes` columns
  such as pickled confs and XCom values in bytea's hex form, `json` columns as JSON text, booleans
  `t`/`f`): what `COPY ... TO STDOUT` writes and `COPY ... FROM STDIN` reads, so neither
  side builds or parses JSON per row, and the columns still map by name through the manifest.
  Format 4's files (`.jsonl.gz.sealed`: JSON Lines, one object per row, bytes in base64) are still
  read, a line at a time. Each file is gzipped, then sealed: cut into 1 MiB chunks, each
  encrypted with AES-256-GCM under the migration's data key, bound to the file's name, its position
  and whether it is the last (so a chunk moved, dropped or cut off is refused). `sha256` is over the
  sealed bytes. Ids local to one database (`id`, `job_id`, `trigger_id`, `dag_run_id`, ...) are not
  in the files: rows refer to each other by natural keys, and the import resolves them on the target.

Secrets: the export decrypts connections and variables with the source's Fernet key (through
Airflow), and every table file is sealed with a data key that KMS generates for this migration
(`GenerateDataKey`, encryption context `{"mwaa-migrate-migration": migrationId}`). Every table, not
only connections and variables: XComs, run confs and the audit log's command lines hold secrets too
(Airflow's own `connections add` logs its password there). The import asks KMS to decrypt the data
key (which the grants allow only the target's role, for this migration only) and stores connection
passwords and extras and variable values encrypted with the target's own Fernet key. Plaintext
exists only inside the two environments, never in the bucket nor in a log line.

Tables carried, parents first: variable, connection, slot_pool (not default_pool), dag_run (the
user's DAGs: the bulk finished runs ended before the watermark, the delta every other run),
task_instance (the bulk: not in flight; the delta: in flight ones with their state cleared),
task_instance_history, task_fail, task_reschedule, task_map, rendered_task_instance_fields, xcom,
the notes of runs and task instances (the delta carries every note again: people write them on old
runs too), sla_miss, dataset (by URI; one the target's scheduler made is the target's),
dataset_event and dagrun_dataset_event (ids resolved through the dataset's URI and the run's key),
dataset_dag_run_queue (the delta only: pending triggers; those for a DAG the target lacks are left
out and listed), log (the audit log, split at the watermark). A child row is exported only with its parent and
imported only when its parent is in the target. Tables with history this format does not carry
(NOT_CARRIED) are counted and listed in the manifest's and the result's `not_carried`, with the
tables the target's Airflow lacks and, for a target that becomes Airflow 3 (conf
targetFinalVersion), what Airflow 3's own migration drops; before that hop the import writes the
failed tries only task_fail records to task_instance_history (TryHistory).

The import checks the manifest's MAC first, maps columns by name onto the target's tables as
reflected from its database, fills what changed between versions from the small `RULES` table,
inserts parents first and resolves ids by natural key. A row the target holds with the exported
values is identical; one it holds as an earlier import of this migration left it (the ledger in
the target's database: on PostgreSQL, `mwaa_migrate_ledger_xid`, the transactions imports wrote rows
in, which a row version's xmin names, and `mwaa_migrate_ledger`, a digest per row an import found as
exported without writing it) is updated; one it refuses or holds otherwise is a conflict, which
fails the import unless onConflict is keep-target or overwrite. Then it checks read = inserted +
updated + identical + conflicts as the database counted them, and that the rows not in the target
as exported are exactly the conflicts left to the target (a second import of either phase changes
nothing). It writes `s3://{bucket}/{prefix}/import/{phase}/result.json`, with the conflicts by
table and key.

The steps run against two interfaces, `Storage` and `MetadataDatabase`. `PostgresDatabase` is the
real one (Airflow's metadata database, in the DAG's task, through its SQLAlchemy session): tables
stream out with `COPY (SELECT ...) TO STDOUT` and secret tables through a server-side cursor, and
stream in with `COPY ... FROM STDIN` into a staging table typed as the target types each column
(the text format's lines parsed by COPY itself), then set-based statements per table
(`UPDATE ... FROM` by natural key, `INSERT ... SELECT`, with `ON CONFLICT DO NOTHING` unless the
target holds none of the rows by key, and counts before and after: one join of the rows with the
table for both checks and the ledger), so memory stays flat however many rows there are. The
project's emulator implements the same interface over in-memory tables (emulation/dag_runtime.py's
`RowwiseTables`).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import io
import json
import logging
import os
import re
import tempfile
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

# MWAA runs Airflow 2.4-2.6 on Python 3.10, which has no datetime.UTC.
UTC = timezone.utc  # noqa: UP017

FORMAT_NAME = "mwaa-migrate-metadata"
FORMAT_VERSION = 5
# Version 1 carried variable values in plaintext; version 2 was one single-phase export; version 3
# had no MAC over its manifest (an edited one was trusted): refused. Version 4 wrote JSON Lines
# (JSONL_FILE_SUFFIX): read, each line turned into the COPY text format as it streams.
OLDEST_FORMAT_VERSION = 4

# The two copies of a migration (docs/cutover.md): the bulk while the source runs, then the delta
# in the downtime window.
PHASE_BULK = "bulk"
PHASE_CUTOVER = "cutover"
PHASES = (PHASE_BULK, PHASE_CUTOVER)
DRAIN_FAIL = "fail"
DRAIN_CARRY = "carry"
DRAIN_ACTIONS = (DRAIN_FAIL, DRAIN_CARRY)
DEFAULT_DRAIN_TIMEOUT_MINUTES = 30
DRAIN_POLL_SECONDS = 5.0
# The drain waits for task instances in these states: the ones a worker holds. Paused DAGs get no
# new task scheduled, so runs with tasks not started yet do not finish: they are carried as they are.
DRAIN_STATES = frozenset({"running", "queued", "restarting"})
# The cutover record's states (docs/cutover.md).
RECORD_PAUSED = "paused"

EXPORT_DAG_ID = "mwaa_migrate_export"
IMPORT_DAG_ID = "mwaa_migrate_import"
# The project's own DAGs: never paused or unpaused by a migration, their runs never carried.
PROJECT_DAG_IDS = frozenset({EXPORT_DAG_ID, IMPORT_DAG_ID})

DEFAULT_POOL = "default_pool"
FINISHED_RUN_STATES = frozenset({"success", "failed"})
# Task instances in these states are in flight: the bulk leaves them out; the delta carries them
# with their state cleared, so the target's scheduler runs them once their DAG is unpaused.
IN_FLIGHT_STATES = frozenset(
    {"running", "queued", "scheduled", "up_for_retry", "up_for_reschedule", "deferred", "restarting"}
)
# The ORM and schema these DAGs know are Airflow 2's; Airflow 3 forbids tasks to use the database.
SUPPORTED_AIRFLOW_MAJOR = 2

MANIFEST_FILE = "manifest.json"
# Every sealed table file's name ends so (gzipped, then sealed: not readable as gzip without the
# migration's data key). What is inside, by the name: COPY_FILE_SUFFIX (this format) or
# JSONL_FILE_SUFFIX (format 4).
TABLE_FILE_SUFFIX = ".gz.sealed"
COPY_FILE_SUFFIX = ".tsv.gz.sealed"
JSONL_FILE_SUFFIX = ".jsonl.gz.sealed"
RESULT_FILE = "result.json"
RECORD_FILE = "record.json"
# The import's record, in the target's own database, of every row version an import of this
# migration left there (docs/cutover.md): the rows it may update again without calling it a conflict.
LEDGER_TABLE = "mwaa_migrate_ledger"
# The ledger's other half (PostgreSQL): the transactions an import wrote rows in. A row version
# whose xmin is one of them is as an import left it, without a digest of its own.
LEDGER_XID_TABLE = "mwaa_migrate_ledger_xid"

# What the import does with a conflict: a row the target refused (another unique constraint, a
# missing parent) or holds differently and that no import of this migration wrote.
ON_CONFLICT_FAIL = "fail"
ON_CONFLICT_KEEP_TARGET = "keep-target"
ON_CONFLICT_OVERWRITE = "overwrite"
ON_CONFLICT_ACTIONS = (ON_CONFLICT_FAIL, ON_CONFLICT_KEEP_TARGET, ON_CONFLICT_OVERWRITE)
# Conflicts listed per table in the result and the error: enough to find them, bounded.
CONFLICTS_LISTED = 20

# Column types recorded in the manifest.
COLUMN_TYPES = frozenset({"string", "integer", "float", "boolean", "datetime", "json", "bytes"})

SECRET_ALGORITHM = "AES-256-GCM"  # noqa: S105  (a name, not a secret)
# The manifest's MAC: HMAC-SHA256 under a key derived (HKDF-SHA256) from the export's data key.
MAC_ALGORITHM = "HMAC-SHA256(HKDF-SHA256(data key))"
_MAC_INFO = b"mwaa-migrate-metadata manifest mac v1"
ENCRYPTION_CONTEXT_KEY = "mwaa-migrate-migration"
# How the manifest's data key is kept: KMS's own ciphertext of a data key it generated (an export
# on MWAA, whose role may call KMS), or sealed with the public half of an asymmetric KMS key (an
# export on a self-managed Airflow, which holds no AWS credentials): KMS's algorithm name.
KMS_DATA_KEY = "kms_data_key"
PUBLIC_KEY_SEALING = "RSAES_OAEP_SHA_256"
DATA_KEY_SEALINGS = (KMS_DATA_KEY, PUBLIC_KEY_SEALING)
_NONCE_BYTES = 12
# Gzip level 1: the files are written once and read once; speed matters more than size.
_GZIP_LEVEL = 1
_CHUNK = 1 << 20


class MetadataError(Exception):
    """Base of the errors the DAGs raise on purpose; the message says what is wrong and where."""


class MissingObjectError(MetadataError):
    """An object the step needs is not in the migration bucket."""


class VerificationError(MetadataError):
    """The export does not match its manifest (checksum, row count, format) or this migration."""


class MappingError(MetadataError):
    """The target's table needs a column the export lacks and no rule fills it."""


class ExportError(MetadataError):
    """A source row cannot be written in the export format."""


class ConfError(MetadataError):
    """The DAG run's conf lacks a field or has a wrong one."""


class UnsupportedAirflowError(MetadataError):
    """The environment runs an Airflow version these DAGs are not written for."""


class SecretError(MetadataError):
    """A secret value cannot be encrypted or decrypted (wrong key, tampered file)."""


class DrainTimeout(MetadataError):
    """Task instances of the paused DAGs still run at the drain's deadline (onDrainTimeout "fail")."""


class ConflictError(MetadataError):
    """Exported rows the target refused or holds differently, and onConflict is "fail"."""


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parent:
    """A row is carried only with its parent row: exported when the parent is exported, imported
    when the parent is in the target. `columns` are named the same in both tables."""

    table: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class IdRef:
    """`column` holds the local id of a row of `table`; the export leaves it out (the row carries
    `key`, that row's natural key) and the import puts the target's id of that row back."""

    column: str
    table: str
    key: tuple[str, ...]
    # The row itself lacks the key's columns (dag_run_note has only dag_run_id): the export reads
    # them from the referenced row, under the same names, and the import compares the target's rows
    # by `column` against the id it resolves.
    exported: bool = False
    # Key columns that may be null (a dataset event's source): compared null-safely (slower).
    nullable: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    """What the migration knows about one metadata table."""

    name: str
    # The natural key: a row whose key is already in the target is skipped, never overwritten.
    key: tuple[str, ...]
    # Ids and storage details local to one database: never exported; the target fills or clears them.
    local_columns: frozenset[str] = frozenset()
    # Rows the migration never exports nor touches in the target.
    protected_keys: frozenset[tuple[Any, ...]] = frozenset()
    parent: Parent | None = None
    id_refs: tuple[IdRef, ...] = ()
    # Columns pointing at a table only the target's own rows fill (log_template): the target's newest.
    newest_refs: tuple[tuple[str, str], ...] = ()
    # The bulk carries only rows in these states (dag_run) / never rows in these states
    # (task_instance), and only rows whose `window_column` is before the watermark. The delta
    # carries every row the bulk did not: the complement of that condition (parents alike).
    states: frozenset[str] | None = None
    excluded_states: frozenset[str] = frozenset()
    window_column: str | None = None
    # In the delta, a row in one of IN_FLIGHT_STATES has these columns cleared (state NULL: the
    # target's scheduler runs the task again; the trigger's resume point is the source's own).
    cleared_in_flight: tuple[str, ...] = ()
    # Rows of the project's own DAGs are never carried (their dag_id column).
    dag_column: str | None = "dag_id"
    # Decrypted with the source's Fernet key, carried encrypted with the migration's data key.
    secret_columns: tuple[str, ...] = ()
    # Local columns that say whether a secret column is Fernet-encrypted: secret column -> flag.
    fernet_flags: tuple[tuple[str, str], ...] = ()
    # The target has a unique constraint on the natural key (otherwise the import compares keys).
    unique_key: bool = True
    # Rows that change after their parent is final (notes): the delta carries every row whose parent
    # either phase carries, not only the rows of the delta's parents.
    whole_in_delta: bool = False
    # Rows the target's own scheduler writes (datasets from the DAG files, dataset triggers): the
    # import adds those the target lacks; one the target holds by key is the target's (counted
    # identical, never updated nor a conflict).
    target_defines: bool = False
    # State at the cutover, not history (pending dataset triggers): only the delta carries it.
    delta_only: bool = False
    # The column naming a DAG the target must know (a foreign key to `dag`): rows for a DAG the
    # target lacks are not imported, counted as dropped and listed as not carried.
    requires_dag: str | None = None

    @property
    def file(self) -> str:
        return f"{self.name}{COPY_FILE_SUFFIX}"

    def key_of(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row.get(column) for column in self.key)


_TI_KEY = ("dag_id", "task_id", "run_id", "map_index")
# A dataset event has no natural key of its own: its dataset, its time and the task that made it.
_EVENT_SOURCE = ("source_dag_id", "source_task_id", "source_run_id", "source_map_index")
_EVENT_KEY = ("uri", "timestamp", *_EVENT_SOURCE)
_TI_PARENT = Parent("task_instance", _TI_KEY)
_RUN_PARENT = Parent("dag_run", ("dag_id", "run_id"))

# The tables this format version carries, parents before children: the order of export and import.
TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "variable",
        key=("key",),
        local_columns=frozenset({"id", "is_encrypted"}),
        dag_column=None,
        secret_columns=("val",),
        fernet_flags=(("val", "is_encrypted"),),
    ),
    TableSpec(
        "connection",
        key=("conn_id",),
        local_columns=frozenset({"id", "is_encrypted", "is_extra_encrypted"}),
        dag_column=None,
        secret_columns=("password", "extra"),
        fernet_flags=(("password", "is_encrypted"), ("extra", "is_extra_encrypted")),
    ),
    TableSpec(
        "slot_pool",
        key=("pool",),
        local_columns=frozenset({"id"}),
        protected_keys=frozenset({(DEFAULT_POOL,)}),
        dag_column=None,
    ),
    TableSpec(
        "dag_run",
        key=("dag_id", "run_id"),
        # creating_job_id points at the source's job table, which is not carried: cleared.
        local_columns=frozenset({"id", "creating_job_id", "log_template_id"}),
        newest_refs=(("log_template_id", "log_template"),),
        states=FINISHED_RUN_STATES,
        window_column="end_date",
    ),
    TableSpec(
        "task_instance",
        key=_TI_KEY,
        # Jobs and triggers are local to the source (and only in-flight tasks need them): cleared.
        local_columns=frozenset({"job_id", "queued_by_job_id", "trigger_id"}),
        parent=_RUN_PARENT,
        excluded_states=IN_FLIGHT_STATES,
        cleared_in_flight=("state", "next_method", "next_kwargs", "pid"),
    ),
    TableSpec(
        "task_instance_history",
        key=(*_TI_KEY, "try_number"),
        local_columns=frozenset({"id", "job_id", "queued_by_job_id", "trigger_id"}),
        parent=_TI_PARENT,
    ),
    TableSpec(
        "task_fail",
        key=(*_TI_KEY, "start_date", "end_date"),
        local_columns=frozenset({"id"}),
        parent=_TI_PARENT,
        unique_key=False,
    ),
    TableSpec(
        "task_reschedule",
        key=(*_TI_KEY, "try_number", "start_date"),
        local_columns=frozenset({"id"}),
        parent=_TI_PARENT,
        unique_key=False,
    ),
    TableSpec("task_map", key=_TI_KEY, parent=_TI_PARENT),
    TableSpec("rendered_task_instance_fields", key=_TI_KEY, parent=_TI_PARENT),
    TableSpec(
        "xcom",
        key=("dag_id", "run_id", "task_id", "map_index", "key"),
        local_columns=frozenset({"dag_run_id"}),
        parent=_TI_PARENT,
        id_refs=(IdRef("dag_run_id", "dag_run", ("dag_id", "run_id")),),
    ),
    # Notes (Airflow 2.5+): written by people at any time, also on runs finished long ago, so the
    # delta carries them all again (the import updates the ones changed). Their author (user_id,
    # the source's own ab_user row) is not carried: the target's users are its own.
    TableSpec(
        "dag_run_note",
        key=("dag_id", "run_id"),
        local_columns=frozenset({"dag_run_id", "user_id"}),
        parent=_RUN_PARENT,
        id_refs=(IdRef("dag_run_id", "dag_run", ("dag_id", "run_id"), exported=True),),
        whole_in_delta=True,
    ),
    TableSpec(
        "task_instance_note",
        key=_TI_KEY,
        local_columns=frozenset({"user_id"}),
        parent=_TI_PARENT,
        whole_in_delta=True,
    ),
    # SLA misses (gone in Airflow 3): one row per task and logical date, split at the watermark by
    # when the miss was recorded.
    TableSpec("sla_miss", key=("task_id", "dag_id", "execution_date"), window_column="timestamp"),
    # Datasets (2.4+; "assets" after Airflow 3's own migration renames them). Their ids differ
    # between databases: events refer to them by URI.
    TableSpec(
        "dataset",
        key=("uri",),
        local_columns=frozenset({"id"}),
        dag_column=None,
        target_defines=True,
    ),
    TableSpec(
        "dataset_event",
        key=_EVENT_KEY,
        local_columns=frozenset({"id", "dataset_id"}),
        id_refs=(IdRef("dataset_id", "dataset", ("uri",), exported=True),),
        dag_column="source_dag_id",
        window_column="timestamp",
        unique_key=False,
    ),
    # Which dataset events a run was triggered by: carried with the run.
    TableSpec(
        "dagrun_dataset_event",
        key=("dag_id", "run_id", *_EVENT_KEY),
        local_columns=frozenset({"dag_run_id", "event_id"}),
        parent=_RUN_PARENT,
        id_refs=(
            IdRef("dag_run_id", "dag_run", ("dag_id", "run_id"), exported=True),
            IdRef("event_id", "dataset_event", _EVENT_KEY, exported=True, nullable=_EVENT_SOURCE),
        ),
    ),
    # Dataset triggers still pending at the cutover (the DAG's runs the source's scheduler had still
    # to start): the target's scheduler starts them once the DAG is unpaused there.
    TableSpec(
        "dataset_dag_run_queue",
        key=("uri", "target_dag_id"),
        local_columns=frozenset({"dataset_id"}),
        id_refs=(IdRef("dataset_id", "dataset", ("uri",), exported=True),),
        dag_column="target_dag_id",
        target_defines=True,
        delta_only=True,
        requires_dag="target_dag_id",
    ),
    TableSpec(
        "log",
        # The audit log has no natural key: a row is the same row when every carried column is.
        key=("dttm", "event", "dag_id", "task_id", "map_index", "owner", "extra"),
        local_columns=frozenset({"id"}),
        unique_key=False,
        window_column="dttm",
    ),
)
TABLES_BY_NAME: dict[str, TableSpec] = {spec.name: spec for spec in TABLES}

# Tables with history that this format version does not carry, and why: the export counts their
# rows and both results list them (`not_carried`), so nothing is left behind without a line saying
# so. Every table with history Airflow 2.4-2.11 keeps is carried today.
NOT_CARRIED: dict[str, str] = {}
# Airflow 3 has no SLAs: its own `airflow db migrate` (3.0.6, measured by the real tier) leaves
# sla_miss's rows in the database, but no Airflow 3 model, UI or API reads them again.
SLA_MISS_GONE = "Airflow 3 has no SLAs: its migration leaves sla_miss in the database, unread by Airflow 3"


def table_spec(name: str) -> TableSpec:
    try:
        return TABLES_BY_NAME[name]
    except KeyError:
        raise MetadataError(f"'{name}' is not a table this format carries") from None


@dataclass(frozen=True)
class Window:
    """Which rows an export carries: the bulk those final before the watermark, the delta (phase
    cutover) every other one."""

    phase: str
    watermark: datetime

    @property
    def bulk(self) -> bool:
        return self.phase == PHASE_BULK


def _before_watermark(spec: TableSpec, row: Mapping[str, Any], watermark: datetime) -> bool:
    """The bulk's condition on the row itself: final (state) and before the watermark."""
    state = row.get("state")
    if spec.states is not None and state not in spec.states:
        return False
    if spec.excluded_states and state in spec.excluded_states:
        return False
    if spec.window_column is None:
        return True
    value = row.get(spec.window_column)
    return value is not None and parse_datetime(value) < watermark


def row_in_any_export(spec: TableSpec, row: Mapping[str, Any]) -> bool:
    """Whether either phase carries the row, its parent aside: every row but the protected ones and
    those of the project's own DAGs."""
    if spec.key_of(row) in spec.protected_keys:
        return False
    return not (spec.dag_column and row.get(spec.dag_column) in PROJECT_DAG_IDS)


def row_in_export(spec: TableSpec, row: Mapping[str, Any], window: Window) -> bool:
    """Whether the export of `window` carries the row, its parent aside (the reference semantics of
    PostgresDatabase's SQL filter)."""
    if not row_in_any_export(spec, row):
        return False
    if spec.delta_only:
        return not window.bulk
    if window.bulk:
        return _before_watermark(spec, row, window.watermark)
    if spec.window_column is None:
        return True  # settings in full; children follow their parents
    return not _before_watermark(spec, row, window.watermark)


def cleared_for_delta(spec: TableSpec, row: dict[str, Any], window: Window) -> dict[str, Any]:
    """The row as the delta carries it: a task instance in flight loses its state, so the target's
    scheduler runs it again once its DAG is unpaused."""
    if not window.bulk and spec.cleared_in_flight and row.get("state") in IN_FLIGHT_STATES:
        return {**row, **{column: None for column in spec.cleared_in_flight if column in row}}
    return row


@dataclass(frozen=True)
class Column:
    """One column of a table as a database (or the manifest) describes it."""

    name: str
    type: str = "json"
    nullable: bool = True
    # The database fills the column itself when an insert leaves it out.
    has_default: bool = False
    # The database's own type name (PostgreSQL: format_type), for the loader's typed reads.
    sql_type: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type}

    @classmethod
    def from_json(cls, data: Any) -> Column:
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise VerificationError(f"a manifest column must be an object with a name, not {data!r}")
        kind = data.get("type", "json")
        return cls(name=data["name"], type=kind if kind in COLUMN_TYPES else "json")


# ---------------------------------------------------------------------------------------------
# Version rules and column mapping
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One declared difference between Airflow versions.

    - `fill`: the target's column `column` gets `value` when the export lacks it or holds null
      (a NOT NULL column a newer version added);
    - `rename`: the export's column `source` is the target's `column`.
    """

    table: str
    column: str
    value: Any = None
    source: str | None = None
    since: str = ""
    why: str = ""


# The one place that says what changed between the Airflow 2.x versions MWAA runs (2.4-2.11), for
# the columns carried. Columns a version added that may be null need no rule (they stay null);
# columns a version dropped are left out. Keep it small.
RULES: tuple[Rule, ...] = (
    Rule("slot_pool", "include_deferred", value=False, since="2.7", why="NOT NULL"),
    Rule("dag_run", "clear_number", value=0, since="2.8", why="NOT NULL"),
)


def rules_for(table: str, rules: Sequence[Rule] = RULES) -> list[Rule]:
    return [rule for rule in rules if rule.table == table]


@dataclass(frozen=True)
class ColumnMapping:
    """How the rows of one exported table become rows of the target's table."""

    table: str
    # target column -> exported column it is read from (the same name unless a rule renames it)
    kept: tuple[tuple[str, str], ...]
    dropped: tuple[str, ...]  # exported columns the target lacks
    filled: tuple[tuple[str, Any], ...]  # target columns the export lacks, with their values
    refill: tuple[tuple[str, Any], ...]  # kept NOT NULL target columns: value when a row holds null
    id_refs: tuple[IdRef, ...]  # target columns resolved from a parent's natural key
    newest_refs: tuple[tuple[str, str], ...]  # target columns set to the newest row of a target table
    source_types: tuple[tuple[str, str], ...]  # exported column -> manifest type
    target_columns: tuple[Column, ...]

    def target_type(self, name: str) -> Column:
        for column in self.target_columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def inserted_columns(self) -> tuple[str, ...]:
        return (
            *(target for target, _ in self.kept),
            *(name for name, _ in self.filled),
            *(ref.column for ref in self.id_refs),
            *(name for name, _ in self.newest_refs),
        )


def map_columns(
    table: str,
    exported: Sequence[Column],
    target: Sequence[Column],
    *,
    provided: Collection[str] = (),
    rules: Sequence[Rule] = RULES,
) -> ColumnMapping:
    """Match the export's columns to the target's by name (and `rules`). Local columns of the
    target are left to the database, except those the import itself `provided` (Fernet flags), the
    id references, and the newest-row references. Raises MappingError when the target requires a
    column that nothing provides."""
    spec = table_spec(table)
    table_rules = rules_for(table, rules)
    renames = {rule.source: rule.column for rule in table_rules if rule.source}
    fills = {rule.column: rule.value for rule in table_rules if rule.source is None}
    target_by_name = {column.name: column for column in target}
    resolved = {ref.column for ref in spec.id_refs if ref.column in target_by_name}
    newest = {column for column, _ in spec.newest_refs if column in target_by_name}
    carried_target = {
        name
        for name in target_by_name
        if (name not in spec.local_columns or name in provided) and name not in resolved | newest
    }
    # The key of a referenced row, exported in place of its id: resolved, not a column of the table.
    looked_up = {part for ref in spec.id_refs if ref.exported for part in ref.key}
    kept: list[tuple[str, str]] = []
    dropped: list[str] = []
    for column in exported:
        name = renames.get(column.name, column.name)
        if column.name in looked_up and name not in target_by_name:
            continue
        if name in carried_target:
            kept.append((name, column.name))
        else:
            dropped.append(column.name)
    kept_names = {name for name, _ in kept}
    filled: list[tuple[str, Any]] = []
    unfillable: list[str] = []
    for name, column in target_by_name.items():
        if name in kept_names or name not in carried_target:
            continue
        if name in fills:
            filled.append((name, fills[name]))
        elif not column.nullable and not column.has_default:
            unfillable.append(name)
    for ref in spec.id_refs:
        missing_key = [part for part in ref.key if part not in {column.name for column in exported}]
        if ref.column in target_by_name and missing_key:
            unfillable.append(f"{ref.column} (its key {', '.join(missing_key)} is not exported)")
    if unfillable:
        raise MappingError(
            f"{table}: the target requires {', '.join(unfillable)}, which the export lacks and no rule "
            "in RULES fills"
        )
    refill = tuple(
        (name, fills[name]) for name, _ in kept if name in fills and not target_by_name[name].nullable
    )
    return ColumnMapping(
        table=table,
        kept=tuple(kept),
        dropped=tuple(dropped),
        filled=tuple(filled),
        refill=refill,
        id_refs=tuple(ref for ref in spec.id_refs if ref.column in resolved),
        newest_refs=tuple((column, parent) for column, parent in spec.newest_refs if column in newest),
        source_types=tuple((column.name, column.type) for column in exported),
        target_columns=tuple(target),
    )


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


def format_datetime(value: datetime) -> str:
    """ISO 8601 in UTC; a naive datetime is taken to be UTC already (as Airflow stores them)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def parse_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise VerificationError(f"'{value}' is not an ISO 8601 datetime") from None
    else:
        raise VerificationError(f"a datetime column holds a {type(value).__name__}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(type(value).__name__)


def encode_value(value: Any, column_type: str = "json") -> Any:
    """A database value as the JSON value the export writes."""
    if value is None:
        return None
    if column_type == "datetime" or isinstance(value, datetime):
        return format_datetime(parse_datetime(value))
    if column_type == "bytes":
        raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        return base64.b64encode(raw).decode("ascii")
    # Round trip through JSON so nested values (a run's conf) are plain JSON too.
    return json.loads(json.dumps(value, default=_json_default))


def decode_value(value: Any, column_type: str) -> Any:
    """An exported JSON value as the database value (datetimes aware, bytes as bytes)."""
    if value is None:
        return None
    if column_type == "datetime":
        return parse_datetime(value)
    if column_type == "bytes":
        return base64.b64decode(value)
    return value


def encode_row(table: str, row: Mapping[str, Any], columns: Sequence[Column]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in columns:
        try:
            out[column.name] = encode_value(row.get(column.name), column.type)
        except (TypeError, ValueError, MetadataError) as error:
            key = table_spec(table).key_of(row)
            raise ExportError(
                f"{table} {key!r}: column {column.name} holds a value the export cannot carry ({error})"
            ) from None
    return out


def json_line(row: Mapping[str, Any]) -> bytes:
    return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


# The COPY text format's escapes (what COPY ... TO STDOUT writes; COPY ... FROM STDIN also reads
# \b, \f, \v, octal \ooo and hex \xhh, which copy_row_values reads too).
_COPY_NULL = b"\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_COPY_UNESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)
_COPY_CHARACTERS = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}
# PostgreSQL's ISO output of a datetime: a space for the T, 1-6 digits of fraction, an offset of
# hours only (+00); Python 3.10's fromisoformat wants T-less forms with 3 or 6 digits and +hh:mm.
_PG_DATETIME = re.compile(
    r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?(?:([+-]\d\d)(?::?(\d\d))?(?::?(\d\d))?)?"
)


def _copy_unescaped(match: re.Match[bytes]) -> bytes:
    octal, hexadecimal, character = match.groups()
    if octal:
        return bytes([int(octal, 8) & 0xFF])
    if hexadecimal:
        return bytes([int(hexadecimal, 16)])
    return _COPY_CHARACTERS.get(character, character)


def _copy_field(value: Any, column_type: str) -> str:
    """One value as the export's JSON form holds it (encode_value) as a COPY text field."""
    if value is None:
        return "\\N"
    if column_type == "bytes":
        raw = base64.b64decode(value) if isinstance(value, str) else bytes(value)
        return "\\\\x" + raw.hex()
    if isinstance(value, bool):
        text = "t" if value else "f"
    elif isinstance(value, str) and column_type != "json":
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_COPY_ESCAPES)


def copy_line(row: Mapping[str, Any], columns: Sequence[Column]) -> bytes:
    """A row in the export's JSON form (encode_row) as a line of the COPY text format: the
    columns' values in their order (a column the row lacks is null)."""
    fields = (_copy_field(row.get(column.name), column.type) for column in columns)
    return ("\t".join(fields) + "\n").encode("utf-8")


def _pg_datetime(text: str) -> datetime:
    match = _PG_DATETIME.fullmatch(text)
    if match is None:
        return parse_datetime(text)
    day, time, fraction, hours, minutes, seconds = match.groups()
    offset = f"{hours}:{minutes or '00'}{':' + seconds if seconds else ''}" if hours else ""
    return parse_datetime(f"{day}T{time}.{(fraction or '').ljust(6, '0')}{offset}")


def _copy_value(text: str, column_type: str) -> Any:
    """A COPY text field (unescaped) as the export's JSON form of its column type."""
    if column_type == "bytes":
        if not text.startswith("\\x"):
            raise ValueError("not bytea's hex form")
        return base64.b64encode(bytes.fromhex(text[2:])).decode("ascii")
    if column_type == "boolean":
        if text not in {"t", "f", "true", "false"}:
            raise ValueError(f"{text!r} is not a boolean")
        return text in {"t", "true"}
    if column_type == "integer":
        return int(text)
    if column_type == "float":
        return float(text)
    if column_type == "datetime":
        return format_datetime(_pg_datetime(text))
    if column_type == "json":
        return json.loads(text)
    return text


def copy_row_values(line: bytes, columns: Sequence[Column]) -> dict[str, Any]:
    """A line of the COPY text format as the row's export JSON form (encode_row's: datetimes ISO
    8601 in UTC, bytes base64, json values parsed). Raises ValueError on a malformed line."""
    fields = line.rstrip(b"\n").split(b"\t")
    if len(fields) != len(columns):
        raise ValueError(f"{len(fields)} fields for {len(columns)} columns")
    row: dict[str, Any] = {}
    for column, raw in zip(columns, fields, strict=True):
        if raw == _COPY_NULL:
            row[column.name] = None
            continue
        text = _COPY_UNESCAPE.sub(_copy_unescaped, raw) if b"\\" in raw else raw
        row[column.name] = _copy_value(text.decode("utf-8"), column.type)
    return row


def sha256_hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# ---------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------


class KeyService(Protocol):
    """Data keys for the migration's secrets (KMS in AWS, moto in tests)."""

    def generate_data_key(self, key_id: str, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        """(plaintext, ciphertext) of a new 256-bit data key."""
        ...

    def decrypt(self, key_id: str, ciphertext: bytes, context: Mapping[str, str]) -> bytes: ...

    # How generate_data_key's ciphertext is made (DATA_KEY_SEALINGS): the manifest records it.
    sealing: str

    def open_sealed(self, key_id: str, ciphertext: bytes) -> bytes:
        """The plaintext of a data key sealed with the public half of key_id (PUBLIC_KEY_SEALING)."""
        ...


class KmsKeys:
    """KeyService over AWS KMS."""

    sealing = KMS_DATA_KEY

    def __init__(self, client: KMSClient) -> None:
        self.client = client

    @classmethod
    def default(cls) -> KmsKeys:
        import boto3  # noqa: PLC0415  (kept out of DAG parsing)

        return cls(boto3.client("kms"))

    def generate_data_key(self, key_id: str, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        answer = self.client.generate_data_key(
            KeyId=key_id, KeySpec="AES_256", EncryptionContext=dict(context)
        )
        return answer["Plaintext"], answer["CiphertextBlob"]

    def decrypt(self, key_id: str, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        answer = self.client.decrypt(KeyId=key_id, CiphertextBlob=ciphertext, EncryptionContext=dict(context))
        return answer["Plaintext"]

    def open_sealed(self, key_id: str, ciphertext: bytes) -> bytes:
        # An asymmetric key takes no encryption context: the sealed message carries the migration.
        answer = self.client.decrypt(
            KeyId=key_id, CiphertextBlob=ciphertext, EncryptionAlgorithm="RSAES_OAEP_SHA_256"
        )
        return answer["Plaintext"]


def _oaep() -> Any:
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import padding  # noqa: PLC0415

    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _sealed_message(key: bytes, context: Mapping[str, str]) -> bytes:
    """What the public key seals: the data key, then its encryption context (canonical JSON), which
    an asymmetric KMS key cannot bind itself."""
    return key + json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode("utf-8")


class PublicKeySealing:
    """KeyService of an export on a self-managed Airflow, which holds no AWS credentials: each data
    key is random, sealed with the public half of an asymmetric KMS key (RSAES_OAEP_SHA_256) with
    the migration's context. Only a role that KMS lets decrypt with that key (the target's) opens
    it; the source can seal but never open, so nothing it holds decrypts the export."""

    sealing = PUBLIC_KEY_SEALING

    def __init__(self, public_key_der: bytes) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415
        from cryptography.hazmat.primitives.serialization import load_der_public_key  # noqa: PLC0415

        try:
            public_key = load_der_public_key(public_key_der)
        except ValueError:
            raise ConfError("the conf's selfManaged.publicKey is not a DER public key") from None
        if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < 3072:
            raise ConfError("the conf's selfManaged.publicKey must be an RSA key of 3072 bits or more")
        self._public_key = public_key

    def generate_data_key(self, key_id: str, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        key = os.urandom(32)
        return key, self._public_key.encrypt(_sealed_message(key, context), _oaep())

    def decrypt(self, key_id: str, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        raise SecretError("an export on a self-managed Airflow seals data keys and never opens one")

    def open_sealed(self, key_id: str, ciphertext: bytes) -> bytes:
        raise SecretError("an export on a self-managed Airflow seals data keys and never opens one")


class SecretBox:
    """AES-256-GCM with the migration's data key, over a file in chunks (so a table of any size
    streams). Each chunk's associated data binds it to its file, its position and whether it is the
    last, so a chunk moved, dropped, reordered or cut off does not decrypt."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

        if len(key) != 32:
            raise SecretError("the migration's data key must be 256 bits")
        self._aead = AESGCM(key)
        self._mac_key = _derive_mac_key(key)

    def mac(self, message: bytes) -> str:
        """HMAC-SHA256 of message under the key derived from the data key (never the AES key itself)."""
        return hmac.new(self._mac_key, message, hashlib.sha256).hexdigest()

    @staticmethod
    def _aad(name: str, index: int, final: bool) -> bytes:
        return json.dumps([FORMAT_NAME, name, index, final]).encode("utf-8")

    def seal(self, name: str, index: int, final: bool, data: bytes) -> bytes:
        """One frame: flag byte, ciphertext length (4 bytes), nonce, ciphertext with its tag."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, data, self._aad(name, index, final))
        return bytes([1 if final else 0]) + len(sealed).to_bytes(4, "big") + nonce + sealed

    def open_frames(self, name: str, file: BinaryIO) -> Iterator[bytes]:
        """The plaintext of each frame of a sealed file, in order; raises SecretError unless every
        frame decrypts and the last one is marked last."""
        from cryptography.exceptions import InvalidTag  # noqa: PLC0415

        index = 0
        while True:
            header = file.read(5)
            if not header:
                raise SecretError(f"{name} is cut off: its last part is missing")
            length = int.from_bytes(header[1:5], "big")
            final = header[0] == 1
            nonce = file.read(_NONCE_BYTES)
            sealed = file.read(length)
            if len(header) < 5 or len(nonce) < _NONCE_BYTES or len(sealed) < length:
                raise SecretError(f"{name} is cut off in part {index}")
            try:
                yield self._aead.decrypt(nonce, sealed, self._aad(name, index, final))
            except InvalidTag:
                raise SecretError(
                    f"{name} part {index} does not decrypt with this migration's data key (changed or moved)"
                ) from None
            index += 1
            if final:
                if file.read(1):
                    raise SecretError(f"{name} has data after its last part")
                return


def _derive_mac_key(data_key: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF  # noqa: PLC0415

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_MAC_INFO).derive(data_key)


@dataclass(frozen=True)
class SecretsEnvelope:
    """The manifest's record of how secret columns are encrypted (never the key itself)."""

    kms_key_id: str
    encrypted_data_key: str  # base64 of KMS's CiphertextBlob
    context: dict[str, str]
    algorithm: str = SECRET_ALGORITHM
    # How encrypted_data_key was made (DATA_KEY_SEALINGS); absent from a manifest: KMS_DATA_KEY.
    sealing: str = KMS_DATA_KEY

    def to_json(self) -> dict[str, Any]:
        data = {
            "algorithm": self.algorithm,
            "kms_key_id": self.kms_key_id,
            "encrypted_data_key": self.encrypted_data_key,
            "encryption_context": dict(self.context),
        }
        return data if self.sealing == KMS_DATA_KEY else {**data, "data_key_sealing": self.sealing}

    @classmethod
    def from_json(cls, data: Any) -> SecretsEnvelope:
        if not isinstance(data, Mapping) or data.get("algorithm") != SECRET_ALGORITHM:
            raise VerificationError(f"the manifest's secrets must be encrypted with {SECRET_ALGORITHM}")
        context = data.get("encryption_context")
        if not isinstance(context, Mapping):
            raise VerificationError("the manifest's secrets lack their encryption context")
        sealing = data.get("data_key_sealing", KMS_DATA_KEY)
        if sealing not in DATA_KEY_SEALINGS:
            raise VerificationError(
                f"the manifest's data key is sealed in a way this import cannot open: {sealing!r}"
            )
        return cls(
            kms_key_id=str(data.get("kms_key_id", "")),
            encrypted_data_key=str(data.get("encrypted_data_key", "")),
            context={str(k): str(v) for k, v in context.items()},
            sealing=str(sealing),
        )


def migration_context(migration_id: str) -> dict[str, str]:
    return {ENCRYPTION_CONTEXT_KEY: migration_id}


def new_secret_box(keys: KeyService, key_id: str, migration_id: str) -> tuple[SecretBox, SecretsEnvelope]:
    context = migration_context(migration_id)
    plaintext, ciphertext = keys.generate_data_key(key_id, context)
    envelope = SecretsEnvelope(
        key_id, base64.b64encode(ciphertext).decode("ascii"), context, sealing=keys.sealing
    )
    return SecretBox(plaintext), envelope


def open_secret_box(keys: KeyService, envelope: SecretsEnvelope, migration_id: str) -> SecretBox:
    if envelope.context != migration_context(migration_id):
        raise VerificationError("the export's data key belongs to another migration")
    try:
        ciphertext = base64.b64decode(envelope.encrypted_data_key, validate=True)
    except ValueError:
        raise VerificationError("the manifest's encrypted data key is not base64") from None
    if envelope.sealing == KMS_DATA_KEY:
        return SecretBox(keys.decrypt(envelope.kms_key_id, ciphertext, envelope.context))
    message = keys.open_sealed(envelope.kms_key_id, ciphertext)
    if message[32:] != _sealed_message(b"", envelope.context):
        raise VerificationError("the export's sealed data key belongs to another migration")
    return SecretBox(message[:32])


# ---------------------------------------------------------------------------------------------
# Table files
# ---------------------------------------------------------------------------------------------


class _SealingFile(io.RawIOBase):
    """Where gzip writes: cuts the compressed bytes into chunks, seals each with the migration's
    data key and writes the frames to disk, hashing what is written (what goes to the bucket)."""

    def __init__(self, target: BinaryIO, box: SecretBox, name: str) -> None:
        self.target = target
        self.box = box
        self.name = name
        self.digest = hashlib.sha256()
        self._buffer = bytearray()
        self._index = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._buffer += view
        while len(self._buffer) >= _CHUNK:
            self._emit(bytes(self._buffer[:_CHUNK]), final=False)
            del self._buffer[:_CHUNK]
        return len(view)

    def _emit(self, data: bytes, *, final: bool) -> None:
        frame = self.box.seal(self.name, self._index, final, data)
        self._index += 1
        self.digest.update(frame)
        self.target.write(frame)

    def finish(self) -> str:
        self._emit(bytes(self._buffer), final=True)
        self._buffer.clear()
        return self.digest.hexdigest()


class TableWriter:
    """Streams lines into a gzipped, sealed file while counting rows; memory stays flat whatever
    the size. `write` is file-like, for COPY ... TO STDOUT."""

    def __init__(self, path: str, box: SecretBox, name: str) -> None:
        self._file = open(path, "wb")  # noqa: SIM115  (closed by close())
        self._sealing = _SealingFile(self._file, box, name)
        # mtime 0 and no file name, so the same rows give the same compressed bytes.
        self._gzip = gzip.GzipFile(
            filename="", mode="wb", fileobj=self._sealing, compresslevel=_GZIP_LEVEL, mtime=0
        )
        self.rows = 0

    def write(self, data: Any) -> int:
        chunk = data if isinstance(data, bytes) else bytes(data)
        self.rows += chunk.count(b"\n")
        self._gzip.write(chunk)
        return len(chunk)

    def close(self) -> str:
        """Finish the file; returns the sha256 of its bytes."""
        self._gzip.close()
        digest = self._sealing.finish()
        self._file.close()
        return digest


def is_jsonl_file(name: str) -> bool:
    """A table file of format 4 (JSON Lines), by its name (which the manifest's MAC covers)."""
    return name.endswith(JSONL_FILE_SUFFIX)


def encode_table(
    rows: Iterable[Mapping[str, Any]], box: SecretBox, name: str, columns: Sequence[Column] = ()
) -> tuple[bytes, int]:
    """A sealed table file of rows in the export's JSON form, in memory (small tables and tests),
    and the row count: the COPY text format of `columns`, or JSON Lines for a format 4 name."""
    if not columns and not is_jsonl_file(name):
        raise ValueError(f"{name}: the COPY text format needs the columns, in their order")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        writer = TableWriter(path, box, name)
        for row in rows:
            writer.write(json_line(row) if is_jsonl_file(name) else copy_line(row, columns))
        writer.close()
        with open(path, "rb") as file:
            return file.read(), writer.rows


def file_lines(path: str, box: SecretBox, name: str) -> Iterator[bytes]:
    """The lines of a sealed, gzipped table file, streamed. Splits on b"\\n" only (str.splitlines
    would also split inside values at U+2028 and friends, which neither format escapes)."""
    inflate = zlib.decompressobj(wbits=31)  # gzip framing
    rest = b""
    with open(path, "rb") as file:
        for plain in box.open_frames(name, file):
            pending = plain
            while pending:
                # At most a chunk of output at a time, however well the rows compress.
                try:
                    data = inflate.decompress(pending, _CHUNK)
                except zlib.error as error:
                    raise VerificationError(f"{name}: not gzip inside ({error})") from None
                pending = inflate.unconsumed_tail
                lines = (rest + data).split(b"\n")
                rest = lines.pop()
                yield from (line for line in lines if line)
    if not inflate.eof:
        raise VerificationError(f"{name}: its gzip stream is cut off")
    if rest:
        yield rest


def check_sha256(path: str, entry: TableEntry) -> None:
    """The downloaded file is the one the manifest names, byte for byte."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    if digest.hexdigest() != entry.sha256:
        raise VerificationError(
            f"{entry.file}: sha256 {digest.hexdigest()} does not match the manifest's {entry.sha256}; "
            "the file changed or is corrupt"
        )


def verify_file(path: str, entry: TableEntry, box: SecretBox) -> None:
    """Check a downloaded table file against its manifest entry: sha256, every part decrypts, gzip,
    row count, and every line a row of the manifest's columns (as many fields; a JSON object of
    those columns in format 4). Streams; keeps nothing. The values are parsed by the import's COPY."""
    check_sha256(path, entry)
    known = {column.name for column in entry.columns}
    tabs = len(entry.columns) - 1
    jsonl = is_jsonl_file(entry.file)
    count = 0
    for count, line in enumerate(file_lines(path, box, entry.file), start=1):
        if jsonl:
            _parse_line(entry, count, line, known)
        elif line.count(b"\t") != tabs:
            fields = line.count(b"\t") + 1
            raise VerificationError(
                f"{entry.file} line {count}: {fields} fields, the manifest lists {len(entry.columns)} columns"
            )
    if count != entry.rows:
        raise VerificationError(f"{entry.file}: holds {count} rows, the manifest says {entry.rows}")


def _parse_copy_line(entry: TableEntry, number: int, line: bytes) -> dict[str, Any]:
    try:
        return copy_row_values(line, entry.columns)
    except ValueError as error:
        raise VerificationError(
            f"{entry.file} line {number}: not a row of the manifest's columns ({error.__class__.__name__})"
        ) from None


def _parse_line(entry: TableEntry, number: int, line: bytes, known: Collection[str]) -> dict[str, Any]:
    try:
        row = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise VerificationError(
            f"{entry.file} line {number}: not JSON ({error.__class__.__name__})"
        ) from None
    if not isinstance(row, dict):
        raise VerificationError(f"{entry.file} line {number}: not a JSON object")
    if known:
        unknown = sorted(set(row) - set(known))
        if unknown:
            raise VerificationError(f"{entry.file} line {number}: columns {unknown} are not in the manifest")
    return row


def decode_table(body: bytes, entry: TableEntry, box: SecretBox) -> list[dict[str, Any]]:
    """The rows of a table file held in memory, after the same checks as verify_file."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, entry.file)
        with open(path, "wb") as file:
            file.write(body)
        verify_file(path, entry, box)
        known = {column.name for column in entry.columns}
        return [
            _parse_line(entry, n, line, known)
            if is_jsonl_file(entry.file)
            else _parse_copy_line(entry, n, line)
            for n, line in enumerate(file_lines(path, box, entry.file), start=1)
        ]


def copy_lines(entry: TableEntry, lines: Iterable[bytes]) -> Iterator[bytes]:
    """A table file's lines in the COPY text format: a format 4 file's JSON lines turned into it one
    at a time (every other file's as they are)."""
    if not is_jsonl_file(entry.file):
        yield from lines
        return
    known = {column.name for column in entry.columns}
    for number, line in enumerate(lines, start=1):
        yield copy_line(_parse_line(entry, number, line, known), entry.columns)


@dataclass(frozen=True)
class TableEntry:
    """The manifest's description of one table file."""

    file: str
    rows: int
    sha256: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.rows,
            "sha256": self.sha256,
            "key": list(self.key),
            "columns": [column.to_json() for column in self.columns],
        }

    @classmethod
    def from_json(cls, table: str, data: Any) -> TableEntry:
        if not isinstance(data, Mapping):
            raise VerificationError(f"the manifest's entry for {table} is not an object")
        try:
            file, rows, digest = data["file"], data["rows"], data["sha256"]
        except KeyError as missing:
            raise VerificationError(f"the manifest's entry for {table} lacks {missing}") from None
        if not isinstance(file, str) or "/" in file or not isinstance(digest, str):
            raise VerificationError(f"the manifest's entry for {table} has a bad file or sha256")
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            raise VerificationError(f"the manifest's entry for {table} has a bad row count {rows!r}")
        columns = tuple(Column.from_json(column) for column in data.get("columns", []))
        return cls(file=file, rows=rows, sha256=digest, key=tuple(data.get("key", [])), columns=columns)


# ---------------------------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    migration_id: str
    source_airflow_version: str
    exported_at: str
    tables: dict[str, TableEntry]
    active_dags: tuple[str, ...]
    secrets: SecretsEnvelope
    schema_revision: str = ""
    format_version: int = FORMAT_VERSION
    phase: str = PHASE_BULK
    # The bulk's: rows final before it are in the bulk, every other one in the delta.
    watermark: str = ""
    # The delta's: paused_at, drain_started_at, drained_at, exported_at (ISO 8601 UTC).
    timings: dict[str, str] = field(default_factory=dict)
    # The delta's: waited_seconds, timed_out, still_running.
    drain: dict[str, Any] = field(default_factory=dict)
    # Tables of the source with history this export does not carry: {"table", "rows", "reason"}.
    not_carried: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "migrationId": self.migration_id,
            "phase": self.phase,
            "watermark": self.watermark,
            "source_airflow_version": self.source_airflow_version,
            "schema_revision": self.schema_revision,
            "exported_at": self.exported_at,
            "tables": {name: entry.to_json() for name, entry in self.tables.items()},
            "active_dags": list(self.active_dags),
            "timings": dict(self.timings),
            "drain": dict(self.drain),
            "not_carried": [dict(entry) for entry in self.not_carried],
            "secrets": self.secrets.to_json(),
        }

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT_NAME:
            raise VerificationError(f"the manifest is not a {FORMAT_NAME} manifest")
        version = data.get("format_version")
        if not isinstance(version, int) or version < OLDEST_FORMAT_VERSION or version > FORMAT_VERSION:
            raise VerificationError(
                f"the manifest has format version {version!r}; "
                f"this import reads versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}"
            )
        tables = data.get("tables")
        active = data.get("active_dags", [])
        if not isinstance(tables, Mapping) or not isinstance(active, list):
            raise VerificationError("the manifest's tables or active_dags are malformed")
        phase = data.get("phase")
        if phase not in PHASES:
            raise VerificationError(f"the manifest's phase {phase!r} is not one of {', '.join(PHASES)}")
        watermark = str(data.get("watermark") or "")
        if watermark:
            parse_datetime(watermark)
        elif phase == PHASE_BULK:
            raise VerificationError("the bulk manifest lacks its watermark")
        timings, drain = data.get("timings", {}), data.get("drain", {})
        if not isinstance(timings, Mapping) or not isinstance(drain, Mapping):
            raise VerificationError("the manifest's timings or drain are malformed")
        not_carried = data.get("not_carried", [])
        if not isinstance(not_carried, list) or not all(
            isinstance(entry, Mapping) and isinstance(entry.get("table"), str) for entry in not_carried
        ):
            raise VerificationError("the manifest's not_carried is malformed")
        return cls(
            phase=str(phase),
            watermark=watermark,
            timings={str(k): str(v) for k, v in timings.items()},
            drain=dict(drain),
            migration_id=str(data.get("migrationId", "")),
            source_airflow_version=str(data.get("source_airflow_version", "")),
            schema_revision=str(data.get("schema_revision", "")),
            exported_at=str(data.get("exported_at", "")),
            tables={str(name): TableEntry.from_json(str(name), entry) for name, entry in tables.items()},
            active_dags=tuple(str(dag_id) for dag_id in active),
            secrets=SecretsEnvelope.from_json(data.get("secrets")),
            format_version=version,
            not_carried=tuple(
                _not_carried(entry["table"], entry.get("rows"), entry.get("reason")) for entry in not_carried
            ),
        )


def _not_carried(table: str, rows: Any, reason: Any) -> dict[str, Any]:
    """One line of a result's `not_carried`: a table, how many of its rows stay behind, and why."""
    count = rows if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0 else 0
    return {"table": str(table), "rows": count, "reason": str(reason or "")}


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")


def canonical_manifest(data: Mapping[str, Any]) -> bytes:
    """What the manifest's MAC covers: the manifest as written, its `mac` aside, keys sorted, no
    whitespace. It holds every table file's sha256 (each file is also sealed under the same data
    key), so the MAC covers the data objects it lists as well as active_dags, counts and phase."""
    body = {name: value for name, value in data.items() if name != "mac"}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def with_mac(data: Mapping[str, Any], box: SecretBox) -> dict[str, Any]:
    """A manifest's JSON with its MAC (any `mac` it had replaced), as the export writes it."""
    body = {name: value for name, value in data.items() if name != "mac"}
    return {**body, "mac": {"algorithm": MAC_ALGORITHM, "value": box.mac(canonical_manifest(body))}}


def check_manifest_mac(data: Mapping[str, Any], box: SecretBox, key: str) -> None:
    """Refuse a manifest whose MAC is missing or does not match: only a holder of this export's data
    key (the export itself) can write one that passes."""
    mac = data.get("mac")
    if (
        not isinstance(mac, Mapping)
        or mac.get("algorithm") != MAC_ALGORITHM
        or not isinstance(mac.get("value"), str)
    ):
        raise VerificationError(f"{key} carries no {MAC_ALGORITHM} MAC: it cannot be trusted")
    if not hmac.compare_digest(box.mac(canonical_manifest(data)), str(mac["value"])):
        raise VerificationError(f"{key} does not match its MAC: it was changed after the export wrote it")


# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------


class Storage(Protocol):
    """Where the export lives: objects by key, small ones in memory, table files through disk."""

    def put(self, key: str, body: bytes) -> None: ...

    def get(self, key: str) -> bytes:
        """The object's bytes; raises MissingObjectError when there is none."""
        ...

    def put_file(self, key: str, path: str) -> None: ...

    def get_file(self, key: str, path: str) -> None:
        """Download the object to path; raises MissingObjectError when there is none."""
        ...

    def exists(self, key: str) -> bool:
        """Whether the object is there, asked by listing: the grants allow listing only under the
        migration's prefix, and S3 answers a read of a missing object with 403 without that."""
        ...


class S3Storage:
    """Storage in one S3 bucket (boto3 is in every MWAA environment and Lambda runtime)."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def for_bucket(cls, bucket: str) -> S3Storage:
        import boto3  # noqa: PLC0415  (kept out of DAG parsing)

        return cls(boto3.client("s3"), bucket)

    @staticmethod
    def _content_type(key: str) -> str:
        return "application/json" if key.endswith(".json") else "application/octet-stream"

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=self._content_type(key))

    def _missing(self, error: Exception, key: str) -> MissingObjectError | None:
        response = getattr(error, "response", None) or {}
        if response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
            return MissingObjectError(f"s3://{self.bucket}/{key} does not exist")
        return None

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError  # noqa: PLC0415  (kept out of DAG parsing)

        try:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as error:
            missing = self._missing(error, key)
            if missing is not None:
                raise missing from None
            raise
        return body

    def exists(self, key: str) -> bool:
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
        return any(item["Key"] == key for item in listed.get("Contents", []))

    def put_file(self, key: str, path: str) -> None:
        # Multipart above 8 MB, so a table of any size streams from disk.
        self.client.upload_file(path, self.bucket, key, ExtraArgs={"ContentType": self._content_type(key)})

    def get_file(self, key: str, path: str) -> None:
        from botocore.exceptions import ClientError  # noqa: PLC0415  (kept out of DAG parsing)

        try:
            self.client.download_file(self.bucket, key, path)
        except ClientError as error:
            missing = self._missing(error, key)
            if missing is not None:
                raise missing from None
            raise


# An export on a self-managed Airflow: what the pipeline hands it instead of AWS credentials.

# HTTP timeouts (connect, read) of the presigned requests: a table file's upload reads no answer
# until S3 has it all.
_HTTP_TIMEOUT = (30, 900)
# Hosts a presigned URL may use plain HTTP with: the local emulation's S3 only.
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1")


def _presigned_url(url: Any, what: str) -> str:
    from urllib.parse import urlsplit  # noqa: PLC0415

    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or not (
        parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS)
    ):
        raise ConfError(f"the conf's {what} must be an https:// URL")
    return str(url)


@dataclass(frozen=True)
class PresignedUpload:
    """A presigned POST form of the migration bucket: S3 takes an object through it only under
    `key_prefix` (a prefix ends in '/'; otherwise the one key) and until the form's deadline."""

    url: str = field(repr=False)
    fields: Mapping[str, str] = field(repr=False)
    key_prefix: str

    def allows(self, key: str) -> bool:
        return key.startswith(self.key_prefix) if self.key_prefix.endswith("/") else key == self.key_prefix


@dataclass(frozen=True)
class SelfManagedAccess:
    """The conf's `selfManaged` block: the public key that seals the data keys, presigned POST
    forms for what the export writes and presigned GET URLs for the objects it reads (the bulk's
    manifest, the cutover record). Every key is under the migration's prefix; the URLs and form
    fields are signatures, so they never appear in a repr, a log line or an error."""

    public_key: bytes = field(repr=False)
    uploads: tuple[PresignedUpload, ...]
    downloads: Mapping[str, str] = field(repr=False)

    @classmethod
    def from_conf(cls, data: Any, prefix: str) -> SelfManagedAccess:
        if not isinstance(data, Mapping):
            raise ConfError("the DAG run's conf 'selfManaged' must be an object")
        try:
            public_key = base64.b64decode(str(data.get("publicKey", "")), validate=True)
        except ValueError:
            raise ConfError(
                "the conf's selfManaged.publicKey must be base64 (KMS GetPublicKey's DER)"
            ) from None
        within = f"{prefix}/" if prefix else ""

        def checked_key(key: Any, what: str) -> str:
            if not isinstance(key, str) or not key.startswith(within) or ".." in key.split("/"):
                raise ConfError(f"the conf's {what} must be a key under the migration's prefix {within!r}")
            return key

        uploads = []
        for index, upload in enumerate(data.get("uploads") or []):
            what = f"selfManaged.uploads[{index}]"
            if not isinstance(upload, Mapping) or not isinstance(upload.get("fields"), Mapping):
                raise ConfError(f"the conf's {what} must be a presigned POST: url, fields and keyPrefix")
            uploads.append(
                PresignedUpload(
                    url=_presigned_url(upload.get("url"), f"{what}.url"),
                    fields={str(k): str(v) for k, v in upload["fields"].items()},
                    key_prefix=checked_key(upload.get("keyPrefix"), f"{what}.keyPrefix"),
                )
            )
        if not uploads:
            raise ConfError("the conf's selfManaged.uploads must hold at least one presigned POST")
        downloads = data.get("downloads") or {}
        if not isinstance(downloads, Mapping):
            raise ConfError("the conf's selfManaged.downloads must map keys to presigned GET URLs")
        return cls(
            public_key=public_key,
            uploads=tuple(uploads),
            downloads={
                checked_key(key, "selfManaged.downloads key"): _presigned_url(
                    url, f"selfManaged.downloads[{key}]"
                )
                for key, url in downloads.items()
            },
        )


class _MultipartForm(io.RawIOBase):
    """A presigned POST's multipart/form-data body, streamed: the form's fields, then the file
    (S3 wants it last), read from disk as the request goes; seekable, so a retry starts over."""

    def __init__(self, fields: Mapping[str, str], file: BinaryIO, size: int) -> None:
        self.boundary = "mwaa-migrate-" + os.urandom(12).hex()
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        )
        self._head = (
            head
            + (
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="export"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
        )
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._file, self._size, self._position = file, size, 0

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self._size + len(self._tail)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self)}[whence]
        self._position = max(0, min(len(self), base + offset))
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        head, body_end = len(self._head), len(self._head) + self._size
        if self._position < head:
            chunk = self._head[self._position : self._position + len(view)]
        elif self._position < body_end:
            self._file.seek(self._position - head)
            chunk = self._file.read(min(len(view), body_end - self._position))
        else:
            chunk = self._tail[self._position - body_end : self._position - body_end + len(view)]
        view[: len(chunk)] = chunk
        self._position += len(chunk)
        return len(chunk)


class PresignedStorage:
    """Storage of an export on a self-managed Airflow, which holds no AWS credentials: it writes
    through the conf's presigned POST forms and reads through its presigned GET URLs, over HTTPS
    (requests, which Airflow installs). A key no form or URL covers is refused here, and S3 refuses
    it too: the forms' policies carry the same prefixes."""

    def __init__(self, access: SelfManagedAccess, session: Any | None = None) -> None:
        self.access = access
        self.session = session if session is not None else self._session()

    @staticmethod
    def _session() -> Any:
        import requests  # noqa: PLC0415  (kept out of DAG parsing)
        from requests.adapters import HTTPAdapter  # noqa: PLC0415
        from urllib3.util.retry import Retry  # noqa: PLC0415

        # S3's 500/503 and lost connections are retried with backoff, the form's body rewound.
        retry = Retry(total=5, backoff_factor=1, status_forcelist=(500, 502, 503, 504), allowed_methods=None)
        session = requests.Session()
        session.mount("https://", HTTPAdapter(max_retries=retry))
        session.mount("http://", HTTPAdapter(max_retries=retry))
        return session

    @staticmethod
    def _refusal(response: Any, doing: str) -> ExportError:
        code = re.search(r"<Code>([^<]{1,64})</Code>", response.text or "")
        said = f" ({code.group(1)})" if code else ""
        return ExportError(f"S3 refused {doing}: HTTP {response.status_code}{said}")

    def _post(self, key: str, file: BinaryIO, size: int) -> None:
        upload = next((upload for upload in self.access.uploads if upload.allows(key)), None)
        if upload is None:
            raise ExportError(f"no presigned upload of the conf covers {key}")
        form = _MultipartForm({**upload.fields, "key": key}, file, size)
        response = self.session.post(
            upload.url, data=form, headers={"Content-Type": form.content_type}, timeout=_HTTP_TIMEOUT
        )
        if response.status_code >= 300:
            raise self._refusal(response, f"the upload of {key}")

    def put(self, key: str, body: bytes) -> None:
        self._post(key, io.BytesIO(body), len(body))

    def put_file(self, key: str, path: str) -> None:
        with open(path, "rb") as file:
            self._post(key, file, os.path.getsize(path))

    def _get(self, key: str) -> Any:
        url = self.access.downloads.get(key)
        if url is None:
            raise ExportError(f"no presigned download of the conf covers {key}")
        response = self.session.get(url, timeout=_HTTP_TIMEOUT, stream=True)
        if response.status_code == 404:
            response.close()
            raise MissingObjectError(f"{key} does not exist")
        if response.status_code != 200:
            response.close()
            raise self._refusal(response, f"the download of {key}")
        return response

    def get(self, key: str) -> bytes:
        with self._get(key) as response:
            return bytes(response.content)

    def get_file(self, key: str, path: str) -> None:
        with self._get(key) as response, open(path, "wb") as file:
            for chunk in response.iter_content(_CHUNK):
                file.write(chunk)

    def exists(self, key: str) -> bool:
        try:
            self._get(key).close()
        except MissingObjectError:
            return False
        return True


# ---------------------------------------------------------------------------------------------
# The metadata database
# ---------------------------------------------------------------------------------------------


@dataclass
class TableCounts:
    """What the import did with one table's exported rows. Each count is measured by the database,
    none derived from the others, so `read == inserted + updated + identical + conflicts` (plus
    `dropped` for a table the target's Airflow lacks) is a real check."""

    read: int = 0
    # The target lacked the row (by natural key).
    inserted: int = 0
    # The target held, by natural key, a version of the row an import of this migration left there
    # (the ledger) with other values: set to the exported ones (the source changed it since).
    updated: int = 0
    # The target held the row with the exported values.
    identical: int = 0
    # The target refused the row (another unique constraint, its parent missing) or held it with
    # other values that no import of this migration wrote: the target's own row.
    conflicts: int = 0
    # Of the conflicts: refused (not in the target by natural key after the insert).
    refused: int = 0
    # Of the conflicts: set to the exported values (onConflict "overwrite").
    overwritten: int = 0
    # The target's Airflow has no such table: read, not imported.
    dropped: int = 0
    # Measured last: exported rows not in the target with their exported values.
    missing: int = 0
    # Up to CONFLICTS_LISTED conflicts: {"key": {column: value}, "reason": "refused" | "differs"}.
    listed: list[dict[str, Any]] = field(default_factory=list)
    # The DAGs of the rows dropped because the target lacks them (TableSpec.requires_dag).
    dropped_dags: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, int]:
        counts = {
            "read": self.read,
            "inserted": self.inserted,
            "updated": self.updated,
            "identical": self.identical,
            "conflicts": self.conflicts,
        }
        return {**counts, "dropped": self.dropped} if self.dropped else counts

    def accounted(self) -> bool:
        return self.inserted + self.updated + self.identical + self.conflicts + self.dropped == self.read

    def landed(self) -> bool:
        """The rows left not as exported are exactly the conflicts left to the target."""
        return self.missing == self.conflicts - self.overwritten


@dataclass
class TryHistory:
    """What synthesize_try_history did. A source older than Airflow 2.10 records a failed try only
    in task_fail (dag_id, task_id, run_id, map_index, start_date, end_date, duration) and the task
    instance's try_number: each task_fail row but the one of the task instance's own (last) try
    becomes a try of task_instance_history with state failed, its times from task_fail, its try
    number counted back from the task instance's (the latest failure is try_number - 1), and the
    task's settings (pool, queue, operator, max_tries, ...) from the task instance; what a try's
    worker recorded (hostname, pid, job, queued time, executor state) is not known: left null.
    A row the target already holds (the same task instance and start_date) is left alone."""

    # task_fail rows of earlier tries with no task_instance_history row of the same start.
    candidates: int = 0
    written: int = 0
    # Of the candidates: no try number left for them (more failures than the task instance's tries).
    unnumbered: int = 0
    # The target lacks task_instance_history or task_fail.
    unsupported: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "from": "task_fail",
            "candidates": self.candidates,
            "written": self.written,
            "unnumbered": self.unnumbered,
        }


# The columns a synthesized try takes from its task instance: the task's settings, the same for
# every try. The rest of what a try records is the try's own and not known for an earlier one.
TRY_COPIED = (
    "pool",
    "pool_slots",
    "queue",
    "priority_weight",
    "operator",
    "custom_operator_name",
    "max_tries",
    "executor",
    "executor_config",
    "rendered_map_index",
    "task_display_name",
)
TRY_KEY = ("dag_id", "task_id", "run_id", "map_index")


def shown_key(spec: TableSpec, row: Mapping[str, Any]) -> dict[str, Any]:
    """A row's natural key as a conflict lists it; the audit log's `extra` is left out (it can hold
    a command line with a password)."""
    return {column: encode_value(row.get(column)) for column in spec.key if column != "extra"}


LineSink = Callable[[bytes], Any]


class MetadataDatabase(Protocol):
    """An environment's Airflow metadata as the steps see it. All changes a step makes land
    together or not at all (one transaction per task)."""

    def airflow_version(self) -> str: ...

    def schema_revision(self) -> str: ...

    def columns(self, table: str) -> list[Column] | None:
        """Every column of the table, local ones included; None when this version has no such table."""
        ...

    def export_table(
        self, spec: TableSpec, columns: Sequence[Column], sink: LineSink, window: Window
    ) -> None:
        """Write the rows `window` carries (row_in_export, parents carried too; cleared_for_delta) as
        lines of the COPY text format of `columns` (copy_line of encode_row's values), to sink. Not
        for secret tables."""
        ...

    def read_rows(self, spec: TableSpec) -> Iterator[dict[str, Any]]:
        """Every row of a (small, secret) table, column name -> database value, not yet decrypted."""
        ...

    def count_rows(self, table: str) -> int | None:
        """The table's rows (its own DAGs' included); None when this version has no such table."""
        ...

    def synthesize_try_history(self) -> TryHistory:
        """Write a task_instance_history row for each failed try that only task_fail records (see
        TryHistory), so the try survives Airflow 3's migration, which drops task_fail."""
        ...

    def newest_import(self) -> str | None:
        """The `exported_at` of the newest export an import of this migration left rows from (the
        ledger's), or None when there is no ledger yet."""
        ...

    def import_table(
        self,
        spec: TableSpec,
        mapping: ColumnMapping,
        lines: Iterable[bytes],
        *,
        on_conflict: str,
        exported_at: str,
    ) -> TableCounts:
        """Load the rows (lines of the COPY text format of the mapping's source columns, in their
        order: copy_row_values reads one): count those the target holds as exported (identical);
        set those it holds as an earlier import of this migration left them to the exported values
        (updated); count the others it holds by natural key as conflicts (set to the exported
        values when on_conflict is overwrite); insert those it lacks (inserted);
        count those still not there by natural key as conflicts too (refused). Then measure the rows
        not as exported (missing) and record every row left as exported in the ledger, with the
        export's exported_at."""
        ...

    def fernet_decrypt(self, token: str) -> str: ...

    def fernet_encrypt(self, value: str) -> tuple[str, bool]:
        """(stored value, whether it is encrypted): Airflow stores plaintext when it has no key."""
        ...

    def dag_pause_states(self) -> dict[str, bool]:
        """dag_id -> is_paused for every DAG the environment knows (and whose file still exists)."""
        ...

    def set_paused(self, dag_ids: Collection[str], *, paused: bool) -> None: ...

    def unfinished_task_instances(self, dag_ids: Collection[str]) -> list[dict[str, Any]]:
        """Task instances of these DAGs in DRAIN_STATES as the database says now (dag_id, run_id,
        task_id, map_index, state), read afresh on every call."""
        ...


# ---------------------------------------------------------------------------------------------
# PostgreSQL: Airflow's metadata database, set-based and streamed
# ---------------------------------------------------------------------------------------------

# The table files are COPY's text format in UTF-8 (the module docstring); the export writes it with
# these settings, so every server writes the same text for the same values: ISO datetimes in UTC,
# bytea in hex, floats that read back exactly.
_COPY_OPTIONS = "(FORMAT text, ENCODING 'UTF8')"
_COPY_SETTINGS = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "bytea_output": "hex",
    "extra_float_digits": "3",
}
# The staged rows, typed as the target types each column: COPY ... FROM STDIN parses each line once
# into them, and every statement reads them.
_ROWS = "mwaa_migrate_rows"
# From this many rows, the import's joins of them with a table are by hash or merge, never row by
# row, with this much memory for them (PostgresDatabase.import_table and _check_landed).
_HASHED_FROM = 10_000
_HASHED = {"enable_nestloop": "off", "work_mem": "64MB"}
_UNIQUE_VIOLATION = "23505"  # SQLSTATE unique_violation
# Target row x's version was written by an import (LEDGER_XID_TABLE). xmin is 32 bits: an import's
# xid could only come back after some four billion transactions, not within a migration.
_WRITTEN_BY_IMPORT = f'(x.xmin::text::bigint IN (SELECT xid FROM "{LEDGER_XID_TABLE}"))'  # noqa: S608

_NULL_SAFE = "IS NOT DISTINCT FROM"


def _ident(name: str) -> str:
    """A quoted SQL identifier. Every name put into SQL here is one of TABLES' or a column reflected
    from the database, quoted by this; every value goes through the driver's mogrify."""
    return '"' + name.replace('"', '""') + '"'


def _column_kind(sql_type: str) -> str:
    base = sql_type.split("(", 1)[0].strip().lower()
    if base == "boolean":
        return "boolean"
    if base in {"integer", "bigint", "smallint"}:
        return "integer"
    if base in {"double precision", "real", "numeric"}:
        return "float"
    if base.startswith("timestamp") or base == "date":
        return "datetime"
    if base in {"json", "jsonb"}:
        return "json"
    if base == "bytea":
        return "bytes"
    return "string"


@dataclass(frozen=True)
class _Checked:
    """The SQL pieces of an import's check (PostgresDatabase.import_table)."""

    staged: str  # FROM the typed rows r, the id references resolved
    table: str
    same: str  # target row x has r's natural key
    equal: str  # and r's values
    digest: str  # the ledger's digest of x
    stamp: str  # the export's exported_at


def _hashed(rows: int, *, when: bool = True) -> Mapping[str, str]:
    """The settings for joining this many rows with a table: _HASHED from _HASHED_FROM rows."""
    return _HASHED if when and rows >= _HASHED_FROM else {}


def _set_local(cursor: Any, settings: Mapping[str, str]) -> dict[str, str]:
    """Set PostgreSQL settings for the transaction; returns their values before."""
    previous: dict[str, str] = {}
    for name, value in settings.items():
        cursor.execute("SELECT current_setting(%s), set_config(%s, %s, true)", (name, name, value))
        previous[name] = str(cursor.fetchone()[0])
    return previous


class PostgresDatabase:
    """MetadataDatabase over Airflow's PostgreSQL metadata database, through one DBAPI (psycopg2)
    connection whose transaction the caller commits. `fernet` is Airflow's get_fernet()."""

    def __init__(self, connection: Any, *, airflow_version: str, fernet: Any | None = None) -> None:
        self.connection = connection
        self._version = airflow_version
        self._fernet = fernet
        self._columns: dict[str, list[Column] | None] = {}
        with self.connection.cursor() as cursor:
            # Datetimes leave as ISO 8601 in UTC, whatever the server's time zone.
            cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        # A range of the key's datetime column that bounds the key comparisons of one import.
        self._key_guard = ""

    @classmethod
    def from_airflow_session(cls, session: Any) -> PostgresDatabase:
        from airflow import __version__  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
        from airflow.models.crypto import get_fernet  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

        dbapi = session.connection().connection
        dialect = session.get_bind().dialect.name
        if dialect != "postgresql":
            raise UnsupportedAirflowError(f"these DAGs need a PostgreSQL metadata database, not {dialect}")
        return cls(
            getattr(dbapi, "dbapi_connection", dbapi), airflow_version=str(__version__), fernet=get_fernet()
        )

    # ---- what the database is

    def airflow_version(self) -> str:
        return self._version

    def schema_revision(self) -> str:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT version_num FROM alembic_version")
            row = cursor.fetchone()
        return str(row[0]) if row else ""

    def columns(self, table: str) -> list[Column] | None:
        if table not in self._columns:
            with self.connection.cursor() as cursor:
                cursor.execute(
                    "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
                    " a.atthasdef OR a.attidentity <> '' FROM pg_attribute a"
                    " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped"
                    " ORDER BY a.attnum",
                    (table,),
                )
                found = [
                    Column(
                        name,
                        _column_kind(sql_type),
                        nullable=not not_null,
                        has_default=bool(default),
                        sql_type=sql_type,
                    )
                    for name, sql_type, not_null, default in cursor.fetchall()
                ]
            self._columns[table] = found or None
        return self._columns[table]

    # ---- export

    @classmethod
    def _source(cls, spec: TableSpec) -> str:
        """What the export reads a table from: the table, with the key of each row its ids refer to
        joined in when it lacks that key itself (IdRef.exported; that row's own such keys too)."""
        refs = [ref for ref in spec.id_refs if ref.exported]
        if not refs:
            return _ident(spec.name)
        selected = ["t0.*"]
        joins = []
        for number, ref in enumerate(refs):
            alias = f"j{number}"
            referenced = (
                cls._source(table_spec(ref.table)) if ref.table in TABLES_BY_NAME else _ident(ref.table)
            )
            selected += [f"{alias}.{_ident(part)}" for part in ref.key]
            joins.append(f"LEFT JOIN {referenced} {alias} ON {alias}.id = t0.{_ident(ref.column)}")
        return f"(SELECT {', '.join(selected)} FROM {_ident(spec.name)} t0 {' '.join(joins)})"  # noqa: S608

    def _filter(
        self, spec: TableSpec, alias: str, window: Window, depth: int = 0, *, whole: bool = False
    ) -> str:
        """The WHERE condition of the rows of spec the export of `window` carries, parents included
        (row_in_export's SQL). `whole`: the rows either phase carries (no window, no states)."""
        conditions: list[str] = []
        own: list[str] = []
        with self.connection.cursor() as cursor:
            for key in spec.protected_keys:
                pairs = " AND ".join(
                    cursor.mogrify(f"{alias}.{_ident(c)} = %s", (v,)).decode()
                    for c, v in zip(spec.key, key, strict=True)
                )
                conditions.append(f"NOT ({pairs})")
            if spec.dag_column:
                column = f"{alias}.{_ident(spec.dag_column)}"
                listed = cursor.mogrify(
                    ", ".join(["%s"] * len(PROJECT_DAG_IDS)), sorted(PROJECT_DAG_IDS)
                ).decode()
                conditions.append(f"({column} IS NULL OR {column} NOT IN ({listed}))")
            if spec.states is not None:
                listed = cursor.mogrify(", ".join(["%s"] * len(spec.states)), sorted(spec.states)).decode()
                own.append(f"{alias}.state IN ({listed})")
            if spec.excluded_states:
                states = sorted(spec.excluded_states)
                listed = cursor.mogrify(", ".join(["%s"] * len(states)), states).decode()
                own.append(f"({alias}.state IS NULL OR {alias}.state NOT IN ({listed}))")
            if spec.window_column is not None:
                own.append(
                    cursor.mogrify(f"{alias}.{_ident(spec.window_column)} < %s", (window.watermark,)).decode()
                )
        if spec.delta_only and window.bulk and not whole:
            conditions.append("FALSE")
        if whole:
            pass
        elif window.bulk:
            conditions += own
        elif spec.window_column is not None:
            # The complement of the bulk's condition: a null end_date or dttm is not before it.
            conditions.append(f"NOT COALESCE(({' AND '.join(own)}), FALSE)")
        if spec.parent is not None:
            parent = table_spec(spec.parent.table)
            inner = f"p{depth}"
            joins = " AND ".join(f"{inner}.{_ident(c)} = {alias}.{_ident(c)}" for c in spec.parent.columns)
            whole_parent = whole or (spec.whole_in_delta and not window.bulk)
            parent_filter = self._filter(parent, inner, window, depth + 1, whole=whole_parent)
            conditions.append(
                f"EXISTS (SELECT 1 FROM {self._source(parent)} {inner} WHERE {joins} AND {parent_filter})"  # noqa: S608
            )
        return " AND ".join(conditions) or "TRUE"

    def export_table(
        self, spec: TableSpec, columns: Sequence[Column], sink: LineSink, window: Window
    ) -> None:
        cleared = "FALSE"
        if not window.bulk and spec.cleared_in_flight:
            with self.connection.cursor() as cursor:
                states = sorted(IN_FLIGHT_STATES)
                cleared = cursor.mogrify(f"t.state IN ({', '.join(['%s'] * len(states))})", states).decode()
        selected = []
        for column in columns:
            name = f"t.{_ident(column.name)}"
            if column.name in spec.cleared_in_flight and cleared != "FALSE":
                name = f"CASE WHEN {cleared} THEN NULL ELSE {name} END"
            selected.append(f"{name} AS {_ident(column.name)}")
        where = self._filter(spec, "t", window)
        query = f"SELECT {', '.join(selected)} FROM {self._source(spec)} t WHERE {where}"  # noqa: S608
        out = _sink_file(sink)
        with self.connection.cursor() as cursor:
            previous = _set_local(cursor, _COPY_SETTINGS)
            cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH {_COPY_OPTIONS}", out, size=_CHUNK)
            _set_local(cursor, previous)
        out.flush()

    def read_rows(self, spec: TableSpec) -> Iterator[dict[str, Any]]:
        # A named cursor is a server-side cursor: rows arrive 2,000 at a time.
        cursor = self.connection.cursor(name=f"mwaa_migrate_{spec.name}")
        cursor.itersize = 2000
        try:
            cursor.execute(f"SELECT * FROM {_ident(spec.name)}")  # noqa: S608  (a name from TABLES)
            names: list[str] | None = None
            for row in cursor:
                if names is None:
                    names = [description[0] for description in cursor.description]
                yield dict(zip(names, row, strict=True))
        finally:
            cursor.close()

    def count_rows(self, table: str) -> int | None:
        if self.columns(table) is None:
            return None
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {_ident(table)}")  # noqa: S608  (see _ident)
            return int(cursor.fetchone()[0])

    # ---- import

    def synthesize_try_history(self) -> TryHistory:
        history, fails, instances = (
            self.columns("task_instance_history"),
            self.columns("task_fail"),
            self.columns("task_instance"),
        )
        if history is None or fails is None or instances is None:
            return TryHistory(unsupported=True)
        both = {c.name for c in history} & {c.name for c in instances}
        copied = [name for name in TRY_COPIED if name in both]
        key = " AND ".join(f"h.{_ident(c)} = f.{_ident(c)}" for c in TRY_KEY)
        on = " AND ".join(f"ti.{_ident(c)} = f.{_ident(c)}" for c in TRY_KEY)
        partition = ", ".join(f"f.{_ident(c)}" for c in TRY_KEY)
        settings = "".join(f", ti.{_ident(name)} AS {_ident('ti_' + name)}" for name in copied)
        # Every failure of an earlier try, numbered back from the task instance's own try.
        earlier = (
            f"SELECT f.*, ti.try_number - count(*) OVER (PARTITION BY {partition}) - 1"  # noqa: S608
            f" + row_number() OVER (PARTITION BY {partition} ORDER BY f.start_date NULLS FIRST, f.id)"
            f" AS try_no{settings} FROM task_fail f JOIN task_instance ti ON {on}"
            " WHERE f.start_date IS DISTINCT FROM ti.start_date"
        )
        missing = (
            f"FROM ({earlier}) f WHERE NOT EXISTS (SELECT 1 FROM task_instance_history h"  # noqa: S608
            f" WHERE {key} AND h.start_date IS NOT DISTINCT FROM f.start_date)"
        )
        columns = [*TRY_KEY, "try_number", "start_date", "end_date", "duration", "state", *copied]
        values = [
            *(f"f.{_ident(c)}" for c in TRY_KEY),
            "f.try_no",
            "f.start_date",
            "f.end_date",
            "f.duration",
            "'failed'",
            *(f"f.{_ident('ti_' + name)}" for name in copied),
        ]
        if "updated_at" in {c.name for c in history}:
            columns.append("updated_at")
            values.append("COALESCE(f.end_date, f.start_date)")
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*), count(*) FILTER (WHERE f.try_no < 1) {missing}")
            candidates, unnumbered = (int(n) for n in cursor.fetchone())
            # In a savepoint of its own: these rows are synthesized, not exported, so their
            # transaction is not one the ledger calls an import's (PostgresDatabase._write).
            cursor.execute("SAVEPOINT mwaa_migrate_synthesize")
            cursor.execute(
                f"INSERT INTO task_instance_history ({', '.join(_ident(c) for c in columns)}) "
                f"SELECT {', '.join(values)} {missing} AND f.try_no >= 1 ON CONFLICT DO NOTHING"
            )
            written = max(cursor.rowcount, 0)
            cursor.execute("RELEASE SAVEPOINT mwaa_migrate_synthesize")
        return TryHistory(candidates=candidates, written=written, unnumbered=unnumbered)

    def newest_import(self) -> str | None:
        found = []
        with self.connection.cursor() as cursor:
            for table in (LEDGER_TABLE, LEDGER_XID_TABLE):
                cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
                if cursor.fetchone()[0]:
                    cursor.execute(f"SELECT max(exported_at) FROM {_ident(table)}")  # noqa: S608
                    found.append(cursor.fetchone()[0])
        newest = max((value for value in found if value is not None), default=None)
        return format_datetime(newest) if newest is not None else None

    def import_table(
        self,
        spec: TableSpec,
        mapping: ColumnMapping,
        lines: Iterable[bytes],
        *,
        on_conflict: str,
        exported_at: str,
    ) -> TableCounts:
        """Staged rows, then (each count what the database says): the rows the target holds as
        exported (identical), UPDATE of those it holds as an earlier import left them (updated, the
        ledger says so), the others it holds by natural key (conflicts; UPDATEd with overwrite),
        INSERT of the rest (inserted), the rows still not there by natural key (conflicts: refused),
        the rows not there as exported (missing), and the ledger of the rows left as exported."""
        counts = TableCounts()
        target = {column.name: column for column in (self.columns(spec.name) or [])}
        table = _ident(spec.name)
        with self.connection.cursor() as cursor:
            compared = self._compared(cursor, mapping)
            staged = f"FROM {_ROWS} r {self._ref_joins(mapping, 'LEFT JOIN')}"
            counts.read = self._stage(cursor, self._staging(spec, mapping, target), mapping, lines)
            self._drop_unknown_dags(cursor, spec, counts)
            # No index serves the key of a table without a unique one (null-safe comparisons): an
            # index loop there reads the rows in range once for each row, which does not end at a
            # million (the audit log). Those join by hash (_check_landed: every table, afterwards).
            previous = _set_local(cursor, _hashed(counts.read - counts.dropped, when=not spec.unique_key))
            self._key_guard = self._range_guard(cursor, spec, target)
            same = self._same_key(spec, target, mapping)
            # A row the target's scheduler defines (a dataset) is the target's once it holds its key.
            equal = "TRUE" if spec.target_defines else self._equal(compared, target)
            ours = (
                f"(EXISTS (SELECT 1 FROM {_ident(LEDGER_TABLE)} l "  # noqa: S608  (see _ident)
                f"WHERE l.digest = {self._digest(cursor, spec, compared, target)}) OR {_WRITTEN_BY_IMPORT})"
            )
            held = f"EXISTS (SELECT 1 FROM {table} x WHERE {same} AND {equal})"  # noqa: S608
            theirs = f"EXISTS (SELECT 1 FROM {table} x WHERE {same} AND NOT {equal} AND NOT {ours})"  # noqa: S608
            by_key = f"EXISTS (SELECT 1 FROM {table} x WHERE {same})"  # noqa: S608
            key_columns = self._key_read(spec, mapping, target)
            listed = ", ".join(f"r.{_ident(part)}" for part in key_columns) or "NULL"

            def count(condition: str) -> int:
                cursor.execute(f"SELECT count(*) {staged} WHERE {condition}")
                return int(cursor.fetchone()[0])

            def listing(condition: str, reason: str) -> None:
                room = CONFLICTS_LISTED - len(counts.listed)
                if room <= 0:
                    return
                cursor.execute(f"SELECT {listed} {staged} WHERE {condition} LIMIT {room}")
                for values in cursor.fetchall():
                    row = dict(zip(key_columns, values, strict=True))
                    counts.listed.append({"key": shown_key(spec, row), "reason": reason})

            counts.identical = count(held)
            differing = count(f"NOT {held} AND {theirs}")
            if differing:
                listing(f"NOT {held} AND {theirs}", "differs")
            update_from = (
                f"UPDATE {table} x SET "  # noqa: S608  (see _ident)
                + ", ".join(f"{_ident(name)} = {expression}" for name, expression in compared)
                + f" FROM {_ROWS} r {self._ref_joins(mapping, 'JOIN')}"
                f" WHERE {same} AND NOT {equal}"
            )
            stamp = cursor.mogrify("%s::timestamptz", (exported_at,)).decode()
            if counts.identical + differing < counts.read:
                # Only this migration's own earlier copies: the ledger says so.
                counts.updated = self._write(cursor, f"{update_from} AND {ours}", stamp, "x.xmin")
            if differing and on_conflict == ON_CONFLICT_OVERWRITE:
                counts.overwritten = self._write(cursor, update_from, stamp, "x.xmin")
            if counts.identical + counts.updated + differing < counts.read:
                insert = self._insert(cursor, spec, mapping, target)
                counts.inserted = self._insert_rows(
                    cursor, insert, stamp, held=counts.identical + counts.updated + differing
                )
            digest = self._digest(cursor, spec, compared, target)
            counts.refused, counts.missing = self._check_landed(
                cursor, spec, _Checked(staged, table, same, equal, digest, stamp), counts
            )
            if counts.refused:
                listing(f"NOT {by_key}", "refused")
            counts.conflicts = differing + counts.refused
            _set_local(cursor, previous)
            cursor.execute(f"DROP TABLE {_ROWS}")
            self._key_guard = ""
        return counts

    @staticmethod
    def _write(cursor: Any, statement: str, stamp: str, xmin: str = "xmin") -> int:
        """Run an INSERT or UPDATE of exported rows; the rows written. The transaction that wrote
        them (each row version's xmin; a savepoint's own) goes into the ledger, so they are known as
        an import left them without a digest per row."""
        cursor.execute(
            f"WITH written AS ({statement} RETURNING {xmin} AS written_by) "  # noqa: S608  (see _ident)
            "SELECT count(*), min(written_by::text), max(written_by::text) FROM written"
        )
        count, low, high = cursor.fetchone()
        for xid in {low, high} - {None}:
            cursor.execute(
                f"INSERT INTO {_ident(LEDGER_XID_TABLE)} AS l (xid, exported_at) "  # noqa: S608
                f"VALUES (%s, {stamp}) ON CONFLICT (xid) "
                "DO UPDATE SET exported_at = GREATEST(l.exported_at, EXCLUDED.exported_at)",
                (int(xid),),
            )
        return int(count)

    @staticmethod
    def _insert_rows(cursor: Any, insert: str, stamp: str, *, held: int) -> int:
        """Run the insert; the rows inserted. ON CONFLICT DO NOTHING (a row the target refuses is
        left out, and counted a conflict by the check) costs a speculative insertion per row, a
        quarter of the insert. When the target holds none of the rows by key (the bulk into a new
        environment), the plain insert is tried first in a savepoint; a unique violation (another
        unique constraint, a key twice) undoes it, and the insert runs again with the clause."""
        if not held:
            cursor.execute("SAVEPOINT mwaa_migrate_insert")
            try:
                inserted = PostgresDatabase._write(cursor, insert, stamp)
            except Exception as error:
                if getattr(error, "pgcode", None) != _UNIQUE_VIOLATION:
                    raise
                cursor.execute("ROLLBACK TO SAVEPOINT mwaa_migrate_insert")
                cursor.execute("RELEASE SAVEPOINT mwaa_migrate_insert")
            else:
                cursor.execute("RELEASE SAVEPOINT mwaa_migrate_insert")
                return inserted
        return PostgresDatabase._write(cursor, f"{insert} ON CONFLICT DO NOTHING", stamp)

    @staticmethod
    def _check_landed(
        cursor: Any, spec: TableSpec, checked: _Checked, counts: TableCounts
    ) -> tuple[int, int]:
        """After the insert, one pass over the rows and the table: the rows it lacks by natural key
        (refused) and as exported (missing), as the database counts them, and the ledger entry of
        every row it holds as exported. A row matches at most one of a unique key's; a table without
        one may hold a row more than once, so its matches are grouped by row."""
        rows = counts.read - counts.dropped
        ledger = (
            f"INSERT INTO {_ident(LEDGER_TABLE)} AS l (digest, exported_at) "  # noqa: S608  (see _ident)
            f"SELECT DISTINCT digest, {checked.stamp} FROM checked WHERE digest IS NOT NULL "
            "ON CONFLICT (digest) DO UPDATE SET exported_at = GREATEST(l.exported_at, EXCLUDED.exported_at)"
        )
        found = "x.ctid IS NOT NULL"
        held = f"{found} AND {checked.equal}"
        # A row an import wrote is in the ledger by its transaction; any other held as exported
        # (the target's own, found identical) by its digest.
        kept = f"{held} AND NOT {_WRITTEN_BY_IMPORT}"
        joined = f"{checked.staged} LEFT JOIN {checked.table} x ON {checked.same}"
        queries = [
            f"SELECT bool_or({found}) AS found, bool_or({held}) AS held, "
            f"min(CASE WHEN {kept} THEN {checked.digest}::text END)::uuid AS digest {joined} GROUP BY r.ctid"
        ]
        if spec.unique_key:
            single = f"CASE WHEN {kept} THEN {checked.digest} END"
            queries.insert(0, f"SELECT {found} AS found, {held} AS held, {single} AS digest {joined}")
        if counts.inserted >= _HASHED_FROM:
            cursor.execute(f"ANALYZE {checked.table}")  # its size now, for the join's plan
        # A hash or merge join for many rows: the planner's estimates for a staging table never
        # analysed and a table just filled otherwise loop over an index, several times as slow.
        previous = _set_local(cursor, _hashed(rows))
        for query in queries:
            cursor.execute(
                f"WITH checked AS ({query}), ledger AS ({ledger}) SELECT count(*), "  # noqa: S608
                "count(*) FILTER (WHERE NOT found), count(*) FILTER (WHERE NOT held) FROM checked"
            )
            matched, refused, missing = (int(n) for n in cursor.fetchone())
            if matched == rows:
                break
        _set_local(cursor, previous)
        return refused, missing

    @staticmethod
    def _drop_unknown_dags(cursor: Any, spec: TableSpec, counts: TableCounts) -> None:
        """Remove the staged rows whose DAG (TableSpec.requires_dag) the target does not know,
        counted as dropped with their DAGs."""
        if not spec.requires_dag:
            return
        named = f"r.{_ident(spec.requires_dag)}"
        unknown = f"NOT EXISTS (SELECT 1 FROM dag d WHERE d.dag_id = {named})"  # noqa: S608
        cursor.execute(f"SELECT DISTINCT {named} FROM {_ROWS} r WHERE {unknown} ORDER BY 1")  # noqa: S608
        counts.dropped_dags = [str(dag_id) for (dag_id,) in cursor.fetchall()]
        cursor.execute(f"DELETE FROM {_ROWS} r WHERE {unknown}")  # noqa: S608
        counts.dropped = max(cursor.rowcount, 0)

    @staticmethod
    def _stage(
        cursor: Any, definitions: Sequence[str], mapping: ColumnMapping, lines: Iterable[bytes]
    ) -> int:
        """COPY the lines (the text format, the exported columns in their order) into the typed
        staging table; the number of lines. From _HASHED_FROM rows it is analysed (a tenth of the
        load): sized from its pages alone, its rows look several kilobytes wide, and the check
        sorts them all on disk for a merge join where a hash join takes half as long."""
        cursor.execute(f"DROP TABLE IF EXISTS {_ROWS}")
        cursor.execute(f"CREATE TEMP TABLE {_ROWS} ({', '.join(definitions)}) ON COMMIT DROP")
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {_ident(LEDGER_TABLE)} "
            "(digest uuid PRIMARY KEY, exported_at timestamptz NOT NULL)"
        )
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {_ident(LEDGER_XID_TABLE)} "
            "(xid bigint PRIMARY KEY, exported_at timestamptz NOT NULL)"
        )
        source = _LineReader(lines)
        exported = ", ".join(_ident(name) for name, _ in mapping.source_types)
        cursor.copy_expert(f"COPY {_ROWS} ({exported}) FROM STDIN WITH {_COPY_OPTIONS}", source, size=_CHUNK)
        if source.lines >= _HASHED_FROM:
            cursor.execute(f"ANALYZE {_ROWS}")
        return source.lines

    @staticmethod
    def _key_read(spec: TableSpec, mapping: ColumnMapping, target: Mapping[str, Column]) -> list[str]:
        """The natural key's columns the staged rows hold: the target's, and the exported key of a
        row an id refers to (IdRef.exported)."""
        exported = {name for name, _ in mapping.source_types}
        return [part for part in spec.key if part in target or part in exported]

    @staticmethod
    def _digest(
        cursor: Any, spec: TableSpec, compared: Sequence[tuple[str, str]], target: Mapping[str, Column]
    ) -> str:
        """The ledger's digest of target row x: its table, natural key and every carried column, as
        the target stores them."""
        names = [part for part in spec.key if part in target]
        names += [name for name, _ in compared if name not in names]
        table = cursor.mogrify("%s::text", (spec.name,)).decode()
        values = ", ".join([table, *(f"x.{_ident(name)}" for name in names)])
        return f"md5(jsonb_build_array({values})::text)::uuid"

    def _key_type(self, table: str, part: str) -> str:
        """The SQL type of a key column of a referenced row: its table's, or (read through that
        table's own references, IdRef.exported) the table it comes from."""
        for column in self.columns(table) or []:
            if column.name == part:
                return column.sql_type
        spec = TABLES_BY_NAME.get(table)
        for ref in spec.id_refs if spec else ():
            if ref.exported and part in ref.key:
                return self._key_type(ref.table, part)
        return "text"

    def _staging(self, spec: TableSpec, mapping: ColumnMapping, target: Mapping[str, Column]) -> list[str]:
        """The staging table's columns: every exported column, in the file's order, then the key
        columns the statements read that the export lacks (null). The ones the statements read are
        typed as the target types them (bytes as bytea), so COPY parses each value once into its
        type; the others stay text."""
        types = dict(mapping.source_types)
        needed: dict[str, str] = {name: types.get(name, "json") for _, name in mapping.kept}
        parts = [part for ref in mapping.id_refs for part in ref.key]
        parts += list(spec.parent.columns) if spec.parent else []
        parts += PostgresDatabase._key_read(spec, mapping, target)
        parts += [spec.requires_dag] if spec.requires_dag else []
        for part in parts:
            needed.setdefault(part, types.get(part, "json"))
        sources = {source_name: target_name for target_name, source_name in mapping.kept}
        # Key columns of referenced rows the table lacks: typed as the referenced table types them.
        referenced = {part: ref.table for ref in mapping.id_refs if ref.exported for part in ref.key}
        definitions = []
        for name in [*types, *(name for name in needed if name not in types)]:
            kind = needed.get(name)
            target_column = target.get(sources.get(name, name))
            if kind is None:
                sql_type = "text"  # exported, read by nothing: a column the target lacks
            elif kind == "bytes":
                sql_type = "bytea"
            elif target_column is None and name in referenced:
                sql_type = self._key_type(referenced[name], name)
            elif target_column is None:
                sql_type = "json" if kind == "json" else "text"
            else:
                sql_type = target_column.sql_type
            definitions.append(f"{_ident(name)} {sql_type}")
        return definitions

    @staticmethod
    def _compared(cursor: Any, mapping: ColumnMapping) -> list[tuple[str, str]]:
        """(target column, its value as an SQL expression over r and the id references) of every
        column the export carries: what an update sets and the verification compares."""
        refill = dict(mapping.refill)
        compared: list[tuple[str, str]] = []
        for target_name, source_name in mapping.kept:
            expression = f"r.{_ident(source_name)}"
            if target_name in refill:
                expression = cursor.mogrify(f"COALESCE({expression}, %s)", (refill[target_name],)).decode()
            compared.append((target_name, expression))
        for number, ref in enumerate(mapping.id_refs):
            compared.append((ref.column, f"ref{number}.id"))
        return compared

    def _ref_joins(self, mapping: ColumnMapping, kind: str) -> str:
        joins = []
        for number, ref in enumerate(mapping.id_refs):
            alias = f"ref{number}"
            on = " AND ".join(
                f"{alias}.{_ident(part)} {_NULL_SAFE if part in ref.nullable else '='} r.{_ident(part)}"
                for part in ref.key
            )
            table = self._source(table_spec(ref.table)) if ref.table in TABLES_BY_NAME else _ident(ref.table)
            joins.append(f"{kind} {table} {alias} ON {on}")
        return " ".join(joins)

    @staticmethod
    def _equal(compared: Sequence[tuple[str, str]], target: Mapping[str, Column]) -> str:
        """Row x of the target holds the values of r (json compared as jsonb: json has no equality)."""
        parts = []
        for name, expression in compared:
            sql_type = target[name].sql_type.lower() if name in target else ""
            if sql_type in {"json", "jsonb"}:
                parts.append(f"x.{_ident(name)}::jsonb IS NOT DISTINCT FROM ({expression})::jsonb")
            else:
                parts.append(f"x.{_ident(name)} IS NOT DISTINCT FROM {expression}")
        return "(" + (" AND ".join(parts) or "TRUE") + ")"

    def _insert(
        self, cursor: Any, spec: TableSpec, mapping: ColumnMapping, target: Mapping[str, Column]
    ) -> str:
        """INSERT ... SELECT of the staged rows the target lacks: columns mapped by name and RULES,
        ids resolved by natural key, children only under parents the target has (without its
        ON CONFLICT clause: see _insert_rows)."""
        inserted: list[str] = []
        values: list[str] = []
        for name, expression in self._compared(cursor, mapping):
            inserted.append(_ident(name))
            values.append(expression)
        for name, value in mapping.filled:
            inserted.append(_ident(name))
            values.append(cursor.mogrify("%s", (value,)).decode())
        for column, table in mapping.newest_refs:
            inserted.append(_ident(column))
            values.append(f"(SELECT max(id) FROM {_ident(table)})")  # noqa: S608  (see _ident)
        conditions = []
        if spec.parent and spec.parent.table not in {ref.table for ref in mapping.id_refs}:
            on = " AND ".join(f"p.{_ident(part)} = r.{_ident(part)}" for part in spec.parent.columns)
            conditions.append(f"EXISTS (SELECT 1 FROM {_ident(spec.parent.table)} p WHERE {on})")  # noqa: S608
        if not spec.unique_key:
            same = self._same_key(spec, target, mapping)
            conditions.append(f"NOT EXISTS (SELECT 1 FROM {_ident(spec.name)} x WHERE {same})")  # noqa: S608
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        return (
            f"INSERT INTO {_ident(spec.name)} ({', '.join(inserted)}) "  # noqa: S608  (see _ident)
            f"SELECT {', '.join(values)} FROM {_ROWS} r "
            f"{self._ref_joins(mapping, 'JOIN')} {where}"
        )

    def _range_guard(self, cursor: Any, spec: TableSpec, target: Mapping[str, Column]) -> str:
        """For a table without a unique key (the audit log): the staged rows' range of the first
        datetime column of the key, as a condition on x. The key comparisons are null-safe, which
        no index serves; this one is (idx_log_dttm), so they read the rows of the delta's days,
        not the whole table, and the cutover's import stays as fast however long the history."""
        if spec.unique_key:
            return ""
        column = next((part for part in spec.key if part in target and target[part].type == "datetime"), None)
        if column is None:
            return ""
        name = _ident(column)
        cursor.execute(
            f"SELECT min(r.{name}), max(r.{name}), count(*) FILTER (WHERE r.{name} IS NULL) "  # noqa: S608
            f"FROM {_ROWS} r"
        )
        low, high, nulls = cursor.fetchone()
        if low is None or nulls:
            return ""
        return str(cursor.mogrify(f" AND x.{name} BETWEEN %s AND %s", (low, high)).decode())

    def _same_key(self, spec: TableSpec, target: Mapping[str, Column], mapping: ColumnMapping) -> str:
        """Row x of the target has the natural key of r. Nullable key columns compare as text with
        a marker for null, so PostgreSQL can hash the anti-join instead of looping. A key read from
        a referenced row (IdRef.exported) compares x's id column with the id resolved for r."""
        parts = [
            f"x.{_ident(ref.column)} = ref{number}.id"
            for number, ref in enumerate(mapping.id_refs)
            if ref.exported and ref.column in target
        ]
        for part in (part for part in spec.key if part in target):
            column = target[part]
            if not column.nullable:
                parts.append(f"x.{_ident(part)} = r.{_ident(part)}")
            else:
                parts.append(
                    f"COALESCE(x.{_ident(part)}::text, E'\\x01') = COALESCE(r.{_ident(part)}::text, E'\\x01')"
                )
        return "(" + (" AND ".join(parts) or "TRUE") + self._key_guard + ")"

    # ---- secrets and DAGs

    def fernet_decrypt(self, token: str) -> str:
        if self._fernet is None:
            raise SecretError("no Fernet key to decrypt with")
        from cryptography.fernet import InvalidToken  # noqa: PLC0415

        try:
            return str(self._fernet.decrypt(token.encode("utf-8")).decode("utf-8"))
        except InvalidToken:
            raise SecretError("this environment's Fernet key cannot decrypt a stored value") from None

    def fernet_encrypt(self, value: str) -> tuple[str, bool]:
        if self._fernet is None:
            return value, False
        return self._fernet.encrypt(value.encode("utf-8")).decode("utf-8"), bool(
            getattr(self._fernet, "is_encrypted", True)
        )

    def dag_pause_states(self) -> dict[str, bool]:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT dag_id, is_paused FROM dag WHERE is_active")
            return {str(dag_id): bool(paused) for dag_id, paused in cursor.fetchall()}

    def set_paused(self, dag_ids: Collection[str], *, paused: bool) -> None:
        if not dag_ids:
            return
        with self.connection.cursor() as cursor:
            cursor.execute("UPDATE dag SET is_paused = %s WHERE dag_id = ANY(%s)", (paused, sorted(dag_ids)))

    def unfinished_task_instances(self, dag_ids: Collection[str]) -> list[dict[str, Any]]:
        if not dag_ids:
            return []
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT dag_id, run_id, task_id, map_index, state FROM task_instance"
                " WHERE dag_id = ANY(%s) AND state = ANY(%s) ORDER BY dag_id, run_id, task_id, map_index",
                (sorted(dag_ids), sorted(DRAIN_STATES)),
            )
            names = ("dag_id", "run_id", "task_id", "map_index", "state")
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class _SinkFile(io.RawIOBase):
    """Where COPY's output goes on to the sink in chunks. psycopg2's copy_expert calls `write` once
    per row: wrapped in an io.BufferedWriter (`_sink_file`), those calls stay in C and this one's
    `write` runs once a chunk, not once a row."""

    def __init__(self, sink: LineSink) -> None:
        self.sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.sink(chunk)
        return len(chunk)


def _sink_file(sink: LineSink) -> io.BufferedWriter:
    return io.BufferedWriter(_SinkFile(sink), buffer_size=_CHUNK)


class _LineReader:
    """A file-like object over lines, for COPY ... FROM STDIN; counts the lines."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._lines = iter(lines)
        self._buffer = bytearray()
        self.lines = 0

    def read(self, size: int = -1) -> bytes:
        want = _CHUNK if size is None or size < 0 else size
        while len(self._buffer) < want:
            line = next(self._lines, None)
            if line is None:
                break
            self._buffer += line
            if not line.endswith(b"\n"):
                self._buffer += b"\n"
            self.lines += 1
        chunk = bytes(self._buffer[:want])
        del self._buffer[:want]
        return chunk

    readline = read


# ---------------------------------------------------------------------------------------------
# Run conf and the tasks' steps
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunConf:
    """The conf the pipeline triggers both DAGs with (docs/cutover.md)."""

    bucket: str
    prefix: str
    migration_id: str
    # The KMS key whose data key encrypts secrets in the bucket.
    kms_key_id: str = ""
    unpause_dags: bool = True
    phase: str = PHASE_BULK
    drain_timeout_minutes: int = DEFAULT_DRAIN_TIMEOUT_MINUTES
    on_drain_timeout: str = DRAIN_FAIL
    # The import's answer to a conflict (ON_CONFLICT_ACTIONS).
    on_conflict: str = ON_CONFLICT_FAIL
    # Names written into the cutover record (optional: the record says "" without them).
    source_environment: str = ""
    target_environment: str = ""
    # The Airflow version the target ends at (the plan's target.finalVersion; "" when not said): a
    # 3.x target gets its failed tries written to task_instance_history before MWAA upgrades it.
    target_final_version: str = ""
    # An export on a self-managed Airflow (the conf's selfManaged block): presigned S3 access and the
    # public key that seals the data keys, in place of AWS credentials. None on MWAA.
    self_managed: SelfManagedAccess | None = None

    @property
    def target_becomes_airflow_3(self) -> bool:
        major = self.target_final_version.split(".", 1)[0]
        return major.isdigit() and int(major) >= 3

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any] | None) -> RunConf:
        conf = conf or {}
        values: dict[str, str] = {}
        for name in ("bucket", "prefix", "migrationId", "kmsKeyId"):
            value = conf.get(name)
            if not isinstance(value, str) or (name != "prefix" and not value.strip()):
                raise ConfError(f"the DAG run's conf needs '{name}' as a non-empty string")
            values[name] = value.strip()
        unpause = conf.get("unpauseDags", True)
        if not isinstance(unpause, bool):
            raise ConfError("the DAG run's conf 'unpauseDags' must be true or false")
        phase = conf.get("phase")
        if phase not in PHASES:
            raise ConfError(f"the DAG run's conf needs 'phase' as one of {', '.join(PHASES)}, not {phase!r}")
        minutes = conf.get("drainTimeoutMinutes", DEFAULT_DRAIN_TIMEOUT_MINUTES)
        if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < 0:
            raise ConfError(
                "the DAG run's conf 'drainTimeoutMinutes' must be a whole number of minutes >= 0, "
                f"not {minutes!r}"
            )
        action = conf.get("onDrainTimeout", DRAIN_FAIL)
        if action not in DRAIN_ACTIONS:
            raise ConfError(
                f"the DAG run's conf 'onDrainTimeout' must be one of {', '.join(DRAIN_ACTIONS)}, "
                f"not {action!r}"
            )
        on_conflict = conf.get("onConflict", ON_CONFLICT_FAIL)
        if on_conflict not in ON_CONFLICT_ACTIONS:
            raise ConfError(
                f"the DAG run's conf 'onConflict' must be one of {', '.join(ON_CONFLICT_ACTIONS)}, "
                f"not {on_conflict!r}"
            )
        names: dict[str, str] = {}
        for name in ("sourceEnvironment", "targetEnvironment", "targetFinalVersion"):
            value = conf.get(name, "")
            if not isinstance(value, str):
                raise ConfError(f"the DAG run's conf '{name}' must be a string")
            names[name] = value.strip()
        return cls(
            bucket=values["bucket"],
            prefix=values["prefix"].strip("/"),
            migration_id=values["migrationId"],
            kms_key_id=values["kmsKeyId"],
            unpause_dags=unpause,
            phase=str(phase),
            drain_timeout_minutes=minutes,
            on_drain_timeout=str(action),
            on_conflict=str(on_conflict),
            source_environment=names["sourceEnvironment"],
            target_environment=names["targetEnvironment"],
            target_final_version=names["targetFinalVersion"],
            self_managed=(
                SelfManagedAccess.from_conf(conf["selfManaged"], values["prefix"].strip("/"))
                if conf.get("selfManaged") is not None
                else None
            ),
        )

    def storage(self) -> Storage:
        """Where this run reads and writes: presigned URLs on a self-managed Airflow, else S3 under
        the environment's role."""
        if self.self_managed is not None:
            return PresignedStorage(self.self_managed)
        return S3Storage.for_bucket(self.bucket)

    def key(self, *parts: str) -> str:
        return "/".join(piece for piece in (self.prefix, *parts) if piece)

    def export_key(self, name: str, phase: str | None = None) -> str:
        """`{prefix}/export/{phase}/{name}`: the manifest and table files of one phase's export."""
        return self.key("export", phase or self.phase, name)

    def import_key(self, name: str, phase: str | None = None) -> str:
        return self.key("import", phase or self.phase, name)

    @property
    def record_key(self) -> str:
        """`{prefix}/cutover/record.json`: the durable record of the source's active DAGs."""
        return self.key("cutover", RECORD_FILE)


def now_iso() -> str:
    return format_datetime(datetime.now(UTC))


def check_airflow_version(db: MetadataDatabase) -> str:
    version = db.airflow_version()
    major = version.split(".", 1)[0]
    if not major.isdigit() or int(major) != SUPPORTED_AIRFLOW_MAJOR:
        raise UnsupportedAirflowError(
            f"these DAGs use Airflow {SUPPORTED_AIRFLOW_MAJOR}.x's metadata schema; this environment runs "
            f"Airflow {version}"
        )
    return version


def carried_columns(spec: TableSpec, columns: Sequence[Column]) -> list[Column]:
    return [column for column in columns if column.name not in spec.local_columns]


def exported_columns(db: MetadataDatabase, spec: TableSpec, columns: Sequence[Column]) -> list[Column]:
    """The carried columns, then the key of each row an id refers to that the table itself lacks
    (IdRef.exported: dag_run_note's run), as the referenced table types them."""
    out = carried_columns(spec, columns)
    names = {column.name for column in out}
    for ref in spec.id_refs:
        if not ref.exported:
            continue
        referenced = {column.name: column for column in db.columns(ref.table) or []}
        for part in ref.key:
            if part not in names:
                out.append(referenced.get(part, Column(part, "string")))
                names.add(part)
    return out


def _read_json(storage: Storage, key: str) -> Any:
    body = storage.get(key)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise VerificationError(f"{key} is not JSON") from None


# ---- the cutover: record, pause, drain


def read_record(storage: Storage, conf: RunConf) -> dict[str, Any] | None:
    """The cutover record, or None when there is none yet."""
    if not storage.exists(conf.record_key):
        return None
    try:
        record = _read_json(storage, conf.record_key)
    except MissingObjectError:
        return None
    if not isinstance(record, dict):
        raise VerificationError(f"{conf.record_key} is not a JSON object")
    return record


def pause(db: MetadataDatabase, storage: Storage, conf: RunConf, *, now: str | None = None) -> dict[str, Any]:
    """Record which DAGs are active, then pause exactly those. The record is written before anything
    is paused; a retried cutover whose record (this migration's) says `paused` reuses its list, as
    every DAG is paused by then. Any other record is replaced from what is active now."""
    check_airflow_version(db)
    if conf.phase != PHASE_CUTOVER:
        return {"phase": conf.phase, "skipped": True, "active_dags": []}
    record = read_record(storage, conf)
    if (
        record is not None
        and record.get("migration_id") == conf.migration_id
        and record.get("state") == RECORD_PAUSED
    ):
        active = sorted(str(dag_id) for dag_id in record.get("active_dags", []))
        paused_at = str(record.get("paused_at", ""))
        reused = True
    else:
        at = now or now_iso()
        states = db.dag_pause_states()
        active = sorted(
            dag_id for dag_id, paused in states.items() if not paused and dag_id not in PROJECT_DAG_IDS
        )
        history = list(record.get("history", [])) if record is not None else []
        history.append({"state": RECORD_PAUSED, "at": at, "migration_id": conf.migration_id})
        written = {
            "migration_id": conf.migration_id,
            "source_environment": conf.source_environment,
            "target_environment": conf.target_environment,
            "active_dags": active,
            "state": RECORD_PAUSED,
            "paused_at": at,
            "updated_at": at,
            "history": history,
        }
        storage.put(conf.record_key, json_bytes(written))
        paused_at, reused = at, False
    db.set_paused(active, paused=True)
    log.info(
        "cutover: paused %d active DAGs (%s record)", len(active), "reused the" if reused else "wrote the"
    )
    return {"phase": conf.phase, "active_dags": active, "paused_at": paused_at, "reused_record": reused}


def _recorded_active(
    storage: Storage, conf: RunConf, paused: Mapping[str, Any] | None
) -> tuple[list[str], str]:
    """The active DAGs and paused_at from the pause task's result, else from the record."""
    if paused and "active_dags" in paused and not paused.get("skipped"):
        return sorted(str(d) for d in paused["active_dags"]), str(paused.get("paused_at", ""))
    record = read_record(storage, conf)
    if (
        record is None
        or record.get("migration_id") != conf.migration_id
        or record.get("state") != RECORD_PAUSED
    ):
        raise VerificationError(f"{conf.record_key} does not record this migration's paused DAGs")
    return sorted(str(d) for d in record.get("active_dags", [])), str(record.get("paused_at", ""))


# Listed in the drain's result and error: enough to see what ran, never the whole of a big backlog.
_LISTED = 20


def drain(
    db: MetadataDatabase,
    storage: Storage,
    conf: RunConf,
    paused: Mapping[str, Any] | None = None,
    *,
    sleep: Callable[[float], Any] | None = None,
    clock: Callable[[], datetime] | None = None,
    poll_seconds: float = DRAIN_POLL_SECONDS,
) -> dict[str, Any]:
    """Wait until no task instance of the paused DAGs is running or queued, at most
    drainTimeoutMinutes. At the deadline, onDrainTimeout `fail` raises DrainTimeout (the pipeline
    restores the source); `carry` goes on (the delta carries those tasks cleared)."""
    if conf.phase != PHASE_CUTOVER:
        return {"phase": conf.phase, "skipped": True}
    import time  # noqa: PLC0415

    sleep = sleep or time.sleep
    clock = clock or (lambda: datetime.now(UTC))
    active, _ = _recorded_active(storage, conf, paused)
    started = clock()
    deadline = started.timestamp() + conf.drain_timeout_minutes * 60
    polls = 0
    while True:
        running = db.unfinished_task_instances(active)
        polls += 1
        now = clock()
        if not running or now.timestamp() >= deadline:
            break
        sleep(max(0.0, min(poll_seconds, deadline - now.timestamp())))
    waited = round(now.timestamp() - started.timestamp(), 3)
    listed = [
        f"{ti['dag_id']}.{ti['task_id']}[{ti['map_index']}] of {ti['run_id']} ({ti['state']})"
        for ti in running[:_LISTED]
    ]
    result = {
        "phase": conf.phase,
        "drain_started_at": format_datetime(started),
        "drained_at": format_datetime(now),
        "waited_seconds": waited,
        "polls": polls,
        "timed_out": bool(running),
        "still_running": len(running),
        "still_running_tasks": listed,
    }
    if running and conf.on_drain_timeout == DRAIN_FAIL:
        raise DrainTimeout(
            f"after {conf.drain_timeout_minutes} minutes {len(running)} task instances of the paused DAGs "
            f"still run or wait in a queue: {', '.join(listed)}; onDrainTimeout is fail"
        )
    log.info("drain: waited %.0f s, %d task instances still running", waited, len(running))
    return result


# ---- export


def _decrypted_lines(
    db: MetadataDatabase, spec: TableSpec, columns: Sequence[Column], window: Window
) -> Iterator[bytes]:
    """Rows of a table whose values Airflow keeps Fernet-encrypted, decrypted with the source's key
    (they go into the sealed file, never anywhere else)."""
    flags = dict(spec.fernet_flags)
    for row in db.read_rows(spec):
        if not row_in_export(spec, row, window):
            continue
        for column in spec.secret_columns:
            value = row.get(column)
            if value is not None and row.get(flags.get(column, ""), False):
                row[column] = db.fernet_decrypt(str(value))
        yield copy_line(encode_row(spec.name, row, columns), columns)


def _write_export(
    db: MetadataDatabase,
    storage: Storage,
    conf: RunConf,
    keys: KeyService,
    window: Window,
    *,
    active_dags: Sequence[str] = (),
    timings: Mapping[str, str] | None = None,
    drained: Mapping[str, Any] | None = None,
    workdir: str | None = None,
) -> Manifest:
    """Every table's file of the window's rows, then the manifest (last: a manifest means a whole
    export) under `{prefix}/export/{phase}/`."""
    version = check_airflow_version(db)
    box, envelope = new_secret_box(keys, conf.kms_key_id, conf.migration_id)
    entries: dict[str, TableEntry] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        for spec in TABLES:
            found = db.columns(spec.name)
            if found is None:
                continue  # a table this Airflow version does not have
            columns = exported_columns(db, spec, found)
            path = os.path.join(folder, spec.file)
            writer = TableWriter(path, box, spec.file)
            try:
                if spec.secret_columns:
                    for line in _decrypted_lines(db, spec, columns, window):
                        writer.write(line)
                else:
                    db.export_table(spec, columns, writer.write, window)
            finally:
                digest = writer.close()
            storage.put_file(conf.export_key(spec.file, window.phase), path)
            os.remove(path)
            entries[spec.name] = TableEntry(
                file=spec.file, rows=writer.rows, sha256=digest, key=spec.key, columns=tuple(columns)
            )
            log.info("exported %d rows of %s (%s)", writer.rows, spec.name, window.phase)
    not_carried = []
    for table, reason in NOT_CARRIED.items():
        rows = db.count_rows(table)
        if rows:
            not_carried.append(_not_carried(table, rows, reason))
            log.info("%s: %d rows not carried (%s)", table, rows, reason)
    exported_at = now_iso()
    manifest = Manifest(
        migration_id=conf.migration_id,
        source_airflow_version=version,
        schema_revision=db.schema_revision(),
        exported_at=exported_at,
        tables=entries,
        active_dags=tuple(sorted(active_dags)),
        secrets=envelope,
        phase=window.phase,
        watermark=format_datetime(window.watermark),
        timings={**(timings or {}), "exported_at": exported_at} if timings is not None else {},
        drain=dict(drained or {}),
        not_carried=tuple(not_carried),
    )
    storage.put(conf.export_key(MANIFEST_FILE, window.phase), json_bytes(with_mac(manifest.to_json(), box)))
    return manifest


def _export_summary(manifest: Manifest) -> dict[str, Any]:
    return {
        "phase": manifest.phase,
        "watermark": manifest.watermark,
        "tables": {name: entry.rows for name, entry in manifest.tables.items()},
        "active_dags": list(manifest.active_dags),
        "timings": dict(manifest.timings),
        "not_carried": [dict(entry) for entry in manifest.not_carried],
    }


def export_bulk(
    db: MetadataDatabase,
    storage: Storage,
    conf: RunConf,
    keys: KeyService,
    *,
    watermark: datetime | None = None,
    workdir: str | None = None,
) -> dict[str, Any]:
    """The bulk: pauses nothing. The watermark is now (this task's start): finished runs that ended
    before it, their children and the audit log before it, variables, connections and pools."""
    window = Window(PHASE_BULK, watermark or datetime.now(UTC))
    return _export_summary(_write_export(db, storage, conf, keys, window, workdir=workdir))


def read_manifest(storage: Storage, conf: RunConf, phase: str | None = None) -> Manifest:
    """The phase's manifest, checked for format, migration and phase but not authenticated: for the
    export (the source's role cannot decrypt data keys) and reports. The import uses open_manifest."""
    phase = phase or conf.phase
    key = conf.export_key(MANIFEST_FILE, phase)
    return _checked_manifest(_read_json(storage, key), conf, phase, key)


def open_manifest(
    storage: Storage, conf: RunConf, keys: KeyService, phase: str | None = None
) -> tuple[Manifest, SecretBox]:
    """The phase's manifest, authenticated, and its data key: format, migration and phase, the data
    key opened by KMS under this migration's encryption context, then the MAC. Every import task
    that acts on the manifest reads it through here, so one swapped between tasks is refused too."""
    phase = phase or conf.phase
    key = conf.export_key(MANIFEST_FILE, phase)
    data = _read_json(storage, key)
    manifest = _checked_manifest(data, conf, phase, key)
    box = open_secret_box(keys, manifest.secrets, conf.migration_id)
    check_manifest_mac(data, box, key)
    return manifest, box


def _checked_manifest(data: Any, conf: RunConf, phase: str, key: str) -> Manifest:
    manifest = Manifest.from_json(data)
    if manifest.migration_id != conf.migration_id:
        raise VerificationError(
            f"{key} belongs to migration {manifest.migration_id!r}, not {conf.migration_id!r}"
        )
    if manifest.phase != phase:
        raise VerificationError(f"{key} is the {manifest.phase} export, not the {phase} one")
    unknown = sorted(set(manifest.tables) - set(TABLES_BY_NAME))
    if unknown:
        raise VerificationError(f"the export holds tables this import cannot load: {', '.join(unknown)}")
    return manifest


def export_delta(
    db: MetadataDatabase,
    storage: Storage,
    conf: RunConf,
    keys: KeyService,
    *,
    paused: Mapping[str, Any] | None = None,
    drained: Mapping[str, Any] | None = None,
    workdir: str | None = None,
) -> dict[str, Any]:
    """The delta, after the pause and the drain: every run the bulk did not carry (finished at or
    after its watermark, or not finished: as it stands, its task instances in flight cleared), their
    children, the audit log from the watermark, variables, connections and pools in full."""
    bulk = read_manifest(storage, conf, PHASE_BULK)
    active, paused_at = _recorded_active(storage, conf, paused)
    drained = dict(drained or {})
    timings = {
        "paused_at": paused_at,
        "drain_started_at": str(drained.get("drain_started_at", "")),
        "drained_at": str(drained.get("drained_at", "")),
    }
    drain_info = {
        "waited_seconds": drained.get("waited_seconds", 0),
        "timed_out": bool(drained.get("timed_out", False)),
        "still_running": int(drained.get("still_running", 0)),
    }
    window = Window(PHASE_CUTOVER, parse_datetime(bulk.watermark))
    manifest = _write_export(
        db,
        storage,
        conf,
        keys,
        window,
        active_dags=active,
        timings=timings,
        drained=drain_info,
        workdir=workdir,
    )
    return {**_export_summary(manifest), "drain": drain_info}


def export_tables(
    db: MetadataDatabase,
    storage: Storage,
    conf: RunConf,
    keys: KeyService,
    upstream: Mapping[str, Any],
    *,
    clock: Callable[[], datetime] | None = None,
    workdir: str | None = None,
) -> dict[str, Any]:
    """The export DAG's last task: the bulk or the delta, as the conf's phase says."""
    if conf.phase == PHASE_BULK:
        return export_bulk(db, storage, conf, keys, watermark=clock() if clock else None, workdir=workdir)
    return export_delta(
        db, storage, conf, keys, paused=upstream.get("pause"), drained=upstream.get("drain"), workdir=workdir
    )


# ---- import


def _download(storage: Storage, conf: RunConf, entry: TableEntry, folder: str, box: SecretBox) -> str:
    path = os.path.join(folder, entry.file)
    storage.get_file(conf.export_key(entry.file), path)
    verify_file(path, entry, box)
    return path


def _download_checked(storage: Storage, conf: RunConf, entry: TableEntry, folder: str) -> str:
    """A table file for the import, its sha256 checked before it is read. Reading it checks the rest
    as it streams into the database (every part decrypts in order, the gzip stream is whole, the
    row count); the database parses every line as a JSON object, so a file verify_export passed
    is not parsed a second time in Python."""
    path = os.path.join(folder, entry.file)
    storage.get_file(conf.export_key(entry.file), path)
    check_sha256(path, entry)
    return path


def read_table(storage: Storage, conf: RunConf, entry: TableEntry, box: SecretBox) -> list[dict[str, Any]]:
    """A whole table file in memory (small tables and tests)."""
    return decode_table(storage.get(conf.export_key(entry.file)), entry, box)


def verify_export(
    db: MetadataDatabase, storage: Storage, conf: RunConf, keys: KeyService, *, workdir: str | None = None
) -> dict[str, Any]:
    """Check the phase's manifest (its MAC under the export's data key) and every file (checksum,
    decryption, rows) before anything in the target changes. Decrypting the data key is the first
    thing only the target's role may do. The cutover's delta must name the bulk's watermark, as the
    bulk's own (authenticated) manifest says: the cutover export read it unauthenticated."""
    check_airflow_version(db)
    manifest, box = open_manifest(storage, conf, keys)
    check_not_stale(db, manifest)
    if conf.phase == PHASE_CUTOVER:
        bulk, _ = open_manifest(storage, conf, keys, PHASE_BULK)
        if bulk.watermark != manifest.watermark:
            raise VerificationError(
                f"the delta was exported from the watermark {manifest.watermark!r}, the bulk's is "
                f"{bulk.watermark!r}"
            )
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        for entry in manifest.tables.values():
            os.remove(_download(storage, conf, entry, folder, box))
    log.info("verified %d table files of the %s export", len(manifest.tables), conf.phase)
    return {"phase": conf.phase, "tables": {name: entry.rows for name, entry in manifest.tables.items()}}


def check_not_stale(db: MetadataDatabase, manifest: Manifest) -> None:
    """Refuse an export older than one already imported into this target (the bulk imported again
    after the cutover): its rows would set the target's newer copies back to older values."""
    newest = db.newest_import()
    exported_at = parse_datetime(manifest.exported_at)
    if newest is not None and exported_at < parse_datetime(newest):
        raise VerificationError(
            f"this {manifest.phase} export (exported at {manifest.exported_at}) is older than one already "
            f"imported into this environment (exported at {newest}); it would set newer rows back"
        )


def pause_dags(db: MetadataDatabase) -> list[str]:
    """Pause every DAG but the project's own, so nothing runs while history lands."""
    unpaused = sorted(
        dag_id
        for dag_id, paused in db.dag_pause_states().items()
        if not paused and dag_id not in PROJECT_DAG_IDS
    )
    db.set_paused(unpaused, paused=True)
    log.info("paused %d DAGs for the import", len(unpaused))
    return unpaused


def _imported_lines(
    db: MetadataDatabase, spec: TableSpec, entry: TableEntry, lines: Iterable[bytes]
) -> tuple[Iterable[bytes], list[Column], list[str]]:
    """A table file's lines as the import's COPY reads them, their columns in order, and the Fernet
    flags the import provides: the secrets re-encrypted (flags added after the exported columns),
    a format 4 file's JSON lines turned into the text format."""
    exported = list(entry.columns)
    lines = copy_lines(entry, lines)
    if not spec.secret_columns:
        return lines, exported, []
    names = {column.name for column in exported}
    provided = [flag for column, flag in spec.fernet_flags if column in names]
    written = [*exported, *(Column(flag, "boolean") for flag in provided)]
    return _reencrypted_lines(db, spec, lines, exported=exported, written=written), written, provided


def _reencrypted_lines(
    db: MetadataDatabase,
    spec: TableSpec,
    lines: Iterable[bytes],
    *,
    exported: Sequence[Column],
    written: Sequence[Column],
) -> Iterator[bytes]:
    """Rows with their secret values encrypted by the target's own Fernet key. A value the target
    already holds (the same plaintext under its key) keeps the target's own ciphertext, so an
    unchanged secret compares identical and is not rewritten (Fernet tokens differ each time). The
    target's rows are read here, before the lines are consumed (by a COPY, during which the
    connection runs nothing else)."""
    held = {tuple(encode_value(v) for v in spec.key_of(row)): row for row in db.read_rows(spec)}
    return _reencrypt(db, spec, lines, held, exported=exported, written=written)


def _reencrypt(
    db: MetadataDatabase,
    spec: TableSpec,
    lines: Iterable[bytes],
    held: Mapping[tuple[Any, ...], dict[str, Any]],
    *,
    exported: Sequence[Column],
    written: Sequence[Column],
) -> Iterator[bytes]:
    """The lines (`exported`'s columns) with their secrets re-encrypted, as `written`'s columns (the
    exported ones, then the Fernet flags the import provides)."""
    flags = dict(spec.fernet_flags)
    for number, line in enumerate(lines, start=1):
        try:
            row = copy_row_values(line, exported)
        except ValueError as error:
            raise VerificationError(
                f"{spec.file} line {number}: not a row of the manifest's columns ({error})"
            ) from None
        current = held.get(tuple(encode_value(v) for v in spec.key_of(row)))
        for column in spec.secret_columns:
            if column not in row:
                continue
            flag = flags.get(column)
            if current is not None and current.get(column) is not None and row[column] is not None:
                stored = current[column]
                plain = db.fernet_decrypt(str(stored)) if flag and current.get(flag) else stored
                if plain == row[column]:
                    row[column] = stored
                    if flag:
                        row[flag] = bool(current.get(flag))
                    continue
            encrypted = False
            if row[column] is not None:
                row[column], encrypted = db.fernet_encrypt(str(row[column]))
            if flag:
                row[flag] = encrypted
        yield copy_line(row, written)


def _conflict_summary(counts: TableCounts, on_conflict: str) -> dict[str, Any]:
    if on_conflict == ON_CONFLICT_OVERWRITE:
        resolution = "overwritten" if not counts.refused else "failed"
    else:
        resolution = "kept-target" if on_conflict == ON_CONFLICT_KEEP_TARGET else "failed"
    return {
        "count": counts.conflicts,
        "refused": counts.refused,
        "differing": counts.conflicts - counts.refused,
        "resolution": resolution,
        "listed": list(counts.listed),
    }


def _conflict_message(conflicts: Mapping[str, Mapping[str, Any]], on_conflict: str) -> str:
    shown = 5
    parts = []
    for table, found in conflicts.items():
        keys = [
            f"{', '.join(f'{k}={v}' for k, v in item['key'].items())} ({item['reason']})"
            for item in found["listed"][:shown]
        ]
        more = found["count"] - len(keys)
        parts.append(f"{table}: {found['count']} [{'; '.join(keys)}{f'; and {more} more' if more else ''}]")
    total = sum(found["count"] for found in conflicts.values())
    why = (
        "onConflict is fail"
        if on_conflict == ON_CONFLICT_FAIL
        else "onConflict is overwrite, which cannot replace a row the target holds under another key"
    )
    return (
        f"{total} exported rows conflict with the target's own ({why}; nothing was changed): "
        + "; ".join(parts)
        + ". 'differs': the target holds the row with other values no import of this migration wrote; "
        "'refused': the target refused it (another unique constraint, or its parent is missing)"
    )


def import_tables(
    db: MetadataDatabase, storage: Storage, conf: RunConf, keys: KeyService, *, workdir: str | None = None
) -> dict[str, Any]:
    """Parents first, every file verified again as it is read. Both phases insert the rows the target
    lacks and update the rows an earlier import of this migration left there (the source is the
    truth); a row the target refuses or holds otherwise is a conflict, which fails the import unless
    onConflict says keep-target or overwrite. Then the checks that can fail: the database's counts
    add up to the rows read, and the rows not in the target as exported are exactly the conflicts
    left to the target. A failure leaves nothing (one transaction)."""
    started_at = now_iso()
    manifest, box = open_manifest(storage, conf, keys)
    check_not_stale(db, manifest)
    tables: dict[str, dict[str, int]] = {}
    columns: dict[str, dict[str, Any]] = {}
    conflicts: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    not_carried = [dict(entry) for entry in manifest.not_carried]
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        for spec in TABLES:
            entry = manifest.tables.get(spec.name)
            if entry is None:
                continue
            target = db.columns(spec.name)
            path = _download_checked(storage, conf, entry, folder)
            if target is None:
                # This version has no such table (task_fail after Airflow 2.10): read, not imported.
                verify_file(path, entry, box)
                tables[spec.name], columns[spec.name], lost = _table_missing(db, spec, entry)
                not_carried += lost
                continue
            lines, exported, provided = _imported_lines(db, spec, entry, file_lines(path, box, entry.file))
            mapping = map_columns(spec.name, exported, target, provided=provided)
            counts = db.import_table(
                spec, mapping, lines, on_conflict=conf.on_conflict, exported_at=manifest.exported_at
            )
            os.remove(path)
            tables[spec.name] = counts.to_json()
            columns[spec.name] = {
                "dropped": list(mapping.dropped),
                "filled": [name for name, _ in mapping.filled],
            }
            _outcome(spec, counts, conf.on_conflict, conflicts, not_carried)
            log.info(
                "%s: read %d, inserted %d, updated %d, identical %d, conflicts %d; dropped %s, filled %s",
                spec.name,
                counts.read,
                counts.inserted,
                counts.updated,
                counts.identical,
                counts.conflicts,
                list(mapping.dropped),
                [name for name, _ in mapping.filled],
            )
            if counts.read != entry.rows:
                problems.append(f"{spec.name}: loaded {counts.read} rows, the manifest says {entry.rows}")
            elif not counts.accounted():
                problems.append(
                    f"{spec.name}: read {counts.read} but inserted {counts.inserted} + updated "
                    f"{counts.updated} + identical {counts.identical} + conflicts {counts.conflicts} "
                    "do not add up"
                )
            elif not counts.landed():
                problems.append(
                    f"{spec.name}: {counts.missing} exported rows are not in the target as exported, but "
                    f"{counts.conflicts - counts.overwritten} conflicts were left to the target"
                )
    if problems:
        raise VerificationError("the import does not match the export: " + "; ".join(problems))
    failed = {table: found for table, found in conflicts.items() if found["resolution"] == "failed"}
    if failed:
        raise ConflictError(_conflict_message(failed, conf.on_conflict))
    synthesized: dict[str, Any] = {}
    if conf.target_becomes_airflow_3:
        synthesized, lost = _before_airflow_3(db, conf, manifest, tables)
        not_carried += lost
    return {
        "phase": conf.phase,
        "tables": tables,
        "columns": columns,
        "conflicts": conflicts,
        "on_conflict": conf.on_conflict,
        "not_carried": not_carried,
        "synthesized": synthesized,
        "verified": True,
        "timings": {"import_started_at": started_at, "imported_at": now_iso(), "verified_at": now_iso()},
    }


def _outcome(
    spec: TableSpec,
    counts: TableCounts,
    on_conflict: str,
    conflicts: dict[str, dict[str, Any]],
    not_carried: list[dict[str, Any]],
) -> None:
    """A table's conflicts, and its rows dropped for DAGs the target lacks, into the result's lists."""
    if counts.conflicts:
        conflicts[spec.name] = _conflict_summary(counts, on_conflict)
    if counts.dropped:
        reason = f"for DAGs the target does not have: {', '.join(counts.dropped_dags)}"
        not_carried.append(_not_carried(spec.name, counts.dropped, reason))


def _table_missing(
    db: MetadataDatabase, spec: TableSpec, entry: TableEntry
) -> tuple[dict[str, int], dict[str, Any], list[dict[str, Any]]]:
    """A table the target's Airflow lacks: its rows read, none imported, and the line saying so."""
    log.info("%s: the target has no such table; %d rows not imported", spec.name, entry.rows)
    counts = TableCounts(read=entry.rows, dropped=entry.rows)
    columns = {"dropped": [c.name for c in entry.columns], "filled": [], "table_missing": True}
    reason = f"Airflow {db.airflow_version()} has no {spec.name} table"
    return counts.to_json(), columns, [_not_carried(spec.name, entry.rows, reason)] if entry.rows else []


def _before_airflow_3(
    db: MetadataDatabase, conf: RunConf, manifest: Manifest, tables: Mapping[str, Mapping[str, int]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """For a target that becomes Airflow 3: the failed tries only task_fail records written to
    task_instance_history (Airflow 3's migration drops task_fail), and the lines for what that
    migration drops. Returns (synthesized, not_carried)."""
    history = db.synthesize_try_history()
    lost: list[dict[str, Any]] = []
    synthesized: dict[str, Any] = {}
    if history.unsupported:
        fails = tables.get("task_fail", {}).get("read", 0)
        if fails:
            lost.append(
                _not_carried(
                    "task_fail",
                    fails,
                    f"Airflow {db.airflow_version()} has no task_instance_history to keep the failed tries "
                    f"in before Airflow {conf.target_final_version} drops task_fail",
                )
            )
    else:
        synthesized["task_instance_history"] = {
            **history.to_json(),
            "why": f"the target becomes Airflow {conf.target_final_version}, whose migration drops "
            f"task_fail; the source (Airflow {manifest.source_airflow_version}) recorded these failed "
            "tries only there. Written: state failed, times from task_fail, try numbers counted back "
            "from the task instance's, the task's settings from the task instance; hostname, pid, job "
            "and queued time unknown (null)",
        }
        if history.unnumbered:
            lost.append(
                _not_carried(
                    "task_fail",
                    history.unnumbered,
                    "more failures than the task instance's tries: no try number to write them under "
                    f"in task_instance_history before Airflow {conf.target_final_version} drops task_fail",
                )
            )
        log.info(
            "task_instance_history: %d tries written from task_fail (%d candidates)",
            history.written,
            history.candidates,
        )
    sla = tables.get("sla_miss", {}).get("read", 0)
    if sla:
        lost.append(_not_carried("sla_miss", sla, SLA_MISS_GONE))
    return synthesized, lost


def unpause_dags(
    db: MetadataDatabase,
    storage: Storage,
    conf: RunConf,
    imported: Mapping[str, Any],
    key_service: KeyService,
) -> dict[str, Any]:
    """Write the import's result under `{prefix}/import/{phase}/`. The bulk never unpauses; the
    cutover unpauses exactly the DAGs the source had active (unless the conf says not to)."""
    # Read again and authenticated again: the DAGs unpaused are the ones the export wrote.
    manifest, _ = open_manifest(storage, conf, key_service)
    known = db.dag_pause_states()
    active = [dag_id for dag_id in manifest.active_dags if dag_id not in PROJECT_DAG_IDS]
    missing = sorted(dag_id for dag_id in active if dag_id not in known)
    unpause = conf.phase == PHASE_CUTOVER and conf.unpause_dags
    unpaused = sorted(dag_id for dag_id in active if dag_id in known) if unpause else []
    db.set_paused(unpaused, paused=False)
    timings = dict(imported.get("timings", {}))
    if unpause:
        timings["unpaused_at"] = now_iso()
    result = {
        "format_version": FORMAT_VERSION,
        "migrationId": conf.migration_id,
        "phase": conf.phase,
        "source_airflow_version": manifest.source_airflow_version,
        "source_schema_revision": manifest.schema_revision,
        "target_airflow_version": db.airflow_version(),
        "target_schema_revision": db.schema_revision(),
        "imported_at": timings.get("imported_at", now_iso()),
        "verified": bool(imported.get("verified")),
        "tables": dict(imported.get("tables", {})),
        "columns": dict(imported.get("columns", {})),
        "conflicts": dict(imported.get("conflicts", {})),
        "on_conflict": str(imported.get("on_conflict", conf.on_conflict)),
        "not_carried": list(imported.get("not_carried", [])),
        "synthesized": dict(imported.get("synthesized", {})),
        "active_dags": list(manifest.active_dags),
        "unpaused_dags": unpaused,
        # Active in the source but unknown to the target (not parsed, or failing to import there).
        "missing_dags": missing,
        "timings": timings,
    }
    storage.put(conf.import_key(RESULT_FILE), json_bytes(result))
    log.info("unpaused %d DAGs; %d active DAGs are not in this environment", len(unpaused), len(missing))
    return result


# ---------------------------------------------------------------------------------------------
# The DAGs' tasks, shared by the DAG files and the emulator
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskContext:
    db: MetadataDatabase
    storage: Storage
    conf: RunConf
    # Return values of the DAG's earlier tasks, by task id (XCom in Airflow).
    upstream: Mapping[str, Any]
    keys: KeyService | None = None
    workdir: str | None = field(default=None)
    # The drain's waiting and time (the emulator's are instant and deterministic).
    sleep: Callable[[float], Any] | None = None
    clock: Callable[[], datetime] | None = None
    poll_seconds: float = DRAIN_POLL_SECONDS

    def key_service(self) -> KeyService:
        if self.keys is not None:
            return self.keys
        if self.conf.self_managed is not None:
            return PublicKeySealing(self.conf.self_managed.public_key)
        return KmsKeys.default()


TaskStep = Callable[[TaskContext], Any]

DAG_TASKS: dict[str, tuple[tuple[str, TaskStep], ...]] = {
    EXPORT_DAG_ID: (
        # phase bulk: pause and drain do nothing; export_tables writes the bulk.
        ("pause", lambda task: pause(task.db, task.storage, task.conf)),
        (
            "drain",
            lambda task: drain(
                task.db,
                task.storage,
                task.conf,
                task.upstream.get("pause"),
                sleep=task.sleep,
                clock=task.clock,
                poll_seconds=task.poll_seconds,
            ),
        ),
        (
            "export_tables",
            lambda task: export_tables(
                task.db,
                task.storage,
                task.conf,
                task.key_service(),
                task.upstream,
                clock=task.clock,
                workdir=task.workdir,
            ),
        ),
    ),
    IMPORT_DAG_ID: (
        (
            "verify_export",
            lambda task: verify_export(
                task.db, task.storage, task.conf, task.key_service(), workdir=task.workdir
            ),
        ),
        ("pause_dags", lambda task: pause_dags(task.db)),
        (
            "import_tables",
            lambda task: import_tables(
                task.db, task.storage, task.conf, task.key_service(), workdir=task.workdir
            ),
        ),
        (
            "unpause_dags",
            lambda task: unpause_dags(
                task.db, task.storage, task.conf, task.upstream.get("import_tables") or {}, task.key_service()
            ),
        ),
    ),
}


def task_ids(dag_id: str) -> tuple[str, ...]:
    """The DAG's tasks in the order they run (each depends on the one before)."""
    return tuple(task_id for task_id, _ in DAG_TASKS[dag_id])


def run_task(dag_id: str, task_id: str, context: TaskContext) -> Any:
    steps = dict(DAG_TASKS[dag_id])
    if task_id not in steps:
        raise MetadataError(f"{dag_id} has no task {task_id}")
    return steps[task_id](context)


# What tells the two project DAGs apart beyond their tasks: a description, and how long a run may
# take (the export's drain may wait up to 12 hours, the pipeline's limit on drainTimeoutMinutes).
DAG_DECLARATIONS: dict[str, tuple[str, timedelta]] = {
    EXPORT_DAG_ID: (
        "mwaa-migrate: export this environment's metadata (bulk, or pause, drain and delta)",
        timedelta(hours=16),
    ),
    IMPORT_DAG_ID: ("mwaa-migrate: import another environment's exported metadata", timedelta(hours=4)),
}


def project_dag(dag_id: str, doc_md: str | None = None) -> Any:
    """The project DAG: manual (never scheduled), created paused, one run at a time, no task retried
    by Airflow (the pipeline decides), its tasks DAG_TASKS' steps in order."""
    from airflow import DAG  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
    from airflow.operators.python import (  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
        PythonOperator,
    )

    description, run_timeout = DAG_DECLARATIONS[dag_id]
    with DAG(
        dag_id=dag_id,
        description=description,
        schedule=None,
        start_date=datetime(2024, 1, 1, tzinfo=UTC),
        catchup=False,
        is_paused_upon_creation=True,
        max_active_runs=1,
        dagrun_timeout=run_timeout,
        default_args={"owner": "mwaa-migrate", "retries": 0},
        tags=["mwaa-migrate"],
        doc_md=doc_md,
    ) as dag:
        previous = None
        for task_id in task_ids(dag_id):
            task = PythonOperator(task_id=task_id, python_callable=airflow_task(dag_id, task_id))
            if previous is not None:
                previous >> task
            previous = task
    return dag


def airflow_task(dag_id: str, task_id: str) -> Callable[..., Any]:
    """The python_callable of one task: reads the run's conf and earlier tasks' XComs, runs the
    step in one metadata session (committed when the step returns, rolled back if it raises)."""
    earlier = task_ids(dag_id)[: task_ids(dag_id).index(task_id)]

    def call(**context: Any) -> Any:
        from airflow.utils.session import create_session  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

        conf = RunConf.from_conf(context["dag_run"].conf)
        upstream = {earlier_id: context["ti"].xcom_pull(task_ids=earlier_id) for earlier_id in earlier}
        storage = conf.storage()
        with create_session() as session:
            db = PostgresDatabase.from_airflow_session(session)
            return run_task(dag_id, task_id, TaskContext(db, storage, conf, upstream))

    call.__name__ = f"{dag_id}__{task_id}"
    return call
