"""AwaitApproval: the bulk copy is done; announce that the cutover waits for an operator's answer.

Invoked with `.waitForTaskToken`: returning does not end the wait. `mwaa-migrate approve` or
`reject` answers with the token, which it reads from the execution's history; the state's
TimeoutSecondsPath is the deadline."""

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.execution import now
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import bind_execution, logger, tracer
from mwaa_migrate.run.notifications import awaiting_approval, publish
from mwaa_migrate.settings import settings
from mwaa_migrate.step_events import AwaitApprovalEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(AwaitApprovalEvent, event)
    plan = step.plan
    bind_execution(step.execution_id, plan.source.name, plan.target.name)
    deadline = (now() + timedelta(seconds=plan.cutover.approval_timeout_seconds)).isoformat()
    publish(
        awaiting_approval(plan, step.execution_id, deadline),
        events=clients.events(),
        sns=clients.sns(),
        topic_arn=settings().notification_topic_arn,
    )
    logger.info("awaiting approval", extra={"deadline": deadline})
    return {"waitingSince": now().isoformat(), "deadline": deadline}
