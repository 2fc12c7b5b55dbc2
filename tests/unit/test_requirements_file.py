"""The target's requirements.txt: its constraint made to fit the target's Airflow and Python."""

from __future__ import annotations

import pytest

from mwaa_migrate.environment.requirements_file import airflow_constraints_url, rewrite_constraints

OLD = "https://raw.githubusercontent.com/apache/airflow/constraints-2.7.2/constraints-3.11.txt"


@pytest.mark.parametrize(
    "line",
    [
        f"--constraint {OLD}",
        f'--constraint "{OLD}"',
        f"-c {OLD}",
        f"--constraint={OLD}",
        f"  -c '{OLD}'  # pinned",
    ],
)
def test_every_spelling_of_airflows_constraint_is_set_to_the_target_version(line):
    result = rewrite_constraints(f"{line}\npandas==2.2\n", create_version="2.10.3", final_version="2.10.3")
    assert result.text == f"--constraint {airflow_constraints_url('2.10.3')}\npandas==2.2\n"
    assert result.changes == [f"--constraint {OLD} is now {airflow_constraints_url('2.10.3')}"]
    assert result.changed


def test_the_constraints_follow_the_pythons_mwaa_runs():
    assert airflow_constraints_url("2.11.0").endswith("constraints-2.11.0/constraints-3.11.txt")
    assert airflow_constraints_url("3.0.6").endswith("constraints-3.0.6/constraints-3.12.txt")


def test_a_target_that_becomes_airflow_3_names_no_constraint_so_mwaa_picks_each_versions():
    result = rewrite_constraints(f"-c {OLD}\npandas==2.2\n", create_version="2.11.0", final_version="3.0.6")
    assert result.text == "pandas==2.2\n"
    assert "MWAA applies Airflow's constraints of 2.11.0 at the creation and of 3.0.6" in result.changes[0]


def test_a_users_own_constraints_file_is_kept_with_a_warning():
    text = "-c /usr/local/airflow/dags/constraints-updated.txt\npandas\n"
    result = rewrite_constraints(text, create_version="2.10.3", final_version="2.10.3")
    assert result.text == text
    assert not result.changed
    assert result.changes == [
        "kept the constraints file /usr/local/airflow/dags/constraints-updated.txt: it is not Airflow's own; "
        "check that it fits Airflow 2.10.3"
    ]


def test_a_file_already_right_or_without_a_constraint_is_unchanged():
    right = f"--constraint {airflow_constraints_url('2.10.3')}\npandas\n"
    for text in (right, "pandas\n# --constraint in a comment is no constraint\n", ""):
        result = rewrite_constraints(text, create_version="2.10.3", final_version="2.10.3")
        assert result.text == text
        assert result.changes == []
