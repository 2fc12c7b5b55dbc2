"""CheckEnvironment: one poll of an environment's status; a failed environment fails the step."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.environment.environment_status import check_environment
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import logger, tracer
from mwaa_migrate.step_events import CheckEnvironmentEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(CheckEnvironmentEvent, event)
    logger.append_keys(execution_id=step.execution_id, environment=step.environment_name)
    result = check_environment(
        clients.mwaa(),
        step.environment_name,
        attempt=step.attempt,
        expected_version=step.expected_version,
        final_version=step.final_version,
    )
    logger.info("environment status", extra={"status": result.status, "attempt": result.attempt})
    return result.to_event()
