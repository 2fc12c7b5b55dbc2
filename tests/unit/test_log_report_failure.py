"""A failed log copy explained by its failed work items' own errors, read from the Distributed Map's
ResultWriter export in the form Step Functions writes it (moto S3)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from mwaa_migrate.logs.log_listing import GroupListing, LogListing
from mwaa_migrate.logs.log_report import ITEM_CAUSE_LIMIT, explain_log_copy_failure, failed_map_items
from tests.emulated_dags import BUCKET
from tests.unit.test_log_report import listing as log_listing  # the summary tests' listing

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ARN = "arn:aws:states:us-east-1:123456789012"
MAP_RUN = f"{ARN}:mapRun:mwaa-migrate-migration/LogCopy:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
THRESHOLD = {
    "Error": "States.ExceedToleratedFailureThreshold",
    "Cause": "The specified tolerated failure threshold was exceeded",
}


@pytest.fixture
def listing() -> LogListing:
    """The listing of a copy of 4 work items, over 8 streams of one group."""
    task = GroupListing(group="Task", source_group="airflow-a-Task", target_group="airflow-b-Task")
    return log_listing(4, groups=[task], streams=8)


def lambda_cause(error_type: str, message: str) -> str:
    """A Lambda function error's Cause as Step Functions gives it: the runtime's error JSON."""
    return json.dumps(
        {
            "errorMessage": message,
            "errorType": error_type,
            "requestId": "5f0c5a2e-2b1f-4c7e-9a55-0d6f3f0b9d11",
            "stackTrace": ['  File "/var/task/app.py", line 20, in lambda_handler\n'],
        }
    )


def failed_execution(index: int, error: str, cause: str) -> dict[str, Any]:
    """One entry of FAILED_0.json, with the fields Step Functions exports for a child execution."""
    name = f"5a9d1c3e-0000-4000-8000-00000000000{index}"
    return {
        "ExecutionArn": f"{ARN}:execution:mwaa-migrate-migration/LogCopy:{name}",
        "Input": json.dumps({"index": index, "item": {"group": "Task"}}),
        "InputDetails": {"Included": True},
        "Name": name,
        "RedriveCount": 0,
        "RedriveStatus": "REDRIVABLE",
        "StartDate": "2026-11-23T10:00:00.000Z",
        "StateMachineArn": f"{ARN}:stateMachine:mwaa-migrate-migration/LogCopy",
        "Status": "FAILED",
        "StopDate": "2026-11-23T10:00:05.000Z",
        "Error": error,
        "Cause": cause,
    }


def export(s3: S3Client, listing: LogListing, failed: list[dict[str, Any]], *, jsonl: bool = False) -> None:
    base = f"{listing.map_run_prefix}/{MAP_RUN.rsplit(':', 1)[-1]}/"
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    if failed:
        body = "\n".join(json.dumps(e) for e in failed) if jsonl else json.dumps(failed)
        s3.put_object(Bucket=BUCKET, Key=f"{base}FAILED_0.json", Body=body.encode())
        files["FAILED"].append({"Key": f"{base}FAILED_0.json", "Size": len(body)})
    manifest = {"DestinationBucket": BUCKET, "MapRunArn": MAP_RUN, "ResultFiles": files}
    s3.put_object(Bucket=BUCKET, Key=f"{base}manifest.json", Body=json.dumps(manifest).encode())


DENIED = (
    "reading log events of dag_id=etl/run_id=r/task_id=t/attempt=1.log in airflow-a-Task (GetLogEvents): "
    "AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/copy/fn is not authorized"
)


def test_the_first_failed_items_own_error_and_message_become_the_failure(s3, listing) -> None:
    export(
        s3,
        listing,
        [
            failed_execution(3, "States.Timeout", ""),
            failed_execution(1, "AwsAccessDenied", lambda_cause("AwsAccessDenied", DENIED)),
        ],
    )

    failure = explain_log_copy_failure(s3, listing, THRESHOLD)

    assert failure.error == "AwsAccessDenied"
    assert failure.cause == (
        "the log copy failed (States.ExceedToleratedFailureThreshold: The specified tolerated failure "
        f"threshold was exceeded); 2 of 4 work items failed, work item 1 with AwsAccessDenied: {DENIED}"
    )


def test_the_stack_trace_and_request_id_stay_out(s3, listing) -> None:
    export(s3, listing, [failed_execution(0, "AwsAccessDenied", lambda_cause("AwsAccessDenied", DENIED))])

    cause = explain_log_copy_failure(s3, listing, THRESHOLD).cause

    assert "stackTrace" not in cause
    assert "app.py" not in cause
    assert "5f0c5a2e" not in cause


def test_a_long_message_is_cut(s3, listing) -> None:
    export(
        s3,
        listing,
        [failed_execution(0, "MigrationConflict", lambda_cause("MigrationConflict", "denied " * 5_000))],
    )

    (item,) = failed_map_items(s3, listing)

    assert len(item.cause) == ITEM_CAUSE_LIMIT
    assert len(explain_log_copy_failure(s3, listing, THRESHOLD).cause) < ITEM_CAUSE_LIMIT + 300


def test_an_error_that_is_not_an_error_name_is_not_passed_on(s3, listing) -> None:
    export(s3, listing, [failed_execution(0, "not a name; rm -rf /", "")])

    assert explain_log_copy_failure(s3, listing, THRESHOLD).error == "LogCopyFailed"


def test_results_written_as_json_lines_are_read_too(s3, listing) -> None:
    export(
        s3,
        listing,
        [failed_execution(2, "Sandbox.Timedout", "Task timed out after 900.00 seconds")],
        jsonl=True,
    )

    (item,) = failed_map_items(s3, listing)

    assert (item.index, item.error, item.cause) == (
        2,
        "Sandbox.Timedout",
        "Task timed out after 900.00 seconds",
    )


def test_without_failed_items_the_maps_own_error_is_the_failure(s3, listing) -> None:
    export(s3, listing, [])
    reader_failed = {"Error": "States.ItemReaderFailed", "Cause": "Unable to read items.json"}

    failure = explain_log_copy_failure(s3, listing, reader_failed)

    assert (failure.error, failure.cause) == (
        "LogCopyFailed",
        "the log copy failed (States.ItemReaderFailed: Unable to read items.json)",
    )


def test_without_an_export_the_maps_own_error_is_the_failure(s3, listing) -> None:
    assert explain_log_copy_failure(s3, listing, THRESHOLD).error == "LogCopyFailed"
    assert failed_map_items(s3, listing) == []


def test_the_latest_map_runs_export_is_read(s3, listing) -> None:
    export(
        s3, listing, [failed_execution(0, "MigrationConflict", lambda_cause("MigrationConflict", "old run"))]
    )
    later = f"{listing.map_run_prefix}/ffffffff-later/"
    newer = [failed_execution(1, "AwsAccessDenied", lambda_cause("AwsAccessDenied", "this run"))]
    s3.put_object(Bucket=BUCKET, Key=f"{later}FAILED_0.json", Body=json.dumps(newer).encode())
    manifest = {"ResultFiles": {"FAILED": [{"Key": f"{later}FAILED_0.json"}], "PENDING": [], "SUCCEEDED": []}}
    s3.put_object(Bucket=BUCKET, Key=f"{later}manifest.json", Body=json.dumps(manifest).encode())

    (item,) = failed_map_items(s3, listing)

    assert (item.index, item.cause) == (1, "this run")
