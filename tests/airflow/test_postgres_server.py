"""The tier's PostgreSQL server is its checkout's own (scripts/postgres_server.sh): clones running the
tier at once, or a server left behind by another run, never meet. A fixed port and data folder made a
CI run fail to start its server while another clone's held them."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulation.lambdas import REPO_ROOT
from emulation.real_airflow import recorded_postgres_server

pytestmark = pytest.mark.airflow

SCRIPT = REPO_ROOT / "scripts" / "postgres_server.sh"


def server(home: Path, command: str) -> None:
    environment = {
        key: value for key, value in os.environ.items() if key not in {"PGPORT", "AIRFLOW_TIER_PGDATA"}
    }
    subprocess.run([str(SCRIPT), command], env={**environment, "AIRFLOW_TIER_HOME": str(home)}, check=True)


def serves(state: dict[str, str]) -> str:
    """The data folder of the server answering on the recorded port."""
    return subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            state["SERVER_PORT"],
            "-U",
            "postgres",
            "-XAtqc",
            "SHOW data_directory",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def checkouts(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    first, second = tmp_path / "first" / ".airflow", tmp_path / "second" / ".airflow"
    try:
        yield first, second
    finally:
        for home in (first, second):
            server(home, "stop")


def test_two_checkouts_get_their_own_port_and_folder_and_stop_removes_them(checkouts) -> None:
    first, second = checkouts
    server(first, "start")
    server(second, "start")
    ours, theirs = recorded_postgres_server(first), recorded_postgres_server(second)

    assert ours["SERVER_PORT"] != theirs["SERVER_PORT"]
    assert ours["SERVER_DATA"] != theirs["SERVER_DATA"]
    assert serves(ours) == ours["SERVER_DATA"]
    assert serves(theirs) == theirs["SERVER_DATA"]

    server(first, "start")  # again: the same server
    assert recorded_postgres_server(first) == ours

    server(first, "stop")
    assert not (first / "postgres.env").exists()
    assert not Path(ours["SERVER_DATA"]).exists()
    assert serves(theirs) == theirs["SERVER_DATA"], "the other checkout's server runs on"


def test_a_state_naming_another_checkouts_server_starts_a_server_of_its_own(checkouts) -> None:
    first, second = checkouts
    server(second, "start")
    theirs = recorded_postgres_server(second)
    first.mkdir(parents=True)
    # As a copied checkout, or a port reused: the recorded port answers, from another folder.
    (first / "postgres.env").write_text(
        f"SERVER_DATA=/var/tmp/mwaa-migrate-postgres.gone\nSERVER_PORT={theirs['SERVER_PORT']}\nSERVER_DATA_OWNED=1\n"
    )

    server(first, "start")

    ours = recorded_postgres_server(first)
    assert ours["SERVER_PORT"] != theirs["SERVER_PORT"]
    assert serves(ours) == ours["SERVER_DATA"]
    assert serves(theirs) == theirs["SERVER_DATA"], "the other checkout's server is left alone"


def test_a_server_killed_without_stopping_is_replaced(checkouts) -> None:
    first, _ = checkouts
    server(first, "start")
    killed = recorded_postgres_server(first)
    # Its lock file stays behind, naming a process that is gone.
    pid = int((Path(killed["SERVER_DATA"]) / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)

    server(first, "start")

    replacement = recorded_postgres_server(first)
    assert replacement["SERVER_DATA"] != killed["SERVER_DATA"]
    assert serves(replacement) == replacement["SERVER_DATA"]
    assert not Path(killed["SERVER_DATA"]).exists(), "the dead server's folder is removed"
