"""Fixes of moto's Step Functions interpreter that the emulation needs, each with the bug it avoids.

A Task state's TimeoutSeconds and HeartbeatSeconds are evaluated onto the interpreter's stack and
popped into its TaskScheduled event. moto evaluates nothing while its execution is no longer
running (a Parallel branch failed and the other branch is being stopped), so the pop takes whatever
was on the stack below: the state's input. The event then holds a dict where an integer belongs,
and every GetExecutionHistory of that execution fails to serialize (with or without its data). AWS
never writes such an event. Here the two values are always pushed, so the event is well formed.

GetExecutionHistory: moto deep-copies an execution's whole history and serializes every event of it
through the API's output shape on every read. A run that is polled (the CLI's follow, a test
waiting for an approval, the pipeline's own report) reads the same events again and again: the
reads cost more the longer the run, about a tenth of a migration's time. Here each event is
serialized once, when first read (events are only ever appended), and each read joins the texts:
the same body moto would answer, of the same shape, that botocore parses and validates as before.

SendTaskFailure: moto passes the error to the waiting task and drops the cause. Here the cause goes
with it, as AWS records it in the task's failure.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from moto.core.responses import ActionResult, EmptyResult
from moto.stepfunctions.parser.asl.component.common.timeouts.heartbeat import Heartbeat
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout, TimeoutSeconds
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.responses import StepFunctionResponse


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


# Each execution's events serialized so far, as JSON texts, oldest first: with the states' data and
# without it. An execution's history is append-only, so a text once made stays right.
_serialized_events: weakref.WeakKeyDictionary[EventManager, tuple[list[str], list[str]]] = (
    weakref.WeakKeyDictionary()
)
# Reads of one execution may come at once (`local up` serves requests on threads).
_serializing = threading.Lock()
_MOTO_GET_EXECUTION_HISTORY = StepFunctionResponse.get_execution_history
# What includeExecutionData=false leaves out of each event's details: the input and output.
_EXECUTION_DATA = frozenset({"input", "output"})


def _without_data(event: dict[str, Any]) -> dict[str, Any]:
    return {
        key: {name: value for name, value in details.items() if name not in _EXECUTION_DATA}
        if key.endswith("EventDetails") and isinstance(details, dict)
        else details
        for key, details in event.items()
    }


def _get_execution_history(self: StepFunctionResponse) -> Any:
    """moto's GetExecutionHistory (every event in one page, oldest first), each event serialized once;
    with includeExecutionData false (moto's sends the data anyway) without the inputs and outputs."""
    execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
    worker = getattr(execution, "exec_worker", None)
    if worker is None or worker.env is None:  # not an executing backend, or not started yet
        return _MOTO_GET_EXECUTION_HISTORY(self)
    with_data = self._get_param("includeExecutionData") is not False
    events = worker.env.event_manager
    with _serializing:
        full, bare = _serialized_events.setdefault(events, ([], []))
        with events._mutex:
            new = copy.deepcopy(events._history_event_list[len(full) :])
        status, headers, body = self.serialized(ActionResult({"events": new}))
        for event in json.loads(body)["events"]:
            full.append(json.dumps(event, separators=(",", ":")))
            bare.append(json.dumps(_without_data(event), separators=(",", ":")))
        joined = ",".join(full if with_data else bare)
    return status, headers, '{"events":[' + joined + "]}"


@contextlib.contextmanager
def execution_history_serialized_once() -> Iterator[None]:
    with mock.patch.object(StepFunctionResponse, "get_execution_history", _get_execution_history):
        yield


def _send_task_failure(self: StepFunctionResponse) -> Any:
    """SendTaskFailure with its cause: moto's passes the error on and drops the cause, so a wait
    failed by a callback (ExportLanded's answer to an export that is not sound) lost its reason."""
    # The executing backend (moto's StepFunctionsParserBackend) takes the cause; the base one's
    # signature, which mypy reads, does not name it.
    self.stepfunction_backend.send_task_failure(  # type: ignore[call-arg]
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
    )
    return EmptyResult()


@contextlib.contextmanager
def task_failure_cause_kept() -> Iterator[None]:
    with mock.patch.object(StepFunctionResponse, "send_task_failure", _send_task_failure):
        yield
