"""Every version MWAA can still run as a source is in the real tier or refused by the plan: a
version MWAA adds fails here until it is either tested (tier.DEFAULT_PAIRS or DEFAULT_SOURCES, what
`make test-airflow` runs) or refused (older than OLDEST_EXPORTABLE_SOURCE, or Airflow 3)."""

from __future__ import annotations

import pytest

from mwaa_migrate.environment.versions import (
    OLDEST_EXPORTABLE_SOURCE,
    SOURCE_VERSIONS,
    AirflowVersion,
    UnsupportedSource,
    version_path,
)
from tests.airflow.tier import DEFAULT_HOP, DEFAULT_PAIRS, DEFAULT_SOURCES

pytestmark = pytest.mark.airflow

OLDEST = AirflowVersion.parse(OLDEST_EXPORTABLE_SOURCE)
ACCEPTED = sorted(
    (v for v in SOURCE_VERSIONS if OLDEST <= AirflowVersion.parse(v) < AirflowVersion(3, 0, 0)),
    key=AirflowVersion.parse,
)
REFUSED = sorted(set(SOURCE_VERSIONS) - set(ACCEPTED), key=AirflowVersion.parse)


def test_the_tier_migrates_from_every_source_the_plan_accepts() -> None:
    covered = {pair.split(":")[0] for pair in DEFAULT_PAIRS.split(",")} | set(DEFAULT_SOURCES.split(","))

    assert sorted(covered, key=AirflowVersion.parse) == ACCEPTED


@pytest.mark.parametrize("version", REFUSED)
def test_the_plan_refuses_every_other_source_mwaa_runs(version: str) -> None:
    with pytest.raises(UnsupportedSource):
        version_path(version, "2.11.0")


def test_the_tier_upgrades_to_the_airflow_3_version_the_plan_upgrades_to() -> None:
    assert version_path("2.10.3", DEFAULT_HOP.split(":")[1]).upgrade_to == DEFAULT_HOP.split(":")[1]
    assert version_path("2.10.3", DEFAULT_HOP.split(":")[1]).create_version == DEFAULT_HOP.split(":")[0]
