"""Step Functions executions: their names, the clock the run's records use, their history (read
in one place) and what it tells: each task's result, the approval wait."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError
from pydantic import Field

from mwaa_migrate.errors import InvalidMigrationRequest, from_client_error
from mwaa_migrate.models import Model, source_name_of

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

# Step Functions' limit on an execution's name.
EXECUTION_NAME_LIMIT = 80
# Executions that `plan` starts: listings of migrations skip them.
DRY_RUN_PREFIX = "dryrun-"
# The state that waits for `mwaa-migrate approve` (a task token) before the cutover.
APPROVAL_STATE = "AwaitApproval"
# Events that end one scheduling of a task: after one of them its token answers nothing.
_TASK_ENDED = frozenset(
    {"TaskSucceeded", "TaskFailed", "TaskTimedOut", "TaskStartFailed", "TaskSubmitFailed", "TaskAborted"}
)
# 48 random bits: two starts in the same millisecond still get different names.
_SUFFIX_BYTES = 6


def now() -> datetime:
    return datetime.now(UTC)


def execution_name(execution_id: str) -> str:
    """arn:aws:states:...:execution:machine:NAME -> NAME."""
    return execution_id.rsplit(":", 1)[-1]


def new_execution_name(source: str, target: str, *, prefix: str = "", at: datetime | None = None) -> str:
    """PREFIX + SOURCE-to-TARGET-YYYYMMDDTHHMMSSmmmZ-RANDOM, within Step Functions' 80 characters.

    Names sort by time (to the millisecond) and never collide: Step Functions refuses a second
    execution with a closed one's name, so two starts within one second must differ. Environment
    names are shortened, never the stamp or the random part."""
    moment = at or now()
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
    tail = f"-{stamp}-{secrets.token_hex(_SUFFIX_BYTES)}"
    room = EXECUTION_NAME_LIMIT - len(prefix) - len(tail) - len("-to-")
    source = source[: max(room // 2, room - len(target))]
    target = target[: room - len(source)]
    return f"{prefix}{source}-to-{target}{tail}"


@dataclass(frozen=True)
class ApprovalWait:
    """Where an execution stands as to its approval: the token of the open wait, if there is one."""

    # The state the execution is in now (the latest entered), for the operator.
    current_state: str | None
    token: str | None = field(default=None, repr=False)

    @property
    def waiting(self) -> bool:
        return self.token is not None


def execution_history(sfn: SFNClient, execution_arn: str, *, with_data: bool = False) -> list[dict[str, Any]]:
    """Every event of an execution's history, oldest first; with the states' inputs and outputs only
    when `with_data` (they make the read large, and most readers need names and times)."""
    try:
        paginator = sfn.get_paginator("get_execution_history")
        return [
            dict(event)
            for page in paginator.paginate(executionArn=execution_arn, includeExecutionData=with_data)
            for event in page["events"]
        ]
    except ClientError as error:
        raise from_client_error(error, f"reading the history of {execution_arn}") from None


def task_results(history: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last result of each Task state that succeeded, by state name, from a history read with its
    data: the Payload of a lambda:invoke task (every task of this state machine), or the output itself
    of a task whose Resource is the function's ARN. A parallel branch interleaves its events with
    others', so each task's end is followed back through previousEventId to the state it belongs to."""
    events = {int(event["id"]): event for event in history}
    results: dict[str, dict[str, Any]] = {}
    for event_id in sorted(events):
        event = events[event_id]
        direct = event.get("lambdaFunctionSucceededEventDetails")
        details = event.get("taskSucceededEventDetails") or direct
        if not details:
            continue
        cursor = events.get(int(event.get("previousEventId") or 0))
        while cursor is not None and "stateEnteredEventDetails" not in cursor:
            cursor = events.get(int(cursor.get("previousEventId") or 0))
        if cursor is None:
            continue
        try:
            output = json.loads(details.get("output") or "{}")
        except ValueError:
            continue
        result = output if direct else output.get("Payload") if isinstance(output, dict) else None
        if isinstance(result, dict):
            results[str(cursor["stateEnteredEventDetails"]["name"])] = result
    return results


def _task_token(event: Mapping[str, Any]) -> str | None:
    details = event.get("taskScheduledEventDetails") or {}
    try:
        parameters = json.loads(details.get("parameters") or "{}")
    except ValueError:
        return None
    payload = parameters.get("Payload") if isinstance(parameters, dict) else None
    token = payload.get("taskToken") if isinstance(payload, dict) else None
    return token if isinstance(token, str) and token else None


def approval_wait(history: Iterable[Mapping[str, Any]]) -> ApprovalWait:
    """The open AwaitApproval wait in an execution's history (events with their data): the token
    of the state's latest scheduling, unless the task or the state ended after it."""
    current: str | None = None
    inside = False
    token: str | None = None
    for event in sorted(history, key=lambda item: int(item["id"])):
        kind = str(event["type"])
        if kind.endswith("StateEntered"):
            current = str(event["stateEnteredEventDetails"]["name"])
            if current == APPROVAL_STATE:
                inside, token = True, None
        elif kind.endswith("StateExited") and event["stateExitedEventDetails"]["name"] == APPROVAL_STATE:
            inside, token = False, None
        elif inside and kind == "TaskScheduled":
            token = _task_token(event)
        elif inside and kind in _TASK_ENDED:
            token = None
    return ApprovalWait(current_state=current, token=token)


def require_running_execution(
    sfn: SFNClient, execution_id: str, *, state_machine_arn: str, source: str, target: str
) -> dict[str, Any]:
    """The event comes from a running execution of this stack's state machine that migrates these
    two environments: a function that changes IAM acts for no one else (a forged invocation would
    first have to start an execution, which plans and checks everything)."""
    if not state_machine_arn:
        raise InvalidMigrationRequest("STATE_MACHINE_ARN is not set: the function cannot tell its executions")
    if not execution_id.startswith(state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":"):
        raise InvalidMigrationRequest(
            f"executionId: {execution_id} is not an execution of {state_machine_arn}"
        )
    try:
        described = sfn.describe_execution(executionArn=execution_id)
    except ClientError as error:
        raise from_client_error(error, f"reading execution {execution_id}") from None
    if described["status"] != "RUNNING":
        raise InvalidMigrationRequest(f"executionId: {execution_id} is {described['status']}, not RUNNING")
    try:
        request = json.loads(described.get("input") or "{}")
    except ValueError:
        request = {}
    if not isinstance(request, dict):
        request = {}
    named = (source_name_of(request), request.get("targetEnvironmentName"))
    if named != (source, target):
        raise InvalidMigrationRequest(
            f"plan: migrates {source} to {target}, but execution {execution_name(execution_id)} was started "
            f"for {named[0]} to {named[1]}"
        )
    return request


# ---------------------------------------------------------------------------- step timings


class StepTiming(Model):
    """One state of the state machine as the execution went through it (loops add up)."""

    state: str
    type: str
    runs: int
    seconds: float
    status: Literal["succeeded", "failed", "running", "stopped"]
    retries: int = 0
    error: str | None = None
    first_entered_at: str
    # The errors of the tries the state retried (distinct, first seen first): what a retry was for,
    # e.g. TransientAwsError for a call throttled past botocore's own retries.
    retried_errors: list[str] = Field(default_factory=list)


# History events of states that take time or end a path; Pass, Choice and Succeed take none.
_TIMED_TYPES = ("Task", "Wait", "Parallel", "Map", "Fail")
# A task's try that failed (it may be retried).
_TASK_FAILED_EVENTS = frozenset(
    {
        "TaskFailed",
        "TaskTimedOut",
        "TaskStartFailed",
        "TaskSubmitFailed",
        "LambdaFunctionFailed",
        "LambdaFunctionTimedOut",
        "LambdaFunctionStartFailed",
        "LambdaFunctionScheduleFailed",
    }
)
# What comes right before the exit of a state that failed.
_FAILED_EVENTS = _TASK_FAILED_EVENTS | {
    "ParallelStateFailed",
    "ParallelStateAborted",
    "MapStateFailed",
    "MapStateAborted",
    "MapRunFailed",
    "MapRunAborted",
}
_SUCCEEDED_EVENTS = frozenset({"TaskSucceeded", "LambdaFunctionSucceeded"})


_SCHEDULED_EVENTS = frozenset({"TaskScheduled", "LambdaFunctionScheduled"})


@dataclass
class _Run:
    """One entry into a state, until it exits."""

    name: str
    type: str
    entered: datetime
    exited: datetime | None = None
    # None until the state's work ends: "succeeded", "failed", or "retrying" (failed, scheduled again).
    outcome: str | None = None
    failures: int = 0
    error: str | None = None
    # The error of each failed try, in order.
    errors: list[str] = field(default_factory=list)
    # Closed because the Parallel or Map around it failed, not by its own exit.
    stopped: bool = False


@dataclass
class _Timeline:
    runs: dict[int, _Run] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)


def _event_error(event: Mapping[str, Any]) -> str | None:
    for key, details in event.items():
        if key.endswith("EventDetails") and isinstance(details, Mapping) and details.get("error"):
            return str(details["error"])
    return None


def _previous(events: Mapping[int, Mapping[str, Any]], event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return events.get(int(event.get("previousEventId") or 0))


def _owning_run(
    events: Mapping[int, Mapping[str, Any]],
    runs: Mapping[int, _Run],
    event: Mapping[str, Any],
    name: str | None,
) -> tuple[int, _Run] | None:
    """The state run an event belongs to: follow previousEventId back to a state's entry (of the
    same name, for an exit: a Parallel's exit comes right after its branches' last events)."""
    cursor = _previous(events, event)
    while cursor is not None:
        run = runs.get(int(cursor["id"]))
        if run is not None and (name is None or run.name == name):
            return int(cursor["id"]), run
        cursor = _previous(events, cursor)
    return None


def _record(timeline: _Timeline, events: Mapping[int, Mapping[str, Any]], event: Mapping[str, Any]) -> None:
    kind = str(event["type"])
    timestamp: datetime = event["timestamp"]
    if kind.endswith("StateEntered"):
        state_type = kind.removesuffix("StateEntered")
        if state_type not in _TIMED_TYPES:
            return
        name = str(event["stateEnteredEventDetails"]["name"])
        run = _Run(name=name, type=state_type, entered=timestamp)
        if state_type == "Fail":
            run.exited, run.outcome = timestamp, "failed"
        timeline.runs[int(event["id"])] = run
        if name not in timeline.order:
            timeline.order.append(name)
    elif kind.endswith("StateExited"):
        owner = _owning_run(events, timeline.runs, event, str(event["stateExitedEventDetails"]["name"]))
        if owner is None:
            return
        entry_id, run = owner
        run.exited = timestamp
        previous = _previous(events, event) or {}
        if previous.get("type") in _FAILED_EVENTS:
            run.outcome = "failed"
            if run.type in {"Parallel", "Map"}:
                _stop_inside(timeline, entry_id, int(event["id"]), timestamp)
        elif run.outcome != "failed" or run.type != "Task":
            run.outcome = "succeeded"
    elif kind in _TASK_FAILED_EVENTS | _SUCCEEDED_EVENTS | _SCHEDULED_EVENTS:
        owner = _owning_run(events, timeline.runs, event, None)
        if owner is None or owner[1].exited is not None or owner[1].type != "Task":
            return
        run = owner[1]
        if kind in _TASK_FAILED_EVENTS:
            run.failures += 1
            run.outcome, run.error = "failed", _event_error(event) or run.error
            run.errors.append(_event_error(event) or "unknown")
        elif kind in _SUCCEEDED_EVENTS:
            run.outcome = "succeeded"
        elif run.outcome == "failed":
            run.outcome = "retrying"


def _stop_inside(timeline: _Timeline, entered_id: int, exited_id: int, timestamp: datetime) -> None:
    """A failed Parallel or Map ends every run still open inside it."""
    for run_id, run in timeline.runs.items():
        if entered_id < run_id < exited_id and run.exited is None:
            run.exited, run.stopped = timestamp, True


def step_timings(
    history: Iterable[Mapping[str, Any]], *, now: datetime | None = None, ended: bool = False
) -> list[StepTiming]:
    """The states an execution entered, in the order it first entered them, each with how often it
    ran, how long it took in all (a run still going counts up to `now`), and how it ended.
    `ended`: the execution is over, so a state still open was stopped, not running."""
    events = {int(event["id"]): event for event in history}
    timeline = _Timeline()
    for event_id in sorted(events):
        _record(timeline, events, events[event_id])
    return _summarise(timeline, now or datetime.now(UTC), ended)


def _status(run: _Run, ended: bool) -> Literal["succeeded", "failed", "running", "stopped"]:
    if run.outcome == "failed" and (run.exited is not None or ended):
        return "failed"
    if run.stopped or (run.exited is None and ended):
        return "stopped"
    if run.exited is None:
        return "running"
    return "succeeded"


def _summarise(timeline: _Timeline, now: datetime, ended: bool) -> list[StepTiming]:
    by_name: dict[str, list[_Run]] = {}
    for run in timeline.runs.values():
        by_name.setdefault(run.name, []).append(run)
    timings = []
    for name in timeline.order:
        runs = by_name[name]
        statuses = [_status(run, ended) for run in runs]
        # A loop is running while any of its runs is; otherwise its last run says how it ended.
        status = "running" if "running" in statuses else statuses[-1]
        failures = sum(run.failures for run in runs)
        last = runs[-1]
        errors = [error for run in runs for error in run.errors]
        if status == "failed" and last.failures:
            errors = errors[:-1]  # the last failure was not retried: it ended the step
        timings.append(
            StepTiming(
                state=name,
                type=last.type,
                runs=len(runs),
                seconds=round(
                    max(sum(((r.exited or now) - r.entered).total_seconds() for r in runs), 0.0), 3
                ),
                status=status,
                retries=failures - (1 if status == "failed" and last.failures else 0),
                error=last.error if last.outcome in {"failed", "retrying"} else None,
                first_entered_at=runs[0].entered.isoformat(),
                retried_errors=list(dict.fromkeys(errors)),
            )
        )
    return timings


def finished_steps(sfn: SFNClient, execution_arn: str) -> list[StepTiming]:
    """The steps of an execution up to the state now running, which calls this to write its report:
    everything before it is over (a state still open there was stopped)."""
    history = execution_history(sfn, execution_arn)
    entries = [event for event in history if str(event["type"]).endswith("StateEntered")]
    current = max((int(event["id"]) for event in entries), default=None)
    return step_timings([event for event in history if int(event["id"]) != current], ended=True)
