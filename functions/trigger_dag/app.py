"""TriggerDag: once the scheduler has parsed the DAG, unpause and trigger it (through the transport the
plan chose for its environment: the CLI endpoint or InvokeRestApi)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.environment.webserver_transport import open_transport
from mwaa_migrate.metadata.metadata_dags import trigger_dag
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import logger, tracer
from mwaa_migrate.settings import settings
from mwaa_migrate.step_events import TriggerDagEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(TriggerDagEvent, event)
    step.conf.require_stack(bucket=settings().migration_bucket, kms_key_arn=settings().migration_key_arn)
    environment = step.deployment.environment_name
    logger.append_keys(execution_id=step.execution_id, environment=environment)
    airflow = open_transport(
        step.deployment.transport, clients.mwaa(), environment, scheme=settings().mwaa_cli_scheme
    )
    result = trigger_dag(
        airflow, step.deployment, run_id=step.run_id, conf=step.conf.to_event(), attempt=step.attempt
    )
    logger.info(
        "trigger",
        extra={
            "dag_id": result.dag_id,
            "run_id": result.run_id,
            "parsed": result.parsed,
            "transport": airflow.kind,
        },
    )
    return result.to_event()
