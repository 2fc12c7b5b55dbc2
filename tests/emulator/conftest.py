"""Fixtures for the MWAA emulator's tests: fake AWS credentials, the emulator, boto3 clients on it,
and the DAG runtime's (tests/emulated_dags.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import botocore.retries.standard
import pytest
from botocore.config import Config

from emulation.mwaa import MwaaEmulator
from tests.emulated_dags import conf, cutover, kms, moto_bucket, runtime  # noqa: F401 (fixtures)


class FakeClock:
    """The emulator's clock, moved by hand (token expiry, dates)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Fake credentials and region; botocore must not add the `api.`/`env.` host prefixes."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")


@pytest.fixture
def no_retry_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard retries back off for up to seconds: not in tests."""
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def s3(aws_environment: None) -> Iterator[Any]:
    """moto's S3 with the source environment's bucket (moto lets the emulator's localhost traffic through)."""
    with moto_bucket("airflow-source") as client:
        yield client


@pytest.fixture
def emulator(
    aws_environment: None, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> Iterator[MwaaEmulator]:
    with MwaaEmulator(clock=clock) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", running.endpoint_url)
        yield running


@pytest.fixture
def mwaa(emulator: MwaaEmulator) -> Any:
    """A boto3 MWAA client on the emulator, without retries (each test sees each answer)."""
    return boto3.client("mwaa", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
