"""CopyTaskLogs: copy the recent task log streams to the target's log group, resuming where the
previous call stopped (a call near Lambda's time limit returns where to go on)."""

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.log_copy import LogCopyProgress, copy_log_streams, task_log_group
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import bind_execution, logger, metrics, tracer
from mwaa_migrate.step_events import CopyTaskLogsEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(CopyTaskLogsEvent, event)
    bind_execution(step.execution_id, step.source_environment_name, step.target_environment_name)
    previous = parse_model(LogCopyProgress, step.progress) if step.progress else None
    progress = copy_log_streams(
        clients.logs(),
        source_group=task_log_group(step.source_environment_name),
        target_group=task_log_group(step.target_environment_name),
        since=step.window_end - timedelta(days=step.log_days),
        until=step.window_end,
        resume_at=previous.resume_at if previous else None,
        time_left_ms=context.get_remaining_time_in_millis,
    )
    metrics.add_metric(name="LogEventsCopied", unit=MetricUnit.Count, value=progress.events_written)
    total = previous.combined_with(progress) if previous else progress
    logger.info("log copy", extra={"done": total.done, "events_written": total.events_written})
    return {"done": total.done, "calls": step.calls + 1, "progress": total.to_event()}
