"""Crash and re-run: the execution is stopped right after each Task state in turn has done its work
(StopExecution, as an operator, a deployment or a lost region would), then the same input is started
again. The second run ends SUCCEEDED (or, after the finish, is refused as already migrated) and
leaves exactly what an uninterrupted run leaves: one target environment, no policy left on any role,
every metadata row and every log event once. A run stopped inside the downtime window is completed
by the re-run: the cutover record it left says which DAGs to start on the target.

Stopping after a Pass, Choice or Wait state leaves AWS as the Task before it did, so the Task states
are the crash points; they come from an uninterrupted run's history.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulation.local_stack import LocalStack
from tests.hardening.discovery import TASKS, discover
from tests.hardening.end_state import differences, duplicates, snapshot

TASK_STATES = discover().task_states


def state_of_invocation(stack: LocalStack, execution_arn: str, event: dict[str, Any]) -> str | None:
    """The state whose Task sent `event`: the TaskScheduled event that carries it as its payload,
    followed back to the state it belongs to."""
    history = stack.history(execution_arn)
    by_id = {item["id"]: item for item in history}
    for item in reversed(history):
        if item["type"] != "TaskScheduled":
            continue
        if json.loads(item["taskScheduledEventDetails"]["parameters"]).get("Payload") != event:
            continue
        cursor = by_id.get(item.get("previousEventId", 0))
        while cursor is not None:
            if cursor["type"].endswith("StateEntered"):
                return str(cursor["stateEnteredEventDetails"]["name"])
            cursor = by_id.get(cursor.get("previousEventId", 0))
    return None


def stop_after(stack: LocalStack, state: str) -> list[str]:
    """Once the first invocation for `state` has returned, stop its execution; returns the
    executions stopped (one)."""
    stopped: list[str] = []
    original = stack.lambdas.invoke
    function = TASKS[state].function

    def invoke(function_name: str, event: dict[str, Any]) -> tuple[str, bool, str]:
        result = original(function_name, event)
        execution_arn = str(event.get("executionId", ""))
        if (
            not stopped
            and function_name == function
            and not result[1]
            and state_of_invocation(stack, execution_arn, event) == state
        ):
            stopped.append(execution_arn)
            stack.sfn.stop_execution(
                executionArn=execution_arn, error="Crash", cause=f"stopped after {state}"
            )
        return result

    stack.lambdas.invoke = invoke  # type: ignore[method-assign]
    return stopped


@pytest.mark.parametrize("state", TASK_STATES)
def test_a_run_stopped_after_each_state_is_completed_by_running_it_again(
    harness, scenario, uninterrupted, state
):
    run = harness(scenario)
    stopped = stop_after(run.stack, state)

    # (no history read of a stopped execution: moto may still be writing its last events)
    first = run.stack.wait(run.stack.start("crashed"), timeout_seconds=180)
    assert stopped, f"{state} was not reached"
    # A stop while the Parallel's other branch runs can end FAILED in moto rather than ABORTED:
    # either way the run ended after that state without finishing.
    assert first["status"] in {"ABORTED", "FAILED"}

    second = run.stack.wait(run.stack.start("rerun"), timeout_seconds=180)

    if state == "FinishMigration":
        # It had finished: its report was written. Running it again is refused, changing nothing.
        assert (second["status"], second["error"]) == ("FAILED", "MigrationConflict")
        assert "already migrated" in second["cause"]
    else:
        assert second["status"] == "SUCCEEDED", second.get("cause")
    end_state = snapshot(run.stack)
    assert differences(uninterrupted, end_state) == []
    environments = [call for call in run.stack.mwaa_emulator.calls if call[0] == "CreateEnvironment"]
    assert len({name for _, name in environments}) == 1, "no second environment"
    for group, streams in end_state["task_logs"].items():
        for stream, events in streams.items():
            assert duplicates(events) == [], f"{group}/{stream} holds an event twice"
