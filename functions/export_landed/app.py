"""ExportLanded: S3's "Object Created" event (through EventBridge) for an export's manifest in the
migration bucket. If a hands-on export's execution waits for it, the wait ends: with the export's
result when the manifest is a sound export of that migration, with a failure when it is not.

The event only says which key to look at: the wait and the manifest are read again from S3, so a
repeated, late or forged event changes nothing a real manifest would not."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.metadata.hands_on_export import export_landed
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import logger, tracer
from mwaa_migrate.settings import settings
from mwaa_migrate.step_events import ObjectCreated


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(ObjectCreated, event)
    landed = export_landed(
        clients.s3(),
        clients.stepfunctions(),
        bucket=step.detail.bucket.name,
        key=step.detail.object.key,
        stack_bucket=settings().migration_bucket,
    )
    logger.info(
        "export landing",
        extra={"outcome": landed.outcome, "reason": landed.reason, "key": landed.key, "phase": landed.phase},
    )
    return landed.to_event()
