"""CloneEnvironment: create the target environment from the plan (or reuse it on a re-run)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.clone import clone_environment
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import bind_execution, logger, metrics, tracer
from mwaa_migrate.step_events import PlanStepEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(PlanStepEvent, event)
    bind_execution(step.execution_id, step.plan.source.name, step.plan.target.name)
    result = clone_environment(clients.mwaa(), step.plan)
    metrics.add_metric(name="EnvironmentsCreated", unit=MetricUnit.Count, value=int(result.created))
    logger.info("target environment", extra={"target_created": result.created, "target_arn": result.arn})
    return result.to_event()
