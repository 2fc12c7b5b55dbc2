"""mwaa-migrate's import DAG: the target side of a metadata migration, in two phases.

The pipeline uploads this file and `mwaa_migrate_metadata.py` into the target environment's DAG
folder and triggers the DAG with the export's conf (`"phase": "bulk"`, then `"cutover"`; add
`"unpauseDags": false` to leave every DAG paused after the cutover):

- `verify_export` opens the export's data key with KMS and checks the phase's manifest
  (`s3://B/P/export/{phase}/manifest.json`: its MAC under the data key first) and every file
  (sha256, every sealed chunk, row count, columns);
- `pause_dags` pauses every DAG (but the project's), so nothing runs while history lands;
- `import_tables`, parents first (columns mapped by name onto the target's reflected tables, ids
  resolved by natural key, secrets encrypted with this environment's Fernet key): inserts the rows
  the target lacks, updates those an earlier import of this migration left there (its ledger),
  and counts the rows the target refuses or holds otherwise as conflicts, which fail the import
  unless the conf's `onConflict` is `keep-target` or `overwrite`. Then it checks that the counts
  add up (read = inserted + updated + identical + conflicts) and that every exported row but the
  conflicts left to the target is in it as exported, or fails and leaves nothing;
- `unpause_dags` writes `s3://B/P/import/{phase}/result.json`; in the cutover it first unpauses
  exactly the DAGs the source had active (never in the bulk).

Written for Airflow 2.4-2.11; see `mwaa_migrate_metadata` for the format.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import mwaa_migrate_metadata as metadata
from airflow import DAG
from airflow.operators.python import PythonOperator

DAG_ID = "mwaa_migrate_import"

with DAG(
    dag_id=DAG_ID,
    description="mwaa-migrate: import another environment's exported metadata",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=metadata.UTC),
    catchup=False,
    is_paused_upon_creation=True,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=4),
    default_args={"owner": "mwaa-migrate", "retries": 0},
    tags=["mwaa-migrate"],
    doc_md=__doc__,
) as dag:
    verify_export = PythonOperator(
        task_id="verify_export", python_callable=metadata.airflow_task(DAG_ID, "verify_export")
    )
    pause_dags = PythonOperator(
        task_id="pause_dags", python_callable=metadata.airflow_task(DAG_ID, "pause_dags")
    )
    import_tables = PythonOperator(
        task_id="import_tables", python_callable=metadata.airflow_task(DAG_ID, "import_tables")
    )
    unpause_dags = PythonOperator(
        task_id="unpause_dags", python_callable=metadata.airflow_task(DAG_ID, "unpause_dags")
    )
    verify_export >> pause_dags >> import_tables >> unpause_dags
