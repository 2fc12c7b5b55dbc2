"""ListLogStreams: list the source's log streams to copy (every page, resuming where the previous call
stopped) and, when done, write the Distributed Map's work items to the migration bucket."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.logs.log_listing import list_log_streams
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import bind_execution, logger, tracer
from mwaa_migrate.step_events import ListLogStreamsEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(ListLogStreamsEvent, event)
    bind_execution(step.execution_id, step.source_environment_name, step.target_environment_name)
    listing = list_log_streams(
        clients.logs(),
        clients.s3(),
        step,
        time_left_ms=context.get_remaining_time_in_millis,
        kms=clients.kms,
    )
    logger.info(
        "log listing", extra={"done": listing.done, "items": listing.items, "streams": listing.streams}
    )
    return {"done": listing.done, "calls": step.calls + 1, "progress": listing.to_output()}
