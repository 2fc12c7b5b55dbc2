"""Finding where an execution failed, and reading Step Functions' error and cause."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from mwaa_migrate.run.failure import CaughtError, error_from_state, failed_state, readable_cause

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:mwaa-migrate-migration:run-1"
WHEN = datetime(2026, 11, 23, tzinfo=UTC)


def _event(event_id, kind, previous, **details):
    event = {"id": event_id, "type": kind, "previousEventId": previous, "timestamp": WHEN}
    event.update(details)
    return event


def _entered(event_id, name, previous, kind="TaskStateEntered"):
    return _event(event_id, kind, previous, stateEnteredEventDetails={"name": name})


def _task_failed(event_id, previous, error, cause="x"):
    details = {"error": error, "cause": cause, "resourceType": "lambda", "resource": "invoke"}
    return _event(event_id, "TaskFailed", previous, taskFailedEventDetails=details)


@pytest.fixture
def sfn():
    client = boto3.client("stepfunctions", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber


def _history_page(stubber, events, next_token=None):
    """One page of the execution's history, as GetExecutionHistory answers the request for it."""
    response, request = {"events": events}, {"executionArn": EXECUTION, "includeExecutionData": True}
    if next_token is not None:
        response["nextToken"] = next_token
    stubber.add_response("get_execution_history", response, request)
    return request


@pytest.mark.parametrize(
    ("events", "failed"),
    [
        pytest.param(
            [
                _entered(1, "CloneEnvironment", 0),
                _event(2, "TaskScheduled", 1),
                _entered(3, "TriggerExportDag", 0),
                _task_failed(4, 2, "EnvironmentFailed"),
                _entered(5, "RecordFailure", 4),
            ],
            "CloneEnvironment",
            id="the-failed-task-even-when-a-parallel-branch-moved-on",
        ),
        pytest.param(
            [
                _entered(1, "CheckTarget", 0),
                _entered(2, "TargetTimedOut", 1, kind="FailStateEntered"),
                _entered(3, "RecordFailure", 2),
            ],
            "TargetTimedOut",
            id="a-fail-state-names-itself",
        ),
        pytest.param(
            [
                _entered(1, "PlanMigration", 0),
                _task_failed(2, 1, "InvalidMigrationRequest"),
                _entered(3, "RecordFailure", 2),
                _entered(4, "MigrationFailed", 3, kind="FailStateEntered"),
            ],
            "PlanMigration",
            id="what-happened-after-the-failure-path-is-ignored",
        ),
    ],
)
def test_the_failed_state_is_the_one_the_failure_path_was_entered_from(sfn, events, failed):
    client, stubber = sfn
    _history_page(stubber, events)

    assert failed_state(client, EXECUTION) == failed


def test_a_later_failure_of_another_branch_that_its_retry_took_is_not_the_one_caught(sfn):
    """The target fails to create while the export branch's call is throttled: that TaskFailed comes
    after the caught one, but the caught error names the state it came from."""
    client, stubber = sfn
    _history_page(
        stubber,
        [
            _entered(1, "CheckTarget", 0),
            _event(2, "TaskScheduled", 1),
            _entered(3, "CheckExportRun", 0),
            _event(4, "TaskScheduled", 3),
            _task_failed(5, 2, "EnvironmentFailed"),
            _task_failed(6, 4, "ThrottlingException"),
            _entered(7, "RecordFailure", 6),
        ],
    )

    assert failed_state(client, EXECUTION, CaughtError(error="EnvironmentFailed")) == "CheckTarget"


def test_without_a_failure_of_the_caught_error_the_last_failure_is_named(sfn):
    client, stubber = sfn
    _history_page(
        stubber,
        [
            _entered(1, "CheckTarget", 0),
            _event(2, "TaskScheduled", 1),
            _task_failed(3, 2, "States.TaskFailed"),
            _entered(4, "RecordFailure", 3),
        ],
    )

    assert failed_state(client, EXECUTION, CaughtError(error="States.Timeout")) == "CheckTarget"


def test_every_page_of_the_history_is_read(sfn):
    client, stubber = sfn
    request = _history_page(
        stubber, [_entered(1, "CopyTaskLogs", 0), _event(2, "TaskScheduled", 1)], next_token="page-2"
    )
    stubber.add_response(
        "get_execution_history",
        {"events": [_task_failed(3, 2, "E", cause="c"), _entered(4, "RecordFailure", 3)]},
        {**request, "nextToken": "page-2"},
    )
    assert failed_state(client, EXECUTION) == "CopyTaskLogs"


def test_a_lambda_cause_is_reduced_to_its_message():
    cause = json.dumps({"errorType": "DagRunFailed", "errorMessage": "export failed", "stackTrace": ["..."]})
    assert readable_cause(cause) == "export failed"


def test_a_plain_cause_is_kept():
    assert readable_cause("the target did not become AVAILABLE") == "the target did not become AVAILABLE"


def test_the_caught_error_is_read_from_the_state():
    caught = error_from_state({"error": {"Error": "WaitTimedOut", "Cause": "deadline"}})
    assert (caught.error, caught.cause) == ("WaitTimedOut", "deadline")
