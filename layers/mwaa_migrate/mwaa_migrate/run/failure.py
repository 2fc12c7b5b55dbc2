"""The one failure path: find where and why the execution failed, undo the grants, record it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mwaa_migrate.execution import execution_history
from mwaa_migrate.models import MigrationPlan, Model
from mwaa_migrate.observability import logger
from mwaa_migrate.redaction import redact_text

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

_CAUSE_LIMIT = 4000


class CaughtError(Model):
    """What a Catch puts at ResultPath: Step Functions' own capitalised field names."""

    error: str
    cause: str = ""


def error_from_state(state: dict[str, Any]) -> CaughtError:
    raw = state.get("error") or {}
    return CaughtError(error=str(raw.get("Error", "States.Unknown")), cause=str(raw.get("Cause", "")))


def readable_cause(cause: str) -> str:
    """A Lambda error's Cause is JSON with errorMessage and a stack trace: keep the message, with
    secret-looking values redacted (a failing task's log lines may hold them) before it is cut, so
    no cut leaves part of a secret behind."""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return redact_text(cause)[:_CAUSE_LIMIT]
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return redact_text(str(parsed["errorMessage"]))[:_CAUSE_LIMIT]
    return redact_text(cause)[:_CAUSE_LIMIT]


# The state of the ASL that every Catch leads to.
FAILURE_PATH_STATE = "RecordFailure"
_FAILURE_EVENTS = frozenset(
    {"TaskFailed", "TaskTimedOut", "LambdaFunctionFailed", "LambdaFunctionTimedOut", "MapStateFailed"}
)


def failed_state(sfn: SFNClient, execution_id: str, caught: CaughtError | None = None) -> str:
    """The name of the state whose failure was caught, read from the execution's own history: the
    Fail state entered, or the state whose task failed last with the caught error (followed back
    through previousEventId, since a parallel branch may have entered other states in between).
    A task of another branch can fail later with an error its Retry takes (a throttled call while
    the Parallel is being cancelled): that failure is not the one caught, so the caught error's name
    chooses among the failures; without one that matches, the last failure is named."""
    # With the states' data, though only names are read: moto's history without it fails to serialize
    # some failed executions' events (a TaskScheduled timeout that is not a number), and the failure
    # path must not fail on the emulation's account.
    events = {event["id"]: event for event in execution_history(sfn, execution_id, with_data=True)}
    # Only what happened before the failure path was entered (the last time, on a re-invocation).
    entered_failure_path = [
        event["id"]
        for event in events.values()
        if event.get("stateEnteredEventDetails", {}).get("name") == FAILURE_PATH_STATE
    ]
    cutoff = max(entered_failure_path, default=max(events, default=0) + 1)
    failures = [
        event
        for event in sorted(events.values(), key=lambda e: e["id"], reverse=True)
        if event["id"] < cutoff
        and (
            (event["type"] == "FailStateEntered" and "stateEnteredEventDetails" in event)
            or event["type"] in _FAILURE_EVENTS
        )
    ]
    chosen = next(
        (
            event
            for event in failures
            if caught is None or event["type"] == "FailStateEntered" or _error_of(event) == caught.error
        ),
        failures[0] if failures else None,
    )
    if chosen is None:
        return "unknown"
    if chosen["type"] == "FailStateEntered":
        return str(chosen["stateEnteredEventDetails"]["name"])
    cursor = events.get(chosen.get("previousEventId", 0))
    while cursor is not None:
        if "stateEnteredEventDetails" in cursor:
            return str(cursor["stateEnteredEventDetails"]["name"])
        cursor = events.get(cursor.get("previousEventId", 0))
    return "unknown"


def _error_of(event: dict[str, Any]) -> str | None:
    """The error a failure event names (its details are under a key of its own type's name)."""
    for key, details in event.items():
        if key.endswith("EventDetails") and isinstance(details, dict) and "error" in details:
            return str(details["error"])
    return None


def plan_from_state(state: dict[str, Any]) -> MigrationPlan | None:
    plan = state.get("plan")
    if not isinstance(plan, dict):
        return None
    try:
        return MigrationPlan.model_validate(plan)
    except ValueError:
        logger.warning("the execution's plan is not readable; the failure report will not name it")
        return None
