"""The configuration tables the plan ships (airflow_config_changes.json) are Airflow 2.11's own, read
from a real installation: a newer Airflow, or an edit by hand, fails this until the file is
written again (`make airflow-config-changes`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from emulation.lambdas import REPO_ROOT
from emulation.real_airflow import AirflowInstallation

pytestmark = pytest.mark.airflow

SHIPPED = REPO_ROOT / "layers/mwaa_migrate/mwaa_migrate/environment/airflow_config_changes.json"


def test_the_shipped_tables_are_what_airflow_2_11_says(
    installations: dict[str, AirflowInstallation], tmp_path: Path
) -> None:
    if "2.11.0" not in installations:
        pytest.skip("Airflow 2.11.0 is not among this run's versions (AIRFLOW_TIER_PAIRS)")
    installation = installations["2.11.0"]
    written = subprocess.run(
        [str(installation.venv / "bin" / "python"), str(REPO_ROOT / "scripts" / "airflow_config_changes.py")],
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert json.loads(written.stdout) == json.loads(SHIPPED.read_text()), "run make airflow-config-changes"
