"""Shared fixtures. The environment is set before any handler is imported: Powertools and the
settings read it at import and cold start."""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Iterator
from typing import Any

import botocore.loaders
import botocore.session
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

# Each moto mock starts a new boto3 default session, and each new session would read and parse the
# services' JSON models again (a tenth of a second for S3's alone), in every test. The models are
# the installed botocore's, the same for the whole run: one loader for every session of the process.
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)  # type: ignore[assignment]


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


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection loaded (modules, the botocore models, the discovery) lives as long as the
    run: frozen out of the garbage collector's passes. Each migration allocates a great many short-
    lived objects, so the youngest generation is collected less often (7-9% less CPU per migration,
    measured on this machine)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


# Modules whose tests share a module-scoped world that is a whole migration (its fixture's set-up), or
# (the CLI's) a session's `local up` in a subprocess: under pytest-xdist each runs on one worker, so
# the world is built once rather than on every worker that gets one of its tests. (xdist's own
# `--dist loadgroup` does not group with pytest 9.2: it marks a test's group in its node id, which
# pytest's structured node ids no longer take.)
ONE_WORKER_MODULES = frozenset(
    {
        "tests/cli/test_cli.py",
        "tests/functions/test_events.py",
        "tests/hardening/test_forged_events.py",
        "tests/iam/test_mutations.py",
    }
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`make test`'s scheduler: xdist's load distribution, one test at a time to whichever worker is
    free, except that the tests of each of ONE_WORKER_MODULES go to one worker together."""
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415  # only with -n

    class _ModulesTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else nodeid

    return _ModulesTogether(config, log)
