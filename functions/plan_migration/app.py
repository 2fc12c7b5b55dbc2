"""PlanMigration: validate the request against AWS and return the plan. Changes nothing."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.models import parse_model, parse_request
from mwaa_migrate.observability import bind_execution, logger, metrics, tracer
from mwaa_migrate.run.plan import plan_migration
from mwaa_migrate.settings import settings
from mwaa_migrate.step_events import PlanMigrationEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(PlanMigrationEvent, event)
    request = parse_request(step.request)
    bind_execution(step.execution_id, request.source_name, request.target_environment_name)
    plan = plan_migration(request, mwaa=clients.mwaa(), iam=clients.iam(), s3=clients.s3(), stack=settings())
    metrics.add_metric(name="MigrationsPlanned", unit=MetricUnit.Count, value=1)
    logger.info(
        "planned",
        extra={
            "create_version": plan.target.create_version,
            "upgrade_to": plan.target.upgrade_to,
            "dry_run": plan.dry_run,
            # How each environment's Airflow is reached, and why (webserver_transport.py).
            "webserver": plan.webserver.to_event(),
        },
    )
    return plan.to_event()
