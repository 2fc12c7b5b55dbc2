"""Finding where an execution failed, and reading Step Functions' error and cause."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from mwaa_migrate.run.failure import error_from_state, failed_state, readable_cause

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:mwaa-migrate-migration:run-1"
WHEN = datetime(2026, 11, 23, tzinfo=UTC)


def _event(event_id, kind, previous, **details):
    event = {"id": event_id, "type": kind, "previousEventId": previous, "timestamp": WHEN}
    event.update(details)
    return event


def _entered(event_id, name, previous, kind="TaskStateEntered"):
    return _event(event_id, kind, previous, stateEnteredEventDetails={"name": name})


@pytest.fixture
def sfn():
    client = boto3.client("stepfunctions", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber


def test_the_failed_task_is_found_even_when_a_parallel_branch_moved_on(sfn):
    client, stubber = sfn
    events = [
        _entered(1, "CloneEnvironment", 0),
        _event(2, "TaskScheduled", 1),
        _entered(3, "TriggerExportDag", 0),
        _event(
            4,
            "TaskFailed",
            2,
            taskFailedEventDetails={
                "error": "EnvironmentFailed",
                "cause": "x",
                "resourceType": "lambda",
                "resource": "invoke",
            },
        ),
        _entered(5, "RecordFailure", 4),
    ]
    stubber.add_response(
        "get_execution_history",
        {"events": events},
        {"executionArn": EXECUTION, "includeExecutionData": True},
    )
    assert failed_state(client, EXECUTION) == "CloneEnvironment"


def test_a_fail_state_names_itself(sfn):
    client, stubber = sfn
    events = [
        _entered(1, "CheckTarget", 0),
        _entered(2, "TargetTimedOut", 1, kind="FailStateEntered"),
        _entered(3, "RecordFailure", 2),
    ]
    stubber.add_response(
        "get_execution_history",
        {"events": events},
        {"executionArn": EXECUTION, "includeExecutionData": True},
    )
    assert failed_state(client, EXECUTION) == "TargetTimedOut"


def test_what_happened_after_the_failure_path_is_ignored(sfn):
    client, stubber = sfn
    events = [
        _entered(1, "PlanMigration", 0),
        _event(
            2,
            "TaskFailed",
            1,
            taskFailedEventDetails={
                "error": "InvalidMigrationRequest",
                "cause": "x",
                "resourceType": "lambda",
                "resource": "invoke",
            },
        ),
        _entered(3, "RecordFailure", 2),
        _entered(4, "MigrationFailed", 3, kind="FailStateEntered"),
    ]
    stubber.add_response(
        "get_execution_history",
        {"events": events},
        {"executionArn": EXECUTION, "includeExecutionData": True},
    )
    assert failed_state(client, EXECUTION) == "PlanMigration"


def test_every_page_of_the_history_is_read(sfn):
    client, stubber = sfn
    stubber.add_response(
        "get_execution_history",
        {"events": [_entered(1, "CopyTaskLogs", 0), _event(2, "TaskScheduled", 1)], "nextToken": "page-2"},
        {"executionArn": EXECUTION, "includeExecutionData": True},
    )
    stubber.add_response(
        "get_execution_history",
        {
            "events": [
                _event(
                    3,
                    "TaskFailed",
                    2,
                    taskFailedEventDetails={
                        "error": "E",
                        "cause": "c",
                        "resourceType": "lambda",
                        "resource": "invoke",
                    },
                ),
                _entered(4, "RecordFailure", 3),
            ]
        },
        {"executionArn": EXECUTION, "includeExecutionData": True, "nextToken": "page-2"},
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
