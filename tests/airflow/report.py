"""What Airflow itself reports about an environment's metadata, as JSON on stdout.

Run with an Airflow installation's own Python (its AIRFLOW_HOME and database in the environment):
it reads everything through that version's own models, as the UI and API would show it, so the two
sides of a migration can be compared whatever their versions. Airflow 2: DagRun, TaskInstance,
TaskInstanceHistory (2.10+), XCom, RenderedTaskInstanceFields, Variable, Connection, Pool, DagModel,
TaskFail, Log, SlaMiss, DatasetEvent and the notes of runs and task instances. Airflow 3 renamed or
removed some of them: logical_date only (no execution_date), no external_trigger, XComModel (JSON
values), AssetEvent for DatasetEvent, and no TaskFail or SlaMiss (its migration drops both tables):
those sections are absent from an Airflow 3 report. The project's own DAGs are left out.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import fab_models  # noqa: F401  (the notes' user model on Airflow 2, next to this script)
from airflow import __version__
from airflow.models import Connection, DagModel, DagRun, Pool, TaskInstance, Variable, import_all_models
from airflow.models.base import Base
from airflow.models.log import Log
from airflow.models.renderedtifields import RenderedTaskInstanceFields
from airflow.utils.session import create_session
from packaging.version import Version

PROJECT = ("mwaa_migrate_export", "mwaa_migrate_import")
AIRFLOW_3 = Version(__version__) >= Version("3")

if AIRFLOW_3:
    from airflow.models.asset import AssetEvent as DatasetEvent
    from airflow.models.xcom import XComModel as XCom
else:
    from airflow.models import XCom
    from airflow.models.dataset import DatasetEvent


def iso(value):
    return value.isoformat() if value is not None else None


def ti_key(ti) -> str:
    return f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}"


def dag_run(run) -> dict:
    shown = {
        "state": run.state,
        "run_type": run.run_type,
        "logical_date": iso(run.logical_date if AIRFLOW_3 else run.execution_date),
        "start_date": iso(run.start_date),
        "end_date": iso(run.end_date),
        "data_interval": [iso(run.data_interval_start), iso(run.data_interval_end)],
        "conf": run.conf,
    }
    if not AIRFLOW_3:  # Airflow 3 dropped the column (run_type and triggered_by tell it)
        shown["external_trigger"] = run.external_trigger
    return shown


def xcom_value(entry):
    return XCom.deserialize_value(entry) if AIRFLOW_3 else entry.value


def main() -> None:
    import_all_models()
    report = {}
    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id.notin_(PROJECT)).all()
        report["dag_runs"] = {f"{run.dag_id}/{run.run_id}": dag_run(run) for run in runs}
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id.notin_(PROJECT)).all()
        report["task_instances"] = {
            ti_key(ti): {
                "state": ti.state,
                # Tries made so far (2.10+ and 3 store that as try_number; before, _try_number).
                "attempts": ti.try_number if AIRFLOW_3 else ti.prev_attempted_tries,
                "max_tries": ti.max_tries,
                "start_date": iso(ti.start_date),
                "end_date": iso(ti.end_date),
                "duration": ti.duration,
                "pool": ti.pool,
                "operator": ti.operator,
                "hostname": ti.hostname,
            }
            for ti in tis
        }
        xcoms = session.query(XCom).filter(XCom.dag_id.notin_(PROJECT)).all()
        report["xcom"] = {
            f"{x.dag_id}/{x.run_id}/{x.task_id}/{x.map_index}/{x.key}": xcom_value(x) for x in xcoms
        }
        report["rendered_fields"] = {
            ti_key(r): r.rendered_fields
            for r in session.query(RenderedTaskInstanceFields)
            .filter(RenderedTaskInstanceFields.dag_id.notin_(PROJECT))
            .all()
        }
        # Read before Variable.get, whose metastore lookup detaches every object of the session.
        report["run_notes"] = {f"{run.dag_id}/{run.run_id}": run.note for run in runs if run.note is not None}
        report["task_notes"] = {ti_key(ti): ti.note for ti in tis if ti.note is not None}
        if Version(__version__) >= Version("2.10"):
            from airflow.models.taskinstancehistory import TaskInstanceHistory  # noqa: PLC0415

            report["tries"] = {
                f"{ti_key(t)}/{t.try_number}": {
                    "state": t.state,
                    "start_date": iso(t.start_date),
                    "end_date": iso(t.end_date),
                }
                for t in session.query(TaskInstanceHistory)
                .filter(TaskInstanceHistory.dag_id.notin_(PROJECT))
                .all()
            }
        if not AIRFLOW_3:
            from airflow.models.slamiss import SlaMiss  # noqa: PLC0415
            from airflow.models.taskfail import TaskFail  # noqa: PLC0415

            report["sla_miss"] = {
                f"{miss.dag_id}/{miss.task_id}/{iso(miss.execution_date)}": {
                    "timestamp": iso(miss.timestamp),
                    "description": miss.description,
                    "email_sent": miss.email_sent,
                    "notification_sent": miss.notification_sent,
                }
                for miss in session.query(SlaMiss).filter(SlaMiss.dag_id.notin_(PROJECT)).all()
            }
            fails = Counter(
                f"{f.dag_id}/{f.run_id}/{f.task_id}/{f.map_index}"
                for f in session.query(TaskFail).filter(TaskFail.dag_id.notin_(PROJECT)).all()
            )
            report["task_fail"] = dict(fails)
        # Dataset (Airflow 3: asset) events by their URI, with the runs they triggered (the
        # dagrun_dataset_event / dagrun_asset_event links).
        report["dataset_events"] = sorted(
            json.dumps(
                [
                    event.uri,
                    iso(event.timestamp),
                    event.source_dag_id,
                    event.source_task_id,
                    event.source_run_id,
                    event.source_map_index,
                    event.extra,
                    sorted(f"{run.dag_id}/{run.run_id}" for run in event.created_dagruns),
                ]
            )
            for event in session.query(DatasetEvent).all()
        )
        # Variable.val decrypts with this environment's Fernet key (Variable.get would also do on
        # Airflow 2; on Airflow 3 it is the task SDK's).
        report["variables"] = {v.key: v.val for v in session.query(Variable).all()}
        report["connections"] = {
            c.conn_id: {
                "conn_type": c.conn_type,
                "host": c.host,
                "schema": c.schema,
                "login": c.login,
                "password": c.get_password(),
                "port": c.port,
                "extra": c.extra_dejson,
                "description": c.description,
            }
            for c in session.query(Connection).all()
        }
        report["pools"] = {
            p.pool: {"slots": p.slots, "description": p.description} for p in session.query(Pool).all()
        }
        report["paused"] = {d.dag_id: d.is_paused for d in session.query(DagModel).all()}
        # The tables this version's own models know (not compared: what the hop tests read).
        report["models"] = sorted(Base.metadata.tables)
        logs = session.query(Log).all()
        report["log"] = sorted(
            json.dumps([iso(entry.dttm), entry.event, entry.dag_id, entry.task_id, entry.owner, entry.extra])
            for entry in logs
            if entry.dag_id not in PROJECT
        )
    json.dump(report, sys.stdout, default=str, sort_keys=True)


if __name__ == "__main__":
    main()
