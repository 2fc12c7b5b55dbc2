"""Notifications: EventBridge events a team's rule can route (here to an SQS queue, as a team would),
SNS messages when a topic is set, nothing for a dry run, and a delivery problem never failing the
migration."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulation.lambdas import REPO_ROOT
from mwaa_migrate.models import MigrationPlan
from mwaa_migrate.run.notifications import (
    DETAIL_TYPES,
    EVENT_SOURCE,
    MigrationNotification,
    awaiting_approval,
    awaiting_export,
    ended,
    failed,
    publish,
    started,
)
from mwaa_migrate.run.outcome import Outcome
from mwaa_migrate.step_events import AwaitApprovalEvent

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:mwaa-migrate-migration:run-1"
REGION = "us-east-1"


@pytest.fixture
def plan() -> MigrationPlan:
    """The plan the state machine carried in a recorded run (events/finish_migration.json)."""
    event = json.loads((REPO_ROOT / "events" / "finish_migration.json").read_text())
    return MigrationPlan.model_validate(event["plan"])


@pytest.fixture
def aws():
    with mock_aws():
        yield


@pytest.fixture
def routed(aws) -> tuple[Any, str]:
    """An EventBridge rule for the pipeline's notifications, delivering to a queue."""
    sqs = boto3.client("sqs", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    url = sqs.create_queue(QueueName="migrations")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="migrations", EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
    events.put_targets(Rule="migrations", Targets=[{"Id": "queue", "Arn": arn}])
    return sqs, url


@dataclass
class Mail:
    """An SNS topic with a queue subscribed to it, as a subscriber's mailbox would be."""

    topic: str
    url: str

    def bodies(self) -> list[str]:
        sqs = boto3.client("sqs", region_name=REGION)
        return [message["Body"] for message in sqs.receive_message(QueueUrl=self.url).get("Messages", [])]


@pytest.fixture
def mail(aws) -> Mail:
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="migrations")["TopicArn"]
    url = sqs.create_queue(QueueName="mail")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue)
    return Mail(topic=topic, url=url)


def _received(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def _clients() -> dict[str, Any]:
    return {
        "events": boto3.client("events", region_name=REGION),
        "sns": boto3.client("sns", region_name=REGION),
    }


def test_a_started_migration_is_an_event_a_rule_can_route(plan, routed):
    sqs, url = routed

    delivered = publish(started(plan, EXECUTION), **_clients())

    assert delivered == ["eventbridge"]
    (event,) = _received(sqs, url)
    assert (event["source"], event["detail-type"]) == ("mwaa.migration", "Migration Started")
    assert event["resources"] == [EXECUTION]
    detail = event["detail"]
    assert detail["version"] == "1"
    assert detail["status"] == "STARTED"
    assert (detail["sourceEnvironmentName"], detail["targetEnvironmentName"]) == (
        "analytics-prod",
        "analytics-prod-2-10",
    )
    assert (detail["sourceAirflowVersion"], detail["targetAirflowVersion"]) == ("2.7.2", "2.10.3")
    assert (detail["executionArn"], detail["executionName"]) == (EXECUTION, "run-1")
    assert detail["migrationId"] == "analytics-prod.analytics-prod-2-10"
    # The detail is exactly the documented model: it reads back without loss.
    assert MigrationNotification.model_validate(detail).to_event() == detail


def test_a_succeeded_migration_names_its_report(plan, routed):
    sqs, url = routed
    outcome = Outcome(status="SUCCEEDED", report_uri="s3://bucket/reports/run-1.json")

    publish(ended(outcome, EXECUTION, plan), **_clients())

    (event,) = _received(sqs, url)
    assert event["detail-type"] == "Migration Succeeded"
    assert (event["detail"]["status"], event["detail"]["reportUri"]) == (
        "SUCCEEDED",
        "s3://bucket/reports/run-1.json",
    )
    assert "error" not in event["detail"]


def test_a_failed_migration_says_where_and_why_even_without_a_plan(routed):
    sqs, url = routed
    outcome = Outcome(
        status="FAILED",
        report_uri="s3://bucket/migrations/unplanned/reports/run-1.json",
        source_environment_name="prod",
        target_environment_name="prod-3",
        error="InvalidMigrationRequest",
        cause="PlanMigration: sourceEnvironmentName: environment prod does not exist",
        failed_state="PlanMigration",
    )
    state = {"request": {"sourceEnvironmentName": "prod", "targetEnvironmentName": "prod-3"}}

    publish(failed(outcome, EXECUTION, state), **_clients())

    (event,) = _received(sqs, url)
    detail = event["detail"]
    assert event["detail-type"] == "Migration Failed"
    assert (detail["failedState"], detail["error"]) == ("PlanMigration", "InvalidMigrationRequest")
    assert detail["cause"].endswith("environment prod does not exist")
    assert (detail["sourceEnvironmentName"], detail["migrationId"]) == ("prod", "prod.prod-3")
    assert "sourceAirflowVersion" not in detail


def test_a_long_cause_is_cut_to_fit_an_event(plan):
    outcome = Outcome(status="FAILED", report_uri=None, error="DagRunFailed", cause="x" * 100_000)
    assert len(ended(outcome, EXECUTION, plan).cause or "") == 2000


def test_a_dry_run_announces_nothing(plan, routed):
    sqs, url = routed
    dry_plan = plan.model_copy(update={"dry_run": True})
    outcome = Outcome(status="FAILED", report_uri=None, error="InvalidMigrationRequest", cause="x")

    assert publish(started(dry_plan, EXECUTION), **_clients()) == []
    assert publish(failed(outcome, EXECUTION, {"request": {"dryRun": True}}), **_clients()) == []
    assert _received(sqs, url) == []


def test_with_a_topic_the_notification_is_also_an_sns_message_subscribers_can_filter(plan, routed):
    sqs, _ = routed
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="migrations")["TopicArn"]
    inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=inbox_arn,
        Attributes={"FilterPolicy": json.dumps({"status": ["FAILED", "SUCCEEDED"]})},
    )
    outcome = Outcome(status="SUCCEEDED", report_uri="s3://bucket/reports/run-1.json")

    assert publish(started(plan, EXECUTION), **_clients(), topic_arn=topic) == ["eventbridge", "sns"]
    assert publish(ended(outcome, EXECUTION, plan), **_clients(), topic_arn=topic) == ["eventbridge", "sns"]

    # The filter policy let only the end through.
    (envelope,) = _received(sqs, inbox)
    assert envelope["Subject"] == "mwaa-migrate: analytics-prod -> analytics-prod-2-10 succeeded"
    assert envelope["MessageAttributes"]["status"]["Value"] == "SUCCEEDED"
    summary, _, body = envelope["Message"].partition("\n\n")
    assert summary == (
        "Migration analytics-prod -> analytics-prod-2-10 succeeded.\nReport: s3://bucket/reports/run-1.json"
    )
    assert json.loads(body)["status"] == "SUCCEEDED"


def test_a_notification_that_cannot_be_delivered_is_logged_not_raised(plan, routed, caplog, capfd):
    sqs, url = routed
    missing_topic = "arn:aws:sns:us-east-1:123456789012:not-there"

    delivered = publish(started(plan, EXECUTION), **_clients(), topic_arn=missing_topic)

    assert delivered == ["eventbridge"]
    assert len(_received(sqs, url)) == 1
    (record,) = [r for r in caplog.records if r.getMessage() == "notification not delivered"]
    assert (record.levelname, record.channel) == ("ERROR", "sns")
    (metric,) = [json.loads(line) for line in capfd.readouterr().out.splitlines() if '"_aws"' in line]
    assert (metric["NotificationsFailed"], metric["channel"]) == ([1.0], "sns")


def test_every_status_has_its_own_detail_type():
    assert DETAIL_TYPES == {
        "STARTED": "Migration Started",
        "SUCCEEDED": "Migration Succeeded",
        "FAILED": "Migration Failed",
        "AWAITING_APPROVAL": "Migration Awaiting Approval",
        "AWAITING_EXPORT": "Migration Awaiting Export",
    }
    assert "Migration Requested" not in DETAIL_TYPES.values(), "a notification must never start a migration"


# ------------------------------------------------------------------ the cutover


def test_a_failure_message_opens_with_which_environment_runs_the_dags(plan):
    outcome = Outcome(
        status="FAILED",
        report_uri="s3://bucket/reports/run-1.json",
        error="VerificationFailed",
        cause="CheckCutoverImportRun: dag_run: 1 row missing",
        failed_state="CheckCutoverImportRun",
        dags_running="The source analytics-prod runs the DAGs again: its 3 recorded DAGs were unpaused.",
    )

    message = ended(outcome, EXECUTION, plan).message()

    lines = message.splitlines()
    assert lines[0] == "The source analytics-prod runs the DAGs again: its 3 recorded DAGs were unpaused."
    assert lines[1].startswith(
        "Migration analytics-prod -> analytics-prod-2-10 failed at CheckCutoverImportRun"
    )


def test_the_approval_notification_gives_the_commands_and_the_deadline_and_never_the_token(plan, mail):
    token = "AQCEAAAAKgAAAAMAAAAAAAAAAS0secret-task-token"
    step = AwaitApprovalEvent(execution_id=EXECUTION, plan=plan, task_token=token)
    notification = awaiting_approval(step.plan, step.execution_id, "2026-11-24T12:00:00+00:00")

    publish(notification, **_clients(), topic_arn=mail.topic)

    (body,) = mail.bodies()
    text = json.loads(body)["Message"]
    assert "Approve: mwaa-migrate approve run-1" in text
    assert "Reject:  mwaa-migrate reject run-1" in text
    assert "Without an answer by 2026-11-24T12:00:00+00:00 the migration ends" in text
    assert (notification.detail_type, notification.approval_deadline) == (
        "Migration Awaiting Approval",
        "2026-11-24T12:00:00+00:00",
    )
    assert token not in body
    assert token not in json.dumps(notification.to_event())
    assert token not in repr(step)


def test_the_export_notification_gives_the_command_and_the_deadline(mail):
    notification = awaiting_export(
        EXECUTION,
        migration_id="onprem.next",
        source="onprem",
        target="next",
        phase="cutover",
        deadline="2026-11-24T12:00:00+00:00",
    )

    publish(notification, **_clients(), topic_arn=mail.topic)

    (body,) = mail.bodies()
    text = json.loads(body)["Message"]
    assert text.startswith("The source onprem runs the DAGs until the cutover export you run pauses them.")
    assert "Migration onprem -> next is waiting for the cutover export you run on the source." in text
    assert "Its steps and files: mwaa-migrate hands-on run-1 --to DIR" in text
    assert "Without its manifest by 2026-11-24T12:00:00+00:00 the migration ends." in text
    assert notification.detail_type == "Migration Awaiting Export"
