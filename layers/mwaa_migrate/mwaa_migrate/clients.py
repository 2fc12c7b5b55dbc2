"""AWS clients, made once per container with botocore's standard retries (backoff and jitter).

A call that got no answer even after botocore's retries (timeouts, dropped connections) raises
TransientAwsError, as a throttled or failing call does, so the state machine retries the step:
botocore's own exception names (ReadTimeoutError ...) are in no Retry and would end the migration.
The notification clients are left as they are: their callers catch botocore's errors on purpose
(a notification is best effort).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ConnectionError, HTTPClientError
from botocore.retries.bucket import TokenBucket
from botocore.retries.standard import ExponentialBackoff

from mwaa_migrate.errors import TransientAwsError

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_mwaa import MWAAClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_stepfunctions import SFNClient

# One call that hangs must end, with botocore's error, before the function's own timeout does: a
# TransientAwsError is retried by the state, Lambda's timeout kills the step mid-way. The worst one
# call can take (worst_call_seconds) is every attempt waiting out both timeouts plus the longest backoff
# before each retry; tests/unit/test_timeouts.py checks it against each function's Timeout in
# template.yaml. AWS's API answers in well under a second: 3 s to connect and 15 s between two reads
# of an answer are ample, and the state machine's own Retry takes over after the fifth attempt.
RETRY_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=3, read_timeout=15
)
# CloudWatch Logs' reads have low per-account quotas (GetLogEvents, DescribeLogStreams) that parallel
# log copies share: adaptive mode adds client-side rate limiting, which slows a client down once it
# is throttled, to the standard backoff with jitter. Only the 15-minute log functions use it (and
# CheckDagRun, for a failed run's last log lines).
LOGS_RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "total_max_attempts": 8}, connect_timeout=3, read_timeout=15
)


def worst_call_seconds(config: Config) -> float:
    """The longest one call of a client made with `config` can take before it raises.

    Each attempt may wait out the connect and the read timeout (the read timeout bounds each wait
    for the next bytes of an answer: an endpoint that trickles bytes is not bounded, nor counted).
    Before each retry botocore's standard backoff waits rand() x min(2^(attempt-1), 20) s, raised to an
    ``x-amz-retry-after`` of at most 5 s more; adaptive mode's token bucket may add up to 1/0.5 s per
    attempt (its lowest fill rate). Legacy mode is not counted: its retries depend on the service.
    """
    # botocore's stubs declare neither Config's options nor the retry constants.
    settings: Any = config
    backoff: Any = ExponentialBackoff
    bucket: Any = TokenBucket
    retries = settings.retries or {}
    mode = retries.get("mode")
    if mode not in {"standard", "adaptive"}:
        raise ValueError(f"retry mode {mode!r}: only standard and adaptive retries are bounded here")
    attempts = int(retries.get("total_max_attempts", 3))
    # botocore versions before x-amz-retry-after support wait the backoff only.
    retry_after_extra = getattr(backoff, "_RETRY_AFTER_MAX_ADDITIONAL", 0)
    waits = sum(
        min(backoff._BASE ** (attempt - 1), backoff._MAX_BACKOFF) + retry_after_extra
        for attempt in range(1, attempts)
    )
    if mode == "adaptive":
        waits += attempts / bucket._MIN_RATE
    return float(attempts * (settings.connect_timeout + settings.read_timeout) + waits)


def _no_answer_is_transient(exception: Exception, **_: Any) -> None:
    """after-call-error: a call that got no answer after botocore's retries is a transient error."""
    if isinstance(exception, (HTTPClientError, ConnectionError)):
        raise TransientAwsError(f"no answer from AWS: {exception}") from exception


# The notification services: their clients are left as they are (module docstring).
_BEST_EFFORT = frozenset({"events", "sns"})


@cache
def _client(name: str) -> Any:
    """The service's one client in this container."""
    # The module's globals are read when the client is made, so a test may swap the configurations.
    config = LOGS_RETRY_CONFIG if name == "logs" else RETRY_CONFIG
    client = boto3.client(name, config=config)  # type: ignore[call-overload]
    if name not in _BEST_EFFORT:
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"after-call-error.{service}", _no_answer_is_transient)
    return client


mwaa: Callable[[], MWAAClient] = partial(_client, "mwaa")
s3: Callable[[], S3Client] = partial(_client, "s3")
iam: Callable[[], IAMClient] = partial(_client, "iam")
logs: Callable[[], CloudWatchLogsClient] = partial(_client, "logs")
kms: Callable[[], KMSClient] = partial(_client, "kms")
stepfunctions: Callable[[], SFNClient] = partial(_client, "stepfunctions")
events: Callable[[], EventBridgeClient] = partial(_client, "events")
sns: Callable[[], SNSClient] = partial(_client, "sns")
secretsmanager: Callable[[], SecretsManagerClient] = partial(_client, "secretsmanager")


def reset() -> None:
    """Forget the cached clients (tests switch endpoints and credentials between cases)."""
    _client.cache_clear()
