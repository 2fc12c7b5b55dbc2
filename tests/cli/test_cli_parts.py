"""The command's parts in process: the request it builds, the names it gives, the diff it shows, the
view it draws, and how AWS errors become exit codes."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from mwaa_migrate.errors import MigrationConflict
from mwaa_migrate.execution import StepTiming, new_execution_name
from mwaa_migrate.run.cutover import Settlement
from mwaa_migrate_cli import arguments, cutover, executions, main, plan_view, progress, request_args
from mwaa_migrate_cli.aws import _client_error
from mwaa_migrate_cli.errors import CliError, ExitCode

STARTED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _args(*argv: str):
    return arguments.build_parser().parse_args(argv)


# ------------------------------------------------------------------ the request


def test_flags_override_the_input_file(tmp_path: Path):
    request_file = tmp_path / "request.json"
    request_file.write_text(
        json.dumps(
            {
                "sourceEnvironmentName": "prod",
                "targetEnvironmentName": "prod-2",
                "targetAirflowVersion": "2.9.2",
            }
        )
    )

    request = request_args.migration_request(
        _args("start", "--input", str(request_file), "--version", "2.10.3", "--log-days", "7"), dry_run=False
    )

    assert request["targetAirflowVersion"] == "2.10.3"
    assert (request["sourceEnvironmentName"], request["logDays"], request["dryRun"]) == ("prod", 7, False)


def test_an_eventbridge_event_file_gives_its_detail():
    request = request_args.migration_request(
        _args("plan", "--input", "events/eventbridge_migration_requested.json"), dry_run=True
    )

    assert (request["sourceEnvironmentName"], request["dryRun"]) == ("analytics-prod", True)


def test_a_request_breaking_a_rule_is_refused_with_every_field_named():
    with pytest.raises(CliError) as refused:
        request_args.migration_request(
            _args("start", "--source", "1bad", "--target", "ok", "--version", "9.9.9"), dry_run=False
        )

    assert refused.value.code == ExitCode.REFUSED
    assert "sourceEnvironmentName" in str(refused.value)
    assert "targetAirflowVersion" in str(refused.value)


def test_execution_names_fit_step_functions_limit_even_for_the_longest_environment_names():
    long = "a" * 80
    name = executions.execution_name(
        {"sourceEnvironmentName": long, "targetEnvironmentName": "b" * 80}, prefix="dryrun-"
    )

    assert len(name) <= 80
    assert name.startswith("dryrun-aaaa")
    assert "-to-bbbb" in name


def test_two_names_made_in_the_same_millisecond_differ_and_names_sort_by_time():
    moment = datetime(2026, 12, 2, 2, 58, 7, 123000, tzinfo=UTC)
    first = new_execution_name("analytics-prod", "analytics-prod-2-10", prefix="dryrun-", at=moment)
    second = new_execution_name("analytics-prod", "analytics-prod-2-10", prefix="dryrun-", at=moment)
    later = new_execution_name(
        "analytics-prod", "analytics-prod-2-10", prefix="dryrun-", at=moment.replace(second=8)
    )

    assert first != second
    assert first.startswith("dryrun-analytics-prod-to-analytics-prod-2-10-20261202T025807123Z-")
    assert max(first, second) < later
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name) for name in (first, second, later))


@dataclass
class _Machine:
    """What `_start` needs of a Pipeline: a state machine in moto's Step Functions."""

    sfn: Any
    state_machine_arn: str

    def execution_arn(self, name: str) -> str:
        return self.state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name


@pytest.fixture
def machine() -> Iterator[_Machine]:
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="mwaa-migrate-migration",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        yield _Machine(sfn, arn)


def test_two_starts_of_the_same_request_within_one_second_both_start(machine: _Machine):
    request = {"sourceEnvironmentName": "analytics-prod", "targetEnvironmentName": "analytics-prod-2-10"}
    moment = datetime(2026, 12, 2, 2, 58, 7, tzinfo=UTC)
    with mock.patch("mwaa_migrate.execution.now", return_value=moment):
        arns = [
            executions.start_execution(machine, executions.execution_name(request), request) for _ in range(2)
        ]  # type: ignore[arg-type]

    assert arns[0] != arns[1]
    listed = machine.sfn.list_executions(stateMachineArn=machine.state_machine_arn)["executions"]
    assert sorted(execution["executionArn"] for execution in listed) == sorted(arns)


def test_a_start_under_a_name_that_exists_says_its_status_and_what_to_do(machine: _Machine):
    request = {"sourceEnvironmentName": "analytics-prod", "targetEnvironmentName": "analytics-prod-2-10"}
    executions.start_execution(machine, "nightly", request)  # type: ignore[arg-type]

    with pytest.raises(CliError) as refused:
        executions.start_execution(machine, "nightly", request)  # type: ignore[arg-type]

    assert refused.value.code == ExitCode.REFUSED
    status = machine.sfn.describe_execution(executionArn=machine.execution_arn("nightly"))["status"]
    assert refused.value.line.startswith(f"execution nightly already exists ({status}, started ")
    assert "mwaa-migrate status nightly" in refused.value.line


# ------------------------------------------------------------------ the plan's diff


def test_the_request_diff_marks_each_setting_and_hides_secrets():
    source = {"Name": "prod", "MaxWorkers": 10, "AirflowConfigurationOptions": {"smtp.smtp_password": "pw"}}
    request = {
        "Name": "prod-2",
        "MaxWorkers": 10,
        "AirflowConfigurationOptions": {"smtp.smtp_password": "pw"},
        "Tags": {"mwaa-migrate:source-environment": "prod"},
    }

    lines = plan_view.request_diff(source, request)

    assert lines == [
        '    AirflowConfigurationOptions.smtp.smtp_password  "****"',
        "    MaxWorkers                                      10",
        '  ~ Name                                            "prod-2"   (source: "prod")',
        '  + Tags.mwaa-migrate:source-environment            "prod"',
    ]


# ------------------------------------------------------------------ the view


def _snapshot(status: str, steps: list[StepTiming], **extra) -> progress.Snapshot:
    return progress.Snapshot(
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:m:run-1",
        name="run-1",
        status=status,
        started=STARTED,
        stopped=STARTED + timedelta(seconds=75) if status != "RUNNING" else None,
        request={
            "sourceEnvironmentName": "prod",
            "targetEnvironmentName": "prod-2",
            "targetAirflowVersion": "2.10.3",
        },
        steps=steps,
        depths={"Prepare": 0, "CheckTarget": 1},
        **extra,
    )


def _step(state: str, status: str, seconds: float, runs: int = 1, **extra) -> StepTiming:
    return StepTiming(
        state=state,
        type="Task",
        runs=runs,
        seconds=seconds,
        status=status,
        first_entered_at=STARTED.isoformat(),
        **extra,
    )


def test_the_view_nests_branches_and_shows_status_runs_and_time():
    snapshot = _snapshot(
        "FAILED",
        [
            _step("Prepare", "failed", 70),
            _step("CheckTarget", "failed", 3, runs=4, retries=1, error="EnvironmentFailed"),
        ],
        error="EnvironmentFailed",
        cause="CheckTarget: CREATE_FAILED",
    )

    assert progress.render(snapshot) == [
        "Migration prod -> prod-2 (Airflow 2.10.3)",
        "Execution run-1   FAILED   0:01:15",
        "",
        "  Prepare                            failed            0:01:10",
        "    CheckTarget                      failed       x4      3.0s  (retried 1, EnvironmentFailed)",
    ]
    assert progress.closing(snapshot, flags=" --local").splitlines() == [
        "Migration FAILED after 0:01:15: EnvironmentFailed: CheckTarget: CREATE_FAILED",
        "Report: mwaa-migrate report run-1 --local",
    ]
    assert progress.exit_code(snapshot.status) == ExitCode.MIGRATION_FAILED


def test_a_terminal_gets_each_view_drawn_over_the_last():
    screen = io.StringIO()
    drawer = progress._Screen(screen)

    drawer.draw(["a", "b", "c"])
    drawer.draw(["a", "b"])

    assert screen.getvalue() == "a\nb\nc\n" + "\x1b[3F\x1b[J" + "a\nb\n"


def test_state_depths_follow_parallel_branches_and_maps():
    definition = {
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [{"States": {"A": {}, "M": {"ItemProcessor": {"States": {"X": {}}}}}}],
            },
            "Z": {},
        }
    }
    assert progress.state_depths(definition) == {"P": 0, "A": 1, "M": 1, "X": 2, "Z": 0}


@pytest.mark.parametrize(
    ("status", "code"), [("SUCCEEDED", 0), ("FAILED", 1), ("ABORTED", 1), ("RUNNING", 6)]
)
def test_the_exit_code_says_how_the_migration_stands(status, code):
    assert progress.exit_code(status) == code


# ------------------------------------------------------------------ AWS errors


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        ("ExecutionDoesNotExist", ExitCode.NOT_FOUND),
        ("NoSuchKey", ExitCode.NOT_FOUND),
        ("ExecutionAlreadyExists", ExitCode.REFUSED),
        ("AccessDeniedException", ExitCode.AWS_ERROR),
        ("ThrottlingException", ExitCode.AWS_ERROR),
    ],
)
def test_aws_errors_become_one_line_and_a_code(code, exit_code):
    error = ClientError({"Error": {"Code": code, "Message": "it\nhappened"}}, "DescribeExecution")

    converted = _client_error(error, "reading execution x")

    assert converted.code == exit_code
    assert converted.line.startswith(f"reading execution x: {code}: it happened")


def test_log_group_flags_become_the_request_lists_and_back():
    request = request_args.migration_request(
        _args(
            "plan",
            "--source",
            "a",
            "--target",
            "b",
            "--version",
            "2.10.3",
            "--log-groups",
            "Task, Scheduler",
            "--failed-tasks-only",
        ),
        dry_run=True,
    )

    assert (request["logGroups"], request["failedTasksOnly"]) == (["Task", "Scheduler"], True)
    assert request_args.request_flags(request)[-2:] == ["--log-groups Task,Scheduler", "--failed-tasks-only"]


def test_no_log_groups_is_an_empty_list():
    request = request_args.migration_request(
        _args("start", "--source", "a", "--target", "b", "--version", "2.10.3", "--log-groups", ""),
        dry_run=False,
    )
    assert request["logGroups"] == []
    assert "--log-groups ''" in request_args.request_flags(request)


def test_a_view_taller_than_the_terminal_keeps_the_heading_and_the_latest_states(monkeypatch):
    # 13 rows: 5 kept for the closing lines below the view, 7 for the view.
    monkeypatch.setattr(progress.shutil, "get_terminal_size", lambda: os.terminal_size((80, 13)))
    screen = io.StringIO()

    progress._Screen(screen).draw(["h1", "h2", "", *[f"s{n}" for n in range(10)]])

    assert screen.getvalue().splitlines() == ["h1", "h2", "", "  ... 7 earlier states ...", "s7", "s8", "s9"]


def test_lines_above_the_view_count_the_rows_the_terminal_wraps_them_into(monkeypatch):
    monkeypatch.setattr(progress.shutil, "get_terminal_size", lambda: os.terminal_size((80, 24)))
    assert progress.rows(["short", "x" * 80, "y" * 81, ""]) == 1 + 1 + 2 + 1


def test_the_view_keeps_below_what_start_printed_before_it(monkeypatch):
    monkeypatch.setattr(progress.shutil, "get_terminal_size", lambda: os.terminal_size((80, 17)))
    screen = io.StringIO()

    # `start --follow` printed 4 lines (Started, planned, execution, a blank one) and 5 are kept for
    # the closing lines: 7 are left.
    progress._Screen(screen, above=4).draw(["h1", "h2", "", *[f"s{n}" for n in range(10)]])

    assert screen.getvalue().splitlines() == ["h1", "h2", "", "  ... 7 earlier states ...", "s7", "s8", "s9"]


# ------------------------------------------------------------------ approve, reject, rollback

TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAVsecret-task-token-never-printed"
RUN = "arn:aws:states:us-east-1:123456789012:execution:mwaa-migrate-migration:run-1"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:mwaa-migrate-migration"


def _event(event_id: int, kind: str, previous: int, **details: Any) -> dict[str, Any]:
    return {"id": event_id, "type": kind, "previousEventId": previous, "timestamp": STARTED, **details}


def _scheduled(event_id: int, previous: int, token: str) -> dict[str, Any]:
    parameters = {
        "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:await",
        "Payload": {"executionId": RUN, "taskToken": token},
    }
    return _event(
        event_id,
        "TaskScheduled",
        previous,
        taskScheduledEventDetails={
            "resourceType": "lambda",
            "resource": "invoke.waitForTaskToken",
            "region": "us-east-1",
            "parameters": json.dumps(parameters),
        },
    )


def _waiting_history(token: str = TOKEN) -> list[dict[str, Any]]:
    """An execution in AwaitApproval, as Step Functions records it: the Lambda was invoked (TaskSubmitted)."""
    return [
        _event(1, "ExecutionStarted", 0),
        _event(2, "TaskStateEntered", 1, stateEnteredEventDetails={"name": "CheckImportRun"}),
        _event(3, "TaskStateExited", 2, stateExitedEventDetails={"name": "CheckImportRun"}),
        _event(4, "TaskStateEntered", 3, stateEnteredEventDetails={"name": "AwaitApproval"}),
        _scheduled(5, 4, token),
        _event(6, "TaskStarted", 5),
        _event(7, "TaskSubmitted", 6),
    ]


def test_the_token_is_the_latest_scheduling_of_the_approval_wait():
    history = _waiting_history("first-token")
    history += [
        _event(8, "TaskFailed", 7, taskFailedEventDetails={"error": "Lambda.ServiceException"}),
        _scheduled(9, 8, TOKEN),
        _event(10, "TaskStarted", 9),
    ]

    wait = cutover.approval_wait(history)

    assert (wait.waiting, wait.token, wait.current_state) == (True, TOKEN, "AwaitApproval")
    assert TOKEN not in repr(wait)


def test_an_answered_wait_has_no_token_and_names_the_state_after_it():
    history = _waiting_history()
    history += [
        _event(8, "TaskSucceeded", 7),
        _event(9, "TaskStateExited", 8, stateExitedEventDetails={"name": "AwaitApproval"}),
        _event(10, "PassStateEntered", 9, stateEnteredEventDetails={"name": "StartCutoverExportTrigger"}),
    ]

    wait = cutover.approval_wait(history)

    assert (wait.token, wait.current_state) == (None, "StartCutoverExportTrigger")


@dataclass
class _Pipeline:
    """What the cutover commands need of a Pipeline: stubbed clients and where things are."""

    sfn: Any
    sts: Any
    s3: Any = None
    mwaa: Any = None
    local: bool = False
    bucket: str = "stack-bucket"
    state_machine_arn: str = MACHINE

    def execution_arn(self, name: str) -> str:
        return (
            name if name.startswith("arn:") else MACHINE.replace(":stateMachine:", ":execution:") + ":" + name
        )


@pytest.fixture
def stubbed() -> Iterator[tuple[_Pipeline, Stubber, Stubber]]:
    sfn = boto3.client(
        "stepfunctions", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(sfn) as sfn_stub, Stubber(sts) as sts_stub:
        yield _Pipeline(sfn=sfn, sts=sts), sfn_stub, sts_stub
        sfn_stub.assert_no_pending_responses()
        sts_stub.assert_no_pending_responses()


def _described(status: str) -> dict[str, Any]:
    return {
        "executionArn": RUN,
        "stateMachineArn": MACHINE,
        "name": "run-1",
        "status": status,
        "startDate": STARTED,
    }


def _expect_wait(sfn_stub: Stubber, history: list[dict[str, Any]], status: str = "RUNNING") -> None:
    sfn_stub.add_response("describe_execution", _described(status), {"executionArn": RUN})
    if status == "RUNNING":
        sfn_stub.add_response(
            "get_execution_history", {"events": history}, {"executionArn": RUN, "includeExecutionData": True}
        )


def test_approve_answers_the_wait_with_who_approved_and_when(stubbed):
    pipeline, sfn_stub, sts_stub = stubbed
    _expect_wait(sfn_stub, _waiting_history())
    me = "arn:aws:sts::123456789012:assumed-role/operator/ana"
    sts_stub.add_response("get_caller_identity", {"Arn": me, "UserId": "AROA:ana", "Account": "123456789012"})
    output = json.dumps({"approvedBy": me, "at": STARTED.isoformat()})
    sfn_stub.add_response("send_task_success", {}, {"taskToken": TOKEN, "output": output})

    name = cutover.approve(pipeline, RUN, at=STARTED)  # type: ignore[arg-type]

    assert name == "run-1"


def test_reject_fails_the_wait_with_cutover_rejected_and_the_reason(stubbed):
    pipeline, sfn_stub, _ = stubbed
    _expect_wait(sfn_stub, _waiting_history())
    sfn_stub.add_response(
        "send_task_failure", {}, {"taskToken": TOKEN, "error": "CutoverRejected", "cause": "freeze week"}
    )

    assert cutover.reject(pipeline, RUN, reason="freeze week") == "run-1"  # type: ignore[arg-type]


def test_an_execution_that_ended_is_not_waiting_for_approval(stubbed):
    pipeline, sfn_stub, _ = stubbed
    _expect_wait(sfn_stub, [], status="SUCCEEDED")

    with pytest.raises(CliError) as refused:
        cutover.approve(pipeline, RUN)  # type: ignore[arg-type]

    assert (refused.value.code, refused.value.line) == (
        ExitCode.REFUSED,
        "run-1 is not waiting for approval (state SUCCEEDED)",
    )


def test_a_running_execution_past_its_approval_says_which_state_it_is_in(stubbed):
    pipeline, sfn_stub, _ = stubbed
    history = [
        *_waiting_history(),
        _event(8, "TaskSucceeded", 7),
        _event(9, "TaskStateExited", 8, stateExitedEventDetails={"name": "AwaitApproval"}),
        _event(10, "TaskStateEntered", 9, stateEnteredEventDetails={"name": "TriggerCutoverExport"}),
    ]
    _expect_wait(sfn_stub, history)

    with pytest.raises(CliError) as refused:
        cutover.reject(pipeline, RUN, reason="no")  # type: ignore[arg-type]

    assert refused.value.line == "run-1 is not waiting for approval (state TriggerCutoverExport)"


def test_a_wait_that_timed_out_meanwhile_is_refused_without_quoting_the_token(stubbed, capsys):
    pipeline, sfn_stub, _ = stubbed
    _expect_wait(sfn_stub, _waiting_history())
    sfn_stub.add_client_error("send_task_failure", "TaskTimedOut", f"Task Timed Out: '{TOKEN}'")

    with mock.patch.object(main, "_pipeline", return_value=pipeline):
        code = main.main(["reject", RUN, "--reason", "late"])

    captured = capsys.readouterr()
    assert code == ExitCode.REFUSED
    assert (
        captured.err.strip() == "mwaa-migrate: error: run-1 is no longer waiting for approval (TaskTimedOut)"
    )
    assert TOKEN not in captured.out + captured.err


def test_the_approve_command_prints_what_happens_next_and_never_the_token(stubbed, capsys):
    pipeline, sfn_stub, _ = stubbed
    pipeline.local = True  # the emulation's approver is "local": no identity call
    _expect_wait(sfn_stub, _waiting_history())
    sfn_stub.add_response("send_task_success", {}, None)

    with mock.patch.object(main, "_pipeline", return_value=pipeline):
        code = main.main(["approve", RUN, "--local"])

    captured = capsys.readouterr()
    assert code == ExitCode.OK
    assert captured.out.startswith("Approved run-1: the cutover starts")
    assert "mwaa-migrate follow run-1 --local" in captured.out
    assert TOKEN not in captured.out + captured.err


def _planned_history() -> list[dict[str, Any]]:
    plan = {
        "migrationId": "prod-to-prod-2",
        "bucket": "migration-bucket",
        "prefix": "migrations/prod/prod-2",
        "source": {"name": "prod"},
        "target": {"name": "prod-2"},
    }
    return [
        _event(1, "ExecutionStarted", 0),
        _event(2, "TaskStateEntered", 1, stateEnteredEventDetails={"name": "PlanMigration"}),
        _event(
            3,
            "TaskStateExited",
            2,
            stateExitedEventDetails={"name": "PlanMigration", "output": json.dumps({"plan": plan})},
        ),
    ]


def test_rollback_reads_the_migration_from_the_executions_plan():
    assert cutover.planned(_planned_history()) == cutover.Migration(
        source="prod", target="prod-2", bucket="migration-bucket", prefix="migrations/prod/prod-2"
    )


def test_rollback_without_a_terminal_to_ask_on_needs_yes(capsys):
    pipeline = _Pipeline(sfn=None, sts=None)

    with (
        mock.patch.object(main, "_pipeline", return_value=pipeline),
        mock.patch("sys.stdin", io.StringIO("")),
    ):
        code = main.main(["rollback", "--source", "prod", "--target", "prod-2"])

    assert code == ExitCode.USAGE
    assert "pass --yes to confirm" in capsys.readouterr().err


def test_rollback_answered_with_end_of_input_changes_nothing(capsys):
    pipeline = _Pipeline(sfn=None, sts=None)
    terminal = mock.Mock(isatty=mock.Mock(return_value=True))

    with (
        mock.patch.object(main, "_pipeline", return_value=pipeline),
        mock.patch("sys.stdin", terminal),
        mock.patch("builtins.input", side_effect=EOFError),
    ):
        code = main.main(["rollback", "--source", "prod", "--target", "prod-2"])

    assert code == ExitCode.OK
    assert capsys.readouterr().out.endswith("Nothing was changed.\n")


def test_rollback_with_yes_moves_the_dags_back_through_both_environments_cli(capsys):
    pipeline = _Pipeline(sfn=None, sts=None, s3=object(), mwaa=object(), local=True)
    settlement = Settlement(
        running="source", line="Rolled back: the source prod runs its 2 recorded DAGs again."
    )

    with (
        mock.patch.object(main, "_pipeline", return_value=pipeline),
        mock.patch("mwaa_migrate.run.cutover.rollback", return_value=settlement) as rollback,
    ):
        code = main.main(["rollback", "--source", "prod", "--target", "prod-2", "--yes", "--local"])

    assert code == ExitCode.OK
    assert capsys.readouterr().out.strip() == settlement.line
    called = rollback.call_args.kwargs
    assert (called["bucket"], called["prefix"], called["source"], called["target"]) == (
        "stack-bucket",
        "migrations/prod/prod-2",
        "prod",
        "prod-2",
    )
    assert (called["source_cli"].environment_name, called["target_cli"].environment_name) == (
        "prod",
        "prod-2",
    )
    assert called["source_cli"]._scheme == "http"


def test_rollback_of_nothing_recorded_is_refused(capsys):
    pipeline = _Pipeline(sfn=None, sts=None, s3=object(), mwaa=object())
    conflict = MigrationConflict("no cutover was recorded for prod -> prod-2: nothing to roll back")

    with (
        mock.patch.object(main, "_pipeline", return_value=pipeline),
        mock.patch("mwaa_migrate.run.cutover.rollback", side_effect=conflict),
    ):
        code = main.main(["rollback", "--source", "prod", "--target", "prod-2", "--yes"])

    assert code == ExitCode.REFUSED
    assert "nothing to roll back" in capsys.readouterr().err


def test_status_of_a_migration_waiting_for_approval_gives_the_commands():
    snapshot = _snapshot("RUNNING", [_step("AwaitApproval", "running", 600)])

    line = progress.closing(snapshot, flags=" --region eu-west-1")

    assert line.startswith("Waiting for approval in AwaitApproval")
    assert "mwaa-migrate approve run-1 --region eu-west-1" in line
    assert "mwaa-migrate reject run-1 --region eu-west-1" in line


def test_the_incompatible_dags_flag_becomes_the_request_field_and_back():
    args = _args("start", "--source", "prod", "--target", "prod-3", "--version", "3.0.6")
    default = request_args.migration_request(args, dry_run=False)
    assert default["onIncompatibleDags"] == "warn"
    assert not [flag for flag in request_args.request_flags(default) if "incompatible" in flag]
    request = request_args.migration_request(
        _args(
            "start",
            "--source",
            "prod",
            "--target",
            "prod-3",
            "--version",
            "3.0.6",
            "--on-incompatible-dags",
            "fail",
        ),
        dry_run=False,
    )
    assert request["onIncompatibleDags"] == "fail"
    assert request_args.request_flags(request)[-1] == "--on-incompatible-dags fail"


def test_the_cutover_flags_become_the_request_fields_and_back():
    request = request_args.migration_request(
        _args(
            "start",
            "--source",
            "prod",
            "--target",
            "prod-2",
            "--version",
            "2.10.3",
            "--cutover",
            "approve",
            "--drain-timeout-minutes",
            "5",
            "--on-drain-timeout",
            "carry",
        ),
        dry_run=False,
    )

    assert (request["cutover"], request["drainTimeoutMinutes"], request["onDrainTimeout"]) == (
        "approve",
        5,
        "carry",
    )
    assert request_args.request_flags(request)[-3:] == [
        "--cutover approve",
        "--drain-timeout-minutes 5",
        "--on-drain-timeout carry",
    ]


# ------------------------------------------------------------------ issue 13: what the commands say


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--source", "prod", "--target", "prod-2", "--version", "9.9.9"), "must be one of 2.7.2, "),
        (("--source", "prod", "--target", "prod", "--version", "2.10.3"), "must differ from sourceEnv"),
    ],
)
def test_a_refused_request_speaks_without_the_validation_librarys_wording(argv, message):
    with pytest.raises(CliError) as refused:
        request_args.migration_request(_args("start", *argv), dry_run=False)

    assert message in refused.value.line
    assert "Value error" not in refused.value.line


def test_the_latest_migration_skips_every_dry_run_whatever_its_name_across_pages(machine: _Machine):
    request = {"sourceEnvironmentName": "prod", "targetEnvironmentName": "prod-2"}
    executions.start_execution(machine, "migration", request)  # type: ignore[arg-type]
    # More dry runs than a page of ListExecutions holds (100), none of them named dryrun-...
    for number in range(105):
        executions.start_execution(machine, f"rehearsal-{number}", {**request, "dryRun": True})  # type: ignore[arg-type]

    latest = executions.latest_migration(machine)  # type: ignore[arg-type]

    assert latest == machine.execution_arn("migration")


def test_only_dry_runs_is_no_migration(machine: _Machine):
    executions.start_execution(machine, "rehearsal", {"sourceEnvironmentName": "prod", "dryRun": True})  # type: ignore[arg-type]

    with pytest.raises(CliError) as missing:
        executions.latest_migration(machine)  # type: ignore[arg-type]

    assert missing.value.code == ExitCode.NOT_FOUND


def test_the_heading_names_the_sources_airflow_version_once_the_plan_has_it():
    plan_exit = {
        "id": 3,
        "type": "TaskStateExited",
        "stateExitedEventDetails": {
            "name": "PlanMigration",
            "output": json.dumps({"plan": {"source": {"name": "prod", "airflowVersion": "2.7.2"}}}),
        },
    }
    found = progress.planned_source_version([{"id": 1, "type": "ExecutionStarted"}, plan_exit])
    snapshot = _snapshot("FAILED", [_step("PlanMigration", "succeeded", 2)], source_version=found[1])

    assert found == (True, "2.7.2")
    assert progress.planned_source_version([{"id": 1, "type": "ExecutionStarted"}]) == (False, None)
    assert progress.render(snapshot)[0] == "Migration prod (Airflow 2.7.2) -> prod-2 (Airflow 2.10.3)"


def test_the_source_version_is_read_again_until_the_plans_exit_is_in_the_history():
    plan_exit = {
        "id": 3,
        "type": "TaskStateExited",
        "stateExitedEventDetails": {
            "name": "PlanMigration",
            "output": json.dumps({"plan": {"source": {"name": "prod", "airflowVersion": "2.7.2"}}}),
        },
    }
    histories = iter(
        [[{"id": 1, "type": "ExecutionStarted"}], [{"id": 1, "type": "ExecutionStarted"}, plan_exit]]
    )

    class _Paginator:
        def paginate(self, **_: Any) -> list[dict[str, Any]]:
            return [{"events": next(histories)}]

    class _Sfn:
        def get_paginator(self, name: str) -> _Paginator:
            assert name == "get_execution_history"
            return _Paginator()

    watcher = progress.Watcher(SimpleNamespace(sfn=_Sfn()), "arn:run-1")  # type: ignore[arg-type]

    # The task read as succeeded an instant before its state's exit was written: not yet, then found.
    assert watcher.source_version() is None
    assert watcher.source_version() == "2.7.2"
    assert watcher.source_version() == "2.7.2"  # read once found: no more history reads


def test_a_failure_puts_the_report_command_on_a_line_of_its_own():
    snapshot = _snapshot(
        "FAILED",
        [_step("PlanMigration", "failed", 1)],
        error="InvalidMigrationRequest",
        cause="PlanMigration: sourceEnvironmentName: environment nope does not exist",
    )

    lines = progress.closing(snapshot).splitlines()

    assert lines[0].endswith("environment nope does not exist")
    assert lines[1] == "Report: mwaa-migrate report run-1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("local", "up", "--port", "70000"), "a port is 0-65535"),
        (("follow", "--interval", "0"), "give a number of seconds above 0"),
        (("plan", "--timeout", "soon"), "is not a number of seconds"),
        (("local", "up", "--poll-seconds", "-1"), "give 0 seconds or more"),
        (("start", "--on-conflict", "merge"), "(choose from 'fail', 'keep-target', 'overwrite')"),
        (("plan", "--on-incompatible-dags", "ignore"), "(choose from 'warn', 'fail')"),
    ],
)
def test_a_bad_number_or_choice_is_a_usage_error_that_says_what_is_valid(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        main.main(list(argv))

    assert exited.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_the_command_starts_without_what_only_the_functions_use() -> None:
    """The command shares the layer's logic and logger, not the functions' tracer: X-Ray's SDK (half
    a second, and a client of its own at import) nor the emulation are loaded to run it."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, mwaa_migrate_cli.main; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'aws_xray_sdk', 'emulation', 'moto'}))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    ).stdout
    assert loaded.strip() == "[]"
    from mwaa_migrate import observability  # noqa: PLC0415

    assert type(observability.tracer).__name__ == "Tracer"
