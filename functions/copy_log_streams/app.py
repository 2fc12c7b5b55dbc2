"""CopyLogStreams: copy one work item's log streams to the target (a Distributed Map child calls it
until it says done); the last call writes the item's result for the summary."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.logs.log_copy import LogCopyProgress, copy_work_item
from mwaa_migrate.logs.log_listing import result_key
from mwaa_migrate.logs.log_report import ItemResult, write_item_result
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import bind_execution, logger, metrics, tracer
from mwaa_migrate.step_events import CopyLogStreamsEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(CopyLogStreamsEvent, event)
    bind_execution(step.execution_id, step.source_environment_name, step.target_environment_name)
    logger.append_keys(log_group=step.item.source_group, item=step.index)
    previous = parse_model(LogCopyProgress, step.progress) if step.progress else None
    progress = copy_work_item(
        clients.logs(),
        step.item,
        since=step.since,
        until=step.until,
        resume_at=previous.resume_at if previous else None,
        time_left_ms=context.get_remaining_time_in_millis,
    )
    metrics.add_metric(name="LogEventsCopied", unit=MetricUnit.Count, value=progress.events_written)
    total = previous.combined_with(progress) if previous else progress
    if total.done:
        result = ItemResult(
            index=step.index, group=step.item.group, streams=len(step.item.streams), progress=total
        )
        write_item_result(clients.s3(), step.bucket, result_key(step.results_prefix, step.index), result)
    logger.info("log copy", extra={"done": total.done, "events_written": total.events_written})
    return {"done": total.done, "calls": step.calls + 1, "progress": total.to_event()}
