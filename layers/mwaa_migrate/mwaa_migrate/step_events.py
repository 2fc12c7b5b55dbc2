"""The payloads the state machine sends each function: the contract between the ASL and the code.
A handler validates its event against one of these before it touches AWS."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from mwaa_migrate.execution import execution_name
from mwaa_migrate.models import DagDeployment, EnvironmentName, ExecutionId, MigrationPlan, Model, RunId


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


class UpgradeEnvironmentEvent(StepEvent):
    environment_name: EnvironmentName
    airflow_version: str


class DeployDagEvent(StepEvent):
    deployment: DagDeployment


class MetadataConf(Model):
    """The conf the export and import DAGs are triggered with."""

    bucket: str
    prefix: str
    migration_id: str
    # The KMS key of the data key that seals the export (mwaa_migrate_metadata's secrets).
    kms_key_id: str


class TriggerDagEvent(StepEvent):
    deployment: DagDeployment
    conf: MetadataConf
    attempt: int = Field(default=0, ge=0)

    @property
    def run_id(self) -> str:
        """One run id per execution, so a retried trigger finds its run instead of starting another.
        Airflow allows [A-Za-z0-9_.~:+-] in run ids."""
        name = re.sub(r"[^A-Za-z0-9_.~:+-]", "_", execution_name(self.execution_id))
        return f"mwaa_migrate__{name}"


class CheckDagRunEvent(StepEvent):
    deployment: DagDeployment
    kind: Literal["export", "import"]
    run_id: RunId
    bucket: str
    prefix: str
    attempt: int = Field(default=0, ge=0)
    # The export's result, which the import is verified against.
    exported: dict[str, Any] | None = None


class FinishMigrationEvent(StepEvent):
    started_at: str
    plan: MigrationPlan
    clone: dict[str, Any]
    exported: dict[str, Any]
    imported: dict[str, Any]
    logs: dict[str, Any]


class RecordFailureEvent(StepEvent):
    # The whole execution state at the failure: what is there depends on where it failed.
    state: dict[str, Any]
