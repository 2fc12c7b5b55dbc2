"""The target's own requirements.txt: its `--constraint` made to fit the target's Airflow.

MWAA requires a constraint from Airflow 2.7.2 on and adds Airflow's own for the environment's
version and Python when the file names none. A source's file pins the source's
(`constraints-2.7.2/constraints-3.11.txt`), which on the target would hold providers back or fail to
install. So the target's copy:
- for a 2.x target: names Airflow's constraints of the target version and its Python;
- for a target that becomes Airflow 3 (created on 2.11, upgraded in place): names none, so MWAA
  applies 2.11's at the creation and 3's after the upgrade, which one file could not do;
- a constraints file of the user's own (another URL, a file in the DAG folder) is kept, with a
  warning to check it against the target version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mwaa_migrate.environment.target_files import TextRewrite
from mwaa_migrate.environment.versions import AirflowVersion, python_version

# `--constraint URL`, `-c URL`, `--constraint=URL`, quoted or not.
_CONSTRAINT = re.compile(
    r"^\s*(?:--constraint|-c)(?:\s+|\s*=\s*)[\"']?(?P<target>[^\"'\s]+)[\"']?\s*(?:#.*)?$"
)
_AIRFLOW_CONSTRAINTS = re.compile(
    r"^https://raw\.githubusercontent\.com/apache/airflow/constraints-(?P<airflow>[0-9][0-9.]*)/"
    r"constraints-(?P<python>[0-9]+\.[0-9]+)\.txt$"
)


@dataclass(frozen=True)
class RequirementsRewrite:
    text: str
    changes: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.changes) and any(not change.startswith("kept ") for change in self.changes)


def airflow_constraints_url(airflow_version: str) -> str:
    return (
        "https://raw.githubusercontent.com/apache/airflow/"
        f"constraints-{airflow_version}/constraints-{python_version(airflow_version)}.txt"
    )


def rewrite_constraints(text: str, *, create_version: str, final_version: str) -> RequirementsRewrite:
    """The target's requirements.txt, and what changed, in words."""
    becomes_3 = AirflowVersion.parse(final_version).major >= 3
    wanted = airflow_constraints_url(create_version)
    lines: list[str] = []
    changes: list[str] = []
    for line in text.splitlines(keepends=True):
        match = _CONSTRAINT.match(line.rstrip("\r\n"))
        if match is None:
            lines.append(line)
            continue
        target = match.group("target")
        if _AIRFLOW_CONSTRAINTS.match(target) is None:
            lines.append(line)
            changes.append(
                f"kept the constraints file {target}: it is not Airflow's own; check that it fits Airflow "
                f"{final_version}"
            )
        elif becomes_3:
            changes.append(
                f"removed --constraint {target}: MWAA applies Airflow's constraints of {create_version} "
                f"at the creation and of {final_version} after the upgrade"
            )
        elif target != wanted:
            ending = "\n" if line.endswith("\n") else ""
            lines.append(f"--constraint {wanted}{ending}")
            changes.append(f"--constraint {target} is now {wanted}")
        else:
            lines.append(line)
    return RequirementsRewrite(text="".join(lines), changes=changes)


def requirements_rewrite(create_version: str, final_version: str) -> TextRewrite:
    """The rewrite CloneEnvironment applies to the target's copy of requirements.txt."""
    return TextRewrite(
        made_for=f"constraints {create_version} {final_version}",
        apply=lambda text: (
            rewrite_constraints(text, create_version=create_version, final_version=final_version).text
        ),
    )
