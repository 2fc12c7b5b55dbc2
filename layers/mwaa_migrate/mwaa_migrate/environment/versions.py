"""Airflow versions MWAA runs, and the path from a source version to a target version.

The one place to extend when MWAA adds a version.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import total_ordering

# Versions CreateEnvironment accepts today (botocore's MWAA model documents these).
TARGET_VERSIONS: tuple[str, ...] = ("2.7.2", "2.8.1", "2.9.2", "2.10.1", "2.10.3", "2.11.0", "3.0.6")

# Versions a source environment may still run: the above plus MWAA's deprecated ones.
SOURCE_VERSIONS: tuple[str, ...] = ("1.10.12", "2.0.2", "2.2.2", "2.4.3", "2.5.1", "2.6.3", *TARGET_VERSIONS)

# The Python MWAA runs each version on (its constraints files are per Python version).
PYTHON_VERSIONS: dict[str, str] = {
    **dict.fromkeys(("2.7.2", "2.8.1", "2.9.2", "2.10.1", "2.10.3", "2.11.0"), "3.11"),
    "3.0.6": "3.12",
}


def python_version(airflow_version: str) -> str:
    """The Python MWAA runs an Airflow version on (a newer version than the table: the newest's)."""
    if airflow_version in PYTHON_VERSIONS:
        return PYTHON_VERSIONS[airflow_version]
    newest = max(PYTHON_VERSIONS, key=AirflowVersion.parse)
    return PYTHON_VERSIONS[newest]


# The oldest source the export DAG runs on: the real-Airflow tier migrates from it. Older 2.x
# environments run on Python 3.7 or 3.10 with metadata schemas the tier has never exported; MWAA
# upgrades them in place to a supported minor version first.
OLDEST_EXPORTABLE_SOURCE = "2.7.2"

# A self-managed Apache Airflow source (not MWAA): the export DAG reads Airflow 2's metadata schema
# (its library refuses any other major version), knows the column changes of 2.4-2.11 and runs on a
# PostgreSQL metadata database only. Sources from OLDEST_EXPORTABLE_SOURCE (what the real tier
# exports) up to the last 2.11 release; Airflow 3 forbids tasks to use the database at all.
SELF_MANAGED_NEWEST_LINE = (2, 11)
SELF_MANAGED_DATABASES: tuple[str, ...] = ("postgresql",)


def self_managed_version_problem(version: str) -> str | None:
    """Why the export cannot run on a self-managed Airflow of this version (None: it can)."""
    parsed = AirflowVersion.parse(version)
    oldest = AirflowVersion.parse(OLDEST_EXPORTABLE_SOURCE)
    if oldest <= parsed and (parsed.major, parsed.minor) <= SELF_MANAGED_NEWEST_LINE:
        return None
    newest = ".".join(str(part) for part in SELF_MANAGED_NEWEST_LINE)
    return (
        f"the export supports self-managed Apache Airflow {OLDEST_EXPORTABLE_SOURCE} up to {newest}.x "
        f"(Airflow 2's metadata schema on PostgreSQL), not {version}: "
        + (
            "Airflow 3 lets no task read the metadata database"
            if parsed.major >= 3
            else f"upgrade the source to {OLDEST_EXPORTABLE_SOURCE} or a newer 2.x first"
            if parsed < oldest
            else f"the export knows no metadata schema newer than Airflow {newest}'s"
        )
    )


@total_ordering
@dataclass(frozen=True)
class AirflowVersion:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> AirflowVersion:
        parts = text.split(".")
        if len(parts) != 3 or not all(part.isdigit() for part in parts):
            raise ValueError(f"'{text}' is not an Airflow version like 2.10.3")
        major, minor, patch = (int(part) for part in parts)
        return cls(major, minor, patch)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, AirflowVersion):
            return NotImplemented
        return (self.major, self.minor, self.patch) < (other.major, other.minor, other.patch)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def newest_target(major: int, minor: int) -> str:
    """The newest version MWAA accepts on a major.minor line."""
    line = [v for v in TARGET_VERSIONS if _line(v) == (major, minor)]
    if not line:
        raise ValueError(f"MWAA has no Airflow {major}.{minor} version")
    return max(line, key=AirflowVersion.parse)


def _line(version: str) -> tuple[int, int]:
    parsed = AirflowVersion.parse(version)
    return parsed.major, parsed.minor


_3 = AirflowVersion(3, 0, 0)


class UnsupportedSource(ValueError):
    """The source's version is one this pipeline cannot migrate from (the rule is the source's)."""


@dataclass(frozen=True)
class VersionPath:
    """How the target reaches its version.

    Airflow 3 targets are created on the newest 2.11.x, filled with the 2.x import, then upgraded in
    place by MWAA (its supported 2.11 -> 3 path), so the history goes through Airflow's own migration.
    """

    create_version: str
    upgrade_to: str | None

    @property
    def final_version(self) -> str:
        return self.upgrade_to or self.create_version


def version_path(source_version: str, target_version: str) -> VersionPath:
    """Work out the path; raise ValueError naming the rule that a pair breaks."""
    if target_version not in TARGET_VERSIONS:
        raise ValueError(f"targetAirflowVersion must be one of {', '.join(TARGET_VERSIONS)}")
    source = AirflowVersion.parse(source_version)
    target = AirflowVersion.parse(target_version)
    if source.major >= 3:
        raise UnsupportedSource(
            f"the source runs Airflow {source_version}: only Airflow 2.x sources can be migrated"
        )
    if source < AirflowVersion.parse(OLDEST_EXPORTABLE_SOURCE):
        supported = ", ".join(
            v
            for v in SOURCE_VERSIONS
            if AirflowVersion.parse(OLDEST_EXPORTABLE_SOURCE) <= AirflowVersion.parse(v) < _3
        )
        if source.major < 2:
            how = "MWAA cannot upgrade Airflow 1.10 in place: move it to Airflow 2 by hand first"
        else:
            how = (
                f"Upgrade the source in place first (MWAA's UpdateEnvironment with AirflowVersion "
                f"{OLDEST_EXPORTABLE_SOURCE} or newer), then migrate it"
            )
        raise UnsupportedSource(
            f"the source runs Airflow {source_version}, which the export DAG does not run on; sources "
            f"it supports: {supported}. {how}"
        )
    if target < source:
        raise ValueError(
            f"targetAirflowVersion {target_version} is older than the source's {source_version}: "
            "a downgrade is not supported"
        )
    if target.major >= 3:
        return VersionPath(create_version=newest_target(2, 11), upgrade_to=target_version)
    return VersionPath(create_version=target_version, upgrade_to=None)
