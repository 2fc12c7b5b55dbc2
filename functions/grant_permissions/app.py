"""GrantPermissions: put the migration's temporary inline policies on the execution roles."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.environment.environment_status import get_environment
from mwaa_migrate.errors import InvalidMigrationRequest
from mwaa_migrate.execution import require_running_execution
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import bind_execution, logger, tracer
from mwaa_migrate.run.grants import StackGrants, derive_policies, put_policies
from mwaa_migrate.run.lock import acquire
from mwaa_migrate.run.notifications import publish, started
from mwaa_migrate.settings import settings
from mwaa_migrate.step_events import PlanStepEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(PlanStepEvent, event)
    plan = step.plan
    bind_execution(step.execution_id, plan.source.name, plan.target.name)
    # The event is not trusted: the execution must be running for these environments, and the
    # policies are derived again from names, the source as it is and the stack's settings.
    request = require_running_execution(
        clients.stepfunctions(),
        step.execution_id,
        state_machine_arn=settings().state_machine_arn,
        source=plan.source.name,
        target=plan.target.name,
    )
    if isinstance(request.get("source"), dict):
        # A self-managed source: no environment to describe, no role of its own; the execution's
        # request names the target's role in its targetSettings.
        source = None
        requested_role = (request.get("targetSettings") or {}).get("ExecutionRoleArn")
    else:
        source = get_environment(clients.mwaa(), plan.source.name)
        if source is None:
            raise InvalidMigrationRequest(f"plan.source.name: environment {plan.source.name} does not exist")
        requested_role = request.get("targetExecutionRoleArn")
    policies = derive_policies(
        plan,
        source_environment=source,
        requested_target_role=requested_role if isinstance(requested_role, str) else None,
        iam=clients.iam(),
        stack=StackGrants.of(settings()),
    )
    # One migration per target environment at a time: a second execution stops here, having changed
    # nothing (mwaa_migrate.run.lock).
    acquire(
        clients.s3(),
        clients.stepfunctions(),
        bucket=settings().migration_bucket,
        source_environment=plan.source.name,
        target_environment=plan.target.name,
        execution_id=step.execution_id,
    )
    granted = put_policies(clients.iam(), policies)
    logger.info("granted", extra={"policies": granted})
    # The first step that changes anything: the migration has started.
    publish(
        started(plan, step.execution_id),
        events=clients.events(),
        sns=clients.sns(),
        topic_arn=settings().notification_topic_arn,
    )
    return {"policies": granted}
