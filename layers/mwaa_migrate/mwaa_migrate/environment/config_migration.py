"""Airflow configuration options that were renamed or removed, applied to the target's options.

The tables are Airflow's own (airflow_config_changes.json, read from Airflow 2.11 by
scripts/airflow_config_changes.py): the options 2.x renamed, with the version that did, and what
Airflow 3.0 renames and removes (the table of `airflow config lint`). Options are MWAA's
`section.key` form.

- An option 2.x renamed at or before the version the target is created on takes its new name (the
  old one only works as a deprecated alias, and Airflow 3 drops the aliases).
- For a target that becomes Airflow 3 (created on 2.11, upgraded in place): an option 3.0 removes is
  dropped; one it renames takes the new name when 2.11 knows it too, and is otherwise kept under the
  name 2.11 reads, with a warning saying what to set after the upgrade.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from mwaa_migrate.environment.versions import AirflowVersion

TABLES = "airflow_config_changes.json"


@dataclass(frozen=True)
class RenamedOption:
    since: str
    old: str
    new: str


@dataclass(frozen=True)
class Airflow3Change:
    option: str
    renamed_to: str | None
    renamed_to_known_in_2: bool
    removed: bool
    remove_if_equals: str | None
    suggestion: str


@dataclass(frozen=True)
class ConfigChanges:
    airflow_version: str
    renamed: tuple[RenamedOption, ...]
    airflow3: tuple[Airflow3Change, ...]


def _parse(data: dict[str, Any]) -> ConfigChanges:
    return ConfigChanges(
        airflow_version=str(data["airflowVersion"]),
        renamed=tuple(RenamedOption(item["since"], item["old"], item["new"]) for item in data["renamed"]),
        airflow3=tuple(
            Airflow3Change(
                option=item["option"],
                renamed_to=item["renamedTo"],
                renamed_to_known_in_2=bool(item["renamedToKnownIn2"]),
                removed=bool(item["removed"]),
                remove_if_equals=item["removeIfEquals"],
                suggestion=item["suggestion"],
            )
            for item in data["airflow3"]
        ),
    )


@cache
def airflow_config_changes() -> ConfigChanges:
    """Airflow's tables, as shipped in the package."""
    text = resources.files("mwaa_migrate.environment").joinpath(TABLES).read_text(encoding="utf-8")
    return _parse(json.loads(text))


def _rename(result: dict[str, str], old: str, new: str, why: str, changes: list[str]) -> None:
    if new in result:
        del result[old]
        changes.append(f"dropped {old}: {new} is already set ({why})")
    else:
        result[new] = result.pop(old)
        changes.append(f"renamed {old} to {new} ({why})")


def migrate_configuration(
    options: dict[str, str],
    *,
    source_version: str,
    target_version: str,
    final_version: str | None = None,
    tables: ConfigChanges | None = None,
) -> tuple[dict[str, str], list[str]]:
    """Options for a target created on `target_version` (and upgraded in place to `final_version`,
    when that differs), and what changed, in words. `source_version` only names the source."""
    tables = tables or airflow_config_changes()
    created = AirflowVersion.parse(target_version)
    final = AirflowVersion.parse(final_version or target_version)
    result = dict(options)
    changes: list[str] = []
    for rename in tables.renamed:
        if rename.old in result and AirflowVersion.parse(rename.since) <= created:
            why = f"Airflow {rename.since}; the source's {source_version} still read the old name"
            _rename(result, rename.old, rename.new, why, changes)
    if final.major >= 3:
        for change in tables.airflow3:
            if change.option not in result:
                continue
            if change.renamed_to and change.renamed_to_known_in_2:
                _rename(result, change.option, change.renamed_to, "Airflow 3.0", changes)
            elif change.renamed_to:
                changes.append(
                    f"{change.option} is {change.renamed_to} in Airflow 3.0, which Airflow "
                    f"{target_version} does not know: kept for the creation; set {change.renamed_to} on "
                    "the target after its upgrade"
                )
            elif change.removed and change.remove_if_equals in (None, result[change.option]):
                del result[change.option]
                suggestion = f": {change.suggestion}" if change.suggestion else ""
                changes.append(f"dropped {change.option}: Airflow 3.0 removed it{suggestion}")
    return result, changes
