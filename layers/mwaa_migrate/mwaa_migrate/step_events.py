"""The payloads the state machine sends each function: the contract between the ASL and the code.
A handler validates its event against one of these before it touches AWS."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from mwaa_migrate.dags.mwaa_migrate_metadata import EXPORT_DAG_ID
from mwaa_migrate.errors import InvalidMigrationRequest
from mwaa_migrate.execution import execution_name
from mwaa_migrate.logs.log_copy import WorkItem
from mwaa_migrate.migration_bucket import migration_prefix
from mwaa_migrate.models import (
    HANDS_ON_MAX_HOURS,
    BucketName,
    DagDeployment,
    EnvironmentName,
    ExecutionId,
    LogGroupKind,
    MigrationPlan,
    Model,
    OnIncompatibleDags,
    RunId,
)
from mwaa_migrate.run.migration_names import migration_id


class StepEvent(Model):
    execution_id: ExecutionId


class PlanMigrationEvent(StepEvent):
    # Validated on its own, so a bad request is refused field by field (InvalidMigrationRequest).
    request: dict[str, Any]


class PlanStepEvent(StepEvent):
    plan: MigrationPlan


class CheckEnvironmentEvent(StepEvent):
    environment_name: EnvironmentName
    attempt: int = Field(default=0, ge=0)
    expected_version: str | None = None
    # Also accepted: the plan's final version (a re-run finds the target upgraded already).
    final_version: str | None = None


class UpgradeEnvironmentEvent(StepEvent):
    environment_name: EnvironmentName
    airflow_version: str


class DeployDagEvent(StepEvent):
    deployment: DagDeployment


# The two copies of a migration: the bulk while production runs, the cutover in the downtime window.
Phase = Literal["bulk", "cutover"]


class MetadataConf(Model):
    """The conf the export and import DAGs are triggered with."""

    bucket: str
    # The KMS key of the data key that seals the export (mwaa_migrate_metadata's secrets).
    kms_key_id: str
    phase: Phase
    source_environment: EnvironmentName
    target_environment: EnvironmentName
    # Both follow from the two names (checked below, after them): the id binds the data key (its
    # KMS encryption context) and the prefix holds the export, so a conf cannot point one migration
    # at another's.
    migration_id: str
    prefix: str
    # The cutover export's drain (ignored by the bulk export and by the import).
    drain_timeout_minutes: int = Field(default=30, ge=0, le=720)
    on_drain_timeout: Literal["fail", "carry"] = "fail"
    # The import's answer to a conflict (ignored by the export).
    on_conflict: Literal["fail", "keep-target", "overwrite"] = "fail"
    # The cutover import: unpause the recorded DAGs (false when an upgrade follows).
    unpause_dags: bool = True
    # The import: the Airflow version the target ends at (the plan's target.finalVersion); a 3.x
    # target gets its failed tries written to task_instance_history before the upgrade.
    target_final_version: str | None = Field(default=None, pattern=r"^\d+\.\d+\.\d+$")

    @field_validator("migration_id", "prefix")
    @classmethod
    def _of_this_migration(cls, value: str, info: ValidationInfo) -> str:
        source, target = info.data.get("source_environment"), info.data.get("target_environment")
        if source is None or target is None:
            return value  # a name was refused: its own error speaks
        names = "sourceEnvironment and targetEnvironment"
        if info.field_name == "migration_id" and value != migration_id(source, target):
            raise ValueError(f"is not the id of {names}")
        if info.field_name == "prefix" and value != migration_prefix(source, target):
            raise ValueError(f"is not the prefix of {names}")
        return value

    def require_stack(self, *, bucket: str, kms_key_arn: str) -> None:
        """The export goes to the stack's bucket, sealed with the stack's key (`kms_key_arn`: the
        migration key, or a self-managed source's sealing key), and nowhere else."""
        if self.bucket != bucket:
            raise InvalidMigrationRequest(f"conf.bucket: {self.bucket} is not this stack's bucket {bucket}")
        if self.kms_key_id != kms_key_arn:
            raise InvalidMigrationRequest(f"conf.kmsKeyId: {self.kms_key_id} is not this stack's key")


class TriggerDagEvent(StepEvent):
    deployment: DagDeployment
    conf: MetadataConf
    attempt: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _dag_of_this_migration(self) -> TriggerDagEvent:
        if self.deployment.environment_name not in {
            self.conf.source_environment,
            self.conf.target_environment,
        }:
            raise ValueError("deployment.environmentName is neither the conf's source nor its target")
        return self

    @property
    def run_id(self) -> str:
        """One run id per execution, so a retried trigger finds its run instead of starting another.
        Airflow allows [A-Za-z0-9_.~:+-] in run ids."""
        name = re.sub(r"[^A-Za-z0-9_.~:+-]", "_", execution_name(self.execution_id))
        return f"mwaa_migrate__{self.conf.phase}__{name}"


class HandOverExportEvent(TriggerDagEvent):
    """The export of a self-managed source run by hand (hands_on): what TriggerDag would trigger,
    handed to its operator instead, and the token the execution waits with until it lands."""

    # Step Functions' token for this wait: kept in the migration bucket for ExportLanded, never logged.
    task_token: str = Field(min_length=1, max_length=1024, repr=False)
    # The state's own TimeoutSecondsPath (the plan's handsOnDeadlineSeconds): the forms last as long.
    deadline_seconds: int = Field(ge=60, le=HANDS_ON_MAX_HOURS * 3600)

    @model_validator(mode="after")
    def _an_export_run_by_hand(self) -> HandOverExportEvent:
        if self.deployment.transport != "hands_on" or self.deployment.dag_id != EXPORT_DAG_ID:
            raise ValueError(
                "deployment: only the export DAG of a source run by hand (transport hands_on) is handed over"
            )
        if self.deployment.environment_name != self.conf.source_environment:
            raise ValueError("deployment.environmentName is not the conf's source")
        return self


class CheckDagRunEvent(StepEvent):
    deployment: DagDeployment
    kind: Literal["export", "import"]
    phase: Phase
    run_id: RunId
    bucket: str
    prefix: str
    attempt: int = Field(default=0, ge=0)
    # The export's result, which the import is verified against.
    exported: dict[str, Any] | None = None
    # The bulk import's DAG check (dag_compatibility.check_target): the plan's policy and the version
    # the target is created on.
    on_incompatible_dags: OnIncompatibleDags = "warn"
    target_version: str | None = None


class FinishMigrationEvent(StepEvent):
    started_at: str
    plan: MigrationPlan
    clone: dict[str, Any]
    # The bulk copy's export and import results, then the cutover's.
    exported: dict[str, Any]
    imported: dict[str, Any]
    cutover_exported: dict[str, Any]
    cutover_imported: dict[str, Any]
    # What StartTargetDags did: the DAGs unpaused on the target and when.
    live: dict[str, Any]
    logs: dict[str, Any]


class AwaitApprovalEvent(StepEvent):
    plan: MigrationPlan
    # Step Functions' token for this wait: `mwaa-migrate approve` reads it from the execution's
    # history and answers with it; it is never logged.
    task_token: str = Field(min_length=1, max_length=1024, repr=False)


class StartTargetDagsEvent(StepEvent):
    plan: MigrationPlan
    # The cutover import's verified result (unpaused_dags, timings).
    imported: dict[str, Any]


class RecordFailureEvent(StepEvent):
    # The whole execution state at the failure: what is there depends on where it failed.
    state: dict[str, Any]


# EventBridge's events carry more than is read of them: the rest is ignored, not refused.
_AWS_EVENT = ConfigDict(extra="ignore", populate_by_name=True, alias_generator=to_camel, frozen=True)


class ListLogStreamsEvent(StepEvent):
    """ListLogStreams' payload: the request's log choices, the window and where to write."""

    source_environment_name: EnvironmentName
    target_environment_name: EnvironmentName
    target_airflow_version: str
    log_groups: list[LogGroupKind]
    failed_tasks_only: bool = False
    log_days: int = Field(ge=1, le=14)
    # The window ends when the execution started, so every call lists the same window.
    window_end: datetime
    bucket: BucketName
    prefix: str = Field(min_length=1)
    # The export's data key is bound to the migration: opening it takes the migration's id.
    migration_id: str = Field(min_length=1)
    # The Distributed Map's MaxConcurrency: the listing makes at least this many items when it can.
    max_concurrency: int = Field(default=10, ge=1, le=10_000)
    calls: int = Field(default=0, ge=0)
    progress: dict[str, Any] | None = None


class CopyLogStreamsEvent(StepEvent):
    """CopyLogStreams' payload: one work item of the Distributed Map, and the progress so far."""

    source_environment_name: EnvironmentName
    target_environment_name: EnvironmentName
    # The window the listing used: since <= timestamp < until.
    since: datetime
    until: datetime
    bucket: BucketName
    results_prefix: str = Field(min_length=1)
    index: int = Field(ge=0)
    item: WorkItem
    # Calls of the copy for this item so far: the state machine bounds the loop with it.
    calls: int = Field(default=0, ge=0)
    progress: dict[str, Any] | None = None


class SummarizeLogCopyEvent(StepEvent):
    # ListLogStreams' final output.
    listing: dict[str, Any]
    # The Distributed Map's own error ({"Error", "Cause"}, as its Catch puts it) when the Map failed:
    # then the step explains the failure instead of summarizing.
    map_run_error: dict[str, Any] | None = None


class ExecutionStatusDetail(Model):
    model_config = _AWS_EVENT

    execution_arn: str = Field(min_length=1, max_length=2048)
    state_machine_arn: str = Field(min_length=1, max_length=2048)
    status: str


class ExecutionStatusChange(Model):
    """EventBridge's "Step Functions Execution Status Change" event (only what is read of it)."""

    model_config = _AWS_EVENT

    source: Literal["aws.states"]
    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    detail: ExecutionStatusDetail


class S3Bucket(Model):
    model_config = _AWS_EVENT

    name: BucketName


class S3Object(Model):
    model_config = _AWS_EVENT

    key: str = Field(min_length=1, max_length=1024)


class S3ObjectDetail(Model):
    model_config = _AWS_EVENT

    bucket: S3Bucket
    object: S3Object


class ObjectCreated(Model):
    """S3's "Object Created" event through EventBridge (only what is read of it): which object to look
    at. ExportLanded reads the object itself again, so the event's word decides nothing."""

    model_config = _AWS_EVENT

    source: Literal["aws.s3"]
    detail_type: Literal["Object Created"] = Field(alias="detail-type")
    detail: S3ObjectDetail
