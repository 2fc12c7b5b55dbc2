"""GrantPermissions: put the migration's temporary inline policies on the execution roles."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.grants import put_policies
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import bind_execution, logger, tracer
from mwaa_migrate.step_events import PlanStepEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(PlanStepEvent, event)
    bind_execution(step.execution_id, step.plan.source.name, step.plan.target.name)
    granted = put_policies(clients.iam(), step.plan.policies)
    logger.info("granted", extra={"policies": granted})
    return {"policies": granted}
