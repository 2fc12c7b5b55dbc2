"""The real ASL executed by moto's Step Functions, the handlers in process, MWAA emulated."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from emulation.local_stack import LocalStack, scenario_path
from emulation.scenario import Scenario


@pytest.fixture
def scenario() -> Scenario:
    """The default scenario without its injected faults: each test adds the faults it is about."""
    loaded = Scenario.load(scenario_path("default"))
    return loaded.model_copy(update={"faults": []})


@pytest.fixture
def local_stack() -> Iterator[Callable[[Scenario], LocalStack]]:
    with ExitStack() as stacks:

        def start(scenario: Scenario) -> LocalStack:
            return stacks.enter_context(LocalStack(scenario))

        yield start


def run(
    stack: LocalStack, name: str | None = None, execution_input: dict[str, Any] | None = None
) -> dict[str, Any]:
    execution_arn = stack.start(name, execution_input)
    described = dict(stack.wait(execution_arn, timeout_seconds=120))
    described["history"] = stack.history(execution_arn)
    return described
