"""What Airflow itself reports about an environment's metadata, as JSON on stdout.

Run with an Airflow installation's own Python (its AIRFLOW_HOME and database in the environment):
it reads everything through Airflow's models (DagRun, TaskInstance, XCom, Variable, Connection,
Pool, DagModel, TaskFail, Log), as the UI and API would show it, so the two sides of a migration
can be compared whatever their versions. The project's own DAGs are left out.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from airflow.models import Connection, DagModel, DagRun, Log, Pool, TaskInstance, Variable, XCom
from airflow.models.taskfail import TaskFail
from airflow.utils.session import create_session

PROJECT = ("mwaa_migrate_export", "mwaa_migrate_import")


def iso(value):
    return value.isoformat() if value is not None else None


def main() -> None:
    report = {}
    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id.notin_(PROJECT)).all()
        report["dag_runs"] = {
            f"{run.dag_id}/{run.run_id}": {
                "state": run.state,
                "run_type": run.run_type,
                "execution_date": iso(run.execution_date),
                "start_date": iso(run.start_date),
                "end_date": iso(run.end_date),
                "data_interval": [iso(run.data_interval_start), iso(run.data_interval_end)],
                "conf": run.conf,
                "external_trigger": run.external_trigger,
            }
            for run in runs
        }
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id.notin_(PROJECT)).all()
        report["task_instances"] = {
            f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}": {
                "state": ti.state,
                "attempts": ti.prev_attempted_tries,
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
        report["xcom"] = {f"{x.dag_id}/{x.run_id}/{x.task_id}/{x.map_index}/{x.key}": x.value for x in xcoms}
        report["variables"] = {key: Variable.get(key) for (key,) in session.query(Variable.key).all()}
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
        fails = Counter(
            f"{f.dag_id}/{f.run_id}/{f.task_id}/{f.map_index}"
            for f in session.query(TaskFail).filter(TaskFail.dag_id.notin_(PROJECT)).all()
        )
        report["task_fail"] = dict(fails)
        logs = session.query(Log).all()
        report["log"] = sorted(
            json.dumps([iso(entry.dttm), entry.event, entry.dag_id, entry.task_id, entry.owner, entry.extra])
            for entry in logs
            if entry.dag_id not in PROJECT
        )
    json.dump(report, sys.stdout, default=str, sort_keys=True)


if __name__ == "__main__":
    main()
