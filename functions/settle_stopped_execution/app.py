"""SettleStoppedExecution: an execution stopped (StopExecution) or timed out never reaches its
failure path. EventBridge's "Step Functions Execution Status Change" event for it calls this, which
does what RecordFailure would have: the DAGs run on exactly one side, the grants go, the report and
the notification say so."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.environment.webserver_transport import transports
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import logger, tracer
from mwaa_migrate.run.grants import StackGrants
from mwaa_migrate.run.notifications import ended, publish
from mwaa_migrate.run.outcome import Ending, settle_stopped_execution
from mwaa_migrate.settings import settings
from mwaa_migrate.step_events import ExecutionStatusChange


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(ExecutionStatusChange, event)
    execution_arn = step.detail.execution_arn
    logger.append_keys(execution_id=execution_arn)
    outcome = settle_stopped_execution(
        execution_arn,
        Ending(
            s3=clients.s3(), iam=clients.iam(), sfn=clients.stepfunctions(), stack=StackGrants.of(settings())
        ),
        state_machine_arn=settings().state_machine_arn,
        webserver=transports(
            clients.mwaa(), scheme=settings().mwaa_cli_scheme, secretsmanager=clients.secretsmanager
        ),
    )
    if outcome is None:
        return {"settled": False}
    logger.error("stopped migration settled", extra={"dags_running": outcome.dags_running})
    publish(
        ended(outcome, execution_arn, None),
        events=clients.events(),
        sns=clients.sns(),
        topic_arn=settings().notification_topic_arn,
    )
    return {"settled": True, **outcome.to_event()}
