"""UpgradeEnvironment: start MWAA's in-place upgrade of the filled target (2.11 -> 3)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.environment.clone import upgrade_environment
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import logger, tracer
from mwaa_migrate.step_events import UpgradeEnvironmentEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(UpgradeEnvironmentEvent, event)
    logger.append_keys(execution_id=step.execution_id, environment=step.environment_name)
    result = upgrade_environment(clients.mwaa(), step.environment_name, step.airflow_version)
    logger.info("upgrade", extra={"started": result.started, "airflow_version": result.airflow_version})
    return result.to_event()
