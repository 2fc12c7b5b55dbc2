"""Write history that people and Airflow's SLA check make, through Airflow's own models, as JSON
operations on argv[1]: run notes and task notes (what the UI's note editor and the REST API's
setNote write: `DagRun.note`, `TaskInstance.note`) and SLA misses (`SlaMiss`, what the DAG
processor's SLA check records; its timing is not reproducible in a test, so the tier writes the
row the check would).

Run with an Airflow installation's own Python (its AIRFLOW_HOME and database in the environment).
"""

from __future__ import annotations

import json
import sys

import fab_models  # noqa: F401  (the notes' user model, next to this script)
from airflow.models import DagRun, TaskInstance
from airflow.models.slamiss import SlaMiss
from airflow.utils import timezone
from airflow.utils.session import create_session


def main() -> None:
    with create_session() as session:
        for operation in json.loads(sys.argv[1]):
            date = timezone.parse(operation["date"])
            run = session.query(DagRun).filter_by(dag_id=operation["dag_id"], execution_date=date).one()
            if operation["kind"] == "run_note":
                run.note = operation["content"]
            elif operation["kind"] == "task_note":
                ti = (
                    session.query(TaskInstance)
                    .filter_by(
                        dag_id=run.dag_id, run_id=run.run_id, task_id=operation["task_id"], map_index=-1
                    )
                    .one()
                )
                ti.note = operation["content"]
            elif operation["kind"] == "sla_miss":
                session.merge(
                    SlaMiss(
                        task_id=operation["task_id"],
                        dag_id=run.dag_id,
                        execution_date=date,
                        timestamp=timezone.utcnow(),
                        description=operation["content"],
                        email_sent=False,
                        notification_sent=True,
                    )
                )
            else:
                raise ValueError(f"unknown operation {operation['kind']!r}")


if __name__ == "__main__":
    main()
