"""Fixes of moto's Step Functions interpreter that the emulation needs, each with the bug it avoids.

A Task state's TimeoutSeconds and HeartbeatSeconds are evaluated onto the interpreter's stack and
popped into its TaskScheduled event. moto evaluates nothing while its execution is no longer
running (a Parallel branch failed and the other branch is being stopped), so the pop takes whatever
was on the stack below: the state's input. The event then holds a dict where an integer belongs,
and every GetExecutionHistory of that execution fails to serialize (with or without its data). AWS
never writes such an event. Here the two values are always pushed, so the event is well formed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from moto.stepfunctions.parser.asl.component.common.timeouts.heartbeat import Heartbeat
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout, TimeoutSeconds


def _always_pushed(evaluate: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    def eval(self: Any, env: Any) -> None:
        if env.is_running():
            evaluate(self, env)
            return
        try:
            seconds = self._eval_seconds(env=env)
        except Exception:  # a path into a state input that is gone: the default stands in
            seconds = TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS
        env.stack.append(seconds)

    return eval


@contextlib.contextmanager
def task_timeouts_always_evaluated() -> Iterator[None]:
    with (
        mock.patch.object(Timeout, "eval", _always_pushed(Timeout.eval)),
        mock.patch.object(Heartbeat, "eval", _always_pushed(Heartbeat.eval)),
    ):
        yield
