"""Where an environment stands: ready, still changing, or failed (which ends the migration at once)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mwaa_migrate.errors import EnvironmentFailed, from_client_error
from mwaa_migrate.models import Model

if TYPE_CHECKING:
    from mypy_boto3_mwaa import MWAAClient

# Statuses after which waiting cannot end well.
FAILED_STATUSES = frozenset({"CREATE_FAILED", "UPDATE_FAILED", "UNAVAILABLE", "DELETING", "DELETED"})


class EnvironmentCheck(Model):
    name: str
    status: str
    airflow_version: str
    ready: bool
    # Polls so far: the state machine compares it with its deadline.
    attempt: int


def get_environment(mwaa: MWAAClient, name: str) -> dict[str, Any] | None:
    """The environment's description, or None if there is no such environment."""
    try:
        return dict(mwaa.get_environment(Name=name)["Environment"])
    except mwaa.exceptions.ResourceNotFoundException:
        return None
    except ClientError as error:
        raise from_client_error(error, f"reading environment {name}") from None


def _failure_text(environment: dict[str, Any]) -> str:
    error = environment.get("LastUpdate", {}).get("Error", {})
    if not error:
        return "MWAA gave no error detail"
    return f"{error.get('ErrorCode', 'Unknown')}: {error.get('ErrorMessage', '')}"


def check_environment(
    mwaa: MWAAClient,
    name: str,
    *,
    attempt: int,
    expected_version: str | None = None,
    final_version: str | None = None,
) -> EnvironmentCheck:
    """One poll. Ready when AVAILABLE on the expected version, or on the final version: a re-run
    finds the target it upgraded already (2.11.0 -> 3.0.6 done). Raises EnvironmentFailed for a
    failed environment, or for an update that MWAA rolled back (the environment is AVAILABLE again,
    on its old version, with the error recorded)."""
    environment = get_environment(mwaa, name)
    if environment is None:
        raise EnvironmentFailed(f"environment {name} does not exist")
    status = environment["Status"]
    version = environment.get("AirflowVersion", "")
    if status in FAILED_STATUSES:
        raise EnvironmentFailed(f"environment {name} is {status}: {_failure_text(environment)}")
    ready = status == "AVAILABLE"
    accepted = {v for v in (expected_version, final_version) if v}
    if ready and accepted and version not in accepted:
        if environment.get("LastUpdate", {}).get("Status") == "FAILED":
            raise EnvironmentFailed(
                f"environment {name} stayed on Airflow {version}: the update to {expected_version} "
                f"failed and was rolled back: {_failure_text(environment)}"
            )
        ready = False
    return EnvironmentCheck(
        name=name, status=status, airflow_version=version, ready=ready, attempt=attempt + 1
    )
