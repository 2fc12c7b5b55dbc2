"""moto's interpreter writes a Task's TimeoutSeconds and HeartbeatSeconds into its TaskScheduled
event from its stack; while an execution stops (a Parallel branch failed) it pushed nothing and the
event took the state's input instead, which broke every read of the history. The fix pushes them."""

from __future__ import annotations

from typing import Any

import pytest
from moto.stepfunctions.parser.asl.component.common.timeouts.heartbeat import HeartbeatSeconds
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

from emulation.moto_fixes import task_timeouts_always_evaluated

STATE_INPUT = {"plan": {"migrationId": "a.b"}}


class _Stopping:
    """What a component sees of an execution being stopped: not running, the state's input on the stack."""

    def __init__(self, running: bool) -> None:
        self.running = running
        self.stack: list[Any] = [STATE_INPUT]
        self.next_field_name = None

    def is_running(self) -> bool:
        return self.running


@pytest.mark.parametrize(
    "component", [TimeoutSeconds(300), HeartbeatSeconds(60)], ids=["timeout", "heartbeat"]
)
def test_without_the_fix_a_stopping_execution_pops_the_state_input_as_the_seconds(component):
    env = _Stopping(running=False)

    component.eval(env)

    assert env.stack.pop() is STATE_INPUT  # what moto put into timeoutInSeconds


@pytest.mark.parametrize(
    ("component", "seconds"),
    [(TimeoutSeconds(300), 300), (HeartbeatSeconds(60), 60)],
    ids=["timeout", "heartbeat"],
)
@pytest.mark.parametrize("running", [True, False], ids=["running", "stopping"])
def test_with_the_fix_the_seconds_are_on_top_whether_or_not_it_runs(component, seconds, running):
    env = _Stopping(running=running)

    with task_timeouts_always_evaluated():
        component.eval(env)

    assert env.stack == [STATE_INPUT, seconds]
