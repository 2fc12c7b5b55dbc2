"""One phase of the metadata benchmark, run with an Airflow installation's own Python (psycopg2,
cryptography) and the DAG folder's library on PYTHONPATH, as in an MWAA environment:

    python metadata_phase.py PHASE DSN FOLDER

PHASE is `export` (the export DAG's export_tables), `import` (the import DAG's import_tables),
`copy-out` (PostgreSQL's COPY ... TO STDOUT of the same tables and rows, the ceiling for reading)
or `copy-in` (COPY ... FROM STDIN of those rows into the same tables of a fresh database, the
ceiling for writing). Prints one JSON object: seconds, rows, peak resident memory of this process,
and the CPU seconds of this process and of its PostgreSQL backend (read from /proc: the server is
local), which other work on a shared machine changes less than it changes the seconds.

The downtime benchmark (benchmarks/downtime.py) runs whole DAGs, task by task as DAG_TASKS lists
them, each task committed on its own as in Airflow: `bulk-export` / `cutover-export` (the export
DAG: pause, drain, export_tables) and `bulk-import` / `cutover-import` (the import DAG:
verify_export, pause_dags, import_tables, unpause_dags) with the conf's phase bulk or cutover. Their
JSON adds `tasks`: each task's seconds.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from datetime import datetime
from pathlib import Path

import mwaa_migrate_metadata as metadata
import psycopg2

# The tables the benchmark fills; the others are empty and cost nothing measurable.
BULK = ("dag_run", "task_instance", "xcom", "log")
CONF = metadata.RunConf(
    bucket="local", prefix="bench", migration_id="bench", kms_key_id="local-key", phase="bulk"
)
# The bulk's watermark: after every run the benchmark's database holds.
WATERMARK = datetime.now(metadata.UTC)


class FolderStorage:
    """metadata.Storage in a local folder: the bucket is not what is measured."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def put(self, key: str, body: bytes) -> None:
        self._path(key).write_bytes(body)

    def get(self, key: str) -> bytes:
        if not (self.root / key).exists():
            raise metadata.MissingObjectError(key)
        return (self.root / key).read_bytes()

    def exists(self, key: str) -> bool:
        return (self.root / key).exists()

    def put_file(self, key: str, path: str) -> None:
        os.replace(path, self._path(key))
        Path(path).touch()  # the caller removes its temporary file

    def get_file(self, key: str, path: str) -> None:
        os.link(self.root / key, path)


class LocalKeys:
    """metadata.KeyService with each data key kept in the folder under its "ciphertext" (a random
    name), as KMS gives each export its own key (one KMS call is not what is measured)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, ciphertext: bytes) -> Path:
        return self.root / f"data-{ciphertext.hex()}.key"

    def generate_data_key(self, key_id: str, context: dict[str, str]) -> tuple[bytes, bytes]:
        key, ciphertext = os.urandom(32), os.urandom(16)
        self._path(ciphertext).write_bytes(key)
        return key, ciphertext

    def decrypt(self, key_id: str, ciphertext: bytes, context: dict[str, str]) -> bytes:
        return self._path(ciphertext).read_bytes()


# The downtime benchmark's phases: (DAG, the conf's phase).
DAG_PHASES = {
    "bulk-export": (metadata.EXPORT_DAG_ID, metadata.PHASE_BULK),
    "cutover-export": (metadata.EXPORT_DAG_ID, metadata.PHASE_CUTOVER),
    "bulk-import": (metadata.IMPORT_DAG_ID, metadata.PHASE_BULK),
    "cutover-import": (metadata.IMPORT_DAG_ID, metadata.PHASE_CUTOVER),
}


def run_dag(
    phase: str, connection: object, db: metadata.PostgresDatabase, folder: Path
) -> tuple[int, dict[str, float]]:
    """The DAG's tasks in order, each with the earlier ones' results (XComs) and its own commit.
    Returns the rows exported (or inserted + updated) and each task's seconds."""
    dag_id, dag_phase = DAG_PHASES[phase]
    conf = metadata.RunConf(
        bucket="local",
        prefix="bench",
        migration_id="bench",
        kms_key_id="local-key",
        phase=dag_phase,
        drain_timeout_minutes=1,
    )
    storage, keys = FolderStorage(folder), LocalKeys(folder)
    upstream: dict[str, object] = {}
    seconds: dict[str, float] = {}
    for task_id in metadata.task_ids(dag_id):
        started = time.perf_counter()
        context = metadata.TaskContext(db, storage, conf, dict(upstream), keys=keys, workdir=str(folder))
        upstream[task_id] = metadata.run_task(dag_id, task_id, context)
        connection.commit()  # type: ignore[attr-defined]
        seconds[task_id] = time.perf_counter() - started
    if dag_id == metadata.EXPORT_DAG_ID:
        rows = sum(upstream["export_tables"]["tables"].values())  # type: ignore[index]
    else:
        tables = upstream["import_tables"]["tables"].values()  # type: ignore[index]
        rows = sum(counts["inserted"] + counts["updated"] for counts in tables)
    return rows, seconds


class _Null:
    def write(self, data: bytes) -> int:
        return len(data)


def _copy_columns(db: metadata.PostgresDatabase, table: str) -> list[str]:
    spec = metadata.table_spec(table)
    return [column.name for column in metadata.carried_columns(spec, db.columns(table) or [])]


class BackendCpu:
    """User + system CPU seconds of the connection's PostgreSQL backend (a local server), read
    from /proc; None when it cannot be read."""

    def __init__(self, connection: object) -> None:
        with connection.cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute("SELECT pg_backend_pid()")
            self.pid = int(cursor.fetchone()[0])
        connection.commit()  # type: ignore[attr-defined]
        self.started = self.seconds()

    def seconds(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def used(self) -> float | None:
        now = self.seconds()
        return round(now - self.started, 2) if now is not None and self.started is not None else None


def main() -> None:
    phase, dsn, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    folder.mkdir(parents=True, exist_ok=True)
    connection = psycopg2.connect(dsn)
    backend = BackendCpu(connection)
    client_before = time.process_time()
    db = metadata.PostgresDatabase(connection, airflow_version="2.10.3", fernet=None)
    storage, keys = FolderStorage(folder), LocalKeys(folder)
    rows = 0
    tasks: dict[str, float] = {}
    started = time.perf_counter()
    if phase in DAG_PHASES:
        rows, tasks = run_dag(phase, connection, db, folder)
    elif phase == "export":
        result = metadata.export_bulk(db, storage, CONF, keys, watermark=WATERMARK, workdir=str(folder))
        rows = sum(result["tables"].values())
    elif phase == "import":
        result = metadata.import_tables(db, storage, CONF, keys, workdir=str(folder))
        rows = sum(counts["inserted"] for counts in result["tables"].values())
    elif phase == "copy-out":
        # The same columns and rows the export carries, in COPY's own text format, to nowhere.
        with connection.cursor() as cursor:
            for table in BULK:
                spec = metadata.table_spec(table)
                names = _copy_columns(db, table)
                if table == "xcom":
                    names = ["dag_run_id", *names]
                columns = ", ".join(f"t.{metadata._ident(c)}" for c in names)
                window = metadata.Window(metadata.PHASE_BULK, WATERMARK)
                query = f"SELECT {columns} FROM {table} t WHERE {db._filter(spec, 't', window)}"  # noqa: S608
                sink = folder / f"{table}.copy"
                with sink.open("wb") as file:
                    cursor.copy_expert(f"COPY ({query}) TO STDOUT", file)
                rows += sum(1 for _ in sink.open("rb"))
    elif phase == "copy-in":
        # Those rows back into the same tables of a fresh database (ids resolved as COPY can't:
        # xcom keeps the source's dag_run ids, which match in a database filled in the same order).
        with connection.cursor() as cursor:
            for table in BULK:
                columns = _copy_columns(db, table)
                if table == "xcom":
                    columns = ["dag_run_id", *columns]
                with (folder / f"{table}.copy").open("rb") as file:
                    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", file)
                    rows += cursor.rowcount
    else:
        raise SystemExit(f"unknown phase {phase}")
    connection.commit()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    measured: dict[str, object] = {
        "phase": phase,
        "seconds": seconds,
        "rows": rows,
        "peak_rss_mb": round(peak, 1),
        "client_cpu_s": round(time.process_time() - client_before, 2),
        "server_cpu_s": backend.used(),
    }
    if phase in DAG_PHASES:
        measured["tasks"] = tasks
    json.dump(measured, sys.stdout)


if __name__ == "__main__":
    main()
