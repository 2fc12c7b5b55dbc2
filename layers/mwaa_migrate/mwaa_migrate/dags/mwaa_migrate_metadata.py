"""mwaa-migrate's metadata library, shared by the export and import DAGs.

This file is uploaded next to `mwaa_migrate_export.py` and `mwaa_migrate_import.py` into an
environment's DAG folder (MWAA puts that folder on sys.path), so it is one self-contained module:
the standard library at module level, boto3 and Airflow imported only inside the functions that
need them. MWAA runs Airflow 2.4-2.6 on Python 3.10, so nothing here needs a newer Python.

The export format (FORMAT_VERSION 1) under `s3://{bucket}/{prefix}/export/`:

- `manifest.json`: format name and version, migrationId, source_airflow_version, exported_at, and
  per table `{"file", "rows", "sha256", "key", "columns": [{"name", "type"}]}`, plus `active_dags`
  (the DAGs that were unpaused when the export cut over).
- one gzipped JSON Lines file per table (`variable.jsonl.gz`, ...): one object per line, column
  name -> JSON value, datetimes as ISO 8601 UTC strings. `sha256` is over the gzipped bytes.

Later versions add tables and manifest keys; readers ignore keys they do not know and refuse a
format version newer than theirs. The import maps columns by name onto the target's tables and
inserts rows idempotently by natural key, then writes `s3://{bucket}/{prefix}/import/result.json`.

The core (format, storage, column mapping, merge plan, the tasks' steps) runs against two
interfaces, `Storage` and `MetadataDatabase`; `AirflowDatabase` implements the latter with
Airflow 2.x's ORM inside the environment, and the project's emulator with in-memory tables.
Values of variables never reach a log line.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

# MWAA runs Airflow 2.4-2.6 on Python 3.10, which has no datetime.UTC.
UTC = timezone.utc  # noqa: UP017

FORMAT_NAME = "mwaa-migrate-metadata"
FORMAT_VERSION = 1

EXPORT_DAG_ID = "mwaa_migrate_export"
IMPORT_DAG_ID = "mwaa_migrate_import"
# The project's own DAGs: never paused or unpaused by a migration, their runs never carried.
PROJECT_DAG_IDS = frozenset({EXPORT_DAG_ID, IMPORT_DAG_ID})

DEFAULT_POOL = "default_pool"
FINISHED_RUN_STATES = frozenset({"success", "failed"})
# The ORM these DAGs use is Airflow 2's; Airflow 3 forbids tasks to use it.
SUPPORTED_AIRFLOW_MAJOR = 2

MANIFEST_FILE = "manifest.json"
CUTOVER_FILE = "cutover.json"
RESULT_FILE = "result.json"

# Column types recorded in the manifest. Only "datetime" changes how a value is read back; the
# others describe the column for people and later readers.
COLUMN_TYPES = frozenset({"string", "integer", "float", "boolean", "datetime", "json"})


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


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def _finished_user_run(row: Mapping[str, Any]) -> bool:
    return row.get("dag_id") not in PROJECT_DAG_IDS and row.get("state") in FINISHED_RUN_STATES


@dataclass(frozen=True)
class TableSpec:
    """What the migration knows about one metadata table."""

    name: str
    # The natural key: a row whose key is already in the target is skipped, never overwritten.
    key: tuple[str, ...]
    # Other unique constraints of the table: a row clashing on one of them is skipped as a conflict.
    unique: tuple[tuple[str, ...], ...] = ()
    # Ids and storage details local to one database: never exported, never inserted.
    local_columns: frozenset[str] = frozenset()
    # Natural keys of rows the migration never exports nor touches in the target.
    protected_keys: frozenset[tuple[Any, ...]] = frozenset()
    # Rows the export carries (after protected rows are left out).
    export_filter: Callable[[Mapping[str, Any]], bool] | None = None

    @property
    def file(self) -> str:
        return f"{self.name}.jsonl.gz"

    def key_of(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row.get(column) for column in self.key)

    def exports(self, row: Mapping[str, Any]) -> bool:
        if self.key_of(row) in self.protected_keys:
            return False
        return self.export_filter is None or self.export_filter(row)


# The tables this format version carries, in the order they are exported and imported.
TABLES: tuple[TableSpec, ...] = (
    TableSpec("variable", key=("key",), local_columns=frozenset({"id", "is_encrypted"})),
    TableSpec(
        "slot_pool",
        key=("pool",),
        local_columns=frozenset({"id"}),
        protected_keys=frozenset({(DEFAULT_POOL,)}),
    ),
    TableSpec(
        "dag_run",
        key=("dag_id", "run_id"),
        unique=(("dag_id", "execution_date"),),
        # log_template_id and creating_job_id point at rows of the source's own log_template/job.
        local_columns=frozenset({"id", "log_template_id", "creating_job_id"}),
        export_filter=_finished_user_run,
    ),
)
TABLES_BY_NAME: dict[str, TableSpec] = {spec.name: spec for spec in TABLES}


def table_spec(name: str) -> TableSpec:
    try:
        return TABLES_BY_NAME[name]
    except KeyError:
        raise MetadataError(f"'{name}' is not a table this format carries") from None


@dataclass(frozen=True)
class Column:
    """One column of a table as a database (or the manifest) describes it."""

    name: str
    type: str = "json"
    nullable: bool = True
    # The database fills the column itself when an insert leaves it out.
    has_default: bool = False

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type}

    @classmethod
    def from_json(cls, data: Any) -> Column:
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise VerificationError(f"a manifest column must be an object with a name, not {data!r}")
        kind = data.get("type", "json")
        return cls(name=data["name"], type=kind if kind in COLUMN_TYPES else "json")


# ---------------------------------------------------------------------------------------------
# Column mapping
# ---------------------------------------------------------------------------------------------


def _run_type_from_run_id(row: Mapping[str, Any]) -> str:
    run_id = str(row.get("run_id") or "")
    prefix = run_id.split("__", 1)[0] if "__" in run_id else ""
    return prefix if prefix in {"scheduled", "manual", "backfill", "dataset_triggered"} else "manual"


FillRule = Callable[[Mapping[str, Any]], Any]

# The one place that says how to fill a column the target requires and the export lacks (or has
# null), as when the target runs a newer Airflow 2.x than the source. Keep it small.
FILL_RULES: dict[tuple[str, str], FillRule] = {
    ("slot_pool", "include_deferred"): lambda row: False,  # 2.7, NOT NULL
    ("dag_run", "clear_number"): lambda row: 0,  # 2.8, NOT NULL
    ("dag_run", "run_type"): _run_type_from_run_id,  # NOT NULL; the run id starts with it
}


@dataclass(frozen=True)
class ColumnMapping:
    """How the rows of one exported table become rows of the target's table."""

    table: str
    kept: tuple[str, ...]  # exported columns the target has
    dropped: tuple[str, ...]  # exported columns the target lacks (or keeps local)
    filled: tuple[str, ...]  # target columns the export lacks, filled by FILL_RULES
    refill: tuple[str, ...]  # kept NOT NULL columns FILL_RULES fills when a row has null
    datetime_columns: frozenset[str] = field(default_factory=frozenset)

    def apply(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """An exported row (JSON values) as the target's row (datetimes as aware datetimes)."""
        out: dict[str, Any] = {}
        for name in self.kept:
            value = row.get(name)
            if value is None and name in self.refill:
                value = FILL_RULES[(self.table, name)](row)
            elif name in self.datetime_columns and value is not None:
                value = parse_datetime(value)
            out[name] = value
        for name in self.filled:
            out[name] = FILL_RULES[(self.table, name)](row)
        return out


def map_columns(table: str, exported: Sequence[Column], target: Sequence[Column]) -> ColumnMapping:
    """Match the export's columns to the target's by name. Raises MappingError when the target
    requires a column that neither the export nor FILL_RULES provides."""
    spec = table_spec(table)
    target_columns = {column.name: column for column in target if column.name not in spec.local_columns}
    exported_names = [column.name for column in exported]
    kept = tuple(name for name in exported_names if name in target_columns)
    dropped = tuple(name for name in exported_names if name not in target_columns)
    filled: list[str] = []
    unfillable: list[str] = []
    for name, column in target_columns.items():
        if name in kept:
            continue
        if (table, name) in FILL_RULES:
            filled.append(name)
        elif not column.nullable and not column.has_default:
            unfillable.append(name)
    if unfillable:
        raise MappingError(
            f"{table}: the target requires {', '.join(unfillable)}, which the export lacks and no rule "
            "in FILL_RULES fills"
        )
    refill = tuple(name for name in kept if (table, name) in FILL_RULES and not target_columns[name].nullable)
    datetimes = frozenset(column.name for column in exported if column.type == "datetime")
    return ColumnMapping(
        table=table,
        kept=kept,
        dropped=dropped,
        filled=tuple(filled),
        refill=refill,
        datetime_columns=datetimes & set(kept),
    )


# ---------------------------------------------------------------------------------------------
# Values and table files
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
    # Round trip through JSON so nested values (a run's conf) are plain JSON too.
    return json.loads(json.dumps(value, default=_json_default))


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


def sha256_hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def encode_table(rows: Iterable[Mapping[str, Any]]) -> tuple[bytes, int]:
    """Gzipped JSON Lines (mtime 0, so the same rows give the same bytes) and the row count."""
    lines = [json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in rows]
    text = "".join(f"{line}\n" for line in lines)
    return gzip.compress(text.encode("utf-8"), mtime=0), len(lines)


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


def decode_table(table: str, body: bytes, entry: TableEntry) -> list[dict[str, Any]]:
    """The rows of a table file, after checking its sha256, its row count and every line."""
    digest = sha256_hex(body)
    if digest != entry.sha256:
        raise VerificationError(
            f"{entry.file}: sha256 {digest} does not match the manifest's {entry.sha256}; "
            "the file changed or is corrupt"
        )
    try:
        text = gzip.decompress(body)
    except (OSError, EOFError) as error:
        raise VerificationError(f"{entry.file}: not a gzip file ({error})") from None
    # Split on "\n" only: str.splitlines() would also split inside values at U+2028 and friends.
    lines = [line for line in text.split(b"\n") if line]
    if len(lines) != entry.rows:
        raise VerificationError(f"{entry.file}: holds {len(lines)} rows, the manifest says {entry.rows}")
    known = {column.name for column in entry.columns}
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise VerificationError(
                f"{entry.file} line {number}: not JSON ({error.__class__.__name__})"
            ) from None
        if not isinstance(row, dict):
            raise VerificationError(f"{entry.file} line {number}: not a JSON object")
        unknown = sorted(set(row) - known)
        if known and unknown:
            raise VerificationError(
                f"{entry.file} line {number}: columns {unknown} are not in the manifest of {table}"
            )
        rows.append(row)
    return rows


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
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "migrationId": self.migration_id,
            "source_airflow_version": self.source_airflow_version,
            "exported_at": self.exported_at,
            "tables": {name: entry.to_json() for name, entry in self.tables.items()},
            "active_dags": list(self.active_dags),
        }

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT_NAME:
            raise VerificationError(f"the manifest is not a {FORMAT_NAME} manifest")
        version = data.get("format_version")
        if not isinstance(version, int) or version < 1 or version > FORMAT_VERSION:
            raise VerificationError(
                f"the manifest has format version {version!r}; "
                f"this import reads versions 1 to {FORMAT_VERSION}"
            )
        tables = data.get("tables")
        active = data.get("active_dags", [])
        if not isinstance(tables, Mapping) or not isinstance(active, list):
            raise VerificationError("the manifest's tables or active_dags are malformed")
        return cls(
            migration_id=str(data.get("migrationId", "")),
            source_airflow_version=str(data.get("source_airflow_version", "")),
            exported_at=str(data.get("exported_at", "")),
            tables={str(name): TableEntry.from_json(str(name), entry) for name, entry in tables.items()},
            active_dags=tuple(str(dag_id) for dag_id in active),
            format_version=version,
        )


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------


class Storage(Protocol):
    """Where the export lives: whole objects by key."""

    def put(self, key: str, body: bytes) -> None: ...

    def get(self, key: str) -> bytes:
        """The object's bytes; raises MissingObjectError when there is none."""
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

    def put(self, key: str, body: bytes) -> None:
        content_type = "application/json" if key.endswith(".json") else "application/gzip"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError  # noqa: PLC0415  (kept out of DAG parsing)

        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                raise MissingObjectError(f"s3://{self.bucket}/{key} does not exist") from None
            raise


# ---------------------------------------------------------------------------------------------
# The metadata database
# ---------------------------------------------------------------------------------------------


class MetadataDatabase(Protocol):
    """An environment's Airflow metadata as the steps see it. All changes a step makes land
    together or not at all (one transaction per task)."""

    def airflow_version(self) -> str: ...

    def columns(self, table: str) -> list[Column]:
        """Every column of the table, local ones included."""
        ...

    def read_rows(self, table: str) -> Iterable[Mapping[str, Any]]:
        """Every row, column name -> value; variable values decrypted."""
        ...

    def existing_keys(self, table: str, columns: Sequence[str]) -> Iterable[tuple[Any, ...]]:
        """The values of these columns in every row of the table."""
        ...

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert rows whose columns all exist in the table (datetimes as aware datetimes)."""
        ...

    def dag_pause_states(self) -> dict[str, bool]:
        """dag_id -> is_paused for every DAG the environment knows (and whose file still exists)."""
        ...

    def set_paused(self, dag_ids: Collection[str], *, paused: bool) -> None: ...


# ---------------------------------------------------------------------------------------------
# Merge plan
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergePlan:
    table: str
    insert: list[dict[str, Any]]
    # Rows left out: already present by natural key, protected, repeated in the file, or conflicting.
    skipped: int
    # Natural keys of skipped rows that clash with a different row on another unique constraint.
    conflicts: list[tuple[Any, ...]]

    @property
    def read(self) -> int:
        return len(self.insert) + self.skipped


def _key(row: Mapping[str, Any], columns: Sequence[str], types: Mapping[str, str]) -> tuple[Any, ...]:
    return tuple(encode_value(row.get(name), types.get(name, "json")) for name in columns)


def plan_merge(
    table: str,
    rows: Sequence[Mapping[str, Any]],
    existing: Mapping[tuple[str, ...], Collection[tuple[Any, ...]]],
    column_types: Mapping[str, str] | None = None,
) -> MergePlan:
    """Which exported rows to insert. `existing` maps the natural key's columns (and each other
    unique constraint's) to the target's values of them, encoded like the export's."""
    spec = table_spec(table)
    types = column_types or {}
    constraints = (spec.key, *spec.unique)
    taken = {columns: set(existing.get(columns, ())) for columns in constraints}
    insert: list[dict[str, Any]] = []
    skipped = 0
    conflicts: list[tuple[Any, ...]] = []
    for row in rows:
        key = _key(row, spec.key, types)
        if key in spec.protected_keys or key in taken[spec.key]:
            skipped += 1
            continue
        clashes = [columns for columns in spec.unique if _key(row, columns, types) in taken[columns]]
        if clashes:
            skipped += 1
            conflicts.append(key)
            continue
        for columns in constraints:
            taken[columns].add(_key(row, columns, types))
        insert.append(dict(row))
    return MergePlan(table=table, insert=insert, skipped=skipped, conflicts=conflicts)


# ---------------------------------------------------------------------------------------------
# Run conf and the tasks' steps
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunConf:
    """The conf the pipeline triggers both DAGs with."""

    bucket: str
    prefix: str
    migration_id: str
    unpause_dags: bool = True

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any] | None) -> RunConf:
        conf = conf or {}
        values: dict[str, str] = {}
        for name in ("bucket", "prefix", "migrationId"):
            value = conf.get(name)
            if not isinstance(value, str) or (name != "prefix" and not value.strip()):
                raise ConfError(f"the DAG run's conf needs '{name}' as a non-empty string")
            values[name] = value.strip()
        unpause = conf.get("unpauseDags", True)
        if not isinstance(unpause, bool):
            raise ConfError("the DAG run's conf 'unpauseDags' must be true or false")
        return cls(
            bucket=values["bucket"],
            prefix=values["prefix"].strip("/"),
            migration_id=values["migrationId"],
            unpause_dags=unpause,
        )

    def key(self, part: str, name: str) -> str:
        return "/".join(piece for piece in (self.prefix, part, name) if piece)


def now_iso() -> str:
    return format_datetime(datetime.now(UTC))


def check_airflow_version(db: MetadataDatabase) -> str:
    version = db.airflow_version()
    major = version.split(".", 1)[0]
    if not major.isdigit() or int(major) != SUPPORTED_AIRFLOW_MAJOR:
        raise UnsupportedAirflowError(
            f"these DAGs use Airflow {SUPPORTED_AIRFLOW_MAJOR}.x's metadata ORM; this environment runs "
            f"Airflow {version}"
        )
    return version


def carried_columns(db: MetadataDatabase, spec: TableSpec) -> list[Column]:
    return [column for column in db.columns(spec.name) if column.name not in spec.local_columns]


def _read_json(storage: Storage, key: str) -> Any:
    body = storage.get(key)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise VerificationError(f"{key} is not JSON") from None


def cutover(db: MetadataDatabase, storage: Storage, conf: RunConf) -> list[str]:
    """Record which DAGs are active (unpaused), then pause them. The record is written first and
    reused by a repeated run, so a retry after the pause still knows what was active."""
    check_airflow_version(db)
    key = conf.key("export", CUTOVER_FILE)
    try:
        recorded = _read_json(storage, key)
    except MissingObjectError:
        recorded = None
    if recorded is not None and not isinstance(recorded, dict):
        raise VerificationError(f"{key} is not a JSON object")
    if recorded is not None and recorded.get("migrationId") != conf.migration_id:
        raise VerificationError(f"{key} belongs to migration {recorded.get('migrationId')!r}, not this one")
    states = db.dag_pause_states()
    unpaused = {dag_id for dag_id, paused in states.items() if not paused and dag_id not in PROJECT_DAG_IDS}
    active = sorted(unpaused | set(recorded.get("active_dags", []) if recorded else []))
    if recorded is None or sorted(recorded.get("active_dags", [])) != active:
        storage.put(
            key, json_bytes({"migrationId": conf.migration_id, "active_dags": active, "at": now_iso()})
        )
    db.set_paused(active, paused=True)
    log.info("cut over: paused %d active DAGs", len(active))
    return active


def export_tables(
    db: MetadataDatabase, storage: Storage, conf: RunConf, active_dags: Sequence[str]
) -> dict[str, Any]:
    """Write every table's file, then the manifest (last: a manifest means a whole export)."""
    version = check_airflow_version(db)
    entries: dict[str, TableEntry] = {}
    for spec in TABLES:
        columns = carried_columns(db, spec)
        rows = [encode_row(spec.name, row, columns) for row in db.read_rows(spec.name) if spec.exports(row)]
        body, count = encode_table(rows)
        storage.put(conf.key("export", spec.file), body)
        entries[spec.name] = TableEntry(
            file=spec.file, rows=count, sha256=sha256_hex(body), key=spec.key, columns=tuple(columns)
        )
        log.info("exported %d rows of %s", count, spec.name)
    manifest = Manifest(
        migration_id=conf.migration_id,
        source_airflow_version=version,
        exported_at=now_iso(),
        tables=entries,
        active_dags=tuple(sorted(active_dags)),
    )
    storage.put(conf.key("export", MANIFEST_FILE), json_bytes(manifest.to_json()))
    return {
        "tables": {name: entry.rows for name, entry in entries.items()},
        "active_dags": list(manifest.active_dags),
    }


def read_manifest(storage: Storage, conf: RunConf) -> Manifest:
    key = conf.key("export", MANIFEST_FILE)
    manifest = Manifest.from_json(_read_json(storage, key))
    if manifest.migration_id != conf.migration_id:
        raise VerificationError(
            f"{key} belongs to migration {manifest.migration_id!r}, not {conf.migration_id!r}"
        )
    unknown = sorted(set(manifest.tables) - set(TABLES_BY_NAME))
    if unknown:
        raise VerificationError(f"the export holds tables this import cannot load: {', '.join(unknown)}")
    return manifest


def read_table(storage: Storage, conf: RunConf, table: str, entry: TableEntry) -> list[dict[str, Any]]:
    return decode_table(table, storage.get(conf.key("export", entry.file)), entry)


def verify_export(db: MetadataDatabase, storage: Storage, conf: RunConf) -> dict[str, Any]:
    """Check the manifest and every file before anything in the target changes."""
    check_airflow_version(db)
    manifest = read_manifest(storage, conf)
    for name, entry in manifest.tables.items():
        read_table(storage, conf, name, entry)
    log.info("verified %d table files", len(manifest.tables))
    return {"tables": {name: entry.rows for name, entry in manifest.tables.items()}}


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


def import_tables(db: MetadataDatabase, storage: Storage, conf: RunConf) -> dict[str, Any]:
    """Insert the rows the target lacks. Every file is verified again as it is read."""
    manifest = read_manifest(storage, conf)
    tables: dict[str, dict[str, int]] = {}
    columns: dict[str, dict[str, list[str]]] = {}
    conflicts: dict[str, list[list[Any]]] = {}
    for spec in TABLES:
        entry = manifest.tables.get(spec.name)
        if entry is None:
            continue
        rows = read_table(storage, conf, spec.name, entry)
        target = db.columns(spec.name)
        mapping = map_columns(spec.name, entry.columns, target)
        types = {column.name: column.type for column in entry.columns}
        target_types = {column.name: column.type for column in target}
        existing = {
            constraint: {
                _key(dict(zip(constraint, values, strict=True)), constraint, target_types)
                for values in db.existing_keys(spec.name, constraint)
            }
            for constraint in (spec.key, *spec.unique)
        }
        plan = plan_merge(spec.name, rows, existing, types)
        db.insert_rows(spec.name, [mapping.apply(row) for row in plan.insert])
        tables[spec.name] = {
            "read": len(rows),
            "inserted": len(plan.insert),
            "skipped": plan.skipped,
            "conflicts": len(plan.conflicts),
        }
        columns[spec.name] = {"dropped": list(mapping.dropped), "filled": list(mapping.filled)}
        if plan.conflicts:
            conflicts[spec.name] = [list(key) for key in plan.conflicts]
        log.info(
            "%s: read %d, inserted %d, skipped %d (%d conflicts); dropped columns %s, filled %s",
            spec.name,
            len(rows),
            len(plan.insert),
            plan.skipped,
            len(plan.conflicts),
            list(mapping.dropped),
            list(mapping.filled),
        )
    return {"tables": tables, "columns": columns, "conflicts": conflicts}


def unpause_dags(
    db: MetadataDatabase, storage: Storage, conf: RunConf, imported: Mapping[str, Any]
) -> dict[str, Any]:
    """Unpause exactly the DAGs that were active in the source (unless the conf says not to), then
    write the import's result."""
    manifest = read_manifest(storage, conf)
    known = db.dag_pause_states()
    active = [dag_id for dag_id in manifest.active_dags if dag_id not in PROJECT_DAG_IDS]
    missing = sorted(dag_id for dag_id in active if dag_id not in known)
    unpaused = sorted(dag_id for dag_id in active if dag_id in known) if conf.unpause_dags else []
    db.set_paused(unpaused, paused=False)
    result = {
        "format_version": FORMAT_VERSION,
        "migrationId": conf.migration_id,
        "source_airflow_version": manifest.source_airflow_version,
        "target_airflow_version": db.airflow_version(),
        "imported_at": now_iso(),
        "verified": True,
        "tables": dict(imported.get("tables", {})),
        "columns": dict(imported.get("columns", {})),
        "conflicts": dict(imported.get("conflicts", {})),
        "active_dags": list(manifest.active_dags),
        "unpaused_dags": unpaused,
        # Active in the source but unknown to the target (not parsed, or failing to import there).
        "missing_dags": missing,
    }
    storage.put(conf.key("import", RESULT_FILE), json_bytes(result))
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


TaskStep = Callable[[TaskContext], Any]

DAG_TASKS: dict[str, tuple[tuple[str, TaskStep], ...]] = {
    EXPORT_DAG_ID: (
        ("cutover", lambda task: cutover(task.db, task.storage, task.conf)),
        (
            "export_tables",
            lambda task: export_tables(task.db, task.storage, task.conf, task.upstream.get("cutover") or []),
        ),
    ),
    IMPORT_DAG_ID: (
        ("verify_export", lambda task: verify_export(task.db, task.storage, task.conf)),
        ("pause_dags", lambda task: pause_dags(task.db)),
        ("import_tables", lambda task: import_tables(task.db, task.storage, task.conf)),
        (
            "unpause_dags",
            lambda task: unpause_dags(
                task.db, task.storage, task.conf, task.upstream.get("import_tables") or {}
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


# ---------------------------------------------------------------------------------------------
# Airflow 2.x (2.4-2.11): the ORM behind MetadataDatabase, and the tasks' callables
# ---------------------------------------------------------------------------------------------


def _column_type(column: Any) -> str:
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return "json"
    if python_type is bool:
        return "boolean"
    if python_type is datetime:
        return "datetime"
    return {str: "string", int: "integer", float: "float"}.get(python_type, "json")


class AirflowDatabase:
    """MetadataDatabase over Airflow 2.x's ORM session (inside an environment, in a task)."""

    def __init__(self, session: Any) -> None:
        self.session = session

    @staticmethod
    def _model(table: str) -> Any:
        from airflow.models import DagRun, Pool, Variable  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

        return {"variable": Variable, "slot_pool": Pool, "dag_run": DagRun}[table]

    def airflow_version(self) -> str:
        from airflow import __version__  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

        return str(__version__)

    def columns(self, table: str) -> list[Column]:
        return [
            Column(
                name=column.name,
                type=_column_type(column),
                nullable=bool(column.nullable),
                has_default=column.default is not None
                or column.server_default is not None
                or (column.primary_key and column.autoincrement in {True, "auto"}),
            )
            for column in self._model(table).__table__.columns
        ]

    def read_rows(self, table: str) -> Iterator[dict[str, Any]]:
        from sqlalchemy import select  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

        result = self.session.execute(select(self._model(table).__table__))
        if table != "variable":
            for row in result.mappings():
                yield dict(row)
            return
        from airflow.models.crypto import get_fernet  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
        from cryptography.fernet import InvalidToken  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

        fernet = get_fernet()
        for row in result.mappings():
            variable = dict(row)
            if variable.get("is_encrypted") and variable.get("val") is not None:
                try:
                    variable["val"] = fernet.decrypt(variable["val"].encode("utf-8")).decode("utf-8")
                except InvalidToken:
                    raise ExportError(
                        f"variable {variable.get('key')!r}: "
                        "this environment's Fernet key cannot decrypt its value"
                    ) from None
                variable["is_encrypted"] = False
            yield variable

    def existing_keys(self, table: str, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        from sqlalchemy import select  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

        table_object = self._model(table).__table__
        for row in self.session.execute(select(*(table_object.c[name] for name in columns))):
            yield tuple(row)

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        if table == "variable":
            # Through the model, so the target's Fernet key encrypts each value.
            variable = self._model(table)
            for row in rows:
                self.session.add(
                    variable(key=row["key"], val=row.get("val"), description=row.get("description"))
                )
            self.session.flush()
            return
        self.session.execute(self._model(table).__table__.insert(), [dict(row) for row in rows])
        self.session.flush()

    def dag_pause_states(self) -> dict[str, bool]:
        from airflow.models import DagModel  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
        from sqlalchemy import select  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

        query = select(DagModel.dag_id, DagModel.is_paused).where(DagModel.is_active)
        return {str(dag_id): bool(paused) for dag_id, paused in self.session.execute(query)}

    def set_paused(self, dag_ids: Collection[str], *, paused: bool) -> None:
        if not dag_ids:
            return
        from airflow.models import DagModel  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
        from sqlalchemy import update  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

        statement = (
            update(DagModel)
            .where(DagModel.dag_id.in_(sorted(dag_ids)))
            .values(is_paused=paused)
            .execution_options(synchronize_session=False)
        )
        self.session.execute(statement)
        self.session.flush()


def airflow_task(dag_id: str, task_id: str) -> Callable[..., Any]:
    """The python_callable of one task: reads the run's conf and earlier tasks' XComs, runs the
    step in one metadata session (committed when the step returns, rolled back if it raises)."""
    earlier = task_ids(dag_id)[: task_ids(dag_id).index(task_id)]

    def call(**context: Any) -> Any:
        from airflow.utils.session import create_session  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

        conf = RunConf.from_conf(context["dag_run"].conf)
        upstream = {earlier_id: context["ti"].xcom_pull(task_ids=earlier_id) for earlier_id in earlier}
        storage = S3Storage.for_bucket(conf.bucket)
        with create_session() as session:
            return run_task(dag_id, task_id, TaskContext(AirflowDatabase(session), storage, conf, upstream))

    call.__name__ = f"{dag_id}__{task_id}"
    return call
