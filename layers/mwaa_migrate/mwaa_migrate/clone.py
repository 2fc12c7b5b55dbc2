"""Step 2: create the target environment from the plan, or find it from an earlier run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from mwaa_migrate.environment_request import SOURCE_TAG
from mwaa_migrate.environment_status import get_environment
from mwaa_migrate.errors import MigrationConflict, from_client_error
from mwaa_migrate.models import MigrationPlan, Model

if TYPE_CHECKING:
    from mypy_boto3_mwaa import MWAAClient


class CloneResult(Model):
    name: str
    arn: str
    created: bool
    airflow_version: str


def clone_environment(mwaa: MWAAClient, plan: MigrationPlan) -> CloneResult:
    """Create the target unless it already exists from this migration (a re-run, or a retried
    invocation whose first CreateEnvironment went through)."""
    target = plan.target
    existing = get_environment(mwaa, target.name)
    if existing is not None:
        if existing.get("Tags", {}).get(SOURCE_TAG) != plan.source.name:
            raise MigrationConflict(
                f"environment {target.name} exists and was not created by a migration from {plan.source.name}"
            )
        return CloneResult(
            name=target.name, arn=existing["Arn"], created=False, airflow_version=existing["AirflowVersion"]
        )
    try:
        arn = mwaa.create_environment(**target.create_request)["Arn"]
    except ClientError as error:
        # botocore sends a CreateEnvironment whose answer was lost (a timeout) again, and the second
        # one meets the environment the first created: if it is this migration's, it was created.
        created = get_environment(mwaa, target.name)
        if created is not None and created.get("Tags", {}).get(SOURCE_TAG) == plan.source.name:
            return CloneResult(
                name=target.name, arn=created["Arn"], created=True, airflow_version=created["AirflowVersion"]
            )
        raise from_client_error(error, f"creating environment {target.name}") from None
    return CloneResult(name=target.name, arn=arn, created=True, airflow_version=target.create_version)


class UpgradeResult(Model):
    name: str
    airflow_version: str
    started: bool


def upgrade_environment(mwaa: MWAAClient, name: str, airflow_version: str) -> UpgradeResult:
    """Start MWAA's in-place upgrade; nothing to do if it is there already or under way."""
    environment = get_environment(mwaa, name)
    if environment is None:
        raise MigrationConflict(f"environment {name} does not exist")
    if environment.get("AirflowVersion") == airflow_version or environment["Status"] == "UPDATING":
        return UpgradeResult(name=name, airflow_version=airflow_version, started=False)
    try:
        mwaa.update_environment(Name=name, AirflowVersion=airflow_version)
    except ClientError as error:
        # An UpdateEnvironment whose answer was lost and that botocore sent again meets the update
        # the first one started.
        again = get_environment(mwaa, name)
        if again is not None and (
            again["Status"] == "UPDATING" or again.get("AirflowVersion") == airflow_version
        ):
            return UpgradeResult(name=name, airflow_version=airflow_version, started=True)
        raise from_client_error(error, f"upgrading environment {name} to Airflow {airflow_version}") from None
    return UpgradeResult(name=name, airflow_version=airflow_version, started=True)
