"""DeployDag: put one of the project's DAGs (and its library) into an environment's DAG folder."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.metadata.metadata_dags import deploy_dag
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import logger, tracer
from mwaa_migrate.step_events import DeployDagEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(DeployDagEvent, event)
    logger.append_keys(execution_id=step.execution_id, environment=step.deployment.environment_name)
    result = deploy_dag(clients.s3(), step.deployment)
    logger.info("dag deployed", extra={"uploaded": result.uploaded, "unchanged": result.unchanged})
    return result.to_event()
