"""mwaa-migrate in a subprocess against the local emulation: what it prints and its exit codes.

Exit codes: 0 done and succeeded, 1 migration failed, 2 bad arguments, 3 refused, 4 not found,
5 AWS error, 6 still running."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path

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
    running_emulation,
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


def _started_as_eventbridge_would(emulation: Emulation, request: dict[str, object]) -> str:
    """An execution started straight on the state machine (as an EventBridge rule does): no plan first."""
    name = f"direct-{uuid.uuid4().hex[:12]}"
    emulation.sfn().start_execution(
        stateMachineArn=emulation.state_machine_arn(), name=name, input=json.dumps(request)
    )
    return name


def _ended(emulation: Emulation, name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while emulation.run("status", "--local", name).code == 6:
        assert time.monotonic() < deadline, f"{name} did not end in {timeout}s"
        time.sleep(0.3)


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
    assert re.search(rf"^  {SOURCE} through its web server's CLI endpoint: \S", out, re.MULTILINE)
    assert "no static rules for a 2.x target" in out
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


def test_start_of_a_request_the_plan_refuses_exits_3_with_the_plans_message_and_starts_nothing(
    emulation: Emulation,
):
    request = ("--source", "no-such-env", "--target", "x2", "--version", "2.10.3")
    before = {execution["executionArn"] for execution in emulation.executions()}

    plan = emulation.run("plan", "--local", *request)
    started = emulation.run("start", "--local", "--follow", *request)

    assert started.code == 3, started.out + started.err
    assert started.out == ""
    assert _one_error_line(started.err) == _one_error_line(plan.err) + " (nothing was started)"
    assert "sourceEnvironmentName: environment no-such-env does not exist" in started.err
    new = [execution for execution in emulation.executions() if execution["executionArn"] not in before]
    assert len(new) == 2, "the plan's dry run and start's: no migration"
    assert all(json.loads(execution["input"])["dryRun"] is True for execution in new)


def test_start_of_a_downgrade_is_refused_as_its_plan_is_and_starts_nothing(tmp_path: Path):
    # The airflow3 scenario's source runs Airflow 2.10.3: 2.9.2 is a downgrade.
    with running_emulation(tmp_path, "airflow3") as emulation:
        request = ("--source", SOURCE, "--target", "analytics-prod-2-9", "--version", "2.9.2")
        plan = emulation.run("plan", "--local", *request)
        started = emulation.run("start", "--local", *request)
        executions = emulation.executions()

    assert (plan.code, started.code) == (3, 3), started.out + started.err
    assert "a downgrade is not supported" in _one_error_line(plan.err)
    assert _one_error_line(started.err) == _one_error_line(plan.err) + " (nothing was started)"
    assert started.out == ""
    assert [json.loads(execution["input"])["dryRun"] for execution in executions] == [True, True]


def test_a_start_with_a_dry_run_as_input_is_that_dry_run_and_status_and_report_skip_it(
    emulation: Emulation, tmp_path: Path
):
    migration = _started_as_eventbridge_would(
        emulation,
        {
            "sourceEnvironmentName": "no-such-env",
            "targetEnvironmentName": "x3",
            "targetAirflowVersion": "2.10.3",
        },
    )
    _ended(emulation, migration)
    request = tmp_path / "rehearsal.json"
    request.write_text(
        json.dumps(
            {
                "sourceEnvironmentName": SOURCE,
                "targetEnvironmentName": TARGET,
                "targetAirflowVersion": "2.10.3",
                "dryRun": True,
            }
        )
    )
    # Named as a migration would be: only its input says it is a dry run.
    rehearsal = f"rehearsal-{uuid.uuid4().hex[:12]}"

    started = emulation.run("start", "--local", "--input", str(request), "--name", rehearsal)
    _ended(emulation, rehearsal)
    status = emulation.run("status", "--local")
    report = emulation.run("report", "--local")

    assert started.code == 0, started.err
    assert started.out.startswith(f"Started {rehearsal}\n  dry run    nothing changes")
    assert status.code == 1, status.out + status.err
    assert f"Execution {migration}   FAILED" in status.out
    assert report.code == 1, report.err
    assert "is a dry run" not in report.err
    assert report.out.startswith("# Migration no-such-env → x3: FAILED")


def test_plan_json_into_a_pipe_nobody_reads_stops_quietly(emulation: Emulation):
    read, write = os.pipe()
    os.close(read)  # as `| head` does once it has its lines
    try:
        completed = subprocess.run(
            [mwaa_migrate_script(), "plan", "--local", *REQUEST, "--json"],
            env=emulation.env,
            cwd=REPO_ROOT,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        os.close(write)

    assert completed.stderr == ""
    assert completed.returncode == 141


def test_local_up_prints_that_it_is_up_and_the_notifications_only(emulation: Emulation):
    plan = emulation.run("plan", "--local", *REQUEST)
    assert plan.code == 0, plan.err

    lines = emulation.log.read_text().splitlines()

    assert re.match(r"Local emulation of scenario \S+ is up at http://127\.0\.0\.1:\d+ ", lines[0])
    assert not [line for line in lines if "HTTP/1.1" in line], "the server's access log"
    assert not [line for line in lines if line.startswith("{")], "the pipeline's JSON logs"
    assert not [line for line in lines if "Warning" in line]


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ("nonexistent", "no scenario nonexistent: give a path, or one of {names}"),
        ("{tmp}/broken.json", "scenario {tmp}/broken.json cannot be used: "),
    ],
)
def test_a_scenario_that_cannot_be_used_is_a_usage_error_naming_the_ones_that_can(
    emulation: Emulation, tmp_path, scenario, message
):
    (tmp_path / "broken.json").write_text("{not a scenario")
    env = clean_environment(MWAA_MIGRATE_LOCAL_STATE=str(tmp_path / "local.json"))
    result = emulation.run("local", "up", "--scenario", scenario.format(tmp=tmp_path), env=env, timeout=60)

    assert result.code == 2
    names = ", ".join(sorted(path.stem for path in (REPO_ROOT / "scenarios").glob("*.json")))
    assert message.format(tmp=tmp_path, names=names) in _one_error_line(result.err)


def test_local_up_with_a_state_file_it_cannot_write_says_so(emulation: Emulation, tmp_path):
    (tmp_path / "a-file").write_text("")
    env = clean_environment(MWAA_MIGRATE_LOCAL_STATE=str(tmp_path / "a-file" / "local.json"))
    result = emulation.run("local", "up", env=env, timeout=120)

    assert result.code == 2
    assert "set MWAA_MIGRATE_LOCAL_STATE to a file you can write" in _one_error_line(result.err)


def test_make_help_puts_every_description_in_one_column():
    completed = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )

    rows = [re.fullmatch(r"  make (\S+)( +)(\S.*)", line) for line in completed.stdout.splitlines()]
    assert rows, completed.stdout
    assert all(rows), completed.stdout
    columns = {len(row.group(1)) + len(row.group(2)) for row in rows if row}
    assert len(columns) == 1, completed.stdout
    assert min(len(row.group(2)) for row in rows if row) >= 2


# ------------------------------------------------------------------ start, status, follow, report


def test_a_migration_started_then_followed_to_the_end_then_reported(emulation: Emulation):
    started = emulation.run("start", "--local", *REQUEST)
    assert started.code == 0, started.err
    name = _started_name(started.out)
    assert re.search(
        r"^  planned    dry run dryrun-\S+: Airflow 2\.7\.2 -> 2\.10\.3, ", started.out, re.MULTILINE
    ), started.out
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
    assert status.out.startswith(f"Migration {SOURCE} (Airflow 2.7.2) -> {TARGET} (Airflow 2.10.3)\n")

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
    # start refuses what the plan refuses: a migration that fails is one started without it.
    name = _started_as_eventbridge_would(
        emulation,
        {
            "sourceEnvironmentName": "no-such-env",
            "targetEnvironmentName": "x2",
            "targetAirflowVersion": "2.10.3",
        },
    )

    followed = emulation.run("follow", "--local", name, "--interval", "0.3")

    assert followed.code == 1, followed.out + followed.err
    failure, report_line = followed.out.rstrip().splitlines()[-2:]
    assert failure.startswith("Migration FAILED after ")
    assert failure.endswith(
        "InvalidMigrationRequest: PlanMigration: sourceEnvironmentName: environment no-such-env "
        "does not exist"
    )
    assert report_line == f"Report: mwaa-migrate report {name} --local"
    assert re.search(r"^  PlanMigration +failed ", followed.out, re.MULTILINE)

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
