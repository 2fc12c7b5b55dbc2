"""StartTargetDags: close the downtime window. The source's recorded DAGs run on the target (the
cutover import unpaused them, or this does once an upgrade is done) and the record says so."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.environment.webserver_transport import open_transport
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import bind_execution, logger, tracer
from mwaa_migrate.run.cutover import MigrationPlace, start_target_dags
from mwaa_migrate.settings import settings
from mwaa_migrate.step_events import StartTargetDagsEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(StartTargetDagsEvent, event)
    plan = step.plan
    bind_execution(step.execution_id, plan.source.name, plan.target.name)
    settled = start_target_dags(
        clients.s3(),
        MigrationPlace.of(plan),
        # The plan's route to the target (an MWAA environment: no secret to read).
        target_cli=open_transport(plan.import_dag, clients.mwaa(), scheme=settings().mwaa_cli_scheme),
        imported=step.imported,
    )
    logger.info("target live", extra={"unpaused": len(settled.unpaused)})
    return settled.to_event()
