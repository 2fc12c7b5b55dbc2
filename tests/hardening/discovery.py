"""What the pipeline does, learnt from runs without faults rather than listed by hand: the AWS calls
it makes (on its success path and its failure path), the Task states it goes through, and the end
state of an uninterrupted migration. Run once per test run (under pytest-xdist one worker runs it and
the others read its result, share_through); a step or a call that another change adds is in the
matrices as soon as it is in the pipeline."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulation.faults import Call, FaultInjector, instant_botocore_retries
from emulation.local_stack import ASL_PATH, LocalStack, scenario_path
from emulation.scenario import EnvironmentFailure, Scenario
from statemachine.definition import function_of
from tests.hardening.end_state import snapshot


def default_scenario() -> Scenario:
    """The default scenario without its own injected faults: each test adds the faults it is about."""
    return Scenario.load(scenario_path("default")).model_copy(update={"faults": []})


def failing_scenario() -> Scenario:
    """The default scenario whose target MWAA fails to create: the failure path runs."""
    return default_scenario().model_copy(
        update={
            "create_failure": EnvironmentFailure(error_code="INCORRECT_CONFIGURATION", error_message="no NAT")
        }
    )


@dataclass(frozen=True)
class Discovery:
    # Each (service, operation) the pipeline calls, with the first step that calls it.
    calls: tuple[Call, ...]
    # The Task states of a successful migration, in the order they are first entered.
    task_states: tuple[str, ...]
    # The end state of a migration without faults (end_state.snapshot).
    end_state: dict[str, Any]


@dataclass(frozen=True)
class TaskState:
    function: str
    # Inside a Map state's item processor (a Distributed Map runs it in child executions).
    in_map: bool


def task_states_of(states: dict[str, Any], *, in_map: bool = False) -> dict[str, TaskState]:
    """Task state name -> the function it invokes, through Parallel and Map states, from the ASL."""
    found: dict[str, TaskState] = {}
    for name, state in states.items():
        function = function_of(state)
        if function is not None:
            found[name] = TaskState(f"{function}Function", in_map)
        for branch in state.get("Branches", []):
            found.update(task_states_of(branch["States"], in_map=in_map))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found.update(task_states_of(processor["States"], in_map=True))
    return found


TASKS = task_states_of(json.loads(ASL_PATH.read_text())["States"])
# Functions Step Functions runs for the items of a Map.
MAP_FUNCTIONS = frozenset(task.function for task in TASKS.values() if task.in_map)


def _task_states(history: list[Any]) -> list[str]:
    states: list[str] = []
    for event in history:
        if event["type"] == "TaskStateEntered":
            name = event["stateEnteredEventDetails"]["name"]
            if name not in states:
                states.append(name)
    return states


# The file this run's workers share the discovery through (share_through); None: run it here.
_shared_file: Path | None = None


def share_through(path: Path) -> None:
    """Share the discovery through `path`, a file of this test run's own (its temp folder): the first
    worker to need it runs it, the others wait for it and read its result."""
    global _shared_file  # noqa: PLW0603  # set once, at configure time, before any test module
    _shared_file = path


@functools.cache
def discover() -> Discovery:
    """The discovery, run once per test run. The workers collect at the same time, so each needs it
    at once: one runs it while holding the lock, the others wait on the lock and then read the file.
    A discovery that fails writes nothing: each worker then runs it and reports the same failure."""
    if _shared_file is None:
        return _discover()
    with _locked(_shared_file.with_name(_shared_file.name + ".lock")):
        if _shared_file.is_file():
            found = pickle.loads(_shared_file.read_bytes())  # noqa: S301  # written by this run's own worker
            assert isinstance(found, Discovery)
            return found
        found = _discover()
        # pickle, not JSON: the end state holds tuples that its comparison tells from lists.
        partial = _shared_file.with_name(f"{_shared_file.name}.{os.getpid()}")
        partial.write_bytes(pickle.dumps(found))
        partial.replace(_shared_file)
        return found


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _discover() -> Discovery:
    calls: dict[tuple[str, str], Call] = {}
    task_states: list[str] = []
    end_state: dict[str, Any] = {}
    for scenario, expected in ((default_scenario(), "SUCCEEDED"), (failing_scenario(), "FAILED")):
        with (
            instant_botocore_retries(),
            LocalStack(scenario) as stack,
            FaultInjector(stack.mwaa_emulator) as faults,
        ):
            arn = stack.start("discovery")
            described = stack.wait(arn, timeout_seconds=180)
            if described["status"] != expected:
                raise RuntimeError(
                    f"the {scenario.name} run ended {described['status']}: {described.get('cause')}"
                )
            for call in faults.calls:
                calls.setdefault((call.service, call.operation), call)
            if expected == "SUCCEEDED":
                task_states = _task_states(stack.history(arn))
                end_state = snapshot(stack)
    # Sorted, not in the order seen: parallel branches interleave differently from run to run, and
    # pytest-xdist refuses workers whose collected tests differ even in order.
    ordered_states = sorted(task_states, key=list(TASKS).index)
    ordered_calls = tuple(calls[key] for key in sorted(calls))
    return Discovery(calls=ordered_calls, task_states=tuple(ordered_states), end_state=end_state)
