"""FinishMigration: remove the temporary policies and write the migration report."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import bind_execution, logger, metrics, tracer
from mwaa_migrate.run.grants import StackGrants
from mwaa_migrate.run.notifications import ended, publish
from mwaa_migrate.run.outcome import Ending, finish_migration
from mwaa_migrate.settings import settings
from mwaa_migrate.step_events import FinishMigrationEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(FinishMigrationEvent, event)
    bind_execution(step.execution_id, step.plan.source.name, step.plan.target.name)
    outcome = finish_migration(
        step,
        Ending(
            s3=clients.s3(), iam=clients.iam(), sfn=clients.stepfunctions(), stack=StackGrants.of(settings())
        ),
    )
    metrics.add_metric(name="MigrationsSucceeded", unit=MetricUnit.Count, value=1)
    logger.info("migration succeeded", extra={"report": outcome.report_uri})
    publish(
        ended(outcome, step.execution_id, step.plan),
        events=clients.events(),
        sns=clients.sns(),
        topic_arn=settings().notification_topic_arn,
    )
    return outcome.to_event()
