"""Migration started / succeeded / failed, published so teams can route them: an EventBridge event
on the account's default event bus always, and a message on an SNS topic when the stack has one.

Every event has source `mwaa.migration` (the source of the event that starts a migration, which has
its own detail-type, `Migration Requested`), a detail-type per outcome, the execution's ARN in
`resources`, and a `MigrationNotification` as its detail (documented in the README).

A notification reports on the migration and never changes it: one that cannot be delivered is
logged as an error and counted (metric `NotificationsFailed`), and the migration goes on. Delivery
is at least once: a step that is retried can publish again, with the same execution ARN.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import BotoCoreError, ClientError

from mwaa_migrate.execution import execution_name
from mwaa_migrate.models import MigrationPlan, Model
from mwaa_migrate.observability import logger
from mwaa_migrate.redaction import redact_text
from mwaa_migrate.run.failure import plan_from_state
from mwaa_migrate.run.migration_names import migration_id

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient

    from mwaa_migrate.run.outcome import Outcome

EVENT_SOURCE = "mwaa.migration"
DETAIL_TYPES = {
    "STARTED": "Migration Started",
    "SUCCEEDED": "Migration Succeeded",
    "FAILED": "Migration Failed",
    "AWAITING_APPROVAL": "Migration Awaiting Approval",
    "AWAITING_EXPORT": "Migration Awaiting Export",
}
# The detail's schema version: a field is only ever added; a change that breaks readers raises it.
SCHEMA_VERSION = "1"
# EventBridge takes 256 KB per entry and SNS 256 KB per message: a cause is cut well before.
_CAUSE_LIMIT = 2000
_SUBJECT_LIMIT = 100

Status = Literal["STARTED", "SUCCEEDED", "FAILED", "AWAITING_APPROVAL", "AWAITING_EXPORT"]


class MigrationNotification(Model):
    """The detail of every notification (camelCase on the wire)."""

    version: str = SCHEMA_VERSION
    status: Status
    migration_id: str
    execution_arn: str
    execution_name: str
    source_environment_name: str
    target_environment_name: str
    source_airflow_version: str | None = None
    target_airflow_version: str | None = None
    dry_run: bool = False
    time: str
    report_uri: str | None = None
    failed_state: str | None = None
    error: str | None = None
    cause: str | None = None
    # One line: which environment runs the DAGs now (after a success or a failure).
    dags_running: str | None = None
    # AWAITING_APPROVAL: the commands that answer, and when the wait ends by itself.
    approve_command: str | None = None
    reject_command: str | None = None
    approval_deadline: str | None = None
    # AWAITING_EXPORT (a self-managed source run by hand): the phase handed over, the command that
    # prints its steps and fetches its files, and when the wait ends by itself.
    export_phase: str | None = None
    hands_on_command: str | None = None
    export_deadline: str | None = None

    @property
    def detail_type(self) -> str:
        return DETAIL_TYPES[self.status]

    def subject(self) -> str:
        """One line for an e-mail subject (SNS: ASCII, at most 100 characters, no line breaks)."""
        text = (
            f"mwaa-migrate: {self.source_environment_name} -> {self.target_environment_name} "
            f"{self.status.lower()}"
        )
        ascii_only = text.encode("ascii", "replace").decode()
        return ascii_only[:_SUBJECT_LIMIT]

    def message(self) -> str:
        """The SNS message: a line for people, then the detail as JSON for programs."""
        line = {
            "STARTED": "started",
            "SUCCEEDED": "succeeded",
            "FAILED": f"failed at {self.failed_state}: {self.error}",
            "AWAITING_APPROVAL": "is waiting for approval to start the cutover (the downtime window)",
            "AWAITING_EXPORT": f"is waiting for the {self.export_phase} export you run on the source",
        }[self.status]
        summary = f"Migration {self.source_environment_name} -> {self.target_environment_name} {line}."
        if self.dags_running:
            summary = f"{self.dags_running}\n{summary}"
        if self.status == "AWAITING_APPROVAL":
            summary += (
                f"\nApprove: {self.approve_command}\nReject:  {self.reject_command}"
                f"\nWithout an answer by {self.approval_deadline} the migration ends;"
                " the source keeps running."
            )
        if self.status == "AWAITING_EXPORT":
            summary += (
                f"\nIts steps and files: {self.hands_on_command}"
                f"\nWithout its manifest by {self.export_deadline} the migration ends."
            )
        if self.report_uri:
            summary += f"\nReport: {self.report_uri}"
        return summary + "\n\n" + json.dumps(self.to_event(), indent=2, sort_keys=True)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def started(plan: MigrationPlan, execution_arn: str) -> MigrationNotification:
    return MigrationNotification(
        status="STARTED",
        migration_id=plan.migration_id,
        execution_arn=execution_arn,
        execution_name=execution_name(execution_arn),
        source_environment_name=plan.source.name,
        target_environment_name=plan.target.name,
        source_airflow_version=plan.source.airflow_version,
        target_airflow_version=plan.target.final_version,
        dry_run=plan.dry_run,
        time=_now(),
    )


def ended(
    outcome: Outcome, execution_arn: str, plan: MigrationPlan | None, *, dry_run: bool = False
) -> MigrationNotification:
    """Succeeded or failed, from the outcome the last step returns (and the plan, when there is one)."""
    status: Status = "SUCCEEDED" if outcome.status == "SUCCEEDED" else "FAILED"
    source = plan.source.name if plan else outcome.source_environment_name
    target = plan.target.name if plan else outcome.target_environment_name
    return MigrationNotification(
        status=status,
        migration_id=plan.migration_id if plan else migration_id(source or "unknown", target or "unknown"),
        execution_arn=execution_arn,
        execution_name=execution_name(execution_arn),
        source_environment_name=source or "unknown",
        target_environment_name=target or "unknown",
        source_airflow_version=plan.source.airflow_version if plan else None,
        target_airflow_version=plan.target.final_version if plan else None,
        dry_run=plan.dry_run if plan else dry_run,
        time=_now(),
        report_uri=outcome.report_uri,
        failed_state=outcome.failed_state,
        error=outcome.error,
        # Causes come redacted from failure.readable_cause; once more here, as a message leaves AWS.
        cause=redact_text(outcome.cause)[:_CAUSE_LIMIT] if outcome.cause else None,
        dags_running=outcome.dags_running,
    )


def awaiting_approval(plan: MigrationPlan, execution_arn: str, deadline: str) -> MigrationNotification:
    """The bulk copy is done and the source still runs: the cutover waits for an operator."""
    name = execution_name(execution_arn)
    return MigrationNotification(
        status="AWAITING_APPROVAL",
        migration_id=plan.migration_id,
        execution_arn=execution_arn,
        execution_name=name,
        source_environment_name=plan.source.name,
        target_environment_name=plan.target.name,
        source_airflow_version=plan.source.airflow_version,
        target_airflow_version=plan.target.final_version,
        time=_now(),
        dags_running=f"The source {plan.source.name} runs the DAGs; nothing is paused yet.",
        approve_command=f"mwaa-migrate approve {name}",
        reject_command=f"mwaa-migrate reject {name}",
        approval_deadline=deadline,
    )


def awaiting_export(
    execution_arn: str, *, migration_id: str, source: str, target: str, phase: str, deadline: str
) -> MigrationNotification:
    """A self-managed source run by hand: the execution handed an export over and waits for it."""
    name = execution_name(execution_arn)
    return MigrationNotification(
        status="AWAITING_EXPORT",
        migration_id=migration_id,
        execution_arn=execution_arn,
        execution_name=name,
        source_environment_name=source,
        target_environment_name=target,
        time=_now(),
        dags_running=(
            f"The source {source} runs the DAGs until the cutover export you run pauses them."
            if phase == "cutover"
            else f"The source {source} runs the DAGs; nothing is paused."
        ),
        export_phase=phase,
        hands_on_command=f"mwaa-migrate hands-on {name} --to DIR",
        export_deadline=deadline,
    )


def failed(outcome: Outcome, execution_arn: str, state: Mapping[str, Any]) -> MigrationNotification:
    """Failed, from the failure path's outcome and the execution's state (which may hold no plan)."""
    request = state.get("request")
    requested_dry_run = isinstance(request, Mapping) and request.get("dryRun") is True
    return ended(outcome, execution_arn, plan_from_state(dict(state)), dry_run=requested_dry_run)


def publish(
    notification: MigrationNotification,
    *,
    events: EventBridgeClient,
    sns: SNSClient | None = None,
    topic_arn: str | None = None,
) -> list[str]:
    """Send the notification to EventBridge, and to the SNS topic when there is one. Returns where it
    was delivered ("eventbridge", "sns"); a delivery that fails is logged and counted, not raised.
    A dry run changes nothing, so it announces nothing either."""
    delivered: list[str] = []
    if notification.dry_run:
        return delivered
    if _put_event(events, notification):
        delivered.append("eventbridge")
    if topic_arn and sns is not None and _publish_message(sns, topic_arn, notification):
        delivered.append("sns")
    return delivered


def _not_delivered(channel: str, notification: MigrationNotification, reason: str) -> None:
    logger.error(
        "notification not delivered",
        extra={"channel": channel, "detail_type": notification.detail_type, "reason": reason},
    )
    # Emitted at once: not every handler that notifies flushes the shared metrics.
    with single_metric(name="NotificationsFailed", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="channel", value=channel)


def _put_event(events: EventBridgeClient, notification: MigrationNotification) -> bool:
    try:
        response = events.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": notification.detail_type,
                    "Detail": json.dumps(notification.to_event(), sort_keys=True),
                    "Resources": [notification.execution_arn],
                }
            ]
        )
    except (ClientError, BotoCoreError) as error:
        _not_delivered("eventbridge", notification, str(error))
        return False
    if response.get("FailedEntryCount"):
        entry = response["Entries"][0]
        _not_delivered("eventbridge", notification, f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")
        return False
    return True


def _publish_message(sns: SNSClient, topic_arn: str, notification: MigrationNotification) -> bool:
    try:
        sns.publish(
            TopicArn=topic_arn,
            Subject=notification.subject(),
            Message=notification.message(),
            # Subscribers can filter on these (SNS subscription filter policies).
            MessageAttributes={
                "status": {"DataType": "String", "StringValue": notification.status},
                "sourceEnvironmentName": {
                    "DataType": "String",
                    "StringValue": notification.source_environment_name,
                },
                "targetEnvironmentName": {
                    "DataType": "String",
                    "StringValue": notification.target_environment_name,
                },
            },
        )
    except (ClientError, BotoCoreError) as error:
        _not_delivered("sns", notification, str(error))
        return False
    return True
