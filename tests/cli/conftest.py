"""The mwaa-migrate command as a user runs it: the installed script in a subprocess, against the local
emulation that `mwaa-migrate local up` serves (another subprocess, as in a second terminal)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from emulation.lambdas import REPO_ROOT
from emulation.local_stack import scenario_path
from emulation.scenario import Scenario

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

# A setting whose value must never be printed: the emulated source carries it.
SECRET_OPTION = "smtp.smtp_password"
SECRET_VALUE = "hunter2-do-not-print"
SOURCE = "analytics-prod"
TARGET = "analytics-prod-2-10"
START_DEADLINE_SECONDS = 90


def mwaa_migrate_script() -> str:
    """The console script pip installed with the project (pyproject's [project.scripts])."""
    script = Path(sys.executable).parent / "mwaa-migrate"
    if not script.is_file():
        pytest.fail(f"{script} is missing: install the project (pip install -e '.[dev]', make setup)")
    return str(script)


def clean_environment(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no AWS settings from the test process, no metadata calls."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_"))}
    env.pop("MIGRATION_BUCKET", None)
    env.update(AWS_EC2_METADATA_DISABLED="true", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Emulation:
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes]

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> Result:
        completed = subprocess.run(
            [mwaa_migrate_script(), *args],
            env=env or self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    def sfn(self) -> SFNClient:
        """Step Functions of the emulation, as a team's own tooling (or EventBridge) would reach it."""
        state = json.loads(Path(self.env["MWAA_MIGRATE_LOCAL_STATE"]).read_text())
        return boto3.client(
            "stepfunctions",
            endpoint_url=state["endpoint"],
            region_name=state["region"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def state_machine_arn(self) -> str:
        (machine,) = self.sfn().list_state_machines()["stateMachines"]
        return machine["stateMachineArn"]

    def executions(self) -> list[dict[str, Any]]:
        """Every execution of the pipeline, newest first, with its input."""
        sfn = self.sfn()
        return [
            dict(sfn.describe_execution(executionArn=execution["executionArn"]))
            for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.state_machine_arn()
            )
            for execution in page["executions"]
        ]


def _scenario_for_the_cli(folder: Path, scenario_name: str) -> Path:
    """The scenario, its source carrying a password in its Airflow configuration, without the faults
    it injects. The CLI tier is about the command: what it prints and its exit codes. MWAA's
    throttling (the default scenario's) is the state machine tier's to assert
    (tests/statemachine/test_scenarios.py); here, outlasting it would add ten seconds of real retry
    backoff to every migration the tier runs, and nothing to what it checks."""
    scenario = Scenario.load(scenario_path(scenario_name))
    data = scenario.model_dump(mode="json", by_alias=True)
    data["source"].setdefault("AirflowConfigurationOptions", {})[SECRET_OPTION] = SECRET_VALUE
    data["faults"] = []
    path = folder / "with_secret.json"
    path.write_text(json.dumps(data))
    return path


@contextmanager
def running_emulation(
    folder: Path, scenario: str = "default", *, poll_seconds: int = 0
) -> Iterator[Emulation]:
    """`mwaa-migrate local up` in a subprocess, as in a second terminal, until the block ends. Its
    state machine's waits last `poll_seconds` (local up's default is a second, for a person to watch
    the states go by; a test that reads the outcome has no need to wait them out)."""
    env = clean_environment(MWAA_MIGRATE_LOCAL_STATE=str(folder / "local.json"))
    log = folder / "local-up.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                mwaa_migrate_script(),
                "local",
                "up",
                "--scenario",
                str(_scenario_for_the_cli(folder, scenario)),
                "--poll-seconds",
                str(poll_seconds),
            ],
            env=env,
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while not (folder / "local.json").exists():
            if process.poll() is not None:
                pytest.fail(f"mwaa-migrate local up exited {process.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"mwaa-migrate local up was not ready in {START_DEADLINE_SECONDS}s:\n{log.read_text()}"
                )
            time.sleep(0.2)
        yield Emulation(env=env, log=log, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture(scope="session")
def emulation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulation]:
    """One emulation for the session's commands. A finished migration of its source makes later
    migrations of it refused (already migrated): tests that need a fresh source use `fresh_emulation`."""
    with running_emulation(tmp_path_factory.mktemp("local-emulation")) as running:
        yield running


@pytest.fixture
def fresh_emulation(tmp_path: Path) -> Iterator[Emulation]:
    with running_emulation(tmp_path) as running:
        yield running


@pytest.fixture
def paced_emulation(tmp_path: Path) -> Iterator[Emulation]:
    """A fresh emulation whose waits last a second, as `local up`'s do: the states go by slowly
    enough for a view of them to be seen running."""
    with running_emulation(tmp_path, poll_seconds=1) as running:
        yield running


def tmux_or_skip() -> str:
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux is not installed (apt-get install -y tmux): the live view needs a terminal")
    return tmux
