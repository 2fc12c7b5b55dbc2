"""The export/import DAGs' library: format, sealing, checksums, column mapping, ids, merge, and the
two phases (the bulk under a watermark; the cutover's record, pause, drain, delta and upsert).

The steps run against `EmulatedDatabase` (the library's row-by-row semantics over in-memory tables),
an in-memory Storage and moto's KMS. The PostgreSQL side (`PostgresDatabase`'s SQL) and the DAG
files under real Airflow are exercised by the real tier (tests/airflow, `make test-airflow`).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import py_compile
import re
import runpy
import sys
import types
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest

from emulation.dag_runtime import EmulatedDatabase
from emulation.mwaa import EmulatedEnvironment
from mwaa_migrate.dags import mwaa_migrate_metadata as metadata
from mwaa_migrate.dags.mwaa_migrate_metadata import Column

DAGS_DIR = Path(metadata.__file__).parent
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
# The bulk's watermark: every finished run and log row of source_metadata() is before it.
WATERMARK = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
AFTER = "2026-11-23T07:00:00+00:00"
TRICKY = 'first line\nsecond line — ünïcødé ✓ 🚀\u2028after a line separator\r\n\ttabbed "quoted" \\ end'
PASSWORD = "p@ss w0rd/with:odd#chars"
RUN_20 = "scheduled__2026-11-20"


class MemoryStorage:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, body: bytes) -> None:
        self.objects[key] = body

    def get(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError:
            raise metadata.MissingObjectError(f"{key} does not exist") from None

    def put_file(self, key: str, path: str) -> None:
        self.objects[key] = Path(path).read_bytes()

    def get_file(self, key: str, path: str) -> None:
        Path(path).write_bytes(self.get(key))

    def exists(self, key: str) -> bool:
        return key in self.objects


def run_conf(
    keys: metadata.KmsKeys, source_environment: str = "", target_environment: str = ""
) -> metadata.RunConf:
    """The bulk's conf of migration m-1, under runs/m-1 of the bucket `migrations`, with a new KMS key."""
    return metadata.RunConf(
        bucket="migrations",
        prefix="runs/m-1",
        migration_id="m-1",
        kms_key_id=keys.client.create_key()["KeyMetadata"]["Arn"],
        phase="bulk",
        source_environment=source_environment,
        target_environment=target_environment,
    )


@pytest.fixture
def conf(keys: metadata.KmsKeys) -> metadata.RunConf:
    return run_conf(keys, source_environment="env-2.7.2", target_environment="env-2.10.3")


def cutover_of(conf: metadata.RunConf, **changes: Any) -> metadata.RunConf:
    return dataclasses.replace(conf, phase="cutover", **changes)


def dag_run(
    dag_id: str,
    run_id: str,
    state: str,
    execution_date: str,
    *,
    run_pk: int = 17,
    conf: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": run_pk,
        "dag_id": dag_id,
        "run_id": run_id,
        "state": state,
        "run_type": run_id.split("__", 1)[0],
        "execution_date": execution_date,
        "start_date": execution_date,
        "end_date": None if state in {"running", "queued"} else "2026-11-23T01:02:03.456789+00:00",
        "conf": conf or {},
        "external_trigger": run_id.startswith("manual"),
        "log_template_id": 7,
        "creating_job_id": 99,
    }


def task(dag_id: str, run_id: str, task_id: str, state: str, *, map_index: int = -1) -> dict[str, Any]:
    return {
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": run_id,
        "map_index": map_index,
        "state": state,
        "try_number": 2 if state == "success" else 1,
        "max_tries": 1,
        "start_date": "2026-11-20T00:00:05+00:00",
        "end_date": "2026-11-20T00:00:09+00:00",
        "pool": "default_pool",
        "job_id": 4242,
        "trigger_id": None,
        "hostname": "worker-1",
    }


def xcom(
    run_pk: int, dag_id: str, run_id: str, task_id: str, value: Any, *, map_index: int = -1
) -> dict[str, Any]:
    return {
        "dag_run_id": run_pk,
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "map_index": map_index,
        "key": "return_value",
        "value": value,
        "timestamp": "2026-11-20T00:00:09+00:00",
    }


def source_metadata() -> dict[str, list[dict[str, Any]]]:
    return {
        "variable": [
            {
                "key": "warehouse_schema",
                "val": "analytics",
                "description": "target schema",
                "is_encrypted": False,
            },
            {"key": "partner_api_token", "val": "s3cr3t", "description": None, "is_encrypted": True},
            {"key": "tricky", "val": TRICKY, "description": "ünïcødé", "is_encrypted": True},
        ],
        "connection": [
            {
                "id": 3,
                "conn_id": "warehouse_db",
                "conn_type": "postgres",
                "host": "db.example.com",
                "login": "etl",
                "password": PASSWORD,
                "port": 5432,
                "extra": json.dumps({"sslmode": "require"}),
                "is_encrypted": True,
                "is_extra_encrypted": True,
            }
        ],
        "slot_pool": [
            {"pool": "default_pool", "slots": 128, "description": "Default pool", "include_deferred": False},
            {
                "pool": "warehouse",
                "slots": 4,
                "description": "warehouse connections",
                "include_deferred": True,
            },
        ],
        "dag": [
            {"dag_id": "daily_sales", "is_paused": False},
            {"dag_id": "hourly_events", "is_paused": False},
            {"dag_id": "legacy_export", "is_paused": True},
            {"dag_id": "removed_dag", "is_paused": False, "is_active": False},
            {"dag_id": metadata.EXPORT_DAG_ID, "is_paused": False},
        ],
        "dag_run": [
            dag_run("daily_sales", RUN_20, "success", "2026-11-20T00:00:00+00:00", run_pk=17),
            dag_run("daily_sales", "scheduled__2026-11-21", "failed", "2026-11-21T00:00:00+00:00", run_pk=18),
            dag_run(
                "daily_sales", "scheduled__2026-11-22", "running", "2026-11-22T00:00:00+00:00", run_pk=19
            ),
            dag_run(
                "hourly_events", "manual__2026-11-22T09:30", "queued", "2026-11-22T09:30:00+00:00", run_pk=20
            ),
            dag_run(
                "hourly_events",
                "manual__2026-11-22T08:30",
                "success",
                "2026-11-22T08:30:00Z",
                run_pk=21,
                conf={"note": TRICKY, "n": [1, 2]},
            ),
            dag_run(
                metadata.EXPORT_DAG_ID, "mwaa-migrate-m-0", "success", "2026-11-01T00:00:00+00:00", run_pk=22
            ),
        ],
        "task_instance": [
            task("daily_sales", RUN_20, "extract", "success"),
            task("daily_sales", RUN_20, "load", "success", map_index=0),
            task("daily_sales", RUN_20, "load", "success", map_index=1),
            task("daily_sales", "scheduled__2026-11-21", "extract", "failed"),
            task("daily_sales", "scheduled__2026-11-21", "load", "upstream_failed"),
            # in a finished run, but still up for retry: in flight, left out
            task("daily_sales", "scheduled__2026-11-21", "notify", "up_for_retry"),
            task("daily_sales", "scheduled__2026-11-22", "extract", "running"),
            task(metadata.EXPORT_DAG_ID, "mwaa-migrate-m-0", "cutover", "success"),
        ],
        "xcom": [
            xcom(17, "daily_sales", RUN_20, "extract", {"rows": 42, "note": TRICKY}),
            xcom(17, "daily_sales", RUN_20, "load", 10, map_index=0),
            xcom(17, "daily_sales", RUN_20, "load", 20, map_index=1),
            xcom(18, "daily_sales", "scheduled__2026-11-21", "notify", "in flight"),
            xcom(19, "daily_sales", "scheduled__2026-11-22", "extract", "running"),
        ],
        "log": [
            {
                "id": 1,
                "dttm": "2026-11-19T10:00:00+00:00",
                "dag_id": None,
                "event": "cli_connections_add",
                "owner": "root",
                "extra": f'{{"full_command": "connections add --password {PASSWORD}"}}',
            },
            {
                "id": 2,
                "dttm": "2026-11-20T00:00:05+00:00",
                "dag_id": "daily_sales",
                "task_id": "extract",
                "event": "running",
                "owner": "analytics",
                "extra": None,
            },
            {
                "id": 3,
                "dttm": "2026-11-23T00:00:00+00:00",
                "dag_id": metadata.EXPORT_DAG_ID,
                "event": "trigger",
                "owner": "mwaa-migrate",
                "extra": None,
            },
        ],
    }


def environment(version: str, tables: dict[str, list[dict[str, Any]]] | None = None) -> EmulatedEnvironment:
    description = {"Name": f"env-{version}", "AirflowVersion": version, "Status": "AVAILABLE"}
    return EmulatedEnvironment(f"env-{version}", description, json.loads(json.dumps(tables or {})))


def target_environment(version: str = "2.10.3") -> EmulatedEnvironment:
    return environment(
        version,
        {
            "slot_pool": [
                {
                    "id": 1,
                    "pool": "default_pool",
                    "slots": 32,
                    "description": "Default pool",
                    "include_deferred": False,
                }
            ],
            # The target's own runs have other ids: xcom.dag_run_id must be resolved, not copied.
            "dag_run": [
                dag_run("target_only", "manual__x", "success", "2026-01-01T00:00:00+00:00", run_pk=500)
            ],
            "dag": [
                {"dag_id": "daily_sales", "is_paused": True},
                {"dag_id": "hourly_events", "is_paused": True},
                {"dag_id": "legacy_export", "is_paused": True},
                {"dag_id": "target_only", "is_paused": False},
                {"dag_id": metadata.IMPORT_DAG_ID, "is_paused": False},
            ],
        },
    )


def export(
    env: EmulatedEnvironment, storage: MemoryStorage, conf: metadata.RunConf, keys: metadata.KeyService
) -> dict[str, Any]:
    """The bulk export, with WATERMARK as its start."""
    db = EmulatedDatabase(env, now=NOW)
    metadata.export_bulk(db, storage, conf, keys, watermark=WATERMARK)
    db.commit()
    return manifest_of(storage)


class Clock:
    """The drain's time: sleeping advances it at once."""

    def __init__(self) -> None:
        self.now = NOW
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def run_export_task(
    env: EmulatedEnvironment,
    storage: MemoryStorage,
    conf: metadata.RunConf,
    keys: metadata.KeyService,
    task_id: str,
    *,
    upstream: dict[str, Any],
    drain_polls: int | None = 0,
    clock: Clock | None = None,
) -> Any:
    """One task of the export DAG, committed as Airflow commits a task that returns."""
    clock = clock or Clock()
    db = EmulatedDatabase(env, now=NOW, drain_polls=drain_polls, clock=clock)
    context = metadata.TaskContext(db, storage, conf, upstream, keys, sleep=clock.sleep, clock=clock)
    returned = metadata.run_task(metadata.EXPORT_DAG_ID, task_id, context)
    db.commit()
    upstream[task_id] = returned
    return returned


def export_cutover(
    env: EmulatedEnvironment,
    storage: MemoryStorage,
    conf: metadata.RunConf,
    keys: metadata.KeyService,
    *,
    drain_polls: int | None = 0,
) -> dict[str, Any]:
    """The cutover export's tasks in order (pause, drain, export_tables); its manifest."""
    upstream: dict[str, Any] = {}
    for task_id in metadata.task_ids(metadata.EXPORT_DAG_ID):
        run_export_task(env, storage, conf, keys, task_id, upstream=upstream, drain_polls=drain_polls)
    return manifest_of(storage, "cutover")


def import_(
    env: EmulatedEnvironment, storage: MemoryStorage, conf: metadata.RunConf, keys: metadata.KeyService
) -> dict[str, Any]:
    db = EmulatedDatabase(env, now=NOW)
    metadata.verify_export(db, storage, conf, keys)
    metadata.pause_dags(db)
    db.commit()
    db = EmulatedDatabase(env, now=NOW)
    imported = metadata.import_tables(db, storage, conf, keys)
    db.commit()
    db = EmulatedDatabase(env, now=NOW)
    result = metadata.unpause_dags(db, storage, conf, imported, keys)
    db.commit()
    return result


def manifest_of(storage: MemoryStorage, phase: str = "bulk") -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(storage.objects[f"runs/m-1/export/{phase}/manifest.json"])
    return loaded


def rows_of(
    storage: MemoryStorage, conf: metadata.RunConf, keys: metadata.KeyService, table: str
) -> list[dict[str, Any]]:
    manifest = metadata.read_manifest(storage, conf)
    box = metadata.open_secret_box(keys, manifest.secrets, conf.migration_id)
    return metadata.read_table(storage, conf, manifest.tables[table], box)


def paused(env: EmulatedEnvironment) -> dict[str, bool]:
    return {row["dag_id"]: row["is_paused"] for row in env.metadata["dag"]}


def rewrite_manifest(storage: MemoryStorage, change: Any, keys: metadata.KeyService | None = None) -> None:
    """Change the bulk manifest. With `keys`, MAC it again as the data key's holder would (to reach
    the checks behind the MAC); without, as anyone else who can write to the bucket."""
    manifest = manifest_of(storage)
    change(manifest)
    if keys is not None:
        envelope = metadata.SecretsEnvelope.from_json(manifest["secrets"])
        manifest = metadata.with_mac(manifest, metadata.open_secret_box(keys, envelope, "m-1"))
    storage.objects["runs/m-1/export/bulk/manifest.json"] = json.dumps(manifest).encode()


def record_of(storage: MemoryStorage) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(storage.objects["runs/m-1/cutover/record.json"])
    return loaded


@pytest.fixture
def exported(conf: metadata.RunConf, keys: metadata.KmsKeys) -> MemoryStorage:
    storage = MemoryStorage()
    export(environment("2.7.2", source_metadata()), storage, conf, keys)
    return storage


# ------------------------------------------------------------------ format


def test_export_writes_a_manifest_describing_one_sealed_file_per_table(
    exported: MemoryStorage, conf: metadata.RunConf
) -> None:
    manifest = manifest_of(exported)

    assert manifest["format"] == "mwaa-migrate-metadata"
    assert manifest["format_version"] == 5
    assert manifest["migrationId"] == "m-1"
    assert manifest["phase"] == "bulk"
    assert manifest["watermark"] == "2026-11-23T06:00:00+00:00"
    assert manifest["source_airflow_version"] == "2.7.2"
    assert manifest["schema_revision"] == "emulated-2.7.2"
    assert set(manifest["tables"]) == {
        "variable",
        "connection",
        "slot_pool",
        "dag_run",
        "task_instance",
        "task_fail",
        "xcom",
        "dag_run_note",
        "task_instance_note",
        "sla_miss",
        "dataset",
        "dataset_event",
        "dagrun_dataset_event",
        "dataset_dag_run_queue",
        "log",
    }
    for name, entry in manifest["tables"].items():
        assert entry["file"] == f"{name}.tsv.gz.sealed"
        body = exported.objects[f"runs/m-1/export/bulk/{name}.tsv.gz.sealed"]
        assert entry["sha256"] == metadata.sha256_hex(body)
    assert manifest["tables"]["dag_run"]["key"] == ["dag_id", "run_id"]
    assert manifest["secrets"]["kms_key_id"] == conf.kms_key_id
    assert manifest["secrets"]["encryption_context"] == {"mwaa-migrate-migration": "m-1"}


def test_no_value_of_the_source_is_readable_in_the_bucket(exported: MemoryStorage) -> None:
    everything = b"".join(exported.objects.values())

    for secret in (PASSWORD, "s3cr3t", "analytics", "db.example.com", "cli_connections_add"):
        assert secret.encode() not in everything


def test_the_key_holder_reads_rows_of_named_columns_without_local_ids(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    [connection] = rows_of(exported, conf, keys, "connection")
    [first, *_] = rows_of(exported, conf, keys, "dag_run")
    xcoms = rows_of(exported, conf, keys, "xcom")

    assert connection["password"] == PASSWORD  # decrypted from the source's Fernet key
    assert "id" not in connection
    assert "is_encrypted" not in connection
    assert set(first) >= {"dag_id", "run_id", "state", "execution_date", "conf"}
    assert not {"id", "creating_job_id", "log_template_id"} & set(first)
    assert all("dag_run_id" not in row for row in xcoms)


def test_datetimes_are_written_as_iso_8601_utc(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    runs = {row["run_id"]: row for row in rows_of(exported, conf, keys, "dag_run")}

    assert runs["manual__2026-11-22T08:30"]["execution_date"] == "2026-11-22T08:30:00+00:00"
    assert runs[RUN_20]["end_date"] == "2026-11-23T01:02:03.456789+00:00"


def test_a_value_json_cannot_carry_fails_the_export_naming_the_row_not_the_value() -> None:
    columns = [Column("key", "string"), Column("val", "json")]

    with pytest.raises(metadata.ExportError, match=r"variable \('k',\): column val") as raised:
        metadata.encode_row("variable", {"key": "k", "val": object()}, columns)
    assert "object at" not in str(raised.value)


def test_a_value_with_newlines_and_unicode_survives_export_and_import(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    target = target_environment()

    import_(target, exported, conf, keys)

    variables = {row["key"]: row["val"] for row in target.metadata["variable"]}
    assert variables["tricky"] == TRICKY
    [run] = [row for row in target.metadata["dag_run"] if row["run_id"] == "manual__2026-11-22T08:30"]
    assert run["conf"] == {"note": TRICKY, "n": [1, 2]}


def test_a_changed_file_is_refused_by_its_checksum(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    exported.objects["runs/m-1/export/bulk/dag_run.tsv.gz.sealed"] += b"\0"

    with pytest.raises(metadata.VerificationError, match="dag_run.tsv.gz.sealed: sha256"):
        metadata.verify_export(EmulatedDatabase(target_environment(), now=NOW), exported, conf, keys)


def test_a_sealed_file_moved_under_another_name_does_not_decrypt(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    moved = exported.objects["runs/m-1/export/bulk/variable.tsv.gz.sealed"]
    exported.objects["runs/m-1/export/bulk/connection.tsv.gz.sealed"] = moved
    rewrite_manifest(
        exported, lambda m: m["tables"]["connection"].update(sha256=metadata.sha256_hex(moved)), keys
    )

    with pytest.raises(metadata.SecretError, match="connection.tsv.gz.sealed part 0 does not decrypt"):
        metadata.verify_export(EmulatedDatabase(target_environment(), now=NOW), exported, conf, keys)


def test_a_sealed_file_cut_short_is_refused(conf: metadata.RunConf, keys: metadata.KmsKeys) -> None:
    box, _ = metadata.new_secret_box(keys, conf.kms_key_id, "m-1")
    columns = (Column("key"), Column("val"))
    body, rows = metadata.encode_table(
        [{"key": f"k{n}", "val": "x" * 50} for n in range(3)], box, "variable.tsv.gz.sealed", columns
    )
    entry = metadata.TableEntry("variable.tsv.gz.sealed", rows, "", ("key",), columns)
    last_frame = body.rindex(b"\x01")  # the last frame's flag byte
    cut = body[:last_frame]

    with pytest.raises(metadata.SecretError, match="cut off"):
        metadata.decode_table(
            cut, metadata.TableEntry(**{**entry.__dict__, "sha256": metadata.sha256_hex(cut)}), box
        )


def test_a_row_count_that_does_not_match_the_manifest_is_refused(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    rewrite_manifest(exported, lambda m: m["tables"]["variable"].update(rows=2), keys)

    with pytest.raises(metadata.VerificationError, match="holds 3 rows, the manifest says 2"):
        metadata.verify_export(EmulatedDatabase(target_environment(), now=NOW), exported, conf, keys)


def test_a_missing_manifest_is_refused(conf: metadata.RunConf, keys: metadata.KmsKeys) -> None:
    with pytest.raises(metadata.MissingObjectError, match="manifest.json"):
        metadata.verify_export(EmulatedDatabase(target_environment(), now=NOW), MemoryStorage(), conf, keys)


def test_an_export_of_another_migration_is_refused(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    other = dataclasses.replace(conf, migration_id="m-2")

    with pytest.raises(metadata.VerificationError, match="belongs to migration 'm-1'"):
        metadata.verify_export(EmulatedDatabase(target_environment(), now=NOW), exported, other, keys)


def test_a_data_key_bound_to_another_migration_is_refused(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    rewrite_manifest(
        exported, lambda m: m["secrets"]["encryption_context"].update({"mwaa-migrate-migration": "m-2"})
    )

    with pytest.raises(metadata.VerificationError, match="data key belongs to another migration"):
        metadata.verify_export(EmulatedDatabase(target_environment(), now=NOW), exported, conf, keys)


@pytest.mark.parametrize("version", [3, 6])
def test_a_format_version_this_import_does_not_read_is_refused(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys, version: int
) -> None:
    rewrite_manifest(exported, lambda m: m.update(format_version=version))

    with pytest.raises(
        metadata.VerificationError, match=f"format version {version}; this import reads versions 4 to 5"
    ):
        metadata.verify_export(EmulatedDatabase(target_environment(), now=NOW), exported, conf, keys)


def test_a_line_with_fields_other_than_the_manifests_columns_is_refused(
    conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    box, _ = metadata.new_secret_box(keys, conf.kms_key_id, "m-1")
    columns = (Column("key"), Column("val"))
    body, rows = metadata.encode_table([{"key": "k", "val": "v"}], box, "variable.tsv.gz.sealed", columns)
    entry = metadata.TableEntry(
        "variable.tsv.gz.sealed", rows, metadata.sha256_hex(body), ("key",), (*columns, Column("extra"))
    )

    with pytest.raises(metadata.VerificationError, match="line 1: 2 fields, the manifest lists 3 columns"):
        metadata.decode_table(body, entry, box)


def test_postgresqls_own_copy_text_reads_back_as_the_exports_values() -> None:
    columns = [
        Column("s", "string"),
        Column("n", "integer"),
        Column("f", "float"),
        Column("b", "boolean"),
        Column("at", "datetime"),
        Column("short", "datetime"),
        Column("raw", "bytes"),
        Column("conf", "json"),
        Column("none", "string"),
    ]
    # As COPY ... TO STDOUT writes them: escapes (and the octal and \x ones COPY also reads), a
    # space for the T, a fraction without trailing zeros, an offset of hours only, bytea in hex.
    fields = [
        rb"a\tb\\c\nd\101\x42",
        b"12",
        b"0.1",
        b"t",
        b"2026-11-23 01:02:03+00",
        b"2026-11-23 01:02:03.5+05:30",
        rb"\\x00ff",
        '{"k": [1, "ü"]}'.encode(),
        rb"\N",
    ]
    line = b"\t".join(fields) + b"\n"

    assert metadata.copy_row_values(line, columns) == {
        "s": "a\tb\\c\ndAB",
        "n": 12,
        "f": 0.1,
        "b": True,
        "at": "2026-11-23T01:02:03+00:00",
        "short": "2026-11-22T19:32:03.500000+00:00",
        "raw": "AP8=",
        "conf": {"k": [1, "ü"]},
        "none": None,
    }


def test_the_export_form_of_a_row_survives_the_copy_text_format() -> None:
    columns = [
        Column("val", "string"),
        Column("raw", "bytes"),
        Column("conf", "json"),
        Column("on", "boolean"),
    ]
    row = {"val": TRICKY, "raw": "AP8=", "conf": {"note": TRICKY, "n": [1.5, None]}, "on": False}

    line = metadata.copy_line(row, columns)

    assert line.count(b"\n") == 1
    assert line.count(b"\t") == len(columns) - 1
    assert metadata.copy_row_values(line, columns) == row


def test_an_export_of_format_4_json_lines_is_still_imported(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    manifest = manifest_of(exported)
    box = metadata.open_secret_box(keys, metadata.SecretsEnvelope.from_json(manifest["secrets"]), "m-1")
    for name, entry in manifest["tables"].items():
        rows = rows_of(exported, conf, keys, name)
        file = f"{name}.jsonl.gz.sealed"
        body, count = metadata.encode_table(rows, box, file)
        exported.objects[f"runs/m-1/export/bulk/{file}"] = body
        del exported.objects[f"runs/m-1/export/bulk/{entry['file']}"]
        entry.update(file=file, rows=count, sha256=metadata.sha256_hex(body))
    rewrite_manifest(exported, lambda m: m.update(format_version=4, tables=manifest["tables"]), keys)
    target = target_environment()

    result = import_(target, exported, conf, keys)

    assert result["tables"]["dag_run"]["inserted"] == len(rows_of(exported, conf, keys, "dag_run"))
    assert {row["key"]: row["val"] for row in target.metadata["variable"]}["tricky"] == TRICKY


def test_unknown_manifest_keys_are_ignored_but_unknown_tables_refused(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    rewrite_manifest(exported, lambda m: m.update(later_addition={"x": 1}), keys)
    metadata.verify_export(EmulatedDatabase(target_environment(), now=NOW), exported, conf, keys)
    rewrite_manifest(exported, lambda m: m["tables"].update(job=m["tables"]["variable"]), keys)

    with pytest.raises(metadata.VerificationError, match="tables this import cannot load: job"):
        metadata.verify_export(EmulatedDatabase(target_environment(), now=NOW), exported, conf, keys)


# ------------------------------------------------------------------ column mapping


def test_columns_the_target_lacks_are_dropped_and_listed() -> None:
    exported = [Column("pool"), Column("slots", "integer"), Column("only_in_a_newer_airflow")]
    target = [
        Column("id", "integer", nullable=False, has_default=True),
        Column("pool"),
        Column("slots", "integer"),
    ]

    mapping = metadata.map_columns("slot_pool", exported, target)

    assert mapping.kept == (("pool", "pool"), ("slots", "slots"))
    assert mapping.dropped == ("only_in_a_newer_airflow",)


def test_a_not_null_column_the_export_lacks_is_filled_by_the_rule_table() -> None:
    exported = [Column("dag_id"), Column("run_id"), Column("run_type")]
    target = [*exported, Column("clear_number", "integer", nullable=False)]

    mapping = metadata.map_columns("dag_run", exported, target)

    assert mapping.filled == (("clear_number", 0),)


def test_a_required_column_no_rule_fills_fails_with_its_name() -> None:
    target = [Column("pool"), Column("brand_new", nullable=False)]

    with pytest.raises(metadata.MappingError, match=r"slot_pool: the target requires brand_new"):
        metadata.map_columns("slot_pool", [Column("pool")], target)


def test_a_declared_rename_reads_the_old_column_into_the_new_one() -> None:
    rules = (metadata.Rule("log", "logical_date", source="execution_date", since="3.0"),)
    target = [Column("dttm", "datetime"), Column("logical_date", "datetime")]

    mapping = metadata.map_columns(
        "log", [Column("dttm", "datetime"), Column("execution_date", "datetime")], target, rules=rules
    )

    assert mapping.kept == (("dttm", "dttm"), ("logical_date", "execution_date"))


def test_a_local_id_the_target_requires_is_resolved_from_the_parents_natural_key() -> None:
    exported = [Column("dag_id"), Column("run_id"), Column("task_id"), Column("key"), Column("value")]
    target = [Column("dag_run_id", "integer", nullable=False), *exported]

    mapping = metadata.map_columns("xcom", exported, target)

    assert mapping.id_refs == (metadata.IdRef("dag_run_id", "dag_run", ("dag_id", "run_id")),)
    assert "dag_run_id" not in dict(mapping.kept)


def test_older_to_newer_fills_every_column_a_newer_airflow_requires(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    target = target_environment("2.10.3")

    result = import_(target, exported, conf, keys)

    assert result["columns"]["dag_run"]["filled"] == ["clear_number"]
    imported = [row for row in target.metadata["dag_run"] if row["dag_id"] != "target_only"]
    assert [row["clear_number"] for row in imported] == [0, 0, 0]


# ------------------------------------------------------------------ what is carried, and ids


def test_only_finished_runs_of_user_dags_and_their_settled_tasks_are_exported(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    runs = {row["run_id"] for row in rows_of(exported, conf, keys, "dag_run")}
    tis = {
        (row["run_id"], row["task_id"], row["map_index"])
        for row in rows_of(exported, conf, keys, "task_instance")
    }
    xcoms = {(row["run_id"], row["task_id"]) for row in rows_of(exported, conf, keys, "xcom")}
    logs = [row["event"] for row in rows_of(exported, conf, keys, "log")]

    assert runs == {RUN_20, "scheduled__2026-11-21", "manual__2026-11-22T08:30"}
    assert tis == {
        (RUN_20, "extract", -1),
        (RUN_20, "load", 0),
        (RUN_20, "load", 1),
        ("scheduled__2026-11-21", "extract", -1),
        ("scheduled__2026-11-21", "load", -1),
    }
    assert xcoms == {(RUN_20, "extract"), (RUN_20, "load")}  # not those of in-flight tasks
    assert logs == ["cli_connections_add", "running"]  # not the export's own


def test_xcoms_point_at_the_targets_own_run_ids(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    target = target_environment()

    import_(target, exported, conf, keys)

    run_ids = {(row["dag_id"], row["run_id"]): row["id"] for row in target.metadata["dag_run"]}
    for row in target.metadata["xcom"]:
        assert row["dag_run_id"] == run_ids[(row["dag_id"], row["run_id"])]
    assert run_ids[("daily_sales", RUN_20)] != 17


def test_ids_local_to_the_source_are_cleared(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    target = target_environment()

    import_(target, exported, conf, keys)

    imported = [row for row in target.metadata["dag_run"] if row["dag_id"] == "daily_sales"]
    assert {row["creating_job_id"] for row in imported} == {None}
    assert {row["log_template_id"] for row in imported} == {None}  # the target has no template rows
    assert {row["job_id"] for row in target.metadata["task_instance"]} == {None}


def test_a_row_the_target_refuses_fails_the_import_with_the_table_and_counts(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    target = target_environment()
    # The target already has a run of daily_sales at 2026-11-20 under another run id.
    target.metadata["dag_run"].append(
        dag_run("daily_sales", "manual__other", "success", "2026-11-20T00:00:00+00:00", run_pk=600)
    )

    db = EmulatedDatabase(target, now=NOW)

    with pytest.raises(metadata.ConflictError) as refused:
        metadata.import_tables(db, exported, conf, keys)

    assert "dag_run: 1 [dag_id=daily_sales, run_id=scheduled__2026-11-20 (refused)]" in str(refused.value)
    assert "task_instance: 3 [" in str(refused.value)  # the three of that run: not orphaned
    assert "xcom: 3 [" in str(refused.value)
    assert not [row for row in db.table_rows("task_instance") if row["run_id"] == RUN_20]


# ------------------------------------------------------------------ idempotence


def test_a_second_import_finds_every_row_identical_and_changes_nothing(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    target = target_environment()
    import_(target, exported, conf, keys)
    before = json.loads(json.dumps(target.metadata))

    result = import_(target, exported, conf, keys)

    assert {
        name: (c["inserted"], c["updated"], c["conflicts"], c["identical"] == c["read"])
        for name, c in result["tables"].items()
    } == dict.fromkeys(result["tables"], (0, 0, 0, True))
    assert result["conflicts"] == {}
    assert {k: v for k, v in target.metadata.items() if k != "dag"} == {
        k: v for k, v in before.items() if k != "dag"
    }


def test_a_row_changed_in_the_target_after_an_import_is_a_conflict_not_kept_silently(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    target = target_environment()
    import_(target, exported, conf, keys)
    [row] = [row for row in target.metadata["variable"] if row["key"] == "warehouse_schema"]
    row["val"] = "changed in the target"
    before = json.loads(json.dumps(target.metadata))

    differs = re.escape("variable: 1 [key=warehouse_schema (differs)]")
    with pytest.raises(metadata.ConflictError, match=differs):
        import_(target, exported, conf, keys)

    assert target.metadata == before


def test_default_pool_is_neither_exported_nor_touched_in_the_target(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    target = target_environment()

    import_(target, exported, conf, keys)

    assert [row["pool"] for row in rows_of(exported, conf, keys, "slot_pool")] == ["warehouse"]
    pools = {row["pool"]: row for row in target.metadata["slot_pool"]}
    assert pools["default_pool"]["slots"] == 32
    assert pools["warehouse"]["include_deferred"] is True


def test_secrets_are_stored_encrypted_by_the_targets_fernet(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    target = target_environment()

    import_(target, exported, conf, keys)

    [connection] = target.metadata["connection"]
    assert connection["password"] == PASSWORD  # the emulated Fernet keeps values as they are
    assert connection["is_encrypted"] is True
    assert connection["is_extra_encrypted"] is True
    assert {row["key"]: row["is_encrypted"] for row in target.metadata["variable"]} == dict.fromkeys(
        ["warehouse_schema", "partner_api_token", "tricky"], True
    )


# ------------------------------------------------------------------ the bulk


def test_the_bulk_pauses_nothing(conf: metadata.RunConf, keys: metadata.KmsKeys) -> None:
    source = environment("2.7.2", source_metadata())
    before = paused(source)

    manifest = export(source, MemoryStorage(), conf, keys)

    assert paused(source) == before
    assert manifest["active_dags"] == []


def test_the_bulk_leaves_runs_and_log_rows_from_the_watermark_to_the_delta(
    conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    tables = source_metadata()
    tables["dag_run"][0]["end_date"] = AFTER  # RUN_20 ended after the bulk started
    tables["log"][1]["dttm"] = AFTER
    storage = MemoryStorage()

    export(environment("2.7.2", tables), storage, conf, keys)

    assert {row["run_id"] for row in rows_of(storage, conf, keys, "dag_run")} == {
        "scheduled__2026-11-21",
        "manual__2026-11-22T08:30",
    }
    assert RUN_20 not in {row["run_id"] for row in rows_of(storage, conf, keys, "task_instance")}
    assert RUN_20 not in {row["run_id"] for row in rows_of(storage, conf, keys, "xcom")}
    assert [row["event"] for row in rows_of(storage, conf, keys, "log")] == ["cli_connections_add"]


# ------------------------------------------------------------------ the cutover: record and pause


def test_pause_writes_the_record_before_it_pauses_anything(
    conf: metadata.RunConf, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = MemoryStorage()
    source = environment("2.7.2", source_metadata())
    db = EmulatedDatabase(source, now=NOW)
    records_seen: list[dict[str, Any]] = []
    set_paused = db.set_paused

    def recording_set_paused(dag_ids: Any, *, paused: bool) -> None:
        records_seen.append(record_of(storage))  # KeyError if nothing is recorded yet
        set_paused(dag_ids, paused=paused)

    monkeypatch.setattr(db, "set_paused", recording_set_paused)

    result = metadata.pause(db, storage, cutover_of(conf))
    db.commit()

    assert [(record["state"], record["active_dags"]) for record in records_seen] == [
        ("paused", ["daily_sales", "hourly_events"])
    ]
    assert paused(source) == {
        "daily_sales": True,
        "hourly_events": True,
        "legacy_export": True,
        "removed_dag": False,  # not active: Airflow no longer knows its file
        metadata.EXPORT_DAG_ID: False,
    }
    assert result["reused_record"] is False


def test_the_record_says_which_migration_paused_which_dags_when(conf: metadata.RunConf) -> None:
    storage = MemoryStorage()
    db = EmulatedDatabase(environment("2.7.2", source_metadata()), now=NOW)

    metadata.pause(db, storage, cutover_of(conf), now="2026-11-23T12:00:00+00:00")

    assert record_of(storage) == {
        "migration_id": "m-1",
        "source_environment": "env-2.7.2",
        "target_environment": "env-2.10.3",
        "active_dags": ["daily_sales", "hourly_events"],
        "state": "paused",
        "paused_at": "2026-11-23T12:00:00+00:00",
        "updated_at": "2026-11-23T12:00:00+00:00",
        "history": [{"state": "paused", "at": "2026-11-23T12:00:00+00:00", "migration_id": "m-1"}],
    }


def test_a_retried_pause_reuses_the_recorded_dags_though_every_dag_is_paused_now(
    conf: metadata.RunConf,
) -> None:
    storage = MemoryStorage()
    source = environment("2.7.2", source_metadata())
    db = EmulatedDatabase(source, now=NOW)
    metadata.pause(db, storage, cutover_of(conf))
    db.commit()

    again = metadata.pause(EmulatedDatabase(source, now=NOW), storage, cutover_of(conf))

    assert again["active_dags"] == ["daily_sales", "hourly_events"]
    assert again["reused_record"] is True
    assert len(record_of(storage)["history"]) == 1


def test_a_restored_record_is_recomputed_from_what_is_active_now(conf: metadata.RunConf) -> None:
    storage = MemoryStorage()
    storage.objects["runs/m-1/cutover/record.json"] = json.dumps(
        {
            "migration_id": "m-1",
            "active_dags": ["legacy_export"],
            "state": "restored",
            "history": [{"state": "paused", "at": "x"}, {"state": "restored", "at": "y"}],
        }
    ).encode()

    result = metadata.pause(
        EmulatedDatabase(environment("2.7.2", source_metadata()), now=NOW), storage, cutover_of(conf)
    )

    assert result["active_dags"] == ["daily_sales", "hourly_events"]
    assert record_of(storage)["state"] == "paused"
    assert [entry["state"] for entry in record_of(storage)["history"]] == ["paused", "restored", "paused"]


# ------------------------------------------------------------------ the cutover: drain


def test_the_drain_waits_until_the_running_tasks_of_the_paused_dags_finish(
    conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    source, storage, clock = environment("2.7.2", source_metadata()), MemoryStorage(), Clock()
    upstream: dict[str, Any] = {}
    run_export_task(source, storage, cutover_of(conf), keys, "pause", upstream=upstream)

    drained = run_export_task(
        source, storage, cutover_of(conf), keys, "drain", upstream=upstream, drain_polls=2, clock=clock
    )

    assert clock.slept == [5.0, 5.0]
    assert (drained["timed_out"], drained["still_running"], drained["waited_seconds"]) == (False, 0, 10.0)
    [extract] = [row for row in source.metadata["task_instance"] if row["run_id"] == "scheduled__2026-11-22"]
    assert extract["state"] == "success"


def test_a_drain_past_its_deadline_fails_when_told_to_fail(
    conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    source, storage, clock = environment("2.7.2", source_metadata()), MemoryStorage(), Clock()
    upstream: dict[str, Any] = {}
    cut = cutover_of(conf, drain_timeout_minutes=1)
    run_export_task(source, storage, cut, keys, "pause", upstream=upstream)

    with pytest.raises(
        metadata.DrainTimeout,
        match=re.escape(
            "after 1 minutes 1 task instances of the paused DAGs still run or wait in a queue: "
            "daily_sales.extract[-1] of scheduled__2026-11-22 (running)"
        ),
    ):
        run_export_task(source, storage, cut, keys, "drain", upstream=upstream, drain_polls=None, clock=clock)
    assert clock.now - NOW == timedelta(minutes=1)


def test_a_drain_past_its_deadline_goes_on_when_told_to_carry(
    conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    source, storage = environment("2.7.2", source_metadata()), MemoryStorage()
    upstream: dict[str, Any] = {}
    cut = cutover_of(conf, drain_timeout_minutes=1, on_drain_timeout="carry")
    run_export_task(source, storage, cut, keys, "pause", upstream=upstream)

    drained = run_export_task(source, storage, cut, keys, "drain", upstream=upstream, drain_polls=None)

    assert (drained["timed_out"], drained["still_running"], drained["waited_seconds"]) == (True, 1, 60.0)
    assert drained["still_running_tasks"] == ["daily_sales.extract[-1] of scheduled__2026-11-22 (running)"]


def test_the_drain_does_not_wait_for_dags_the_record_does_not_hold(
    conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    tables = source_metadata()
    tables["task_instance"].append(task("legacy_export", "manual__old", "extract", "running"))
    source, storage = environment("2.7.2", tables), MemoryStorage()
    upstream: dict[str, Any] = {}
    cut = cutover_of(conf, drain_timeout_minutes=0)
    run_export_task(source, storage, cut, keys, "pause", upstream=upstream)

    drained = run_export_task(source, storage, cut, keys, "drain", upstream=upstream, drain_polls=0)

    assert (drained["timed_out"], drained["still_running"]) == (False, 0)


# ------------------------------------------------------------------ the cutover: the delta


@dataclasses.dataclass
class Migration:
    """A migration under test: the source's bulk exported to `storage`; the target to import into."""

    conf: metadata.RunConf
    keys: metadata.KmsKeys
    source: EmulatedEnvironment
    storage: MemoryStorage
    target: EmulatedEnvironment = dataclasses.field(default_factory=target_environment)

    def export_cutover(self, *, drain_polls: int | None = 0, **changes: Any) -> metadata.RunConf:
        """The cutover exported with its conf changed by `changes`: that conf."""
        cut = cutover_of(self.conf, **changes)
        export_cutover(self.source, self.storage, cut, self.keys, drain_polls=drain_polls)
        return cut

    def import_(self, conf: metadata.RunConf) -> dict[str, Any]:
        return import_(self.target, self.storage, conf, self.keys)

    def rows(self, conf: metadata.RunConf, table: str) -> list[dict[str, Any]]:
        return rows_of(self.storage, conf, self.keys, table)


@pytest.fixture
def bulk_exported(conf: metadata.RunConf, keys: metadata.KmsKeys) -> Migration:
    migration = Migration(conf, keys, environment("2.7.2", source_metadata()), MemoryStorage())
    export(migration.source, migration.storage, conf, keys)
    return migration


def test_the_delta_carries_a_run_in_flight_with_its_unfinished_tasks_cleared(
    bulk_exported: Migration,
) -> None:
    source = bulk_exported.source

    cut = bulk_exported.export_cutover(drain_polls=None, drain_timeout_minutes=0, on_drain_timeout="carry")

    runs = {row["run_id"]: row["state"] for row in bulk_exported.rows(cut, "dag_run")}
    [extract] = bulk_exported.rows(cut, "task_instance")
    assert runs == {"scheduled__2026-11-22": "running", "manual__2026-11-22T09:30": "queued"}
    assert (extract["run_id"], extract["task_id"], extract["state"]) == (
        "scheduled__2026-11-22",
        "extract",
        None,
    )
    assert [row["value"] for row in bulk_exported.rows(cut, "xcom")] == ["running"]
    [in_source] = [
        row for row in source.metadata["task_instance"] if row["run_id"] == "scheduled__2026-11-22"
    ]
    assert in_source["state"] == "running"  # cleared in the export only, never in the source


def test_the_delta_carries_what_changed_from_the_watermark_and_not_the_bulk_again(
    bulk_exported: Migration,
) -> None:
    source = bulk_exported.source
    late = dag_run("daily_sales", "manual__late", "success", "2026-11-23T06:30:00+00:00", run_pk=30)
    source.metadata["dag_run"].append({**late, "end_date": AFTER})
    source.metadata["log"].append(
        {"id": 9, "dttm": AFTER, "dag_id": "daily_sales", "event": "paused", "owner": "admin", "extra": None}
    )

    cut = bulk_exported.export_cutover()

    assert {row["run_id"] for row in bulk_exported.rows(cut, "dag_run")} == {
        "manual__late",
        "scheduled__2026-11-22",
        "manual__2026-11-22T09:30",
    }
    assert [row["event"] for row in bulk_exported.rows(cut, "log")] == ["paused"]
    assert len(bulk_exported.rows(cut, "variable")) == 3  # settings in full


def test_the_cutover_manifest_lists_the_recorded_dags_timings_and_drain(bulk_exported: Migration) -> None:
    bulk_exported.export_cutover(drain_polls=1)
    manifest = manifest_of(bulk_exported.storage, "cutover")

    assert manifest["phase"] == "cutover"
    assert manifest["watermark"] == "2026-11-23T06:00:00+00:00"
    assert manifest["active_dags"] == ["daily_sales", "hourly_events"]
    assert set(manifest["timings"]) == {"paused_at", "drain_started_at", "drained_at", "exported_at"}
    assert manifest["drain"] == {"waited_seconds": 5.0, "timed_out": False, "still_running": 0}


def test_a_cutover_without_its_bulk_exports_nothing(conf: metadata.RunConf, keys: metadata.KmsKeys) -> None:
    storage = MemoryStorage()

    with pytest.raises(metadata.MissingObjectError, match="runs/m-1/export/bulk/manifest.json"):
        export_cutover(environment("2.7.2", source_metadata()), storage, cutover_of(conf), keys)
    assert not [key for key in storage.objects if key.startswith("runs/m-1/export/")]


# ------------------------------------------------------------------ imports and results


@pytest.fixture
def migrated(bulk_exported: Migration) -> Migration:
    """The bulk exported and imported; the source runs on."""
    bulk_exported.import_(bulk_exported.conf)
    return bulk_exported


def test_the_bulk_import_pauses_every_dag_and_unpauses_none(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    target = target_environment()

    result = import_(target, exported, conf, keys)

    assert {dag for dag, is_paused in paused(target).items() if not is_paused} == {metadata.IMPORT_DAG_ID}
    assert result["unpaused_dags"] == []
    assert json.loads(exported.objects["runs/m-1/import/bulk/result.json"]) == result


def test_the_cutover_import_unpauses_exactly_the_recorded_dags(migrated: Migration) -> None:
    target = migrated.target
    cut = migrated.export_cutover()

    result = migrated.import_(cut)

    assert paused(target) == {
        "daily_sales": False,
        "hourly_events": False,
        "legacy_export": True,
        "target_only": True,  # paused for the import, and not active in the source
        metadata.IMPORT_DAG_ID: False,
    }
    assert result["unpaused_dags"] == ["daily_sales", "hourly_events"]
    assert set(result["timings"]) == {"import_started_at", "imported_at", "verified_at", "unpaused_at"}
    assert json.loads(migrated.storage.objects["runs/m-1/import/cutover/result.json"]) == result


def test_unpause_dags_false_leaves_every_dag_paused(migrated: Migration) -> None:
    target = migrated.target
    cut = migrated.export_cutover(unpause_dags=False)

    result = migrated.import_(cut)

    assert {dag for dag, is_paused in paused(target).items() if not is_paused} == {metadata.IMPORT_DAG_ID}
    assert result["unpaused_dags"] == []


def test_a_variable_changed_on_the_source_after_the_bulk_is_updated_by_the_cutover(
    migrated: Migration,
) -> None:
    source, target = migrated.source, migrated.target
    source.metadata["variable"][0]["val"] = "analytics_v2"
    cut = migrated.export_cutover()

    result = migrated.import_(cut)

    assert {row["key"]: row["val"] for row in target.metadata["variable"]}[
        "warehouse_schema"
    ] == "analytics_v2"
    # The bulk's own copy, changed on the source since: an update, not a conflict.
    assert result["tables"]["variable"] == {
        "read": 3,
        "inserted": 0,
        "updated": 1,
        "identical": 2,
        "conflicts": 0,
    }


def test_a_run_cleared_and_run_again_after_the_bulk_is_updated_by_the_cutover(migrated: Migration) -> None:
    source, target = migrated.source, migrated.target
    rerun = "scheduled__2026-11-21"
    [run] = [row for row in source.metadata["dag_run"] if row["run_id"] == rerun]
    run.update(state="success", end_date=AFTER)
    for row in source.metadata["task_instance"]:
        if row["run_id"] == rerun:
            row.update(state="success", try_number=3, end_date=AFTER)
    [before] = [row for row in target.metadata["dag_run"] if row["run_id"] == rerun]
    target_id = before["id"]
    cut = migrated.export_cutover()

    result = migrated.import_(cut)

    [after] = [row for row in target.metadata["dag_run"] if row["run_id"] == rerun]
    assert (after["state"], after["end_date"], after["id"]) == ("success", AFTER, target_id)
    assert {
        row["task_id"]: row["state"] for row in target.metadata["task_instance"] if row["run_id"] == rerun
    } == {
        "extract": "success",
        "load": "success",
        "notify": "success",
    }
    # extract and load were in the bulk (updated); notify was up for retry then (inserted now), as
    # is the drained task of the run in flight.
    assert result["tables"]["task_instance"] == {
        "read": 4,
        "inserted": 2,
        "updated": 2,
        "identical": 0,
        "conflicts": 0,
    }
    assert result["tables"]["dag_run"]["updated"] == 1


def test_a_second_cutover_import_changes_nothing(migrated: Migration) -> None:
    source, target = migrated.source, migrated.target
    source.metadata["variable"][0]["val"] = "analytics_v2"
    cut = migrated.export_cutover()
    migrated.import_(cut)
    before = json.loads(json.dumps(target.metadata))

    result = migrated.import_(cut)

    assert {name: (c["inserted"], c["updated"], c["conflicts"]) for name, c in result["tables"].items()} == (
        dict.fromkeys(result["tables"], (0, 0, 0))
    )
    assert all(c["identical"] == c["read"] for c in result["tables"].values())
    assert target.metadata == before


def test_the_cutover_import_fails_when_a_row_cannot_be_as_exported(migrated: Migration) -> None:
    target = migrated.target
    # The target holds a run of hourly_events at the queued run's logical date under another run id.
    target.metadata["dag_run"].append(
        dag_run("hourly_events", "manual__clash", "success", "2026-11-22T09:30:00+00:00", run_pk=700)
    )
    cut = migrated.export_cutover()
    db = EmulatedDatabase(target, now=NOW)

    with pytest.raises(
        metadata.ConflictError,
        match=re.escape("dag_run: 1 [dag_id=hourly_events, run_id=manual__2026-11-22T09:30 (refused)]"),
    ):
        metadata.import_tables(db, migrated.storage, cut, migrated.keys)


def test_import_writes_a_verified_result_with_counts_per_table(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    result = import_(target_environment(), exported, conf, keys)

    assert result["verified"] is True
    assert result["phase"] == "bulk"
    assert result["source_schema_revision"] == "emulated-2.7.2"

    def inserted(rows: int) -> dict[str, int]:
        return {"read": rows, "inserted": rows, "updated": 0, "identical": 0, "conflicts": 0}

    assert result["tables"] == {
        "variable": inserted(3),
        "connection": inserted(1),
        "slot_pool": inserted(1),
        "dag_run": inserted(3),
        "task_instance": inserted(5),
        "task_fail": inserted(0),
        "xcom": inserted(3),
        "dag_run_note": inserted(0),
        "task_instance_note": inserted(0),
        "sla_miss": inserted(0),
        "dataset": inserted(0),
        "dataset_event": inserted(0),
        "dagrun_dataset_event": inserted(0),
        "dataset_dag_run_queue": inserted(0),
        "log": inserted(2),
    }


# ------------------------------------------------------------------ conf and versions


BASE_CONF: dict[str, Any] = {
    "bucket": "b",
    "prefix": "p",
    "migrationId": "m",
    "kmsKeyId": "k",
    "phase": "bulk",
}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"prefix": "p", "migrationId": "m", "kmsKeyId": "k", "phase": "bulk"}, "'bucket'"),
        ({**BASE_CONF, "migrationId": ""}, "'migrationId'"),
        ({k: v for k, v in BASE_CONF.items() if k != "kmsKeyId"}, "'kmsKeyId'"),
        ({**BASE_CONF, "unpauseDags": "no"}, "'unpauseDags'"),
        ({k: v for k, v in BASE_CONF.items() if k != "phase"}, "'phase' as one of bulk, cutover, not None"),
        ({**BASE_CONF, "phase": "delta"}, "'phase' as one of bulk, cutover, not 'delta'"),
        ({**BASE_CONF, "drainTimeoutMinutes": -1}, "'drainTimeoutMinutes' must be a whole number"),
        ({**BASE_CONF, "drainTimeoutMinutes": "30"}, "'drainTimeoutMinutes' must be a whole number"),
        ({**BASE_CONF, "drainTimeoutMinutes": True}, "'drainTimeoutMinutes' must be a whole number"),
        ({**BASE_CONF, "onDrainTimeout": "wait"}, "'onDrainTimeout' must be one of fail, carry"),
        ({**BASE_CONF, "sourceEnvironment": 3}, "'sourceEnvironment' must be a string"),
    ],
)
def test_a_bad_conf_is_refused_with_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(metadata.ConfError, match=message):
        metadata.RunConf.from_conf(fields)


def test_keys_live_under_the_prefix_by_phase() -> None:
    parsed = metadata.RunConf.from_conf({**BASE_CONF, "prefix": "/a/b/", "phase": "cutover"})

    assert parsed.export_key("manifest.json") == "a/b/export/cutover/manifest.json"
    assert parsed.export_key("manifest.json", "bulk") == "a/b/export/bulk/manifest.json"
    assert parsed.import_key("result.json") == "a/b/import/cutover/result.json"
    assert parsed.record_key == "a/b/cutover/record.json"


def test_the_conf_defaults_to_a_30_minute_drain_that_fails_and_to_unpausing() -> None:
    parsed = metadata.RunConf.from_conf(BASE_CONF)

    assert (parsed.drain_timeout_minutes, parsed.on_drain_timeout, parsed.unpause_dags) == (30, "fail", True)
    assert (parsed.source_environment, parsed.target_environment) == ("", "")


def test_an_airflow_3_environment_is_refused_before_anything_changes(
    exported: MemoryStorage, conf: metadata.RunConf, keys: metadata.KmsKeys
) -> None:
    target = target_environment("3.0.6")

    with pytest.raises(metadata.UnsupportedAirflowError, match=re.escape("Airflow 3.0.6")):
        metadata.verify_export(EmulatedDatabase(target, now=NOW), exported, conf, keys)


def test_datetimes_from_any_offset_are_normalised_to_utc() -> None:
    east = datetime(2026, 11, 20, 3, 0, tzinfo=timezone(timedelta(hours=3)))

    assert metadata.encode_value(east, "datetime") == "2026-11-20T00:00:00+00:00"
    assert metadata.encode_value(b"\x80\x05}\x94.", "bytes") == "gAV9lC4="
    assert metadata.decode_value("gAV9lC4=", "bytes") == b"\x80\x05}\x94."


# ------------------------------------------------------------------ the DAG files


DAG_FILES = {
    metadata.EXPORT_DAG_ID: "mwaa_migrate_export.py",
    metadata.IMPORT_DAG_ID: "mwaa_migrate_import.py",
}


@pytest.mark.parametrize("name", ["mwaa_migrate_metadata.py", *DAG_FILES.values()])
def test_dag_folder_files_compile_for_the_python_mwaa_runs(name: str, tmp_path: Path) -> None:
    source = (DAGS_DIR / name).read_text()

    py_compile.compile(str(DAGS_DIR / name), cfile=str(tmp_path / "out.pyc"), doraise=True)
    ast.parse(source, feature_version=(3, 10))  # MWAA runs Airflow 2.4-2.6 on Python 3.10


@pytest.mark.parametrize(("dag_id", "name"), DAG_FILES.items())
def test_dag_files_define_their_dag_id_as_a_module_constant(dag_id: str, name: str) -> None:
    tree = ast.parse((DAGS_DIR / name).read_text())

    constants = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    assert constants["DAG_ID"] == dag_id


class _FakeDag:
    created: ClassVar[list[_FakeDag]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.tasks: list[_FakeOperator] = []
        _FakeDag.created.append(self)

    def __enter__(self) -> _FakeDag:
        _FakeOperator.dag = self
        return self

    def __exit__(self, *_: object) -> None:
        _FakeOperator.dag = None


class _FakeOperator:
    dag: _FakeDag | None = None

    def __init__(self, *, task_id: str, python_callable: Any) -> None:
        self.task_id = task_id
        self.python_callable = python_callable
        self.downstream: list[str] = []
        assert self.dag is not None, "operators are created inside the DAG's context"
        self.dag.tasks.append(self)

    def __rshift__(self, other: _FakeOperator) -> _FakeOperator:
        self.downstream.append(other.task_id)
        return other


@pytest.fixture
def fake_airflow(monkeypatch: pytest.MonkeyPatch) -> type[_FakeDag]:
    """Just enough of `airflow` for a DAG file to run: it records what the file declares."""
    airflow = types.ModuleType("airflow")
    airflow.DAG = _FakeDag  # type: ignore[attr-defined]
    operators = types.ModuleType("airflow.operators")
    python = types.ModuleType("airflow.operators.python")
    python.PythonOperator = _FakeOperator  # type: ignore[attr-defined]
    for name, module in {
        "airflow": airflow,
        "airflow.operators": operators,
        "airflow.operators.python": python,
        # MWAA puts the DAG folder on sys.path: the library is a top-level module there.
        "mwaa_migrate_metadata": metadata,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    _FakeDag.created = []
    return _FakeDag


@pytest.mark.parametrize(("dag_id", "name"), DAG_FILES.items())
def test_dag_files_declare_a_manual_paused_single_run_dag_of_the_librarys_tasks(
    fake_airflow: type[_FakeDag], dag_id: str, name: str
) -> None:
    runpy.run_path(str(DAGS_DIR / name))

    [dag] = fake_airflow.created
    assert dag.kwargs["dag_id"] == dag_id
    assert dag.kwargs["schedule"] is None
    assert dag.kwargs["catchup"] is False
    assert dag.kwargs["is_paused_upon_creation"] is True
    assert dag.kwargs["max_active_runs"] == 1
    assert [task.task_id for task in dag.tasks] == list(metadata.task_ids(dag_id))
    assert [task.downstream for task in dag.tasks] == [[task.task_id] for task in dag.tasks[1:]] + [[]]
    assert [task.python_callable.__name__ for task in dag.tasks] == [
        f"{dag_id}__{task.task_id}" for task in dag.tasks
    ]


def test_a_task_callable_runs_its_step_with_the_conf_and_earlier_tasks_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The glue only: Airflow's session and XCom are stand-ins here (the real tier runs it in Airflow)."""
    seen: dict[str, Any] = {}
    session_module = types.ModuleType("airflow.utils.session")

    class _Session:
        def __enter__(self) -> str:
            return "session"

        def __exit__(self, *_: object) -> None:
            seen["closed"] = True

    session_module.create_session = _Session  # type: ignore[attr-defined]
    for name in ("airflow", "airflow.utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "airflow.utils.session", session_module)
    monkeypatch.setattr(metadata.S3Storage, "for_bucket", classmethod(lambda cls, bucket: f"s3:{bucket}"))
    monkeypatch.setattr(
        metadata.PostgresDatabase, "from_airflow_session", classmethod(lambda cls, session: f"db:{session}")
    )

    def fake_run_task(dag_id: str, task_id: str, context: metadata.TaskContext) -> str:
        seen.update(dag_id=dag_id, task_id=task_id, context=context)
        return "returned"

    monkeypatch.setattr(metadata, "run_task", fake_run_task)
    pulled = {"verify_export": {"tables": {}}, "pause_dags": ["a"], "import_tables": {"tables": {"x": 1}}}
    ti = types.SimpleNamespace(xcom_pull=lambda task_ids: pulled[task_ids])
    dag_run_ = types.SimpleNamespace(conf={**BASE_CONF, "phase": "cutover"})

    returned = metadata.airflow_task(metadata.IMPORT_DAG_ID, "unpause_dags")(dag_run=dag_run_, ti=ti)

    assert returned == "returned"
    context = seen["context"]
    assert context.db == "db:session"
    assert context.storage == "s3:b"
    assert context.conf == metadata.RunConf(
        bucket="b", prefix="p", migration_id="m", kms_key_id="k", phase="cutover"
    )
    assert context.upstream == pulled
    assert seen["closed"] is True
