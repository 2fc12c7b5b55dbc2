"""HandOverExport: the export of a self-managed Airflow run by hand (access mode hands_on).

Invoked with `.waitForTaskToken`: it writes this phase's conf (presigned forms lasting until the
deadline, the sealing key's public half), the steps and the wait to the migration bucket, and
returns; ExportLanded ends the wait when the export's manifest lands. The conf and the token go to
the bucket only: never in this function's output or logs."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mwaa_migrate import clients
from mwaa_migrate.metadata.hands_on_export import hand_over
from mwaa_migrate.metadata.self_managed_access import sealing_public_key
from mwaa_migrate.models import parse_model
from mwaa_migrate.observability import logger, tracer
from mwaa_migrate.run.notifications import awaiting_export, publish
from mwaa_migrate.settings import settings
from mwaa_migrate.step_events import HandOverExportEvent


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_model(HandOverExportEvent, event)
    # A source run by hand holds no AWS credentials: its export is sealed with the sealing key.
    step.conf.require_stack(bucket=settings().migration_bucket, kms_key_arn=settings().sealing_key_arn or "")
    logger.append_keys(execution_id=step.execution_id, environment=step.deployment.environment_name)
    handed = hand_over(
        clients.s3(),
        deployment=step.deployment,
        conf=step.conf,
        execution_id=step.execution_id,
        run_id=step.run_id,
        task_token=step.task_token,
        deadline_seconds=step.deadline_seconds,
        public_key=sealing_public_key(clients.kms(), step.conf.kms_key_id),
    )
    # Someone has to act before the deadline: say so where people listen.
    publish(
        awaiting_export(
            step.execution_id,
            migration_id=step.conf.migration_id,
            source=step.conf.source_environment,
            target=step.conf.target_environment,
            phase=handed.phase,
            deadline=handed.deadline,
        ),
        events=clients.events(),
        sns=clients.sns(),
        topic_arn=settings().notification_topic_arn,
    )
    logger.info("export handed over", extra={"phase": handed.phase, "deadline": handed.deadline})
    return handed.to_event()
