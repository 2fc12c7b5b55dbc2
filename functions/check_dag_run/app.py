"""CheckDagRun: one poll of a DAG run; when it has succeeded, read and verify what it left behind."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.environment.dag_compatibility import check_target
from mwaa_migrate.environment.webserver_transport import open_transport
from mwaa_migrate.errors import DagRunFailed
from mwaa_migrate.metadata.metadata_dags import (
    MetadataResult,
    check_dag_run,
    read_export,
    read_verified_import,
)
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import logger, tracer
from mwaa_migrate.redaction import redact_text
from mwaa_migrate.settings import settings
from mwaa_migrate.step_events import CheckDagRunEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(CheckDagRunEvent, event)
    environment = step.deployment.environment_name
    logger.append_keys(execution_id=step.execution_id, environment=environment, dag_id=step.deployment.dag_id)
    airflow = open_transport(
        step.deployment,
        clients.mwaa(),
        scheme=settings().mwaa_cli_scheme,
        secretsmanager=clients.secretsmanager,
    )
    try:
        check = check_dag_run(
            airflow, clients.logs(), step.deployment, run_id=step.run_id, attempt=step.attempt
        )
    except DagRunFailed as error:
        # The message ends with the failed task's last log lines: it becomes the execution's cause,
        # kept in its history, so secret-looking values in them are redacted here.
        raise DagRunFailed(redact_text(str(error))) from None
    # Always present, so the state machine's ResultSelector finds it on every poll.
    response: dict[str, Any] = {**check.to_event(), "result": None}
    if check.done:
        if step.kind == "export":
            result = read_export(clients.s3(), step.bucket, step.prefix, step.phase)
        else:
            exported = parse_model(MetadataResult, step.exported)
            result = read_verified_import(clients.s3(), step.bucket, step.prefix, step.phase, exported)
        response["result"] = result.to_event()
        if step.kind == "import" and step.phase == "bulk" and step.target_version:
            # Before the cutover, while the source still runs: will its DAGs run on the target?
            found = check_target(
                airflow,
                target_version=step.target_version,
                missing_dags=result.missing_dags,
                policy=step.on_incompatible_dags,
            )
            response["result"]["dagCompatibility"] = found.to_event()
    logger.info("dag run", extra={"phase": step.phase, "state": check.state, "attempt": check.attempt})
    return response
