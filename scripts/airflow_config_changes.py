"""Airflow's own tables of configuration options that were renamed or removed, as JSON for the plan
(layers/mwaa_migrate/mwaa_migrate/environment/airflow_config_changes.json): read from an installed
Airflow, not written by hand.

Run with the Python of an Airflow 2.11 virtualenv (the real tier's), the last 2.x, which holds both:
- `AirflowConfigParser.deprecated_options` and `many_to_one_deprecated_options`: every option renamed
  in 2.x, with the version that renamed it (the old name still works, deprecated, until 3.0);
- `airflow.cli.commands.config_command.CONFIGS_CHANGES`: what Airflow 3.0 renames and removes (the
  table `airflow config lint` checks an airflow.cfg against before an upgrade to 3).

    AIRFLOW_HOME=$(mktemp -d) .airflow/venvs/2.11.0/bin/python scripts/airflow_config_changes.py > \
        layers/mwaa_migrate/mwaa_migrate/environment/airflow_config_changes.json

(`make airflow-config-changes`; a test of the real tier fails while the file differs.)
"""

from __future__ import annotations

import json
import sys
import warnings


def _option(section: str, key: str) -> str:
    return f"{section}.{key}"


def tables() -> dict[str, object]:
    warnings.simplefilter("ignore")
    import airflow  # noqa: PLC0415
    from airflow.cli.commands.config_command import CONFIGS_CHANGES  # noqa: PLC0415
    from airflow.configuration import AirflowConfigParser, conf  # noqa: PLC0415

    renamed = [
        {"old": _option(old_section, old_key), "new": _option(*new), "since": since}
        for new, (old_section, old_key, since) in AirflowConfigParser.deprecated_options.items()
    ]
    renamed += [
        {"old": _option(old_section, old_key), "new": _option(*new), "since": since}
        for new, olds in AirflowConfigParser.many_to_one_deprecated_options.items()
        for old_section, old_key, since in olds
    ]
    airflow3 = []
    for change in CONFIGS_CHANGES:
        if not (change.renamed_to or change.was_removed):
            continue  # a default that changes: nothing to do to the options a user set
        new = change.renamed_to
        airflow3.append(
            {
                "option": _option(change.config.section, change.config.option),
                "renamedTo": _option(new.section, new.option) if new else None,
                # Whether the last 2.x knows the new name, so the target may be created with it.
                "renamedToKnownIn2": bool(new and conf.has_option(new.section, new.option)),
                "removed": bool(change.was_removed and not new),
                "removeIfEquals": None if change.remove_if_equals is None else str(change.remove_if_equals),
                "suggestion": change.suggestion,
            }
        )
    return {
        "airflowVersion": airflow.__version__,
        "renamed": sorted(renamed, key=lambda item: (item["since"], item["old"])),
        "airflow3": sorted(airflow3, key=lambda item: str(item["option"])),
    }


if __name__ == "__main__":
    json.dump(tables(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
