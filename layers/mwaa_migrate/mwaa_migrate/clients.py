"""AWS clients, made once per container with botocore's standard retries (backoff and jitter)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_mwaa import MWAAClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient

RETRY_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 8}, connect_timeout=5, read_timeout=30
)


@lru_cache(maxsize=1)
def mwaa() -> MWAAClient:
    return boto3.client("mwaa", config=RETRY_CONFIG)


@lru_cache(maxsize=1)
def s3() -> S3Client:
    return boto3.client("s3", config=RETRY_CONFIG)


@lru_cache(maxsize=1)
def iam() -> IAMClient:
    return boto3.client("iam", config=RETRY_CONFIG)


@lru_cache(maxsize=1)
def logs() -> CloudWatchLogsClient:
    return boto3.client("logs", config=RETRY_CONFIG)


@lru_cache(maxsize=1)
def stepfunctions() -> SFNClient:
    return boto3.client("stepfunctions", config=RETRY_CONFIG)


def reset() -> None:
    """Forget the cached clients (tests switch endpoints and credentials between cases)."""
    for factory in (mwaa, s3, iam, logs, stepfunctions):
        factory.cache_clear()
