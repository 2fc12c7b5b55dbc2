"""A failed log copy item's own error (the AWS error, the call, what was being done) reaches the
execution's failure, the report and the notification, read from the Distributed Map's ResultWriter
export as Step Functions writes it (manifest.json, SUCCEEDED_0.json, FAILED_0.json)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from emulation.local_stack import LocalStack, Timing
from emulation.scenario import Scenario, TaskLogStream
from mwaa_migrate.errors import from_client_error
from mwaa_migrate.logs.log_report import ITEM_CAUSE_LIMIT
from mwaa_migrate.run.notifications import EVENT_SOURCE
from tests.statemachine.conftest import run

BUCKET = "mwaa-migrate-local"
DENIED = "User: arn:aws:sts::123456789012:assumed-role/x is not authorized to perform: logs:GetLogEvents"


@pytest.fixture
def stacks() -> Iterator[Callable[..., LocalStack]]:
    with ExitStack() as opened:

        def start(scenario: Scenario, **timing: Any) -> LocalStack:
            return opened.enter_context(LocalStack(scenario, timing=Timing(**timing)))

        yield start


def _streams(scenario: Scenario, count: int) -> Scenario:
    logs = [
        TaskLogStream(
            stream=f"dag_id=etl/run_id=scheduled__{i:03d}/task_id=load/attempt=1.log",
            events=5,
            minutes_ago=120,
        )
        for i in range(count)
    ]
    return scenario.model_copy(update={"task_logs": logs})


def _denied_copy(stack: LocalStack, failing: Callable[[int], bool], message: str = DENIED) -> None:
    """CopyLogStreams fails for the items `failing` picks as the copy does on an access denied."""
    copy = stack.lambdas.handlers["CopyLogStreamsFunction"]

    def handler(event: dict[str, Any], context: Any) -> Any:
        if failing(event["index"]):
            denied = ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": message}, "ResponseMetadata": {}},
                "GetLogEvents",
            )
            raise from_client_error(denied, f"reading log events of item {event['index']} (GetLogEvents)")
        return copy(event, context)

    stack.lambdas.handlers["CopyLogStreamsFunction"] = handler


def _route_notifications(stack: LocalStack) -> tuple[Any, str]:
    sqs = boto3.client("sqs", region_name=stack.region)
    events = boto3.client("events", region_name=stack.region)
    url = sqs.create_queue(QueueName="migrations")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="migrations", EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
    events.put_targets(Rule="migrations", Targets=[{"Id": "queue", "Arn": arn}])
    return sqs, url


def _failed_notification(sqs: Any, url: str) -> dict[str, Any]:
    received = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        received.extend(json.loads(message["Body"]) for message in messages)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
    return next(event["detail"] for event in received if event["detail-type"] == "Migration Failed")


def _keys(stack: LocalStack, prefix: str = "migrations/") -> list[str]:
    listed = stack.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def _report(stack: LocalStack) -> dict[str, Any]:
    key = next(k for k in _keys(stack) if "/reports/" in k and k.endswith(".json"))
    return dict(stack.read_json(BUCKET, key))


def test_a_failed_items_own_aws_error_is_the_migrations_error_cause_report_and_notification(scenario, stacks):
    stack = stacks(_streams(scenario, 3), log_copy_max_concurrency=3)
    _denied_copy(stack, lambda index: index == 0)
    sqs, url = _route_notifications(stack)

    described = run(stack)

    assert described["status"] == "FAILED"
    assert described["error"] == "AwsAccessDenied"
    cause = described["cause"]
    assert cause.startswith(
        "CopyLogStreamsInParallel: the log copy failed (States.ExceedToleratedFailureThreshold"
    )
    assert "work item 0 with AwsAccessDenied: reading log events of item 0 (GetLogEvents): " in cause
    assert f"AccessDeniedException: {DENIED}" in cause
    assert "Traceback" not in cause
    assert "stackTrace" not in cause
    failure = _report(stack)["failure"]
    assert (failure["state"], failure["error"]) == ("CopyLogStreamsInParallel", "AwsAccessDenied")
    assert "AccessDeniedException" in failure["cause"]
    notified = _failed_notification(sqs, url)
    assert (notified["error"], notified["failedState"]) == ("AwsAccessDenied", "CopyLogStreamsInParallel")
    assert "AccessDeniedException" in notified["cause"]


def test_the_map_exports_its_results_as_step_functions_does_also_when_it_fails(scenario, stacks):
    stack = stacks(_streams(scenario, 2), log_copy_max_concurrency=2)
    _denied_copy(stack, lambda index: index == 1)

    described = run(stack)

    assert described["status"] == "FAILED"
    (manifest_key,) = [k for k in _keys(stack) if "/map-run/" in k and k.endswith("/manifest.json")]
    manifest = stack.read_json(BUCKET, manifest_key)
    assert manifest["DestinationBucket"] == BUCKET
    assert manifest["MapRunArn"].split(":")[-1] == manifest_key.split("/")[-2]
    files = manifest["ResultFiles"]
    assert (len(files["SUCCEEDED"]), len(files["FAILED"]), files["PENDING"]) == (1, 1, [])
    for listed in (*files["SUCCEEDED"], *files["FAILED"]):
        body = stack.s3.get_object(Bucket=BUCKET, Key=listed["Key"])["Body"].read()
        assert listed["Size"] == len(body)
    (succeeded,) = stack.read_json(BUCKET, files["SUCCEEDED"][0]["Key"])
    (failed,) = stack.read_json(BUCKET, files["FAILED"][0]["Key"])
    assert files["FAILED"][0]["Key"].endswith("/FAILED_0.json")
    assert (succeeded["Status"], failed["Status"]) == ("SUCCEEDED", "FAILED")
    assert json.loads(failed["Input"])["index"] == 1
    assert failed["Error"] == "AwsAccessDenied"
    assert json.loads(failed["Cause"])["errorType"] == "AwsAccessDenied"
    assert "Output" not in failed
    assert "Error" not in succeeded
    assert failed["ExecutionArn"].startswith(
        failed["StateMachineArn"].replace(":stateMachine:", ":execution:")
    )


def test_failed_items_within_the_tolerance_are_reported_with_their_own_error(scenario, stacks):
    stack = stacks(
        _streams(scenario, 4), log_copy_max_concurrency=4, log_copy_tolerated_failure_percentage=50
    )
    _denied_copy(stack, lambda index: index == 2)

    described = run(stack)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    logs = _report(stack)["logs"]
    assert (logs["itemsFailed"], logs["streamsFailed"]) == (1, 1)
    (reason,) = [skip["reason"] for skip in logs["skipped"]]
    assert reason.startswith(
        "the copy of its work item failed: AwsAccessDenied: reading log events of item 2"
    )
    assert "AccessDeniedException" in reason


def test_a_long_item_error_is_cut_in_the_cause(scenario, stacks):
    stack = stacks(_streams(scenario, 1))
    _denied_copy(stack, lambda index: True, message="denied " * 3_000)

    described = run(stack)

    assert described["error"] == "AwsAccessDenied"
    assert "denied " * 100 in described["cause"]
    assert len(described["cause"]) < ITEM_CAUSE_LIMIT + 600


def test_without_the_maps_results_the_maps_own_error_is_kept(scenario, stacks):
    stack = stacks(_streams(scenario, 2), log_copy_max_concurrency=2)
    _denied_copy(stack, lambda index: True)
    summarize = stack.lambdas.handlers["SummarizeLogCopyFunction"]

    def results_unreadable(event: dict[str, Any], context: Any) -> Any:
        if "mapRunError" in event:
            raise RuntimeError("the results cannot be read")
        return summarize(event, context)

    stack.lambdas.handlers["SummarizeLogCopyFunction"] = results_unreadable

    described = run(stack)

    assert described["error"] == "LogCopyFailed"
    assert "States.ExceedToleratedFailureThreshold" in described["cause"]
