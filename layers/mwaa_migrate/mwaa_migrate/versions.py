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
        raise ValueError(
            f"the source runs Airflow {source_version}: only Airflow 1.10 and 2.x sources can be migrated"
        )
    if target < source:
        raise ValueError(
            f"targetAirflowVersion {target_version} is older than the source's {source_version}: "
            "a downgrade is not supported"
        )
    if target.major >= 3:
        return VersionPath(create_version=newest_target(2, 11), upgrade_to=target_version)
    return VersionPath(create_version=target_version, upgrade_to=None)
