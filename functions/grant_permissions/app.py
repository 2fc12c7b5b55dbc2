"""GrantPermissions: put the migration's temporary inline policies on the execution roles."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.grants import put_policies
from mwaa_migrate.lock import acquire
from mwaa_migrate.models import parse_model
from mwaa_migrate.notifications import publish, started
from mwaa_migrate.observability import bind_execution, logger, tracer
from mwaa_migrate.settings import settings
from mwaa_migrate.step_events import PlanStepEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(PlanStepEvent, event)
    bind_execution(step.execution_id, step.plan.source.name, step.plan.target.name)
    # One migration per target environment at a time: a second execution stops here, having changed
    # nothing (mwaa_migrate.lock).
    acquire(
        clients.s3(),
        clients.stepfunctions(),
        bucket=settings().migration_bucket,
        source_environment=step.plan.source.name,
        target_environment=step.plan.target.name,
        execution_id=step.execution_id,
    )
    granted = put_policies(clients.iam(), step.plan.policies)
    logger.info("granted", extra={"policies": granted})
    # The first step that changes anything: the migration has started.
    publish(
        started(step.plan, step.execution_id),
        events=clients.events(),
        sns=clients.sns(),
        topic_arn=settings().notification_topic_arn,
    )
    return {"policies": granted}
