"""Benchmark: the downtime of a cutover, against today's single phase (issue "downtime, measured").

    make bench-downtime                          # 100,000 and 1,000,000 task instances
    .venv/bin/python -m benchmarks.downtime 100000 300000

For each size N, on PostgreSQL with Airflow's real schema (`airflow db migrate` of the tier's
Airflow installation), a source is filled as in metadata_benchmark (N task instances of finished
runs, N/20 DAG runs, N/4 XComs, N/2 audit log rows) plus 50 active DAGs and 100 variables. Each
step below is the project's DAG, run task by task (DAG_TASKS) in the installation's own Python by
benchmarks/metadata_phase.py, with a local folder for the bucket and a local data key:

- two phases: the bulk (export DAG and import DAG, phase bulk, into a fresh target) while the
  source runs: timed, not downtime. Then the same one-day delta for every N is added to the source
  (1,440 runs finishing after the bulk's watermark, their 28,800 task instances, 7,200 XComs and
  14,400 audit log rows, 10 variables changed, 2 added), and the cutover is timed: the export DAG
  (pause, drain, export_tables of the delta) and the import DAG (verify_export, pause_dags,
  import_tables: insert or update, then the check that every exported row is in the target,
  unpause_dags) into the same target. Their sum is the downtime (pause to unpause).
- today's single phase, the baseline: the whole source as it stands at the cutover (N and the
  delta) exported and imported into another fresh target in one go; production stood still for all
  of it.

Printed: seconds of each, the downtime's parts, downtime(largest N)/downtime(smallest N) (aimed
at <= 1.2) and downtime/single phase at the largest N (aimed at <= 0.1). Figures, not assertions:
nothing here fails on speed (only on a target that does not match the source).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.metadata_benchmark import FILL, VERSION, phase
from emulation.lambdas import REPO_ROOT
from emulation.real_airflow import AirflowEnvironment, AirflowInstallation

DAG_COUNT = 50
DELTA_RUNS = 1_440  # one day of runs, one a minute
TASKS_PER_RUN = 20

# The DAGs as the scheduler parsed them: active, unpaused in the source, paused in the target
# (core.dags_are_paused_at_creation=True).
DAGS = """
INSERT INTO dag (dag_id, is_paused, is_subdag, is_active, fileloc, owners, max_active_tasks,
    max_consecutive_failed_dag_runs, has_task_concurrency_limits, has_import_errors)
SELECT 'bench_dag_' || g, {paused}, false, true, '/usr/local/airflow/dags/bench.py', 'airflow', 16, 0,
    false, false
FROM generate_series(0, {last}) g;
"""
VARIABLES = """
INSERT INTO variable (key, val, description, is_encrypted)
SELECT 'bench_var_' || g, 'value ' || g, 'a setting', false FROM generate_series(1, 100) g;
"""
# The day since the bulk's watermark: runs that finished after it (end_date now()), their task
# instances, XComs and audit log, and changed variables.
DELTA = """
INSERT INTO dag_run (dag_id, run_id, execution_date, state, run_type, external_trigger, conf,
    data_interval_start, data_interval_end, start_date, end_date, queued_at, log_template_id,
    clear_number, updated_at, dag_hash)
SELECT 'bench_dag_' || (g % {dags}), 'delta__' || g, timestamptz '2030-01-01' + g * interval '1 minute',
    'success', 'scheduled', false, '\\x80057d942e'::bytea,
    timestamptz '2030-01-01' + g * interval '1 minute',
    timestamptz '2030-01-01' + (g + 1) * interval '1 minute',
    now(), now(), now(), (SELECT max(id) FROM log_template), 0, now(), md5(g::text)
FROM generate_series(1, {runs}) g;
INSERT INTO task_instance (task_id, dag_id, run_id, map_index, start_date, end_date, duration, state,
    try_number, max_tries, hostname, unixname, pool, pool_slots, queue, priority_weight, operator,
    queued_dttm, updated_at, executor_config, custom_operator_name)
SELECT 'task_' || t, r.dag_id, r.run_id, -1, r.start_date, r.end_date, 12.5, 'success', 1, 0,
    'worker-1.example.com', 'airflow', 'default_pool', 1, 'default', 1, 'PythonOperator', now(), now(),
    '\\x80057d942e'::bytea, '@task'
FROM dag_run r CROSS JOIN generate_series(1, {tasks}) t WHERE r.run_id LIKE 'delta\\_\\_%';
INSERT INTO xcom (dag_run_id, task_id, map_index, key, dag_id, run_id, value, timestamp)
SELECT r.id, 'task_' || t, -1, 'return_value', r.dag_id, r.run_id,
    convert_to('{{"rows": ' || t || ', "note": "a result with some text in it"}}', 'UTF8'), now()
FROM dag_run r CROSS JOIN generate_series(1, 5) t WHERE r.run_id LIKE 'delta\\_\\_%';
INSERT INTO log (dttm, dag_id, task_id, map_index, event, execution_date, run_id, owner, extra, try_number)
SELECT now() - g * interval '1 microsecond', 'bench_dag_' || (g % {dags}), 'task_' || (g % 20), -1,
    'running', timestamptz '2030-01-01', 'delta__' || (g / 10), 'airflow', '{{"host_name": "worker-1"}}', 1
FROM generate_series(1, {logs}) g;
UPDATE variable SET val = val || ' changed'
WHERE key IN (SELECT 'bench_var_' || g FROM generate_series(1, 10) g);
INSERT INTO variable (key, val, description, is_encrypted) VALUES
    ('bench_var_new_1', 'new', 'added', false), ('bench_var_new_2', 'new', 'added', false);
ANALYZE;
"""
COUNTED = ("dag_run", "task_instance", "xcom", "log", "variable")
# The downtime's parts: (label, DAG phase, its tasks).
PARTS = (
    ("pause", "cutover-export", ("pause",)),
    ("drain", "cutover-export", ("drain",)),
    ("delta export", "cutover-export", ("export_tables",)),
    ("verify files", "cutover-import", ("verify_export",)),
    ("delta import+check", "cutover-import", ("pause_dags", "import_tables")),
    ("unpause", "cutover-import", ("unpause_dags",)),
)


def counts(environment: AirflowEnvironment) -> dict[str, int]:
    return {
        table: int(environment.sql(f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608
        for table in COUNTED
    }


def check_copy(source: AirflowEnvironment, target: AirflowEnvironment, what: str) -> None:
    """The target holds what the source does (row counts and the variables' values)."""
    expected, found = counts(source), counts(target)
    if expected != found:
        raise RuntimeError(f"{what}: the target holds {found}, the source {expected}")
    query = "SELECT key || '=' || val FROM variable ORDER BY key"
    if source.sql(query) != target.sql(query):
        raise RuntimeError(f"{what}: the target's variables differ from the source's")


def task_seconds(measured: dict[str, Any]) -> float:
    return float(sum(measured["tasks"].values()))


def run(size: int, installation: AirflowInstallation, work: Path) -> dict[str, Any]:
    names = ("source", "single", "target")
    environments = [AirflowEnvironment.create(installation, work / name) for name in names]
    source, single_target, target = environments
    try:
        source.sql(FILL.format(runs=size // 20, logs=size // 2))
        source.sql(DAGS.format(paused="false", last=DAG_COUNT - 1) + VARIABLES)
        for environment in (single_target, target):
            environment.sql(DAGS.format(paused="true", last=DAG_COUNT - 1))
        print(f"\n{size:,} task instances: source filled ({counts(source)})", flush=True)

        # Two phases: the bulk while the source runs, then the delta and the cutover.
        two = work / "two-phases"
        bulk = [
            phase(installation, "bulk-export", source.database, two),
            phase(installation, "bulk-import", target.database, two),
        ]
        source.sql(
            DELTA.format(
                dags=DAG_COUNT, runs=DELTA_RUNS, tasks=TASKS_PER_RUN, logs=DELTA_RUNS * TASKS_PER_RUN // 2
            )
        )
        cutover = {
            "cutover-export": phase(installation, "cutover-export", source.database, two),
            "cutover-import": phase(installation, "cutover-import", target.database, two),
        }
        check_copy(source, target, "two phases")
        unpaused = int(target.sql("SELECT count(*) FROM dag WHERE NOT is_paused")[0][0])
        if unpaused != DAG_COUNT:
            raise RuntimeError(f"the cutover unpaused {unpaused} of {DAG_COUNT} DAGs in the target")

        # Today's single phase: everything the source holds at the cutover, in one go.
        one = work / "single-phase"
        single = [
            phase(installation, "bulk-export", source.database, one),
            phase(installation, "bulk-import", single_target.database, one),
        ]
        check_copy(source, single_target, "single phase")

        parts = {
            label: sum(cutover[dag_phase]["tasks"][task] for task in tasks)
            for label, dag_phase, tasks in PARTS
        }
        result = {
            "size": size,
            "single": sum(task_seconds(m) for m in single),
            "bulk": sum(task_seconds(m) for m in bulk),
            "downtime": sum(parts.values()),
            "parts": parts,
            "delta_rows": cutover["cutover-export"]["rows"],
            "bulk_rows": bulk[0]["rows"],
            "single_rows": single[0]["rows"],
        }
        print(
            f"  single phase {result['single']:.1f} s ({result['single_rows']:,} rows), bulk "
            f"{result['bulk']:.1f} s ({result['bulk_rows']:,} rows), downtime {result['downtime']:.2f} s "
            f"({result['delta_rows']:,} rows in the delta)",
            flush=True,
        )
        return result
    finally:
        for environment in environments:
            environment.drop()


def report(results: list[dict[str, Any]]) -> None:
    labels = [label for label, _, _ in PARTS]
    header = ["N", "single phase s", "bulk s (not downtime)", "downtime s", *labels]
    rows = [
        [
            f"{r['size']:,}",
            f"{r['single']:.1f}",
            f"{r['bulk']:.1f}",
            f"{r['downtime']:.2f}",
            *(f"{r['parts'][label]:.2f}" for label in labels),
        ]
        for r in results
    ]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    print()
    for line in (header, *rows):
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))
    small, large = results[0], results[-1]
    if len(results) > 1:
        print(
            f"\ndowntime({large['size']:,}) / downtime({small['size']:,}) = "
            f"{large['downtime'] / small['downtime']:.2f} (aimed at <= 1.2)"
        )
    print(
        f"downtime({large['size']:,}) / single phase({large['size']:,}) = "
        f"{large['downtime'] / large['single']:.3f} (aimed at <= 0.1)"
    )


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [100_000, 1_000_000]
    subprocess.run([str(REPO_ROOT / "scripts" / "airflow_venvs.sh"), VERSION], check=True)  # noqa: S603
    subprocess.run([str(REPO_ROOT / "scripts" / "postgres_server.sh"), "start"], check=True)  # noqa: S603
    installation = AirflowInstallation.find(VERSION)
    print(
        f"downtime of a cutover on {os.cpu_count()} cores, Airflow {VERSION}'s schema, PostgreSQL on "
        f"loopback; delta: {DELTA_RUNS:,} runs, {DELTA_RUNS * TASKS_PER_RUN:,} task instances"
    )
    results = []
    for size in sorted(sizes):
        work = Path(tempfile.mkdtemp(prefix="mwaa-migrate-downtime-"))
        try:
            results.append(run(size, installation, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    report(results)


if __name__ == "__main__":
    main()
