"""mwaa-migrate in a subprocess against the local emulation: what it prints and its exit codes.

Exit codes: 0 done and succeeded, 1 migration failed, 2 bad arguments, 3 refused, 4 not found,
5 AWS error, 6 still running."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time

import pytest

from emulation.lambdas import REPO_ROOT
from tests.cli.conftest import (
    SECRET_OPTION,
    SECRET_VALUE,
    SOURCE,
    TARGET,
    Emulation,
    clean_environment,
    mwaa_migrate_script,
)

REQUEST = ("--source", SOURCE, "--target", TARGET, "--version", "2.10.3")


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mwaa-migrate: error: ")
    return lines[0]


def _notified(emulation: Emulation, detail_type: str, name: str, timeout: float = 60) -> str:
    """The line `local up` printed for a notification its EventBridge rule routed to a queue."""
    deadline = time.monotonic() + timeout
    while True:
        for line in emulation.log.read_text().splitlines():
            if line.startswith(f"notification: {detail_type}: ") and line.endswith(f"({name})"):
                return line
        assert time.monotonic() < deadline, f"no {detail_type} notification for {name}"
        time.sleep(0.2)


def _started_name(out: str) -> str:
    match = re.search(r"^Started (\S+)$", out, re.MULTILINE)
    assert match, out
    return match.group(1)


# ------------------------------------------------------------------ plan


def test_plan_shows_the_version_path_the_request_as_a_diff_the_policies_and_the_dags(emulation: Emulation):
    result = emulation.run("plan", "--local", *REQUEST)

    assert result.code == 0, result.err
    out = result.out
    assert out.startswith(f"Plan: {SOURCE} (Airflow 2.7.2) -> {TARGET} (Airflow 2.10.3)\n")
    assert "nothing was changed" in out
    assert f"  1. create {TARGET} on Airflow 2.10.3 (CreateEnvironment)" in out
    assert re.search(r'^  ~ AirflowVersion +"2\.10\.3"   \(source: "2\.7\.2"\)$', out, re.MULTILINE)
    assert re.search(rf'^  ~ Name +"{TARGET}"   \(source: "{SOURCE}"\)$', out, re.MULTILINE)
    assert re.search(rf'^  \+ Tags\.mwaa-migrate:source-environment +"{SOURCE}"$', out, re.MULTILINE)
    assert re.search(r'^    EnvironmentClass +"mw1\.medium"$', out, re.MULTILINE)
    assert f"inline policy mwaa-migrate-{SOURCE}.{TARGET}-export" in out
    assert f"mwaa_migrate_export on {SOURCE}: s3://airflow-analytics-prod/dags/" in out
    assert f"Start it: mwaa-migrate start --source {SOURCE} --target {TARGET} --version 2.10.3" in out
    assert out.rstrip().endswith("--local")

    dry_run = re.search(r"^Dry run (dryrun-\S+): nothing was changed\.$", out, re.MULTILINE)
    assert dry_run
    no_report = emulation.run("report", "--local", dry_run.group(1))
    assert no_report.code == 4
    assert "is a dry run: it writes no report, its plan is its output" in _one_error_line(no_report.err)


def test_a_plan_never_shows_a_sensitive_value(emulation: Emulation):
    text = emulation.run("plan", "--local", *REQUEST)
    as_json = emulation.run("plan", "--local", *REQUEST, "--json")

    assert (text.code, as_json.code) == (0, 0)
    assert re.search(
        rf'^    AirflowConfigurationOptions\.{SECRET_OPTION} +"\*\*\*\*"$', text.out, re.MULTILINE
    )
    plan = json.loads(as_json.out)
    assert plan["target"]["createRequest"]["AirflowConfigurationOptions"][SECRET_OPTION] == "****"
    assert SECRET_VALUE not in text.out + text.err + as_json.out + as_json.err


def test_two_plans_of_the_same_request_started_at_once_both_succeed(emulation: Emulation):
    plans = [
        subprocess.Popen(
            [mwaa_migrate_script(), "plan", "--local", *REQUEST, "--json"],
            env=emulation.env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(plan.wait(timeout=180), *plan.communicate()) for plan in plans]

    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    assert all(json.loads(out)["dryRun"] is True for _, out, _ in results)


def test_plan_takes_the_eventbridge_example_as_input(emulation: Emulation):
    result = emulation.run(
        "plan", "--local", "--input", "events/eventbridge_migration_requested.json", "--json"
    )

    assert result.code == 0, result.err
    plan = json.loads(result.out)
    assert (plan["source"]["name"], plan["target"]["name"], plan["dryRun"]) == (SOURCE, TARGET, True)


def test_a_plan_the_pipeline_refuses_exits_3_with_its_reason(emulation: Emulation):
    result = emulation.run(
        "plan", "--local", "--source", "no-such-env", "--target", "x2", "--version", "2.10.3"
    )

    assert result.code == 3
    line = _one_error_line(result.err)
    assert "InvalidMigrationRequest" in line
    assert "sourceEnvironmentName: environment no-such-env does not exist" in line


def test_input_that_breaks_a_rule_is_refused_before_anything_starts(emulation: Emulation):
    result = emulation.run("start", "--local", "--source", SOURCE, "--target", SOURCE, "--version", "2.10.3")

    assert result.code == 3
    line = _one_error_line(result.err)
    assert "targetEnvironmentName must differ from sourceEnvironmentName" in line
    assert line.endswith("(nothing was started)")
    assert result.out == ""


# ------------------------------------------------------------------ start, status, follow, report


def test_a_migration_started_then_followed_to_the_end_then_reported(emulation: Emulation):
    started = emulation.run("start", "--local", *REQUEST)
    assert started.code == 0, started.err
    name = _started_name(started.out)
    assert f"Follow it:   mwaa-migrate follow {name} --local" in started.out

    # Creating the target takes a few polls: meanwhile it is running, and has no report yet.
    running = emulation.run("status", "--local", name)
    assert running.code == 6, running.out + running.err
    assert f"Execution {name}   RUNNING" in running.out
    assert running.out.rstrip().endswith(f"Still RUNNING. Follow it: mwaa-migrate follow {name} --local")
    no_report_yet = emulation.run("report", "--local", name)
    assert no_report_yet.code == 6
    assert "is still RUNNING: its report is written when it ends" in _one_error_line(no_report_yet.err)

    followed = emulation.run("follow", "--local", name, "--interval", "0.3")
    assert followed.code == 0, followed.out + followed.err
    assert re.search(r"^  \+ +[\d.:s]+  PlanMigration$", followed.out, re.MULTILINE)
    assert re.search(r"^  \+ +[\d.:s]+    CloneEnvironment$", followed.out, re.MULTILINE), (
        "nested in the Parallel"
    )
    assert re.search(r"^  FinishMigration +succeeded ", followed.out, re.MULTILINE)
    assert re.search(r"^    WaitForTarget +succeeded +x\d+ ", followed.out, re.MULTILINE)
    last = followed.out.rstrip().splitlines()[-1]
    assert last.startswith("Migration SUCCEEDED in ")
    assert last.endswith(f"mwaa-migrate report {name} --local")

    status = emulation.run("status", "--local")
    assert status.code == 0
    assert f"Execution {name}   SUCCEEDED" in status.out, "without a name: the latest migration"

    report = emulation.run("report", "--local", name)
    assert report.code == 0, report.err
    markdown = report.out
    assert markdown.startswith(f"# Migration {SOURCE} → {TARGET}: SUCCEEDED\n")
    assert "| Setting | Change | Source | Target |" in markdown
    assert "| AirflowVersion | changed | 2.7.2 | 2.10.3 |" in markdown
    # Table | Source rows | Read | Inserted | Updated | Already in target | Rejected | In target
    assert re.search(r"^\| variable \| 3 \| 3 \| \d+ \| \d+ \| \d+ \| 0 \| 3 \|$", markdown, re.MULTILINE)
    assert "## Logs copied" in markdown
    assert re.search(r"^\| PlanMigration \| Task \| 1 \| [\d.]+s \| succeeded \|$", markdown, re.MULTILINE)
    assert SECRET_VALUE not in markdown

    as_json = emulation.run("report", "--local", name, "--json")
    assert as_json.code == 0
    report_data = json.loads(as_json.out)
    assert report_data["status"] == "SUCCEEDED"
    assert {table["table"] for table in report_data["tables"]} >= {"variable", "dag_run"}
    assert [step["state"] for step in report_data["steps"]][:2] == ["PlanMigration", "GrantPermissions"]

    # A team's EventBridge rule got both ends of the migration (the emulation prints what it routes).
    assert _notified(emulation, "Migration Started", name) == (
        f"notification: Migration Started: {SOURCE} -> {TARGET} ({name})"
    )
    _notified(emulation, "Migration Succeeded", name)
    assert SECRET_VALUE not in emulation.log.read_text()


def test_a_failed_migration_exits_1_from_follow_status_and_report(emulation: Emulation):
    started = emulation.run(
        "start",
        "--local",
        "--follow",
        "--interval",
        "0.3",
        "--source",
        "no-such-env",
        "--target",
        "x2",
        "--version",
        "2.10.3",
    )

    assert started.code == 1, started.out + started.err
    name = _started_name(started.out)
    last = started.out.rstrip().splitlines()[-1]
    assert last.startswith("Migration FAILED after ")
    assert "InvalidMigrationRequest: PlanMigration: sourceEnvironmentName: environment no-such-env" in last
    assert last.endswith(f"does not exist Report: mwaa-migrate report {name} --local")
    assert re.search(r"^  PlanMigration +failed ", started.out, re.MULTILINE)

    status = emulation.run("status", "--local", name)
    assert status.code == 1
    report = emulation.run("report", "--local", name)
    assert report.code == 1
    assert "State `PlanMigration` failed with `InvalidMigrationRequest`:" in report.out
    assert _notified(emulation, "Migration Failed", name).startswith(
        "notification: Migration Failed: no-such-env -> x2"
    )


# ------------------------------------------------------------------ errors: one line, a meaningful code


def test_an_unknown_execution_is_not_found(emulation: Emulation):
    result = emulation.run("status", "--local", "no-such-execution")

    assert result.code == 4
    assert "ExecutionDoesNotExist" in _one_error_line(result.err)


def test_an_unknown_stack_is_not_found(emulation: Emulation):
    result = emulation.run("status", "--local", "--stack-name", "other-stack")

    assert result.code == 4
    assert "stack other-stack not found in us-east-1" in _one_error_line(result.err)


def test_local_without_a_running_emulation_says_how_to_start_one(emulation: Emulation, tmp_path):
    env = clean_environment(MWAA_MIGRATE_LOCAL_STATE=str(tmp_path / "none.json"))
    result = emulation.run("status", "--local", env=env)

    assert result.code == 4
    assert "start one with: mwaa-migrate local up" in _one_error_line(result.err)


def test_without_credentials_the_error_says_how_to_get_them(emulation: Emulation, tmp_path):
    env = clean_environment(
        HOME=str(tmp_path),
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
    )
    result = emulation.run("status", "--region", "us-east-1", env=env)

    assert result.code == 5
    line = _one_error_line(result.err)
    assert "no AWS credentials" in line
    assert "--profile" in line


def test_without_a_region_the_error_says_where_to_set_one(emulation: Emulation, tmp_path):
    env = clean_environment(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "config"))
    result = emulation.run("status", env=env)

    assert result.code == 5
    assert "no AWS region: pass --region, set AWS_REGION" in _one_error_line(result.err)


def test_a_profile_that_does_not_exist_is_a_usage_error(emulation: Emulation, tmp_path):
    env = clean_environment(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "config"))
    result = emulation.run("status", "--profile", "nope", "--region", "eu-west-1", env=env)

    assert result.code == 2
    assert "nope" in _one_error_line(result.err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("status", "--local", "--profile", "x"), "--local and --profile cannot be used together"),
        (("start", "--local", "--input", "no-such-file.json"), "cannot read no-such-file.json"),
        (("plan", "--local", "--input", "README.md"), "README.md is not JSON"),
    ],
)
def test_bad_arguments_exit_2(emulation: Emulation, args, message):
    result = emulation.run(*args)

    assert result.code == 2
    assert message in _one_error_line(result.err)


def test_local_up_on_a_port_in_use_says_so(emulation: Emulation, tmp_path):
    env = clean_environment(MWAA_MIGRATE_LOCAL_STATE=str(tmp_path / "local.json"))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = emulation.run("local", "up", "--port", str(taken.getsockname()[1]), env=env, timeout=60)

    assert result.code == 2
    assert "cannot listen on 127.0.0.1:" in _one_error_line(result.err)
    assert not (tmp_path / "local.json").exists()


# ------------------------------------------------------------------ the cutover by hand


def _wait_for(emulation: Emulation, name: str, text: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = emulation.run("status", "--local", name)
        if text in status.out:
            return status.out
        assert time.monotonic() < deadline, status.out + status.err
        time.sleep(0.5)


def test_an_approved_cutover_runs_and_a_rollback_gives_the_dags_back(fresh_emulation: Emulation):
    emulation = fresh_emulation
    started = emulation.run("start", "--local", *REQUEST, "--cutover", "approve")
    assert started.code == 0, started.err
    name = _started_name(started.out)
    waiting = _wait_for(emulation, name, "Waiting for approval")
    assert f"mwaa-migrate approve {name}" in waiting

    approved = emulation.run("approve", "--local", name)
    followed = emulation.run("follow", "--local", name, "--interval", "0.3")
    again = emulation.run("approve", "--local", name)
    rolled_back = emulation.run("rollback", "--local", name, "--yes")

    assert approved.code == 0, approved.err
    assert approved.out.startswith(f"Approved {name}")
    assert followed.code == 0, followed.out + followed.err
    assert again.code == 3
    assert "is not waiting for approval" in _one_error_line(again.err)
    assert rolled_back.code == 0, rolled_back.err
    assert rolled_back.out.startswith(f"Rolled back: the source {SOURCE} runs its 2 recorded DAGs again")


def test_a_rejected_cutover_ends_the_migration_with_the_source_untouched(fresh_emulation: Emulation):
    emulation = fresh_emulation
    name = _started_name(emulation.run("start", "--local", *REQUEST, "--cutover", "approve").out)
    _wait_for(emulation, name, "Waiting for approval")

    rejected = emulation.run("reject", "--local", name, "--reason", "not tonight")
    followed = emulation.run("follow", "--local", name, "--interval", "0.3")
    report = emulation.run("report", "--local", name)

    assert rejected.code == 0, rejected.err
    assert followed.code == 1
    assert "CutoverRejected" in followed.out
    assert f"**The source {SOURCE} runs the DAGs: this migration never paused them.**" in report.out
