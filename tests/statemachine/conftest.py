"""The real ASL executed by moto's Step Functions, the handlers in process, MWAA emulated."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from emulation.faults import instant_botocore_retries
from emulation.local_stack import LocalStack, scenario_path
from emulation.scenario import Scenario


@pytest.fixture
def scenario() -> Scenario:
    """The default scenario without its injected faults: each test adds the faults it is about."""
    loaded = Scenario.load(scenario_path("default"))
    return loaded.model_copy(update={"faults": []})


@pytest.fixture
def local_stack() -> Iterator[Callable[[Scenario], LocalStack]]:
    """Stacks for the test, with botocore's retry backoff recorded, not slept (its retries all still
    happen, as the hardening tier and make demo's tests have them): a throttled call costs the
    attempts, not the seconds between them."""
    with ExitStack() as stacks:
        stacks.enter_context(instant_botocore_retries())

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


def active_dags(environment: Any) -> list[str]:
    """The user's DAGs that run in an emulated environment (the project's own are removed with their
    files at the end)."""
    return sorted(
        row["dag_id"]
        for row in environment.table("dag")
        if not row.get("is_paused") and not row["dag_id"].startswith("mwaa_migrate_")
    )
