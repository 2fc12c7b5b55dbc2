"""Every kind of history the target can hold (issue 11): notes, SLA misses, the failed tries a
target bound for Airflow 3 must keep in task_instance_history, and the tables not carried, each
listed with its row count and reason.

The steps run against `EmulatedDatabase` (the library's row-by-row semantics); the PostgreSQL side
runs in the real tier (tests/airflow).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from emulation.dag_runtime import EmulatedDatabase
from emulation.mwaa import EmulatedEnvironment
from mwaa_migrate.dags import mwaa_migrate_metadata as metadata
from mwaa_migrate.dags.mwaa_migrate_metadata import Column
from tests.unit.test_metadata_format import (  # the format tests' storage, fixtures and rows
    NOW,
    RUN_20,
    WATERMARK,
    MemoryStorage,
    Migration,
    cutover_of,
    dag_run,
    environment,
    manifest_of,
    run_conf,
    task,
)

NOTE_TIME = "2026-11-20T08:00:00+00:00"
AFTER_WATERMARK = "2026-11-23T09:00:00+00:00"


@pytest.fixture
def conf(keys: metadata.KmsKeys) -> metadata.RunConf:
    return run_conf(keys)


def _note(content: str, at: str = NOTE_TIME, **key: Any) -> dict[str, Any]:
    return {"user_id": 3, "content": content, "created_at": at, "updated_at": at, **key}


def _source(**extra: list[dict[str, Any]]) -> EmulatedEnvironment:
    """A 2.7.2 source: one finished run (id 17) with a retried task, a running run (id 19)."""
    tables: dict[str, list[dict[str, Any]]] = {
        "dag": [{"dag_id": "daily_sales", "is_paused": False}],
        "dag_run": [
            dag_run("daily_sales", RUN_20, "success", "2026-11-20T00:00:00+00:00", run_pk=17),
            dag_run(
                "daily_sales", "scheduled__2026-11-22", "running", "2026-11-22T00:00:00+00:00", run_pk=19
            ),
        ],
        "task_instance": [
            {**task("daily_sales", RUN_20, "extract", "success"), "try_number": 3, "max_tries": 2},
            {**task("daily_sales", RUN_20, "load", "failed"), "try_number": 2, "max_tries": 1},
        ],
        "dag_run_note": [_note("rerun after the outage", dag_run_id=17)],
        "task_instance_note": [
            _note("flaky upstream", dag_id="daily_sales", task_id="extract", run_id=RUN_20, map_index=-1)
        ],
    }
    return environment("2.7.2", {**tables, **extra})


def _target(version: str = "2.10.3") -> EmulatedEnvironment:
    # The target's own run takes id 17: the note must point at the target's id of the source's run.
    return environment(
        version,
        {
            "dag": [{"dag_id": "daily_sales", "is_paused": True}],
            "dag_run": [
                dag_run("target_only", "manual__x", "success", "2026-01-01T00:00:00+00:00", run_pk=17)
            ],
        },
    )


@dataclasses.dataclass
class Exported(Migration):
    """The format tests' migration of this file's source and target, with the cutover's delta alone."""

    def export_delta(self) -> None:
        """The delta exported as the cutover's export_tables does, daily_sales paused after the bulk."""
        db = EmulatedDatabase(self.source, now=NOW)
        paused = {"active_dags": ["daily_sales"], "paused_at": AFTER_WATERMARK}
        metadata.export_delta(db, self.storage, cutover_of(self.conf), self.keys, paused=paused, drained={})
        db.commit()


Export = Callable[..., Exported]


@pytest.fixture
def exported(conf: metadata.RunConf, keys: metadata.KmsKeys) -> Export:
    """A source's bulk exported, to be imported into a target (`_target()` unless named)."""

    def export_bulk(source: EmulatedEnvironment, target: EmulatedEnvironment | None = None) -> Exported:
        migration = Exported(conf, keys, source, MemoryStorage(), target or _target())
        db = EmulatedDatabase(source, now=NOW)
        metadata.export_bulk(db, migration.storage, conf, keys, watermark=WATERMARK)
        db.commit()
        return migration

    return export_bulk


def _run_id_of(env: EmulatedEnvironment, pk: Any) -> str:
    [run] = [run for run in env.metadata["dag_run"] if run["id"] == pk]
    return str(run["run_id"])


# ------------------------------------------------------------------ notes


def test_a_run_note_is_exported_by_its_runs_key_without_local_ids(
    exported: Export, conf: metadata.RunConf
) -> None:
    migration = exported(_source())

    [note] = migration.rows(conf, "dag_run_note")

    assert note == {
        "dag_id": "daily_sales",
        "run_id": RUN_20,
        "content": "rerun after the outage",
        "created_at": NOTE_TIME,
        "updated_at": NOTE_TIME,
    }


def test_a_run_note_points_at_the_targets_own_id_of_the_run(exported: Export, conf: metadata.RunConf) -> None:
    migration = exported(_source())
    target = migration.target

    result = migration.import_(conf)

    [note] = target.metadata["dag_run_note"]
    assert note["dag_run_id"] != 17
    assert _run_id_of(target, note["dag_run_id"]) == RUN_20
    assert (note["content"], note["user_id"]) == ("rerun after the outage", None)
    assert result["tables"]["dag_run_note"]["inserted"] == 1
    assert result["columns"]["dag_run_note"]["dropped"] == []


def test_a_task_note_lands_with_its_task_instance(exported: Export, conf: metadata.RunConf) -> None:
    migration = exported(_source())
    target = migration.target

    migration.import_(conf)

    [note] = target.metadata["task_instance_note"]
    assert (note["task_id"], note["run_id"], note["content"], note["user_id"]) == (
        "extract",
        RUN_20,
        "flaky upstream",
        None,
    )


def test_a_note_of_a_run_the_bulk_leaves_out_waits_for_the_delta(
    exported: Export, conf: metadata.RunConf
) -> None:
    migration = exported(_source(dag_run_note=[_note("still running", dag_run_id=19)]))

    assert migration.rows(conf, "dag_run_note") == []


def test_the_delta_carries_a_note_written_after_the_bulk_on_a_run_the_bulk_carried(
    exported: Export, conf: metadata.RunConf
) -> None:
    migration = exported(_source())
    source, target = migration.source, migration.target
    migration.import_(conf)
    source.metadata["dag_run_note"][0].update(content="root cause: DNS", updated_at=AFTER_WATERMARK)
    source.metadata["task_instance_note"].append(
        _note("new", AFTER_WATERMARK, dag_id="daily_sales", task_id="load", run_id=RUN_20, map_index=-1)
    )

    migration.export_delta()
    result = migration.import_(cutover_of(conf))

    assert [note["content"] for note in target.metadata["dag_run_note"]] == ["root cause: DNS"]
    assert sorted(note["content"] for note in target.metadata["task_instance_note"]) == [
        "flaky upstream",
        "new",
    ]
    assert result["tables"]["dag_run_note"] == {
        "read": 1,
        "inserted": 0,
        "updated": 1,
        "identical": 0,
        "conflicts": 0,
    }
    assert result["tables"]["task_instance_note"]["inserted"] == 1


def test_a_second_import_of_the_notes_changes_nothing(exported: Export, conf: metadata.RunConf) -> None:
    migration = exported(_source())
    target = migration.target
    migration.import_(conf)

    again = migration.import_(conf)

    for table in ("dag_run_note", "task_instance_note"):
        assert again["tables"][table] == {
            "read": 1,
            "inserted": 0,
            "updated": 0,
            "identical": 1,
            "conflicts": 0,
        }
    assert len(target.metadata["dag_run_note"]) == 1


def test_a_note_the_target_wrote_itself_is_a_conflict_not_overwritten(
    exported: Export, conf: metadata.RunConf
) -> None:
    migration = exported(_source())
    target = migration.target
    migration.import_(dataclasses.replace(conf, on_conflict="keep-target"))
    target.metadata["dag_run_note"][0]["content"] = "written on the target"

    kept = migration.import_(dataclasses.replace(conf, on_conflict="keep-target"))

    assert kept["conflicts"]["dag_run_note"]["listed"] == [
        {"key": {"dag_id": "daily_sales", "run_id": RUN_20}, "reason": "differs"}
    ]
    assert target.metadata["dag_run_note"][0]["content"] == "written on the target"


def test_the_run_note_mapping_resolves_the_run_and_drops_nothing() -> None:
    exported = [Column("content", "string"), Column("dag_id", "string"), Column("run_id", "string")]
    target = [
        Column("user_id", "integer"),
        Column("dag_run_id", "integer", nullable=False),
        Column("content", "string"),
    ]

    mapping = metadata.map_columns("dag_run_note", exported, target)

    assert mapping.kept == (("content", "content"),)
    assert mapping.dropped == ()
    assert [ref.column for ref in mapping.id_refs] == ["dag_run_id"]


# ------------------------------------------------------------------ datasets

SALES, ORPHAN = "s3://lake/sales", "s3://lake/orphaned"
CONSUMER_RUN = "dataset_triggered__2026-11-20T08:00:05+00:00"


def _dataset(pk: int, uri: str, at: str = "2026-11-01T00:00:00+00:00") -> dict[str, Any]:
    return {"id": pk, "uri": uri, "extra": {}, "created_at": at, "updated_at": at, "is_orphaned": False}


def _event(pk: int, dataset_id: int, at: str, *, source: bool = True) -> dict[str, Any]:
    produced = {"source_dag_id": "daily_sales", "source_task_id": "extract", "source_run_id": RUN_20}
    return {
        "id": pk,
        "dataset_id": dataset_id,
        "extra": {"rows": pk},
        **(produced if source else {"source_dag_id": None, "source_task_id": None, "source_run_id": None}),
        "source_map_index": -1 if source else None,
        "timestamp": at,
    }


def _with_datasets(**extra: list[dict[str, Any]]) -> EmulatedEnvironment:
    """daily_sales (run 17) updates SALES; sales_report's run 18 is triggered by that event; an event
    posted through the API (no source task) on a dataset no DAG names any more."""
    consumer = dag_run("sales_report", CONSUMER_RUN, "success", "2026-11-20T08:00:05+00:00", run_pk=18)
    env = _source(
        dataset=[_dataset(5, SALES), _dataset(6, ORPHAN)],
        dataset_event=[_event(11, 5, NOTE_TIME), _event(12, 6, "2026-11-20T09:00:00+00:00", source=False)],
        dagrun_dataset_event=[{"dag_run_id": 18, "event_id": 11}],
        **extra,
    )
    env.metadata["dag_run"].append(json.loads(json.dumps(consumer)))
    return env


def _target_with_sales() -> EmulatedEnvironment:
    target = _target()
    # The target's DAG processor made SALES from the DAG files already, with its own id and times.
    target.metadata["dataset"] = [_dataset(1, SALES, "2026-12-01T00:00:00+00:00")]
    return target


@pytest.fixture
def datasets(exported: Export) -> Exported:
    """The dataset history exported, for a target whose DAG processor made SALES already."""
    return exported(_with_datasets(), _target_with_sales())


def _uri_of(env: EmulatedEnvironment, pk: Any) -> str:
    [dataset] = [row for row in env.metadata["dataset"] if row["id"] == pk]
    return str(dataset["uri"])


def test_dataset_events_are_exported_by_their_datasets_uri(exported: Export, conf: metadata.RunConf) -> None:
    migration = exported(_with_datasets())

    events = migration.rows(conf, "dataset_event")

    assert [(event["uri"], event["extra"]) for event in events] == [
        (SALES, {"rows": 11}),
        (ORPHAN, {"rows": 12}),
    ]
    assert all("dataset_id" not in event and "id" not in event for event in events)


def test_events_point_at_the_targets_datasets_by_uri_and_add_the_ones_it_lacks(
    datasets: Exported, conf: metadata.RunConf
) -> None:
    target = datasets.target

    result = datasets.import_(conf)

    [sales] = [row for row in target.metadata["dataset"] if row["uri"] == SALES]
    assert sales == _dataset(1, SALES, "2026-12-01T00:00:00+00:00")  # the target's own, untouched
    assert result["tables"]["dataset"] == {
        "read": 2,
        "inserted": 1,
        "updated": 0,
        "identical": 1,
        "conflicts": 0,
    }
    landed = sorted(
        (_uri_of(target, e["dataset_id"]), e["extra"]["rows"]) for e in target.metadata["dataset_event"]
    )
    assert landed == [(ORPHAN, 12), (SALES, 11)]


def test_a_runs_triggering_event_is_linked_by_the_targets_own_ids(
    datasets: Exported, conf: metadata.RunConf
) -> None:
    target = datasets.target

    datasets.import_(conf)

    [link] = target.metadata["dagrun_dataset_event"]
    [event] = [row for row in target.metadata["dataset_event"] if row["id"] == link["event_id"]]
    assert _run_id_of(target, link["dag_run_id"]) == CONSUMER_RUN
    assert (_uri_of(target, event["dataset_id"]), event["timestamp"]) == (SALES, NOTE_TIME)


def test_a_second_import_of_the_dataset_history_adds_nothing(
    datasets: Exported, conf: metadata.RunConf
) -> None:
    target = datasets.target
    datasets.import_(conf)

    again = datasets.import_(conf)

    for table in ("dataset", "dataset_event", "dagrun_dataset_event"):
        counts = again["tables"][table]
        assert (counts["inserted"], counts["updated"], counts["conflicts"]) == (0, 0, 0), table
        assert counts["identical"] == counts["read"] > 0, table
    assert (len(target.metadata["dataset_event"]), len(target.metadata["dagrun_dataset_event"])) == (2, 1)


def test_an_event_after_the_watermark_and_the_run_it_triggered_come_with_the_delta(
    datasets: Exported, conf: metadata.RunConf
) -> None:
    source, target = datasets.source, datasets.target
    datasets.import_(conf)
    late_run = dag_run("sales_report", "dataset_triggered__late", "success", AFTER_WATERMARK, run_pk=30)
    source.metadata["dag_run"].append({**late_run, "end_date": AFTER_WATERMARK})
    source.metadata["dataset_event"].append(_event(13, 5, AFTER_WATERMARK))
    source.metadata["dagrun_dataset_event"].append({"dag_run_id": 30, "event_id": 13})

    datasets.export_delta()
    result = datasets.import_(cutover_of(conf))

    delta = datasets.rows(cutover_of(conf), "dataset_event")
    assert [row["timestamp"] for row in delta] == [AFTER_WATERMARK]
    assert result["tables"]["dagrun_dataset_event"]["inserted"] == 1
    assert len(target.metadata["dagrun_dataset_event"]) == 2


def _queued(dag_id: str) -> dict[str, Any]:
    return {"dataset_id": 5, "target_dag_id": dag_id, "created_at": NOTE_TIME}


def test_pending_dataset_triggers_wait_for_the_cutover(exported: Export, conf: metadata.RunConf) -> None:
    migration = exported(_with_datasets(dataset_dag_run_queue=[_queued("sales_report")]))

    assert migration.rows(conf, "dataset_dag_run_queue") == []


def test_the_cutover_carries_the_pending_dataset_triggers_by_uri(
    datasets: Exported, conf: metadata.RunConf
) -> None:
    source, target = datasets.source, datasets.target
    target.metadata["dag"].append({"dag_id": "sales_report", "is_paused": True})
    datasets.import_(conf)
    source.metadata["dataset_dag_run_queue"] = [_queued("sales_report")]

    datasets.export_delta()
    result = datasets.import_(cutover_of(conf))
    again = datasets.import_(cutover_of(conf))

    [queued] = target.metadata["dataset_dag_run_queue"]
    assert (_uri_of(target, queued["dataset_id"]), queued["target_dag_id"]) == (SALES, "sales_report")
    assert result["tables"]["dataset_dag_run_queue"]["inserted"] == 1
    assert again["tables"]["dataset_dag_run_queue"]["identical"] == 1


def test_a_pending_trigger_for_a_dag_the_target_lacks_is_listed_not_failed(
    datasets: Exported, conf: metadata.RunConf
) -> None:
    source, target = datasets.source, datasets.target
    datasets.import_(conf)
    source.metadata["dataset_dag_run_queue"] = [_queued("sales_report")]

    datasets.export_delta()
    result = datasets.import_(cutover_of(conf))

    assert target.metadata.get("dataset_dag_run_queue", []) == []
    assert result["tables"]["dataset_dag_run_queue"] == {
        "read": 1,
        "inserted": 0,
        "updated": 0,
        "identical": 0,
        "conflicts": 0,
        "dropped": 1,
    }
    assert result["not_carried"] == [
        {
            "table": "dataset_dag_run_queue",
            "rows": 1,
            "reason": "for DAGs the target does not have: sales_report",
        }
    ]


# ------------------------------------------------------------------ SLA misses


def _sla(task_id: str, at: str | None) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "dag_id": "daily_sales",
        "execution_date": "2026-11-20T00:00:00+00:00",
        "email_sent": False,
        "timestamp": at,
        "description": "took too long",
        "notification_sent": True,
    }


def test_sla_misses_are_split_at_the_watermark_and_land_once(
    exported: Export, conf: metadata.RunConf
) -> None:
    migration = exported(_source(sla_miss=[_sla("extract", NOTE_TIME)]))
    source, target = migration.source, migration.target
    migration.import_(conf)
    source.metadata["sla_miss"].append(_sla("load", AFTER_WATERMARK))

    migration.export_delta()
    result = migration.import_(cutover_of(conf))

    assert [row["task_id"] for row in migration.rows(cutover_of(conf), "sla_miss")] == ["load"]
    assert sorted(row["task_id"] for row in target.metadata["sla_miss"]) == ["extract", "load"]
    assert result["tables"]["sla_miss"]["inserted"] == 1


# ------------------------------------------------------------------ not carried


def test_tables_not_carried_are_listed_with_their_rows_and_reason(
    exported: Export, conf: metadata.RunConf, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every table with history is carried today: the listing is shown with one said not to be.
    monkeypatch.setitem(metadata.NOT_CARRIED, "sla_miss", "not carried by this format version")
    monkeypatch.setattr(
        metadata, "TABLES", tuple(spec for spec in metadata.TABLES if spec.name != "sla_miss")
    )
    misses = [_sla("extract", NOTE_TIME), _sla("load", NOTE_TIME)]
    migration = exported(_source(sla_miss=misses))

    result = migration.import_(conf)

    [listed] = manifest_of(migration.storage)["not_carried"]
    assert listed == {"table": "sla_miss", "rows": 2, "reason": "not carried by this format version"}
    assert result["not_carried"] == [listed]  # the export's list, passed on by the import


def test_a_table_the_target_lacks_is_listed_as_not_carried(exported: Export, conf: metadata.RunConf) -> None:
    migration = exported(_source(), environment("2.4.3", {"dag": [], "dag_run": []}))

    result = migration.import_(conf)

    assert result["not_carried"] == [
        {"table": "dag_run_note", "rows": 1, "reason": "Airflow 2.4.3 has no dag_run_note table"},
        {"table": "task_instance_note", "rows": 1, "reason": "Airflow 2.4.3 has no task_instance_note table"},
    ]


def test_a_manifest_whose_not_carried_is_malformed_is_refused() -> None:
    manifest = {
        "format": metadata.FORMAT_NAME,
        "format_version": metadata.FORMAT_VERSION,
        "phase": "bulk",
        "watermark": "2026-11-23T06:00:00+00:00",
        "tables": {},
        "active_dags": [],
        "secrets": {"algorithm": metadata.SECRET_ALGORITHM, "encryption_context": {}},
        "not_carried": [{"rows": 3}],
    }

    with pytest.raises(metadata.VerificationError, match="not_carried"):
        metadata.Manifest.from_json(manifest)


# ------------------------------------------------------------------ failed tries before Airflow 3


def _fail(task_id: str, start: str, end: str, pk: int) -> dict[str, Any]:
    return {
        "id": pk,
        "dag_id": "daily_sales",
        "task_id": task_id,
        "run_id": RUN_20,
        "map_index": -1,
        "start_date": start,
        "end_date": end,
        "duration": 4,
    }


# extract: tries 1 and 2 failed, try 3 (the task instance's own, started 00:00:05) succeeded.
# load: try 1 failed, try 2 (its own) failed too: task_fail has both.
FAILS = [
    _fail("extract", "2026-11-19T23:58:00+00:00", "2026-11-19T23:58:04+00:00", 1),
    _fail("extract", "2026-11-19T23:59:00+00:00", "2026-11-19T23:59:04+00:00", 2),
    _fail("load", "2026-11-19T23:57:00+00:00", "2026-11-19T23:57:04+00:00", 3),
    _fail("load", "2026-11-20T00:00:05+00:00", "2026-11-20T00:00:09+00:00", 4),
]


def _to_airflow_3(conf: metadata.RunConf) -> metadata.RunConf:
    return dataclasses.replace(conf, target_final_version="3.0.6")


def _history(env: EmulatedEnvironment) -> list[tuple[Any, ...]]:
    return sorted(
        (row["task_id"], row["try_number"], row["state"], row["start_date"], row["pool"])
        for row in env.metadata.get("task_instance_history", [])
    )


def test_a_target_bound_for_airflow_3_keeps_the_failed_tries_in_task_instance_history(
    exported: Export, conf: metadata.RunConf
) -> None:
    migration = exported(_source(task_fail=FAILS), _target("2.11.0"))
    target = migration.target

    result = migration.import_(_to_airflow_3(conf))

    assert _history(target) == [
        ("extract", 1, "failed", "2026-11-19T23:58:00+00:00", "default_pool"),
        ("extract", 2, "failed", "2026-11-19T23:59:00+00:00", "default_pool"),
        ("load", 1, "failed", "2026-11-19T23:57:00+00:00", "default_pool"),
    ]
    synthesized = result["synthesized"]["task_instance_history"]
    assert (synthesized["candidates"], synthesized["written"], synthesized["unnumbered"]) == (3, 3, 0)
    assert "task_fail" in synthesized["why"]


def test_a_target_staying_on_airflow_2_gets_no_synthesized_tries(
    exported: Export, conf: metadata.RunConf
) -> None:
    migration = exported(_source(task_fail=FAILS), _target("2.11.0"))
    target = migration.target

    result = migration.import_(conf)

    assert _history(target) == []
    assert result["synthesized"] == {}


def test_synthesizing_the_tries_again_writes_nothing(exported: Export, conf: metadata.RunConf) -> None:
    migration = exported(_source(task_fail=FAILS), _target("2.11.0"))
    target = migration.target
    migration.import_(_to_airflow_3(conf))

    again = migration.import_(_to_airflow_3(conf))

    assert len(_history(target)) == 3
    assert again["synthesized"]["task_instance_history"]["written"] == 0


def test_more_failures_than_tries_are_listed_as_not_carried(exported: Export, conf: metadata.RunConf) -> None:
    fails = [*FAILS, _fail("load", "2026-11-19T23:56:00+00:00", "2026-11-19T23:56:04+00:00", 5)]
    migration = exported(_source(task_fail=fails), _target("2.11.0"))
    target = migration.target

    result = migration.import_(_to_airflow_3(conf))

    assert [row[:2] for row in _history(target)] == [("extract", 1), ("extract", 2), ("load", 1)]
    [lost] = result["not_carried"]
    assert (lost["table"], lost["rows"]) == ("task_fail", 1)
    assert "no try number" in lost["reason"]


def test_sla_misses_for_a_target_bound_for_airflow_3_are_listed_as_lost(
    exported: Export, conf: metadata.RunConf
) -> None:
    migration = exported(_source(sla_miss=[_sla("extract", NOTE_TIME)]), _target("2.11.0"))

    result = migration.import_(_to_airflow_3(conf))

    assert result["not_carried"] == [{"table": "sla_miss", "rows": 1, "reason": metadata.SLA_MISS_GONE}]


def test_the_sla_miss_line_says_airflow_3_leaves_the_rows_unread_not_dropped() -> None:
    # Airflow 3.0.6's own migration keeps the sla_miss table and its rows (the real tier's hop
    # measures it); nothing in Airflow 3 reads them.
    assert "unread by Airflow 3" in metadata.SLA_MISS_GONE
    assert "drops" not in metadata.SLA_MISS_GONE


def test_the_conf_says_which_version_the_target_ends_at() -> None:
    base = {"bucket": "b", "prefix": "p", "migrationId": "m", "kmsKeyId": "k", "phase": "bulk"}

    assert metadata.RunConf.from_conf({**base, "targetFinalVersion": "3.0.6"}).target_becomes_airflow_3
    assert not metadata.RunConf.from_conf({**base, "targetFinalVersion": "2.11.0"}).target_becomes_airflow_3
    assert not metadata.RunConf.from_conf(base).target_becomes_airflow_3
    with pytest.raises(metadata.ConfError, match="targetFinalVersion"):
        metadata.RunConf.from_conf({**base, "targetFinalVersion": 3})


def test_the_synthesized_rows_keep_json_shapes() -> None:
    assert json.loads(json.dumps(metadata.TryHistory(candidates=1, written=1).to_json())) == {
        "from": "task_fail",
        "candidates": 1,
        "written": 1,
        "unnumbered": 0,
    }
