"""The project's errors. A Lambda's error type is its class name, which the state machine's
Retry and Catch blocks match on, so these names are part of the contract with the ASL."""

from __future__ import annotations

from botocore.exceptions import ClientError

# Error codes that mean "try again later" once botocore's own retries are spent.
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailableException",
        "InternalServerException",
        "InternalFailure",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
    }
)


class MigrationError(Exception):
    """Base of every error this project raises on purpose."""


class InvalidMigrationRequest(MigrationError):
    """The input breaks a rule: nothing in AWS was changed. Not retried."""


class MigrationConflict(MigrationError):
    """AWS holds something that stops the migration (e.g. a target of another origin). Not retried."""


class EnvironmentFailed(MigrationError):
    """An environment reached CREATE_FAILED, UPDATE_FAILED or UNAVAILABLE. Not retried."""


class DagRunFailed(MigrationError):
    """The export or import DAG run ended failed. Not retried: its cause is in the message."""


class IncompatibleDags(MigrationError):
    """DAG files will not run on the target's Airflow and the request says onIncompatibleDags "fail":
    the migration stops before the source is paused. Not retried."""


class RunByHand(MigrationError):
    """The environment is a self-managed Airflow run by hand (hands_on): the pipeline cannot reach
    it, so the step is its operator's (the message says the command). Not retried."""


class TransientAwsError(MigrationError):
    """Throttling, a 5xx or a timeout that outlived botocore's retries: the state retries it."""


class AwsAccessDenied(MigrationError):
    """An AWS call was refused: fix the permissions, then run again. Not retried."""


def error_code(error: ClientError) -> str:
    """The AWS error code of a ClientError ("NoSuchKey", "ThrottlingException", ...)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def from_client_error(error: ClientError, doing: str) -> MigrationError:
    """Turn a botocore ClientError into the project's error, saying what was being done."""
    code = error_code(error) or "Unknown"
    message = error.response.get("Error", {}).get("Message", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    text = f"{doing}: {code}: {message}"
    if code in _TRANSIENT_CODES or status >= 500 or status == 429:
        return TransientAwsError(text)
    # A HEAD request's answer has no body: botocore names its error by the status ("403").
    if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"} or status == 403:
        return AwsAccessDenied(text)
    return MigrationConflict(text)
