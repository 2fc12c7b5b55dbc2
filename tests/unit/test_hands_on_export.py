"""An export run by hand (access mode hands_on): the hand-over's objects, and the landing that reads
the wait and the manifest again from S3 before it answers the execution's token (moto's S3; Step
Functions' answers through botocore's Stubber, which checks each request against the API's model)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from mwaa_migrate.metadata.hands_on_export import EXPORT_INVALID, export_landed, hand_over
from mwaa_migrate.models import DagDeployment
from mwaa_migrate.step_events import MetadataConf
from tests.emulated_dags import moto_bucket

BUCKET = "mwaa-migrate-hands-on"
PREFIX = "migrations/onprem/next"
MIGRATION_ID = "onprem.next"
MANIFEST = f"{PREFIX}/export/bulk/manifest.json"
WAIT = f"{PREFIX}/hands-on/bulk/wait.json"
TOKEN = "token-of-the-waiting-task"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:mwaa-migrate-migration:run-1"


@pytest.fixture
def s3() -> Iterator[Any]:
    with moto_bucket(BUCKET) as client:
        yield client


@pytest.fixture
def sfn() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("stepfunctions", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _put(s3: Any, key: str, data: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(data).encode())


def _wait(s3: Any) -> None:
    _put(
        s3, WAIT, {"taskToken": TOKEN, "executionId": EXECUTION, "migrationId": MIGRATION_ID, "phase": "bulk"}
    )


def _manifest(**changes: Any) -> dict[str, Any]:
    return {
        "migrationId": MIGRATION_ID,
        "phase": "bulk",
        "watermark": "2026-11-23T12:00:00+00:00",
        "tables": {"dag_run": {"rows": 4, "file": "dag_run.csv.gz.sealed"}},
        "active_dags": ["daily_sales"],
        **changes,
    }


def _requests(client: Any, operation: str) -> list[dict[str, Any]]:
    """The parameters of each `operation` request the client sends (Stubber validates them)."""
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        f"provide-client-params.sfn.{operation}", lambda params, **_: sent.append(params)
    )
    return sent


def _landed(s3: Any, sfn: Any, key: str = MANIFEST, bucket: str = BUCKET) -> Any:
    return export_landed(s3, sfn, bucket=bucket, key=key, stack_bucket=BUCKET)


def test_a_manifest_of_this_migration_ends_the_wait_with_the_exports_result(s3, sfn) -> None:
    client, stubber = sfn
    _wait(s3)
    _put(s3, MANIFEST, _manifest())
    expected = {"result": {"kind": "export", "phase": "bulk", "tables": {"dag_run": {"rows": 4}}}}
    sent = _requests(client, "SendTaskSuccess")
    stubber.add_response("send_task_success", {})

    landed = _landed(s3, client)

    assert landed.outcome == "resumed"
    assert landed.execution_id == EXECUTION
    [request] = sent
    assert request["taskToken"] == TOKEN
    result = json.loads(request["output"])["result"]
    assert {key: result[key] for key in expected["result"]} == expected["result"]
    assert result["activeDags"] == ["daily_sales"]


@pytest.mark.parametrize(
    ("bucket", "key"),
    [
        ("another-bucket", MANIFEST),
        (BUCKET, f"{PREFIX}/export/bulk/dag_run.csv.gz.sealed"),
        (BUCKET, f"{PREFIX}/hands-on/bulk/manifest.json"),
        (BUCKET, "elsewhere/export/bulk/manifest.json"),
    ],
)
def test_anything_but_an_exports_manifest_in_the_stacks_bucket_is_ignored(s3, sfn, bucket, key) -> None:
    client, _ = sfn
    _wait(s3)

    assert _landed(s3, client, key=key, bucket=bucket).outcome == "ignored"


def test_a_manifest_no_execution_waits_for_is_ignored(s3, sfn) -> None:
    client, _ = sfn
    _put(s3, MANIFEST, _manifest())  # an MWAA source's export, or a reached one: no hand-over

    landed = _landed(s3, client)

    assert (landed.outcome, landed.reason) == ("ignored", "no hands-on export waits for it")


def test_a_manifest_older_than_the_wait_is_an_earlier_runs_and_is_ignored(s3, sfn) -> None:
    client, _ = sfn
    _put(s3, MANIFEST, _manifest())
    time.sleep(1.1)  # S3 says when an object was written to the second
    _wait(s3)

    landed = _landed(s3, client)

    assert landed.outcome == "ignored"
    assert "written before this execution's wait began" in landed.reason


@pytest.mark.parametrize(
    ("manifest", "said"),
    [
        (_manifest(migrationId="someone.else"), "is the export of migration 'someone.else'"),
        (_manifest(phase="cutover"), "is not a bulk export"),
        (["not", "an", "object"], "is not a JSON object"),
        (_manifest(tables={"dag_run": {"file": "dag_run.csv.gz.sealed"}}), "KeyError: 'rows'"),
    ],
)
def test_a_manifest_that_is_not_this_migrations_export_fails_the_wait_saying_why(
    s3, sfn, manifest, said
) -> None:
    client, stubber = sfn
    _wait(s3)
    _put(s3, MANIFEST, manifest)
    sent = _requests(client, "SendTaskFailure")
    stubber.add_response("send_task_failure", {})

    landed = _landed(s3, client)

    assert landed.outcome == "failed"
    [request] = sent
    assert (request["taskToken"], request["error"]) == (TOKEN, EXPORT_INVALID)
    assert said in request["cause"]


def test_a_wait_that_is_over_already_is_left_alone(s3, sfn) -> None:
    client, stubber = sfn
    _wait(s3)
    _put(s3, MANIFEST, _manifest())
    stubber.add_client_error("send_task_success", "TaskTimedOut", "Task Timed Out")

    landed = _landed(s3, client)

    assert (landed.outcome, landed.reason) == ("ignored", "the execution no longer waits")


def test_a_failure_to_answer_is_raised_so_the_event_is_tried_again(s3, sfn) -> None:
    client, stubber = sfn
    _wait(s3)
    _put(s3, MANIFEST, _manifest())
    stubber.add_client_error(
        "send_task_success", "ThrottlingException", "Rate exceeded", http_status_code=400
    )

    with pytest.raises(Exception, match="ThrottlingException"):
        _landed(s3, client)


def test_the_hand_over_writes_the_wait_first_and_the_conf_and_steps_for_the_operator(s3) -> None:
    conf = MetadataConf.model_validate(
        {
            "bucket": BUCKET,
            "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/sealing",
            "phase": "bulk",
            "sourceEnvironment": "onprem",
            "targetEnvironment": "next",
            "migrationId": MIGRATION_ID,
            "prefix": PREFIX,
        }
    )
    deployment = DagDeployment(
        environment_name="onprem",
        dag_id="mwaa_migrate_export",
        bucket=BUCKET,
        folder=f"{PREFIX}/hands-on/dags",
        files=["mwaa_migrate_metadata.py", "mwaa_migrate_export.py"],
        transport="hands_on",
    )

    handed = hand_over(
        s3,
        deployment=deployment,
        conf=conf,
        execution_id=EXECUTION,
        run_id="mwaa_migrate__bulk__run-1",
        task_token=TOKEN,
        deadline_seconds=3600,
        public_key=b"public half",
    )

    written = {
        item["Key"].rsplit("/", 1)[-1]: item["LastModified"]
        for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/hands-on/bulk/")["Contents"]
    }
    assert set(written) == {"wait.json", "conf.json", "steps.md"}
    assert written["wait.json"] <= written["conf.json"]
    run_conf = json.loads(
        s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/hands-on/bulk/conf.json")["Body"].read()
    )
    assert run_conf["migrationId"] == MIGRATION_ID
    # The forms last as long as the wait: S3 refuses them once its deadline has passed.
    [export_form, record_form] = run_conf["selfManaged"]["uploads"]
    assert export_form["keyPrefix"] == f"{PREFIX}/export/"
    assert record_form["keyPrefix"] == f"{PREFIX}/cutover/record.json"
    steps = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/hands-on/bulk/steps.md")["Body"].read().decode()
    assert "airflow dags trigger mwaa_migrate_export --run-id mwaa_migrate__bulk__run-1" in steps
    assert TOKEN not in steps
    assert TOKEN not in json.dumps(handed.to_event())
    assert handed.conf_uri == f"s3://{BUCKET}/{PREFIX}/hands-on/bulk/conf.json"
