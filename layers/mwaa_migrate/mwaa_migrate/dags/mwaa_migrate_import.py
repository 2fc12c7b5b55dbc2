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

import mwaa_migrate_metadata as metadata

DAG_ID = "mwaa_migrate_import"

# Declared by the library (its tasks, schedule and limits); a module global, where Airflow finds it.
dag = metadata.project_dag(DAG_ID, doc_md=__doc__)
