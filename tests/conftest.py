"""Shared fixtures. The environment is set before any handler is imported: Powertools and the
settings read it at import and cold start."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "mwaa-migrate",
        "POWERTOOLS_METRICS_NAMESPACE": "MwaaMigrate",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_DEV": "false",
        "MIGRATION_BUCKET": "mwaa-migrate-tests",
        "MIGRATION_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000",
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
    }
)

from mwaa_migrate import clients, settings
from mwaa_migrate.observability import metrics
from tests.iam import recorder, tier

recorder.install()


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    """Each test gets new clients, settings read anew and no metrics left over."""
    clients.reset()
    settings.settings.cache_clear()
    yield
    metrics.clear_metrics()
    clients.reset()
    settings.settings.cache_clear()


@pytest.fixture(autouse=True)
def _iam_evaluation() -> Iterator[None]:
    """The IAM evaluation tier (tests/iam): every AWS call a function, the state machine or a DAG
    made in an emulated migration during the test (its fixtures' set-up included) is one its
    principal's policy allows. A test about a denial takes the calls with recorder.drain()."""
    yield
    found = tier.unexpected(tier.denials(recorder.drain()))
    assert not found, tier.report(found)


@pytest.fixture(autouse=True, scope="session")
def _own_demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """make demo's reports and log files go to this session's own folder: runs side by side (pytest
    workers, other clones) never write the same file."""
    from emulation import demo  # noqa: PLC0415  # after the environment above is set

    kept = demo.OUTPUT_DIR
    demo.OUTPUT_DIR = tmp_path_factory.mktemp("mwaa-migrate-demo")
    yield
    demo.OUTPUT_DIR = kept
