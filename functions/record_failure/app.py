"""RecordFailure: the one failure path. Says where and why, removes the grants, writes the report."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.environment.webserver_transport import transports
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import logger, metrics, tracer
from mwaa_migrate.run.grants import StackGrants
from mwaa_migrate.run.notifications import failed, publish
from mwaa_migrate.run.outcome import Ending, record_failure
from mwaa_migrate.settings import settings
from mwaa_migrate.step_events import RecordFailureEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(RecordFailureEvent, event)
    logger.append_keys(execution_id=step.execution_id)
    outcome = record_failure(
        step,
        Ending(
            s3=clients.s3(), iam=clients.iam(), sfn=clients.stepfunctions(), stack=StackGrants.of(settings())
        ),
        webserver=transports(
            clients.mwaa(), scheme=settings().mwaa_cli_scheme, secretsmanager=clients.secretsmanager
        ),
    )
    metrics.add_metric(name="MigrationsFailed", unit=MetricUnit.Count, value=1)
    logger.error(
        "migration failed",
        extra={
            "failed_state": outcome.failed_state,
            "error": outcome.error,
            "report": outcome.report_uri,
            "dags_running": outcome.dags_running,
        },
    )
    publish(
        failed(outcome, step.execution_id, step.state),
        events=clients.events(),
        sns=clients.sns(),
        topic_arn=settings().notification_topic_arn,
    )
    return outcome.to_event()
