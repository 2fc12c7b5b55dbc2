"""`AirflowEnvironment.schedule_until_done` stops every process its scheduler started. Airflow's DAG
processor manager and each task's raw process move to process groups of their own; one left running
keeps a connection to the database, and a database with a connection cannot be the template of a
copy (CI once failed every self-managed pipeline test on it). The scheduler here is a stand-in that
does what Airflow's does to the process tree: a child in its own group holding a connection."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulation.lambdas import REPO_ROOT
from emulation.real_airflow import (
    AirflowEnvironment,
    AirflowInstallation,
    copy_database,
    create_database,
    drop_database,
    postgres,
)

pytestmark = pytest.mark.airflow

SCHEDULER = """\
#!{python}
import os, subprocess, time
if os.fork() == 0:
    os.setpgid(0, 0)  # as Airflow's DAG processor manager and task runner do
    # One connection, pooled as Airflow's are: the run is recorded finished, then it stays open, idle.
    client = subprocess.Popen({psql!r} + ["-q"], stdin=subprocess.PIPE)
    with open({pid_file!r}, "w") as pid_file:
        pid_file.write(f"{{os.getpid()}} {{client.pid}}")
    client.stdin.write(b"INSERT INTO dag_run VALUES ('success');\\n")
    client.stdin.flush()
    time.sleep(600)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Running (a zombie that no init reaps here has let go of everything it held)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture
def environment(tmp_path: Path) -> Iterator[AirflowEnvironment]:
    subprocess.run([str(REPO_ROOT / "scripts" / "postgres_server.sh"), "start"], check=True)
    name = f"scheduler_stop_{uuid.uuid4().hex[:8]}"
    installation = AirflowInstallation("stand-in", tmp_path / "venv")
    environment = AirflowEnvironment(installation, tmp_path / "home", create_database(name), "unused")
    environment.home.mkdir()
    environment.sql("CREATE TABLE dag_run (state text)")
    try:
        yield environment
    finally:
        environment.drop()


def test_the_schedulers_whole_tree_is_stopped_and_the_database_can_be_copied(
    environment: AirflowEnvironment, tmp_path: Path
) -> None:
    pid_file = tmp_path / "child.pid"
    psql = postgres(environment.database)
    script = SCHEDULER.format(python=sys.executable, pid_file=str(pid_file), psql=psql)
    environment.installation.airflow.parent.mkdir(parents=True)
    environment.installation.airflow.write_text(script)
    environment.installation.airflow.chmod(0o755)

    environment.schedule_until_done(runs=1, deadline_seconds=60)

    copy = f"{environment.database}_copy"
    left_running = [int(pid) for pid in pid_file.read_text().split() if alive(int(pid))]
    try:
        assert not left_running
        copy_database(environment.database, copy)
        listed = environment.sql(f"SELECT datname FROM pg_database WHERE datname = '{copy}'")  # noqa: S608
        assert listed == [[copy]]
    finally:
        for pid in left_running:  # only when the stop failed: nothing outlives the test
            os.kill(pid, signal.SIGKILL)
        drop_database(copy)


def test_a_refused_copy_names_what_is_connected_to_the_template(environment: AirflowEnvironment) -> None:
    holder = subprocess.Popen([*postgres(environment.database), "-c", "SELECT pg_sleep(600)"])
    copy = f"{environment.database}_copy"
    try:
        holding = (
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep%'"
        )
        while not environment.sql(holding):
            assert holder.poll() is None, "psql exited"
            time.sleep(0.1)
        named = rf"connected to {environment.database}: pid \d+ \(psql, active since "
        with pytest.raises(RuntimeError, match=named):
            copy_database(environment.database, copy)
    finally:
        holder.kill()
        holder.wait()
        drop_database(copy)
