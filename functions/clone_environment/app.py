"""CloneEnvironment: copy the target's files and create it from the plan (or reuse it on a re-run;
replace it when this migration's target ended CREATE_FAILED)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.environment.clone import DELETE_WAIT_SECONDS, clone_environment
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import bind_execution, logger, metrics, tracer
from mwaa_migrate.step_events import PlanStepEvent

# Time kept back from the invocation's remaining time for the copy and CreateEnvironment.
_RESERVED_SECONDS = 20.0


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(PlanStepEvent, event)
    bind_execution(step.execution_id, step.plan.source.name, step.plan.target.name)
    remaining = context.get_remaining_time_in_millis() / 1000 - _RESERVED_SECONDS
    result = clone_environment(
        clients.mwaa(),
        clients.s3(),
        step.plan,
        delete_wait_seconds=max(0.0, min(DELETE_WAIT_SECONDS, remaining)),
    )
    metrics.add_metric(name="EnvironmentsCreated", unit=MetricUnit.Count, value=int(result.created))
    logger.info(
        "target environment",
        extra={
            "target_created": result.created,
            "target_arn": result.arn,
            "target_replacing": result.replacing,
            "target_replaced_failed": result.replaced_failed,
            "dag_files_copied": result.dag_files_copied,
            "dag_files_unchanged": result.dag_files_unchanged,
        },
    )
    return result.to_event()
