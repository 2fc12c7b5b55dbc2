"""The hardening tier: whole executions of the real ASL under injected faults, crashes, concurrent
starts and hostile input. Every run here has botocore's retry backoff recorded, not slept, and moto's
Step Functions retry intervals likewise, so a run with many faults takes seconds."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulation.faults import FaultInjector, instant_botocore_retries, short_client_timeouts
from emulation.local_stack import LocalStack
from emulation.scenario import Scenario
from tests.hardening.discovery import default_scenario, discover, share_through

# How long the pipeline's clients wait for an answer in runs that inject timeouts: a timed-out MWAA
# or CLI call costs this much wall time.
CLIENT_TIMEOUT_SECONDS = 0.5


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, the discovery's two migrations run once for all workers (each collects the
    matrices it parametrizes), shared through a file of the run's own temp folder: xdist gives each
    worker a basetemp inside the run's, so their parent is this run's alone (other clones, other runs
    have their own), and the run's uid names the file."""
    worker_basetemp = config.getoption("basetemp")
    run_uid = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if os.environ.get("PYTEST_XDIST_WORKER") and worker_basetemp and run_uid:
        share_through(Path(worker_basetemp).parent / f"hardening-discovery-{run_uid}.pickle")


@dataclass
class Harness:
    stack: LocalStack
    faults: FaultInjector
    # botocore's retry delays (one per retry of a call) since the harness started.
    botocore_retries: list[float]

    def run(
        self,
        name: str | None = None,
        execution_input: dict[str, Any] | None = None,
        timeout_seconds: float = 180,
    ) -> dict[str, Any]:
        execution_arn = self.stack.start(name, execution_input)
        described = dict(self.stack.wait(execution_arn, timeout_seconds=timeout_seconds))
        described["history"] = self.stack.history(execution_arn)
        return described

    def invocations(self, function: str) -> list[str | None]:
        """The error type of each invocation of `function` (None: it returned)."""
        return [i.error_type for i in self.stack.lambdas.invocations if i.function == function]


@pytest.fixture
def scenario() -> Scenario:
    return default_scenario()


@pytest.fixture
def harness() -> Iterator[Callable[..., Harness]]:
    with ExitStack() as stacks:

        def start(scenario: Scenario, *, client_timeout: float | None = None) -> Harness:
            sleeps = stacks.enter_context(instant_botocore_retries())
            if client_timeout is not None:
                stacks.enter_context(short_client_timeouts(client_timeout))
            stack = stacks.enter_context(LocalStack(scenario))
            faults = stacks.enter_context(
                FaultInjector(stack.mwaa_emulator, timeout_seconds=client_timeout or CLIENT_TIMEOUT_SECONDS)
            )
            return Harness(stack, faults, sleeps)

        yield start


@pytest.fixture
def uninterrupted() -> dict[str, Any]:
    """The end state of the default scenario's migration without faults."""
    return discover().end_state


def entered_states(described: dict[str, Any]) -> list[str]:
    return [
        event["stateEnteredEventDetails"]["name"]
        for event in described["history"]
        if "stateEnteredEventDetails" in event
    ]
