"""The export/import DAGs' library: format, checksums, column mapping, merge plan, cutover.

The steps run against `EmulatedDatabase` (the emulator's stand-in for Airflow's ORM) and an
in-memory Storage; the Airflow-facing parts (`AirflowDatabase`, the DAG files under real Airflow)
are not exercised here.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
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
CONF = metadata.RunConf(bucket="migrations", prefix="runs/m-1", migration_id="m-1")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TRICKY = 'first line\nsecond line — ünïcødé ✓ 🚀\u2028after a line separator\r\n\ttabbed "quoted" \\ end'


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
            dag_run("daily_sales", "scheduled__2026-11-20", "success", "2026-11-20T00:00:00+00:00"),
            dag_run("daily_sales", "scheduled__2026-11-21", "failed", "2026-11-21T00:00:00+00:00"),
            dag_run("daily_sales", "scheduled__2026-11-22", "running", "2026-11-22T00:00:00+00:00"),
            dag_run("hourly_events", "manual__2026-11-22T09:30", "queued", "2026-11-22T09:30:00+00:00"),
            dag_run(
                "hourly_events",
                "manual__2026-11-22T08:30",
                "success",
                "2026-11-22T08:30:00Z",
                conf={"note": TRICKY, "n": [1, 2]},
            ),
            dag_run(metadata.EXPORT_DAG_ID, "mwaa-migrate-m-0", "success", "2026-11-01T00:00:00+00:00"),
        ],
    }


def dag_run(
    dag_id: str, run_id: str, state: str, execution_date: str, conf: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": 17,
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
            "dag": [
                {"dag_id": "daily_sales", "is_paused": True},
                {"dag_id": "hourly_events", "is_paused": True},
                {"dag_id": "legacy_export", "is_paused": True},
                {"dag_id": "target_only", "is_paused": False},
                {"dag_id": metadata.IMPORT_DAG_ID, "is_paused": False},
            ],
        },
    )


def export(env: EmulatedEnvironment, storage: MemoryStorage, conf: metadata.RunConf = CONF) -> dict[str, Any]:
    db = EmulatedDatabase(env, now=NOW)
    active = metadata.cutover(db, storage, conf)
    db.commit()
    db = EmulatedDatabase(env, now=NOW)
    metadata.export_tables(db, storage, conf, active)
    db.commit()
    return manifest_of(storage)


def import_(
    env: EmulatedEnvironment, storage: MemoryStorage, conf: metadata.RunConf = CONF
) -> dict[str, Any]:
    db = EmulatedDatabase(env, now=NOW)
    metadata.verify_export(db, storage, conf)
    metadata.pause_dags(db)
    db.commit()
    db = EmulatedDatabase(env, now=NOW)
    imported = metadata.import_tables(db, storage, conf)
    db.commit()
    db = EmulatedDatabase(env, now=NOW)
    result = metadata.unpause_dags(db, storage, conf, imported)
    db.commit()
    return result


def manifest_of(storage: MemoryStorage) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(storage.objects["runs/m-1/export/manifest.json"])
    return loaded


def lines_of(storage: MemoryStorage, table: str) -> list[dict[str, Any]]:
    text = gzip.decompress(storage.objects[f"runs/m-1/export/{table}.jsonl.gz"]).decode("utf-8")
    return [json.loads(line) for line in text.split("\n") if line]


def paused(env: EmulatedEnvironment) -> dict[str, bool]:
    return {row["dag_id"]: row["is_paused"] for row in env.metadata["dag"]}


def rewrite_manifest(storage: MemoryStorage, change: Any) -> None:
    manifest = manifest_of(storage)
    change(manifest)
    storage.objects["runs/m-1/export/manifest.json"] = json.dumps(manifest).encode()


# ------------------------------------------------------------------ format


def test_export_writes_a_manifest_describing_one_gzipped_file_per_table() -> None:
    storage = MemoryStorage()

    manifest = export(environment("2.7.2", source_metadata()), storage)

    assert manifest["format"] == "mwaa-migrate-metadata"
    assert manifest["format_version"] == 1
    assert manifest["migrationId"] == "m-1"
    assert manifest["source_airflow_version"] == "2.7.2"
    assert datetime.fromisoformat(manifest["exported_at"]).tzinfo is not None
    assert set(manifest["tables"]) == {"variable", "slot_pool", "dag_run"}
    for table, entry in manifest["tables"].items():
        body = storage.objects[f"runs/m-1/export/{table}.jsonl.gz"]
        assert entry["file"] == f"{table}.jsonl.gz"
        assert entry["sha256"] == hashlib.sha256(body).hexdigest()
        assert entry["rows"] == len(lines_of(storage, table))
    assert manifest["tables"]["dag_run"]["key"] == ["dag_id", "run_id"]
    assert {"name": "execution_date", "type": "datetime"} in manifest["tables"]["dag_run"]["columns"]


def test_rows_are_objects_of_named_columns_without_local_ids() -> None:
    storage = MemoryStorage()

    export(environment("2.7.2", source_metadata()), storage)

    variables = {row["key"]: row for row in lines_of(storage, "variable")}
    assert variables["warehouse_schema"] == {
        "key": "warehouse_schema",
        "val": "analytics",
        "description": "target schema",
    }
    runs = lines_of(storage, "dag_run")
    assert all({"id", "log_template_id", "creating_job_id"}.isdisjoint(run) for run in runs)


def test_datetimes_are_written_as_iso_8601_utc() -> None:
    columns = [Column("run_id", "string"), Column("execution_date", "datetime"), Column("conf", "json")]
    local = datetime(2026, 11, 20, 2, 0, tzinfo=timezone(timedelta(hours=2)))

    row = metadata.encode_row(
        "dag_run", {"run_id": "r", "execution_date": local, "conf": {"at": local}}, columns
    )

    assert row == {
        "run_id": "r",
        "execution_date": "2026-11-20T00:00:00+00:00",
        "conf": {"at": "2026-11-20T00:00:00+00:00"},
    }


def test_a_value_json_cannot_carry_fails_the_export_naming_the_row_not_the_value() -> None:
    columns = [Column("dag_id"), Column("run_id"), Column("conf", "json")]

    with pytest.raises(metadata.ExportError, match=r"dag_run \('d', 'r'\): column conf") as raised:
        metadata.encode_row("dag_run", {"dag_id": "d", "run_id": "r", "conf": {"blob": object()}}, columns)
    assert "object at" not in str(raised.value)


def test_table_file_round_trips_and_is_byte_for_byte_repeatable() -> None:
    rows: list[dict[str, Any]] = [{"key": "a", "val": TRICKY}, {"key": "b", "val": None}]
    body, count = metadata.encode_table(rows)
    entry = metadata.TableEntry(
        file="variable.jsonl.gz",
        rows=count,
        sha256=metadata.sha256_hex(body),
        key=("key",),
        columns=(Column("key"), Column("val")),
    )

    assert metadata.decode_table("variable", body, entry) == rows
    assert metadata.encode_table(rows)[0] == body


def test_a_value_with_newlines_and_unicode_survives_export_and_import() -> None:
    storage = MemoryStorage()
    target = target_environment()

    manifest = export(environment("2.7.2", source_metadata()), storage)
    import_(target, storage)

    assert manifest["tables"]["variable"]["rows"] == 3
    values = {row["key"]: row["val"] for row in target.metadata["variable"]}
    assert values["tricky"] == TRICKY
    confs = {row["run_id"]: row["conf"] for row in target.metadata["dag_run"]}
    assert confs["manual__2026-11-22T08:30"] == {"note": TRICKY, "n": [1, 2]}


def test_a_changed_file_is_refused_by_its_checksum() -> None:
    storage = MemoryStorage()
    export(environment("2.7.2", source_metadata()), storage)
    rows = lines_of(storage, "variable")
    rows[0]["val"] = "tampered"
    storage.objects["runs/m-1/export/variable.jsonl.gz"] = metadata.encode_table(rows)[0]

    with pytest.raises(metadata.VerificationError, match=r"variable.jsonl.gz: sha256 \w+ does not match"):
        metadata.verify_export(EmulatedDatabase(target_environment(), now=NOW), storage, CONF)


def test_a_row_count_that_does_not_match_the_manifest_is_refused() -> None:
    storage = MemoryStorage()
    export(environment("2.7.2", source_metadata()), storage)
    rewrite_manifest(storage, lambda manifest: manifest["tables"]["slot_pool"].update(rows=2))

    with pytest.raises(
        metadata.VerificationError, match=re.escape("slot_pool.jsonl.gz: holds 1 rows, the manifest says 2")
    ):
        metadata.verify_export(EmulatedDatabase(target_environment(), now=NOW), storage, CONF)


def test_a_missing_manifest_is_refused() -> None:
    with pytest.raises(metadata.MissingObjectError, match=re.escape("runs/m-1/export/manifest.json")):
        metadata.verify_export(EmulatedDatabase(target_environment(), now=NOW), MemoryStorage(), CONF)


def test_an_export_of_another_migration_is_refused() -> None:
    storage = MemoryStorage()
    export(environment("2.7.2", source_metadata()), storage)
    other = metadata.RunConf(bucket="migrations", prefix="runs/m-1", migration_id="m-2")

    with pytest.raises(metadata.VerificationError, match="belongs to migration 'm-1', not 'm-2'"):
        metadata.verify_export(EmulatedDatabase(target_environment(), now=NOW), storage, other)


def test_a_newer_format_version_is_refused() -> None:
    storage = MemoryStorage()
    export(environment("2.7.2", source_metadata()), storage)
    rewrite_manifest(storage, lambda manifest: manifest.update(format_version=2))

    with pytest.raises(
        metadata.VerificationError, match="format version 2; this import reads versions 1 to 1"
    ):
        metadata.read_manifest(storage, CONF)


def test_unknown_manifest_keys_are_ignored_but_unknown_tables_refused() -> None:
    storage = MemoryStorage()
    export(environment("2.7.2", source_metadata()), storage)
    rewrite_manifest(storage, lambda manifest: manifest.update(added_later={"x": 1}))
    assert set(metadata.read_manifest(storage, CONF).tables) == {"variable", "slot_pool", "dag_run"}

    rewrite_manifest(storage, lambda manifest: manifest["tables"].update(xcom=manifest["tables"]["variable"]))
    with pytest.raises(metadata.VerificationError, match="tables this import cannot load: xcom"):
        metadata.read_manifest(storage, CONF)


# ------------------------------------------------------------------ column mapping


def test_columns_the_target_lacks_are_dropped_and_listed() -> None:
    exported = [Column("pool"), Column("slots", "integer"), Column("team_owner")]
    target = [Column("id", "integer", nullable=False, has_default=True), Column("pool"), Column("slots")]

    mapping = metadata.map_columns("slot_pool", exported, target)

    assert mapping.dropped == ("team_owner",)
    assert mapping.apply({"pool": "p", "slots": 2, "team_owner": "x"}) == {"pool": "p", "slots": 2}


def test_local_id_columns_of_an_export_are_dropped_not_inserted() -> None:
    exported = [Column("id", "integer"), Column("key"), Column("val")]
    target = [Column("id", "integer", nullable=False, has_default=True), Column("key"), Column("val")]

    mapping = metadata.map_columns("variable", exported, target)

    assert mapping.dropped == ("id",)
    assert mapping.apply({"id": 5, "key": "k", "val": "v"}) == {"key": "k", "val": "v"}


def test_a_not_null_column_the_export_lacks_is_filled_by_the_rule_table() -> None:
    storage = MemoryStorage()
    source = environment(
        "2.6.3", source_metadata()
    )  # before slot_pool.include_deferred and dag_run.clear_number
    target = target_environment("2.10.3")

    export(source, storage)
    result = import_(target, storage)

    assert "include_deferred" not in {
        column["name"] for column in manifest_of(storage)["tables"]["slot_pool"]["columns"]
    }
    pools = {row["pool"]: row for row in target.metadata["slot_pool"]}
    assert pools["warehouse"]["include_deferred"] is False
    assert {row["clear_number"] for row in target.metadata["dag_run"]} == {0}
    assert result["columns"]["slot_pool"] == {"dropped": [], "filled": ["include_deferred"]}
    assert result["columns"]["dag_run"]["filled"] == ["clear_number"]


def test_a_null_in_a_not_null_column_with_a_rule_is_filled() -> None:
    exported = [Column("dag_id"), Column("run_id"), Column("run_type")]
    target = [
        Column("dag_id", nullable=False),
        Column("run_id", nullable=False),
        Column("run_type", nullable=False),
    ]

    mapping = metadata.map_columns("dag_run", exported, target)

    assert (
        mapping.apply({"dag_id": "d", "run_id": "backfill__2026-01-01", "run_type": None})["run_type"]
        == "backfill"
    )


def test_a_required_column_no_rule_fills_fails_with_its_name() -> None:
    exported = [Column("pool")]
    target = [Column("pool"), Column("team", nullable=False)]

    with pytest.raises(metadata.MappingError, match="slot_pool: the target requires team"):
        metadata.map_columns("slot_pool", exported, target)


# ------------------------------------------------------------------ merge


def test_merge_inserts_new_rows_and_skips_present_ones_without_overwriting() -> None:
    rows = [{"key": "a", "val": "new"}, {"key": "b", "val": "2"}]

    plan = metadata.plan_merge("variable", rows, {("key",): {("a",)}})

    assert plan.insert == [{"key": "b", "val": "2"}]
    assert (plan.read, plan.skipped, plan.conflicts) == (2, 1, [])


def test_merge_never_inserts_a_key_twice() -> None:
    rows = [{"pool": "p", "slots": 1}, {"pool": "p", "slots": 2}]

    plan = metadata.plan_merge("slot_pool", rows, {})

    assert plan.insert == [{"pool": "p", "slots": 1}]
    assert plan.skipped == 1


def test_merge_skips_a_run_whose_logical_date_another_run_holds_as_a_conflict() -> None:
    rows = [{"dag_id": "d", "run_id": "manual__x", "execution_date": "2026-01-01T00:00:00Z"}]
    existing: dict[tuple[str, ...], set[tuple[Any, ...]]] = {
        ("dag_id", "run_id"): set(),
        ("dag_id", "execution_date"): {("d", "2026-01-01T00:00:00+00:00")},
    }

    plan = metadata.plan_merge("dag_run", rows, existing, {"execution_date": "datetime"})

    assert plan.insert == []
    assert plan.conflicts == [("d", "manual__x")]
    assert plan.skipped == 1


def test_a_second_import_inserts_nothing_and_keeps_target_values() -> None:
    storage = MemoryStorage()
    target = target_environment()
    export(environment("2.7.2", source_metadata()), storage)
    first = import_(target, storage)
    next(row for row in target.metadata["variable"] if row["key"] == "warehouse_schema")["val"] = (
        "changed in target"
    )
    before = json.loads(json.dumps(target.metadata))

    second = import_(target, storage)

    assert first["tables"]["variable"] == {"read": 3, "inserted": 3, "skipped": 0, "conflicts": 0}
    assert second["tables"] == {
        "variable": {"read": 3, "inserted": 0, "skipped": 3, "conflicts": 0},
        "slot_pool": {"read": 1, "inserted": 0, "skipped": 1, "conflicts": 0},
        "dag_run": {"read": 3, "inserted": 0, "skipped": 3, "conflicts": 0},
    }
    assert target.metadata == before


def test_default_pool_is_neither_exported_nor_touched_in_the_target() -> None:
    storage = MemoryStorage()
    target = target_environment()
    export(environment("2.7.2", source_metadata()), storage)
    assert [row["pool"] for row in lines_of(storage, "slot_pool")] == ["warehouse"]
    # Even an export that carries it (hand-made, or from another tool) leaves the target's alone.
    rows = [*lines_of(storage, "slot_pool"), {"pool": "default_pool", "slots": 999, "description": "x"}]
    body, count = metadata.encode_table(rows)
    storage.objects["runs/m-1/export/slot_pool.jsonl.gz"] = body
    rewrite_manifest(
        storage,
        lambda manifest: manifest["tables"]["slot_pool"].update(rows=count, sha256=metadata.sha256_hex(body)),
    )

    result = import_(target, storage)

    default = [row for row in target.metadata["slot_pool"] if row["pool"] == "default_pool"]
    assert default == [
        {
            "id": 1,
            "pool": "default_pool",
            "slots": 32,
            "description": "Default pool",
            "include_deferred": False,
        }
    ]
    assert result["tables"]["slot_pool"] == {"read": 2, "inserted": 1, "skipped": 1, "conflicts": 0}


def test_export_leaves_out_its_own_runs_and_unfinished_runs() -> None:
    storage = MemoryStorage()

    export(environment("2.7.2", source_metadata()), storage)

    exported = {(row["dag_id"], row["run_id"], row["state"]) for row in lines_of(storage, "dag_run")}
    assert exported == {
        ("daily_sales", "scheduled__2026-11-20", "success"),
        ("daily_sales", "scheduled__2026-11-21", "failed"),
        ("hourly_events", "manual__2026-11-22T08:30", "success"),
    }


# ------------------------------------------------------------------ cutover


def test_cutover_records_and_pauses_the_active_dags_but_not_itself() -> None:
    storage = MemoryStorage()
    source = environment("2.7.2", source_metadata())

    manifest = export(source, storage)

    assert manifest["active_dags"] == ["daily_sales", "hourly_events"]
    assert paused(source) == {
        "daily_sales": True,
        "hourly_events": True,
        "legacy_export": True,
        "removed_dag": False,
        metadata.EXPORT_DAG_ID: False,
    }


def test_a_repeated_export_still_knows_which_dags_were_active() -> None:
    storage = MemoryStorage()
    source = environment("2.7.2", source_metadata())
    export(source, storage)

    again = export(source, storage)

    assert again["active_dags"] == ["daily_sales", "hourly_events"]


def test_import_unpauses_exactly_the_dags_active_in_the_source() -> None:
    storage = MemoryStorage()
    target = target_environment()
    target.metadata["dag"].remove({"dag_id": "hourly_events", "is_paused": True})
    export(environment("2.7.2", source_metadata()), storage)

    result = import_(target, storage)

    assert paused(target) == {
        "daily_sales": False,
        "legacy_export": True,
        "target_only": True,
        metadata.IMPORT_DAG_ID: False,
    }
    assert result["unpaused_dags"] == ["daily_sales"]
    assert result["missing_dags"] == ["hourly_events"]


def test_unpause_dags_false_leaves_every_dag_paused() -> None:
    storage = MemoryStorage()
    target = target_environment()
    export(environment("2.7.2", source_metadata()), storage)
    keep_paused = metadata.RunConf.from_conf(
        {"bucket": "migrations", "prefix": "runs/m-1", "migrationId": "m-1", "unpauseDags": False}
    )

    result = import_(target, storage, keep_paused)

    assert {dag_id for dag_id, is_paused in paused(target).items() if not is_paused} == {
        metadata.IMPORT_DAG_ID
    }
    assert result["unpaused_dags"] == []


def test_import_writes_a_verified_result_with_counts_per_table() -> None:
    storage = MemoryStorage()
    export(environment("2.7.2", source_metadata()), storage)

    result = import_(target_environment(), storage)

    assert json.loads(storage.objects["runs/m-1/import/result.json"]) == result
    assert result["migrationId"] == "m-1"
    assert result["verified"] is True
    assert result["tables"] == {
        "variable": {"read": 3, "inserted": 3, "skipped": 0, "conflicts": 0},
        "slot_pool": {"read": 1, "inserted": 1, "skipped": 0, "conflicts": 0},
        "dag_run": {"read": 3, "inserted": 3, "skipped": 0, "conflicts": 0},
    }


# ------------------------------------------------------------------ conf and versions


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"prefix": "p", "migrationId": "m"}, "'bucket'"),
        ({"bucket": "b", "prefix": "p", "migrationId": ""}, "'migrationId'"),
        ({"bucket": "b", "prefix": "p", "migrationId": "m", "unpauseDags": "no"}, "'unpauseDags'"),
    ],
)
def test_a_bad_conf_is_refused_with_the_field(conf: dict[str, Any], message: str) -> None:
    with pytest.raises(metadata.ConfError, match=message):
        metadata.RunConf.from_conf(conf)


def test_keys_live_under_the_prefix() -> None:
    conf = metadata.RunConf.from_conf({"bucket": "b", "prefix": "/a/b/", "migrationId": "m"})

    assert conf.key("export", "manifest.json") == "a/b/export/manifest.json"
    assert conf.unpause_dags is True


def test_an_airflow_3_environment_is_refused_before_anything_changes() -> None:
    storage = MemoryStorage()
    export(environment("2.7.2", source_metadata()), storage)
    target = target_environment("3.0.6")

    with pytest.raises(metadata.UnsupportedAirflowError, match=re.escape("Airflow 3.0.6")):
        metadata.verify_export(EmulatedDatabase(target, now=NOW), storage, CONF)


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
    """The glue only: Airflow's session and XCom are stand-ins here (no Airflow installed)."""
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

    def fake_run_task(dag_id: str, task_id: str, context: metadata.TaskContext) -> str:
        seen.update(dag_id=dag_id, task_id=task_id, context=context)
        return "returned"

    monkeypatch.setattr(metadata, "run_task", fake_run_task)
    pulled = {"verify_export": {"tables": {}}, "pause_dags": ["a"], "import_tables": {"tables": {"x": 1}}}
    ti = types.SimpleNamespace(xcom_pull=lambda task_ids: pulled[task_ids])
    dag_run_ = types.SimpleNamespace(conf={"bucket": "b", "prefix": "p", "migrationId": "m"})

    returned = metadata.airflow_task(metadata.IMPORT_DAG_ID, "unpause_dags")(dag_run=dag_run_, ti=ti)

    assert returned == "returned"
    context = seen["context"]
    assert isinstance(context.db, metadata.AirflowDatabase)
    assert context.db.session == "session"
    assert context.storage == "s3:b"
    assert context.conf == metadata.RunConf(bucket="b", prefix="p", migration_id="m")
    assert context.upstream == pulled
    assert seen["closed"] is True
