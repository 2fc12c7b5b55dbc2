"""SummarizeLogCopy: add up what the listing found and what each work item's copy did, per log group,
for the migration report. Given the Map's error (`mapRunError`, when the Map failed), it explains the
failure instead: the first failed work item's own error and cause, for the failure path."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.logs.log_listing import LogListing
from mwaa_migrate.logs.log_report import explain_log_copy_failure, summarize_log_copy
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import logger, tracer
from mwaa_migrate.step_events import SummarizeLogCopyEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(SummarizeLogCopyEvent, event)
    logger.append_keys(execution_id=step.execution_id)
    listing = parse_model(LogListing, LogListing.from_output(step.listing))
    if step.map_run_error is not None:
        failure = explain_log_copy_failure(clients.s3(), listing, step.map_run_error)
        logger.info("log copy failure explained", extra={"error": failure.error})
        return failure.to_event()
    report = summarize_log_copy(clients.s3(), listing)
    logger.info("log copy summarized", extra={"complete": report.complete, "written": report.events_written})
    return report.to_event()
