"""mwaa-migrate's export DAG: the source side of a metadata migration, in two phases.

The pipeline uploads this file and `mwaa_migrate_metadata.py` into the source environment's DAG
folder and triggers the DAG twice with conf `{"bucket": B, "prefix": P, "migrationId": M,
"kmsKeyId": K, "phase": "bulk" | "cutover", "drainTimeoutMinutes": 30, "onDrainTimeout": "fail" |
"carry", "sourceEnvironment": S, "targetEnvironment": T}` (docs/cutover.md):

- phase `bulk` (the source runs on): `pause` and `drain` do nothing; `export_tables` takes its start
  as the watermark and writes the history final before it (finished runs and their children, the
  audit log), variables, connections and pools to `s3://B/P/export/bulk/`;
- phase `cutover` (the downtime window): `pause` writes `s3://B/P/cutover/record.json` with the
  active DAGs, then pauses exactly those (a retry whose record says `paused` reuses its list);
  `drain` waits until no task instance of those DAGs is running or queued, at most
  drainTimeoutMinutes (then fails, or carries on with `carry`); `export_tables` writes the delta
  (every run the bulk did not carry, runs in flight with their unfinished tasks cleared, the audit
  log from the watermark, the settings in full) to `s3://B/P/export/cutover/`.

Each table streams out of the metadata database (COPY) into a gzipped file sealed with a new
KMS data key of K (for this migration only); the manifest is written last. Runs of this DAG are
never carried. Written for Airflow 2.4-2.11 on PostgreSQL (as MWAA runs it); see
`mwaa_migrate_metadata` for the format. Needs only what MWAA installs: Airflow, psycopg2, boto3,
cryptography.
"""

from __future__ import annotations

import mwaa_migrate_metadata as metadata

DAG_ID = "mwaa_migrate_export"

# Declared by the library (its tasks, schedule and limits); a module global, where Airflow finds it.
dag = metadata.project_dag(DAG_ID, doc_md=__doc__)
