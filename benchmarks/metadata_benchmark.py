"""Benchmark: the export and import DAGs' table transfer against PostgreSQL's own COPY.

    make benchmark-metadata                      # 100,000 and 1,000,000 task instances
    .venv/bin/python -m benchmarks.metadata_benchmark 1000000

For each size, a source database with Airflow's real schema (`airflow db migrate` of the tier's
Airflow installation) is filled with N task instances and, in proportion, N/20 DAG runs, N/4 XComs
and N/2 audit log rows. Then, each in its own process with the installation's own Python:

- `COPY ... TO STDOUT` of the same columns and rows (the reading ceiling), then the export;
- `COPY ... FROM STDIN` of those rows into a fresh database (the writing ceiling), then the import
  into another fresh database.

Printed: seconds, rows/s, the ratio to COPY, each process's peak resident memory (flat memory
means the same peak whatever N), and the CPU seconds of the PostgreSQL backend and of the process
with the backend's ratio to COPY's: on a machine shared with other work the seconds vary from run
to run much more than the CPU seconds do. Figures, not assertions: nothing here fails on speed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from emulation.lambdas import REPO_ROOT
from emulation.real_airflow import AirflowEnvironment, AirflowInstallation, postgres_port

VERSION = os.environ.get("BENCHMARK_AIRFLOW_VERSION", "2.10.3")
PHASE = REPO_ROOT / "benchmarks" / "metadata_phase.py"
DAGS = REPO_ROOT / "layers" / "mwaa_migrate" / "mwaa_migrate" / "dags"

FILL = """
INSERT INTO dag_run (dag_id, run_id, execution_date, state, run_type, external_trigger, conf,
    data_interval_start, data_interval_end, start_date, end_date, queued_at, log_template_id,
    clear_number, updated_at, dag_hash)
SELECT 'bench_dag_' || (g % 50), 'scheduled__' || g, timestamptz '2020-01-01' + g * interval '1 minute',
    'success', 'scheduled', false, '\\x80057d942e'::bytea,
    timestamptz '2020-01-01' + g * interval '1 minute',
    timestamptz '2020-01-01' + (g + 1) * interval '1 minute',
    now(), now(), now(), (SELECT max(id) FROM log_template), 0, now(), md5(g::text)
FROM generate_series(1, {runs}) g;
INSERT INTO task_instance (task_id, dag_id, run_id, map_index, start_date, end_date, duration, state,
    try_number, max_tries, hostname, unixname, pool, pool_slots, queue, priority_weight, operator,
    queued_dttm, updated_at, executor_config, custom_operator_name)
SELECT 'task_' || t, r.dag_id, r.run_id, -1, r.start_date, r.end_date, 12.5, 'success', 1, 0,
    'worker-1.example.com', 'airflow', 'default_pool', 1, 'default', 1, 'PythonOperator', now(), now(),
    '\\x80057d942e'::bytea, '@task'
FROM dag_run r CROSS JOIN generate_series(1, 20) t;
INSERT INTO xcom (dag_run_id, task_id, map_index, key, dag_id, run_id, value, timestamp)
SELECT r.id, 'task_' || t, -1, 'return_value', r.dag_id, r.run_id,
    convert_to('{{"rows": ' || t || ', "note": "a result with some text in it"}}', 'UTF8'), now()
FROM dag_run r CROSS JOIN generate_series(1, 5) t;
INSERT INTO log (dttm, dag_id, task_id, map_index, event, execution_date, run_id, owner, extra, try_number)
SELECT now() - g * interval '1 second', 'bench_dag_' || (g % 50), 'task_' || (g % 20), -1, 'running',
    timestamptz '2020-01-01', 'scheduled__' || (g / 10), 'airflow', '{{"host_name": "worker-1"}}', 1
FROM generate_series(1, {logs}) g;
ANALYZE;
"""


def phase(installation: AirflowInstallation, name: str, database: str, folder: Path) -> dict[str, Any]:
    dsn = f"host=127.0.0.1 port={postgres_port()} user=postgres dbname={database}"
    result = subprocess.run(  # noqa: S603
        [str(installation.python), str(PHASE), name, dsn, str(folder)],
        env={**os.environ, "PYTHONPATH": str(DAGS)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the {name} phase failed:\n{result.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(result.stdout)
    return measured


def run(size: int, installation: AirflowInstallation, work: Path) -> None:
    environments = [
        AirflowEnvironment.create(installation, work / name) for name in ("source", "copy", "target")
    ]
    source, copy_target, target = environments
    try:
        source.sql(FILL.format(runs=size // 20, logs=size // 2))
        rows = {
            table: int(source.sql(f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608
            for table in ("dag_run", "task_instance", "xcom", "log")
        }
        folder = work / "files"
        copy_out = phase(installation, "copy-out", source.database, folder)
        export = phase(installation, "export", source.database, folder)
        copy_in = phase(installation, "copy-in", copy_target.database, folder)
        imported = phase(installation, "import", target.database, folder)
        total = sum(rows.values())
        print(
            f"\n{size:,} task instances ({total:,} rows: {', '.join(f'{t} {n:,}' for t, n in rows.items())})"
        )
        print(
            f"  {'':<10}{'seconds':>9}{'rows/s':>12}{'vs COPY':>9}{'peak RSS':>11}"
            f"{'server CPU':>12}{'vs COPY':>9}{'client CPU':>12}"
        )
        for label, measured, ceiling in (
            ("COPY TO", copy_out, None),
            ("export", export, copy_out),
            ("COPY FROM", copy_in, None),
            ("import", imported, copy_in),
        ):
            ratio = f"{measured['seconds'] / ceiling['seconds']:.2f}x" if ceiling else ""
            server = measured.get("server_cpu_s")
            cpu_ratio = (
                f"{server / ceiling['server_cpu_s']:.2f}x"
                if ceiling and server and ceiling.get("server_cpu_s")
                else ""
            )
            print(
                f"  {label:<10}{measured['seconds']:>9.2f}{total / measured['seconds']:>12,.0f}"
                f"{ratio:>9}{measured['peak_rss_mb']:>8.0f} MB"
                f"{(f'{server:.2f} s' if server is not None else '-'):>12}{cpu_ratio:>9}"
                f"{measured['client_cpu_s']:>10.2f} s"
            )
        assert imported["rows"] == total, f"the import inserted {imported['rows']} of {total} rows"
    finally:
        for environment in environments:
            environment.drop()


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [100_000, 1_000_000]
    subprocess.run([str(REPO_ROOT / "scripts" / "airflow_venvs.sh"), VERSION], check=True)  # noqa: S603
    subprocess.run([str(REPO_ROOT / "scripts" / "postgres_server.sh"), "start"], check=True)  # noqa: S603
    installation = AirflowInstallation.find(VERSION)
    print(f"metadata transfer on {os.cpu_count()} cores, Airflow {VERSION}'s schema, PostgreSQL on loopback")
    for size in sizes:
        work = Path(tempfile.mkdtemp(prefix="mwaa-migrate-bench-"))
        try:
            run(size, installation, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
