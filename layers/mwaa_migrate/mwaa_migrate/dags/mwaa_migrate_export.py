"""mwaa-migrate's export DAG: the source side of a metadata migration.

The pipeline uploads this file and `mwaa_migrate_metadata.py` into the source environment's DAG
folder and triggers the DAG with conf `{"bucket": B, "prefix": P, "migrationId": M, "kmsKeyId": K}`.

- `cutover` records which DAGs are active (unpaused) in `s3://B/P/export/cutover.json` and pauses
  them, so no new run starts while the history is copied (runs already going are not exported);
- `export_tables` streams each table out of the metadata database into a gzipped JSON Lines file
  sealed with a new KMS data key of K (for this migration only), then writes `manifest.json` to
  `s3://B/P/export/`. Runs of this DAG, runs not finished and tasks in flight are left out.

Written for Airflow 2.4-2.11 on PostgreSQL (as MWAA runs it); see `mwaa_migrate_metadata` for the
format. Needs only what MWAA installs: Airflow, psycopg2, boto3, cryptography.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import mwaa_migrate_metadata as metadata
from airflow import DAG
from airflow.operators.python import PythonOperator

DAG_ID = "mwaa_migrate_export"

with DAG(
    dag_id=DAG_ID,
    description="mwaa-migrate: export this environment's metadata and pause its DAGs",
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
    cutover = PythonOperator(task_id="cutover", python_callable=metadata.airflow_task(DAG_ID, "cutover"))
    export_tables = PythonOperator(
        task_id="export_tables", python_callable=metadata.airflow_task(DAG_ID, "export_tables")
    )
    cutover >> export_tables
