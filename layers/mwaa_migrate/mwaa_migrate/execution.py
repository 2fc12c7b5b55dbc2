"""Step Functions executions: their names, the clock the run's records use, their history (read
in one place) and what it tells: each task's result, the approval wait."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mwaa_migrate.errors import InvalidMigrationRequest, from_client_error

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
    data: the Payload of a lambda:invoke task, the output itself of a task whose Resource is the
    function (PlanMigration). A parallel branch interleaves its events with others', so each task's
    end is followed back through previousEventId to the state it belongs to."""
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
    named = (request.get("sourceEnvironmentName"), request.get("targetEnvironmentName"))
    if named != (source, target):
        raise InvalidMigrationRequest(
            f"plan: migrates {source} to {target}, but execution {execution_name(execution_id)} was started "
            f"for {named[0]} to {named[1]}"
        )
    return request
