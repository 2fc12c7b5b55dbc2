"""TriggerDag: once the scheduler has parsed the DAG, unpause and trigger it (through the transport the
plan chose for its environment: the CLI endpoint, InvokeRestApi, or a self-managed Airflow's REST API).
A self-managed source's export gets presigned URLs and the sealing key's public half in its conf,
signed here and sent to its Airflow only: never in this function's output or logs."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.environment.webserver_transport import open_transport
from mwaa_migrate.metadata.metadata_dags import EXPORT_DAG, IMPORT_DAG, trigger_dag
from mwaa_migrate.metadata.self_managed_access import export_access, sealing_public_key
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import logger, tracer
from mwaa_migrate.settings import settings
from mwaa_migrate.step_events import TriggerDagEvent

# How long a self-managed export's presigned forms and URLs last: its DAG's run timeout (16 hours),
# at most what the signing session allows (the presigned requests are this function's role's).
PRESIGNED_SECONDS = 16 * 3600


def _stack_key(step: TriggerDagEvent, self_managed_export: bool) -> str:
    """The stack's key the conf must name: the sealing key for a self-managed source's export (it
    holds no AWS credentials) and its import, the migration key for every other."""
    sealing = settings().sealing_key_arn or ""
    if self_managed_export:
        return sealing
    if step.deployment.dag_id == IMPORT_DAG.dag_id and sealing and step.conf.kms_key_id == sealing:
        return sealing
    return settings().migration_key_arn


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(TriggerDagEvent, event)
    self_managed_export = (
        step.deployment.transport == "airflow_api" and step.deployment.dag_id == EXPORT_DAG.dag_id
    )
    step.conf.require_stack(
        bucket=settings().migration_bucket, kms_key_arn=_stack_key(step, self_managed_export)
    )
    environment = step.deployment.environment_name
    logger.append_keys(execution_id=step.execution_id, environment=environment)
    airflow = open_transport(
        step.deployment,
        clients.mwaa(),
        scheme=settings().mwaa_cli_scheme,
        secretsmanager=clients.secretsmanager,
    )
    conf = step.conf.to_event()
    if self_managed_export:
        conf["selfManaged"] = export_access(
            clients.s3(),
            bucket=step.conf.bucket,
            prefix=step.conf.prefix,
            public_key=sealing_public_key(clients.kms(), step.conf.kms_key_id),
            expires_in=PRESIGNED_SECONDS,
        )
    result = trigger_dag(airflow, step.deployment, run_id=step.run_id, conf=conf, attempt=step.attempt)
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
