"""The preflight: ruff's Airflow rules over the source's DAG files, the target's own import errors,
and the onIncompatibleDags policy."""

from __future__ import annotations

import pytest

from mwaa_migrate.environment.dag_compatibility import (
    check_target,
    enforce,
    scan_dag_files,
    target_dag_warnings,
    target_findings,
    warning_lines,
)
from mwaa_migrate.environment.webserver_transport import DagImportError
from mwaa_migrate.errors import IncompatibleDags

AIRFLOW_2_STYLE = """\
from datetime import datetime

from airflow import DAG
from airflow.operators.dummy_operator import DummyOperator
from airflow.operators.python_operator import PythonOperator


def report(**context):
    print(context["execution_date"])


with DAG("old_style", schedule_interval="@daily", start_date=datetime(2024, 1, 1)) as dag:
    DummyOperator(task_id="start")
    PythonOperator(task_id="report", python_callable=report, provide_context=True)
"""

AIRFLOW_3_STYLE = """\
from datetime import datetime

from airflow.sdk import dag, task


@dag(schedule="@daily", start_date=datetime(2024, 1, 1))
def new_style():
    @task
    def report():
        return 1

    report()


new_style()
"""


def test_a_2x_style_dag_has_breaking_findings_by_file_and_line_for_airflow_3():
    result = scan_dag_files(
        {"team/old.py": AIRFLOW_2_STYLE, "new.py": AIRFLOW_3_STYLE}, target_version="3.0.6"
    )
    assert result.checked == "static"
    assert result.files_scanned == 2
    breaking = {(f.file, f.line, f.rule) for f in result.findings if f.breaking}
    assert ("team/old.py", 12, "AIR301") in breaking  # schedule_interval
    assert ("team/old.py", 4, "AIR302") in breaking or ("team/old.py", 13, "AIR302") in breaking
    assert ("team/old.py", 14, "AIR301") in breaking  # provide_context
    assert not [f for f in result.findings if f.file == "new.py"]
    assert result.breaking_count == sum(1 for f in result.findings if f.breaking)
    assert sum(result.by_rule.values()) == result.breaking_count + result.deprecated_count
    # Breaking findings come first.
    assert result.findings[0].breaking


def test_a_2x_target_has_no_static_rules_and_says_so():
    result = scan_dag_files({"old.py": AIRFLOW_2_STYLE}, target_version="2.10.3")
    assert result.checked == "none"
    assert not result.findings
    assert "import errors are checked once it exists" in (result.note or "")


def test_a_key_outside_the_folder_is_never_written_or_scanned(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = scan_dag_files(
        {"../escape.py": AIRFLOW_2_STYLE, "/abs.py": AIRFLOW_2_STYLE}, target_version="3.0.6"
    )
    assert not result.findings
    assert not (tmp_path.parent / "escape.py").exists()


def test_the_target_reports_import_errors_and_missing_dags_as_breaking():
    result = target_findings(
        "2.10.3",
        import_errors={"dags/etl.py": "Traceback ...\nModuleNotFoundError: No module named 'pandas_gbq'"},
        missing_dags=["daily_sales", "daily_sales"],
    )
    assert result.checked == "target"
    assert [(f.file, f.rule) for f in result.findings] == [
        ("dags/etl.py", "import-error"),
        ("daily_sales", "missing-dag"),
    ]
    [error] = [f for f in result.findings if f.rule == "import-error"]
    assert error.message == "ModuleNotFoundError: No module named 'pandas_gbq'"
    assert result.breaking_count == 2


def test_fail_stops_on_breaking_findings_and_warn_does_not():
    result = scan_dag_files({"old.py": AIRFLOW_2_STYLE}, target_version="3.0.6")
    enforce(result, "warn")
    with pytest.raises(
        IncompatibleDags,
        match=r"onIncompatibleDags is fail and \d+ finding\(s\) stop DAGs on Airflow 3\.0\.6, in old\.py",
    ):
        enforce(result, "fail")


def test_fail_lets_deprecations_through():
    only_deprecated = scan_dag_files({"new.py": "from airflow import DAG\n"}, target_version="3.0.6")
    assert only_deprecated.breaking_count == 0
    enforce(only_deprecated, "fail")


def test_the_warning_lines_count_then_name_the_first_findings():
    result = scan_dag_files({"old.py": AIRFLOW_2_STYLE}, target_version="3.0.6")
    lines = warning_lines(result, shown=2)
    assert lines[0].startswith("the source's DAG files: ")
    assert "stop a DAG on Airflow 3.0.6" in lines[0]
    assert len(lines) == 3
    assert lines[1].startswith("old.py:")
    assert warning_lines(scan_dag_files({}, target_version="2.10.3")) == []


class _Target:
    """The target's Airflow as the check sees it: its import errors."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors

    def import_errors(self) -> list[DagImportError]:
        return [DagImportError(filepath=path, error=error) for path, error in self.errors.items()]


def test_the_check_on_the_target_leaves_out_the_projects_own_files():
    target = _Target(
        {
            "/usr/local/airflow/dags/mwaa_migrate_import.py": "ImportError: a project file",
            "/usr/local/airflow/dags/etl.py": "ModuleNotFoundError: No module named 'pandas_gbq'",
        }
    )
    found = check_target(target, target_version="2.10.3", missing_dags=["etl"], policy="warn")  # type: ignore[arg-type]
    assert [(f.file, f.rule) for f in found.findings] == [
        ("/usr/local/airflow/dags/etl.py", "import-error"),
        ("etl", "missing-dag"),
    ]
    assert target_dag_warnings({"dagCompatibility": found.to_event()})[0].startswith(
        "the target: 2 finding(s)"
    )
    assert target_dag_warnings({}) == []


def test_the_check_on_the_target_fails_under_fail_and_passes_a_clean_target():
    broken = _Target({"/usr/local/airflow/dags/etl.py": "SyntaxError: expected ':'"})
    with pytest.raises(IncompatibleDags, match="etl.py"):
        check_target(broken, target_version="2.10.3", missing_dags=[], policy="fail")  # type: ignore[arg-type]
    clean = check_target(_Target({}), target_version="2.10.3", missing_dags=[], policy="fail")  # type: ignore[arg-type]
    assert clean.findings == []


def test_an_import_error_that_quotes_a_secret_reaches_no_one_with_it():
    found = target_findings(
        "2.10.3",
        import_errors={
            "dags/etl.py": "Traceback ...\nValueError: cannot reach postgresql://etl:hunter2@db/x"
        },
        missing_dags=[],
    )
    [finding] = found.findings
    assert "hunter2" not in finding.message
    assert "ValueError: cannot reach" in finding.message
