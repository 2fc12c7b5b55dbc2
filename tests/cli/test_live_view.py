"""The live view in a real terminal (tmux): `mwaa-migrate start --follow` redraws the states in place,
with their status and elapsed times, until the migration ends."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from emulation.lambdas import REPO_ROOT
from tests.cli.conftest import SOURCE, Emulation, mwaa_migrate_script, tmux_or_skip

TARGET = "analytics-prod-live"
DEADLINE_SECONDS = 120


class Terminal:
    """A tmux session of its own (a private tmux server), 150 columns by 50 lines."""

    def __init__(self, tmux: str) -> None:
        self.tmux = tmux
        self.socket = f"mwaa-migrate-test-{uuid.uuid4().hex[:8]}"

    def _tmux(self, *args: str) -> str:
        completed = subprocess.run(
            [self.tmux, "-L", self.socket, *args], capture_output=True, text=True, timeout=30, check=True
        )
        return completed.stdout

    def start(self, command: str, env: dict[str, str]) -> None:
        # The terminal's own size, not the one a parent left in COLUMNS/LINES (pytest-xdist's workers
        # have COLUMNS=80, which cut the view's lines at 79 characters).
        exports = " ".join(
            f"{key}={shlex.quote(value)}"
            for key, value in sorted(env.items())
            if key not in {"COLUMNS", "LINES"}
        )
        self._tmux(
            "new-session", "-d", "-s", "live", "-x", "150", "-y", "50", "-c", str(REPO_ROOT),
            f"env -i {exports} TERM=xterm-256color sh -c {shlex.quote(command)}",
        )  # fmt: skip

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "live")

    def close(self) -> None:
        subprocess.run(
            [self.tmux, "-L", self.socket, "kill-server"], capture_output=True, timeout=30, check=False
        )


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    session = Terminal(tmux_or_skip())
    yield session
    session.close()


def test_follow_redraws_the_states_in_place_until_the_migration_ends(
    paced_emulation: Emulation, terminal: Terminal
):
    emulation = paced_emulation
    command = (
        f"{shlex.quote(mwaa_migrate_script())} start --local --follow --interval 0.25 "
        f"--source {SOURCE} --target {TARGET} --version 2.10.3; echo EXIT=$?; sleep 60"
    )
    terminal.start(command, emulation.env)

    screens: list[str] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not screens or "EXIT=" not in screens[-1]:
        assert time.monotonic() < deadline, "the migration did not end:\n" + (screens[-1] if screens else "")
        time.sleep(0.2)
        screens.append(terminal.screen())
    final = screens[-1]

    # While it ran, the view showed the state it was in, counting up.
    running = [screen for screen in screens if re.search(r"^ +\S+ +running ", screen, re.MULTILINE)]
    assert running, "no view showed a running state"
    assert any(re.search(r"^    WaitForTarget +running ", screen, re.MULTILINE) for screen in running)

    # One view, redrawn: the heading once, no escape codes left on screen, each state on one line.
    # (the source's version once the plan has read it)
    assert final.count(f"Migration {SOURCE} (Airflow 2.7.2) -> {TARGET} (Airflow 2.10.3)") == 1
    assert len(re.findall(r"^Execution \S+ +SUCCEEDED +\S+$", final, re.MULTILINE)) == 1
    assert "\x1b" not in final
    for state in ("PlanMigration", "GrantPermissions", "PrepareTargetAndExport", "FinishMigration"):
        assert len(re.findall(rf"^ +{state} +succeeded ", final, re.MULTILINE)) == 1, state
    assert re.search(r"^    CloneEnvironment +succeeded ", final, re.MULTILINE), "a branch is indented"
    assert re.search(r"^Migration SUCCEEDED in \S+\. Report s3://", final, re.MULTILINE)
    assert "EXIT=0" in final
