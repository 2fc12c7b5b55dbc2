"""AWS clients, made once per container with botocore's standard retries (backoff and jitter).

A call that got no answer even after botocore's retries (timeouts, dropped connections) raises
TransientAwsError, as a throttled or failing call does, so the state machine retries the step:
botocore's own exception names (ReadTimeoutError ...) are in no Retry and would end the migration.
The notification clients are left as they are: their callers catch botocore's errors on purpose
(a notification is best effort).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ConnectionError, HTTPClientError

from mwaa_migrate.errors import TransientAwsError

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_mwaa import MWAAClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_stepfunctions import SFNClient

RETRY_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 8}, connect_timeout=5, read_timeout=30
)
# CloudWatch Logs' reads have low per-account quotas (GetLogEvents, DescribeLogStreams) that parallel
# log copies share: adaptive mode adds client-side rate limiting, which slows a client down once it
# is throttled, to the standard backoff with jitter.
LOGS_RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "total_max_attempts": 8}, connect_timeout=5, read_timeout=30
)


def _no_answer_is_transient(exception: Exception, **_: Any) -> None:
    """after-call-error: a call that got no answer after botocore's retries is a transient error."""
    if isinstance(exception, (HTTPClientError, ConnectionError)):
        raise TransientAwsError(f"no answer from AWS: {exception}") from exception


def _client(name: str, config: Config | None = None, *, no_answer_is_transient: bool = True) -> Any:
    # The module's globals are read at call time, so a test may swap the configurations.
    client = boto3.client(name, config=config or RETRY_CONFIG)  # type: ignore[call-overload]
    if no_answer_is_transient:
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"after-call-error.{service}", _no_answer_is_transient)
    return client


@lru_cache(maxsize=1)
def mwaa() -> MWAAClient:
    return _client("mwaa")  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def s3() -> S3Client:
    return _client("s3")  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def iam() -> IAMClient:
    return _client("iam")  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def logs() -> CloudWatchLogsClient:
    return _client("logs", LOGS_RETRY_CONFIG)  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def kms() -> KMSClient:
    return _client("kms")  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def stepfunctions() -> SFNClient:
    return _client("stepfunctions")  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def events() -> EventBridgeClient:
    return _client("events", no_answer_is_transient=False)  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def sns() -> SNSClient:
    return _client("sns", no_answer_is_transient=False)  # type: ignore[no-any-return]


def reset() -> None:
    """Forget the cached clients (tests switch endpoints and credentials between cases)."""
    for factory in (mwaa, s3, iam, logs, kms, stepfunctions, events, sns):
        factory.cache_clear()
