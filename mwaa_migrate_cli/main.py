"""mwaa-migrate: plan, start, follow and read the report of an MWAA migration.

    mwaa-migrate plan   --source NAME --target NAME --version X.Y.Z   the dry run: what would happen
    mwaa-migrate start  --source NAME --target NAME --version X.Y.Z   plan it, then start it
    mwaa-migrate status [EXECUTION]                                    where it stands, once
    mwaa-migrate follow [EXECUTION]                                    where it stands, live, to the end
    mwaa-migrate report [EXECUTION]                                    the migration's report
    mwaa-migrate approve [EXECUTION]                                   start the cutover it waits for
    mwaa-migrate reject [EXECUTION] [--reason TEXT]                    end it; the source keeps running
    mwaa-migrate rollback [EXECUTION] [--yes]                          the source runs the DAGs again
    mwaa-migrate local up                                              the local emulation, for --local

The commands act on the state machine of a deployed stack (--stack-name, default mwaa-migrate),
found in the region and with the credentials the AWS CLI would use (--region, --profile, then
AWS_REGION, AWS_DEFAULT_REGION, AWS_PROFILE and the shared config files), or, with --local, on
the local emulation. EXECUTION is an execution's name or ARN; without it, the latest migration.

Exit codes: 0 done (and the migration succeeded), 1 the migration failed, 2 bad arguments,
3 request refused, 4 not found, 5 AWS error, 6 still running, 130 interrupted, 141 the output's
reader went away (| head).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mwaa_migrate.errors import InvalidMigrationRequest
from mwaa_migrate.execution import DRY_RUN_PREFIX, new_execution_name
from mwaa_migrate.models import MigrationRequest, parse_model
from mwaa_migrate.report import MigrationReport, render_markdown
from mwaa_migrate_cli import cutover, local, plan_view, progress
from mwaa_migrate_cli.aws import DEFAULT_STACK_NAME, Pipeline, Target, aws_errors
from mwaa_migrate_cli.errors import CliError, ExitCode

PROGRAM = "mwaa-migrate"
# How long `start` waits for the plan it runs first (one Lambda: seconds).
PLAN_TIMEOUT_SECONDS = 300.0
# Errors of a refused request: nothing was changed.
_REFUSALS = frozenset({"InvalidMigrationRequest", "MigrationConflict", "IncompatibleDags"})


# ------------------------------------------------------------------------------ arguments


def _seconds(text: str) -> float:
    """A number of seconds above 0 (argparse's type: its error names the option)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0")
    return value


def _whole_seconds(text: str) -> int:
    """A whole number of seconds, 0 or more (a state machine's Wait)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 seconds or more")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is 0-65535 (0: any free one)")
    return value


def _connection_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("where the pipeline is")
    group.add_argument("--region", help="AWS Region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's)")
    group.add_argument("--profile", help="AWS CLI profile (default: AWS_PROFILE, or the default profile)")
    group.add_argument(
        "--stack-name",
        default=os.environ.get("MWAA_MIGRATE_STACK_NAME", DEFAULT_STACK_NAME),
        help="the deployed stack (default: MWAA_MIGRATE_STACK_NAME or %(default)s)",
    )
    group.add_argument(
        "--state-machine-arn", help="the state machine, instead of reading the stack's outputs"
    )
    group.add_argument(
        "--local", action="store_true", help="use the local emulation (mwaa-migrate local up) instead of AWS"
    )
    return parent


def _request_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("the migration (see the README's input schema)")
    group.add_argument(
        "--input",
        metavar="FILE",
        help="a JSON migration request (- for stdin), e.g. events/migration_request.json",
    )
    group.add_argument("--source", help="sourceEnvironmentName: the environment to migrate")
    group.add_argument("--target", help="targetEnvironmentName: the new environment")
    group.add_argument("--version", help="targetAirflowVersion, e.g. 2.10.3 or 3.0.6")
    group.add_argument("--role", help="targetExecutionRoleArn (default: the source's execution role)")
    group.add_argument("--bucket", help="migrationBucket (default: the stack's bucket)")
    group.add_argument("--log-days", type=int, help="logDays: days of logs to copy, 1-14 (default 3)")
    group.add_argument(
        "--log-groups",
        help="logGroups: the log groups to copy, comma-separated: Task, Worker, Scheduler, DAGProcessing, "
        "WebServer ('' for none; default Task)",
    )
    group.add_argument(
        "--failed-tasks-only",
        action="store_true",
        default=None,
        help="failedTasksOnly: copy only the task logs of task instances that failed",
    )
    group.add_argument(
        "--cutover",
        choices=("approve", "auto"),
        help="cutover: 'approve' waits after the bulk copy for mwaa-migrate approve (default auto)",
    )
    group.add_argument(
        "--approval-timeout-hours",
        type=int,
        help="approvalTimeoutHours: how long an approval may take, 1-720 (default 24)",
    )
    group.add_argument(
        "--drain-timeout-minutes",
        type=int,
        help="drainTimeoutMinutes: wait after the pause for running tasks to finish, 0-720 (default 30)",
    )
    group.add_argument(
        "--on-drain-timeout",
        choices=("fail", "carry"),
        help="onDrainTimeout: at the drain's deadline fail (restore the source) or carry the runs over "
        "(default fail)",
    )
    group.add_argument(
        "--on-conflict",
        choices=("fail", "keep-target", "overwrite"),
        help="onConflict: a row the target refuses or holds differently fails the import (default "
        "fail), or is kept as the target has it, or overwritten with the source's",
    )
    group.add_argument(
        "--on-incompatible-dags",
        choices=("warn", "fail"),
        help="onIncompatibleDags: DAG files that will not run on the target's Airflow are listed "
        "(default warn), or stop the migration before the source is paused",
    )


def _follow_options(parser: argparse.ArgumentParser, *, interval: float) -> None:
    parser.add_argument(
        "--interval",
        type=_seconds,
        default=None,
        help=f"seconds between two looks (default {interval:g}; 0.5 with --local)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=12 * 3600,
        help="stop following after this many seconds (default 12 hours)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    connection = _connection_options()

    plan = commands.add_parser(
        "plan",
        parents=[connection],
        help="the dry run: the version path, the request as a diff, the policies, the DAGs",
    )
    _request_options(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.add_argument(
        "--timeout", type=_seconds, default=300, help="seconds to wait for the plan (default 300)"
    )

    start = commands.add_parser(
        "start",
        parents=[connection],
        help="plan a migration (the dry run: a request it refuses starts nothing), then start it",
    )
    _request_options(start)
    start.add_argument("--name", help="the execution's name (default SOURCE-to-TARGET-TIMESTAMP)")
    start.add_argument("--follow", action="store_true", help="then follow it to the end")
    _follow_options(start, interval=10)

    for name, text in (
        ("status", "where a migration stands, once"),
        ("follow", "where a migration stands, live, until it ends"),
    ):
        command = commands.add_parser(name, parents=[connection], help=text)
        command.add_argument(
            "execution", nargs="?", help="execution name or ARN (default: the latest migration)"
        )
        if name == "follow":
            _follow_options(command, interval=10)

    report = commands.add_parser("report", parents=[connection], help="a migration's report")
    report.add_argument("execution", nargs="?", help="execution name or ARN (default: the latest migration)")
    report.add_argument("--json", action="store_true", help="print the report as JSON (default: Markdown)")

    approve = commands.add_parser(
        "approve", parents=[connection], help="approve the cutover a migration waits for (cutover: approve)"
    )
    approve.add_argument("execution", nargs="?", help="execution name or ARN (default: the latest migration)")
    reject = commands.add_parser(
        "reject",
        parents=[connection],
        help="reject the cutover: the migration ends, the source keeps running",
    )
    reject.add_argument("execution", nargs="?", help="execution name or ARN (default: the latest migration)")
    reject.add_argument("--reason", default="rejected by the operator", help="why, for the report")

    rollback = commands.add_parser(
        "rollback",
        parents=[connection],
        help="reverse a cutover: pause the DAGs on the target, unpause them on the source",
    )
    rollback.add_argument(
        "execution", nargs="?", help="execution name or ARN (default: the latest migration)"
    )
    rollback.add_argument("--source", help="the source environment (with --target: instead of an execution)")
    rollback.add_argument("--target", help="the target environment")
    rollback.add_argument("--bucket", help="the migration bucket (default: the stack's bucket)")
    rollback.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    emulation = commands.add_parser("local", help="the local emulation that --local uses")
    local_commands = emulation.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    up = local_commands.add_parser("up", help="run a scenario's emulated AWS until Ctrl-C")
    up.add_argument(
        "--scenario", default="default", help="a name under scenarios/ or a path (default %(default)s)"
    )
    up.add_argument("--port", type=_port, default=0, help="port to listen on (default: any free one)")
    up.add_argument(
        "--poll-seconds",
        type=_whole_seconds,
        default=1,
        help="the state machine's waits between checks (default %(default)s)",
    )
    up.add_argument(
        "--stack-name", default=DEFAULT_STACK_NAME, help="the emulated stack's name (default %(default)s)"
    )
    up.add_argument(
        "--verbose",
        action="store_true",
        help="also print the server's access log and the pipeline's logs (JSON lines); without them the "
        "notifications say how each migration ends, and status and report say why",
    )
    return parser


# ------------------------------------------------------------------------------ helpers


def _pipeline(args: argparse.Namespace) -> Pipeline:
    if args.local and args.profile:
        raise CliError("--local and --profile cannot be used together", ExitCode.USAGE)
    return Pipeline(
        Target(
            region=args.region or os.environ.get("AWS_REGION") or None,
            profile=args.profile,
            stack_name=args.stack_name,
            state_machine_arn=args.state_machine_arn,
            local=args.local,
        )
    )


def _read_input(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}", ExitCode.USAGE) from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise CliError(f"{path} is not JSON: {error}", ExitCode.USAGE) from None
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a JSON object (a migration request)", ExitCode.USAGE)
    # An EventBridge event (events/eventbridge_migration_requested.json) carries the request as detail.
    detail = data.get("detail")
    return dict(detail) if isinstance(detail, dict) and "detail-type" in data else data


def migration_request(args: argparse.Namespace, *, dry_run: bool) -> dict[str, Any]:
    """The request from --input and the flags (the flags win), validated as the pipeline does."""
    request = _read_input(args.input) if args.input else {}
    flags = {
        "sourceEnvironmentName": args.source,
        "targetEnvironmentName": args.target,
        "targetAirflowVersion": args.version,
        "targetExecutionRoleArn": args.role,
        "migrationBucket": args.bucket,
        "logDays": args.log_days,
        "logGroups": None
        if args.log_groups is None
        else [g.strip() for g in args.log_groups.split(",") if g.strip()],
        "failedTasksOnly": args.failed_tasks_only,
        "cutover": args.cutover,
        "approvalTimeoutHours": args.approval_timeout_hours,
        "drainTimeoutMinutes": args.drain_timeout_minutes,
        "onDrainTimeout": args.on_drain_timeout,
        "onConflict": args.on_conflict,
        "onIncompatibleDags": args.on_incompatible_dags,
    }
    request.update({key: value for key, value in flags.items() if value is not None})
    if dry_run:
        request["dryRun"] = True
    try:
        validated = parse_model(MigrationRequest, request)
    except InvalidMigrationRequest as error:
        raise CliError(f"{error} (nothing was started)", ExitCode.REFUSED) from None
    return validated.to_event()


def execution_name(request: dict[str, Any], prefix: str = "") -> str:
    """SOURCE-to-TARGET-TIME-RANDOM: sortable by time, never the same for two starts."""
    return new_execution_name(
        str(request["sourceEnvironmentName"]), str(request["targetEnvironmentName"]), prefix=prefix
    )


def _check_new_name(pipeline: Pipeline, name: str) -> None:
    """A name Step Functions takes and holds no execution under."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name):
        raise CliError(f"--name {name!r}: 1-80 letters, digits, - and _", ExitCode.USAGE)
    # Step Functions answers a start under a running execution's name with that execution (same
    # input) or ExecutionAlreadyExists: either way nothing new starts, so say so first.
    existing = _existing(pipeline, name)
    if existing is not None:
        raise existing


def _start(pipeline: Pipeline, name: str, request: dict[str, Any]) -> str:
    _check_new_name(pipeline, name)
    with aws_errors(f"starting execution {name}"):
        try:
            started = pipeline.sfn.start_execution(
                stateMachineArn=pipeline.state_machine_arn, name=name, input=json.dumps(request)
            )
        except pipeline.sfn.exceptions.ExecutionAlreadyExists:
            raise _already_exists(pipeline, name) from None
    return started["executionArn"]


def _existing(pipeline: Pipeline, name: str) -> CliError | None:
    with aws_errors(f"reading execution {name}"):
        try:
            pipeline.sfn.describe_execution(executionArn=pipeline.execution_arn(name))
        except pipeline.sfn.exceptions.ExecutionDoesNotExist:
            return None
    return _already_exists(pipeline, name)


def _already_exists(pipeline: Pipeline, name: str) -> CliError:
    """One line for a name that Step Functions already holds: its status and what to do."""
    with aws_errors(f"reading execution {name}"):
        described = pipeline.sfn.describe_execution(executionArn=pipeline.execution_arn(name))
    started = described["startDate"].strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return CliError(
        f"execution {name} already exists ({described['status']}, started {started}): see it with "
        f"'{PROGRAM} status {name}', or start again without --name (or with another)",
        ExitCode.REFUSED,
    )


def _latest(pipeline: Pipeline) -> str:
    """The newest execution that is not a dry run (the plan's, or any started with "dryRun": true)."""
    with aws_errors("listing the migrations"):
        paginator = pipeline.sfn.get_paginator("list_executions")
        for page in paginator.paginate(stateMachineArn=pipeline.state_machine_arn):
            for execution in page["executions"]:
                if not _is_dry_run(pipeline, execution["executionArn"]):
                    return execution["executionArn"]
    raise CliError(f"no migration has run on {pipeline.state_machine_arn} yet", ExitCode.NOT_FOUND)


def _is_dry_run(pipeline: Pipeline, execution_arn: str) -> bool:
    """What the execution was asked: its input says dryRun, whatever its name."""
    with aws_errors(f"reading execution {execution_arn}"):
        described = pipeline.sfn.describe_execution(executionArn=execution_arn)
    try:
        request = json.loads(described.get("input") or "{}")
    except ValueError:
        return False
    return isinstance(request, dict) and request.get("dryRun") is True


def _execution(pipeline: Pipeline, execution: str | None) -> str:
    return pipeline.execution_arn(execution) if execution else _latest(pipeline)


def _interval(args: argparse.Namespace) -> float:
    if args.interval is not None:
        return max(float(args.interval), 0.1)
    return 0.5 if args.local else 10.0


# ------------------------------------------------------------------------------ commands


@dataclass(frozen=True)
class DryRun:
    """A plan the pipeline made: the dry run's execution name and its output."""

    name: str
    plan: dict[str, Any]


def run_plan(
    pipeline: Pipeline, request: dict[str, Any], *, timeout: float, refused_suffix: str = ""
) -> DryRun:
    """Run the pipeline's own plan without changing anything: an execution named dryrun-... with
    "dryRun": true, whose output is the plan, or whose failure is the refusal (a CliError)."""
    request = {**request, "dryRun": True}
    name = execution_name(request, prefix=DRY_RUN_PREFIX)
    execution_arn = _start(pipeline, name, request)
    watcher = progress.Watcher(pipeline, execution_arn)
    deadline = time.monotonic() + timeout
    while True:
        described = watcher.describe()
        if described["status"] in progress.TERMINAL:
            break
        if time.monotonic() > deadline:
            raise CliError(f"the dry run {name} is still running after {timeout:g}s", ExitCode.RUNNING)
        time.sleep(0.2 if pipeline.local else 1.0)
    if described["status"] != "SUCCEEDED":
        error = described.get("error") or described["status"]
        cause = " ".join((described.get("cause") or "").split())
        code = ExitCode.REFUSED if error in _REFUSALS else ExitCode.MIGRATION_FAILED
        raise CliError(f"the plan was refused: {error}: {cause}{refused_suffix}", code)
    return DryRun(name=name, plan=json.loads(described.get("output") or "{}"))


def command_plan(args: argparse.Namespace) -> int:
    request = migration_request(args, dry_run=True)
    pipeline = _pipeline(args)
    planned = run_plan(pipeline, request, timeout=args.timeout)
    if args.json:
        print(json.dumps(plan_view.redact_plan(planned.plan), indent=2, sort_keys=True))
    else:
        print("\n".join(plan_view.render_plan(planned.plan, execution_name=planned.name)))
        print("\nStart it: mwaa-migrate start " + " ".join(_request_flags(request)) + _flags(args))
    return ExitCode.OK


def _request_flags(request: dict[str, Any]) -> list[str]:
    """The start command's flags for a request (what differs from the defaults, for the lists)."""
    flags = {
        "sourceEnvironmentName": "--source",
        "targetEnvironmentName": "--target",
        "targetAirflowVersion": "--version",
        "targetExecutionRoleArn": "--role",
        "migrationBucket": "--bucket",
        "logDays": "--log-days",
    }
    shown = [f"{flag} {shlex.quote(str(request[key]))}" for key, flag in flags.items() if key in request]
    groups = request.get("logGroups")
    if groups is not None and groups != ["Task"]:
        shown.append(f"--log-groups {shlex.quote(','.join(groups))}")
    if request.get("failedTasksOnly") is True:
        shown.append("--failed-tasks-only")
    defaults = (
        ("cutover", "--cutover", "auto"),
        ("approvalTimeoutHours", "--approval-timeout-hours", 24),
        ("drainTimeoutMinutes", "--drain-timeout-minutes", 30),
        ("onDrainTimeout", "--on-drain-timeout", "fail"),
        ("onConflict", "--on-conflict", "fail"),
        ("onIncompatibleDags", "--on-incompatible-dags", "warn"),
    )
    shown += [
        f"{flag} {request[key]}" for key, flag, default in defaults if request.get(key, default) != default
    ]
    return shown


def command_start(args: argparse.Namespace) -> int:
    request = migration_request(args, dry_run=False)
    pipeline = _pipeline(args)
    requested_dry_run = request.get("dryRun") is True
    name = args.name or execution_name(request, prefix=DRY_RUN_PREFIX if requested_dry_run else "")
    _check_new_name(pipeline, name)
    # The migration's first state is this same plan: a request it refuses is refused here, with the
    # plan's message, before anything starts. A request that is itself a dry run is its own plan.
    planned = (
        None
        if requested_dry_run
        else run_plan(
            pipeline, request, timeout=PLAN_TIMEOUT_SECONDS, refused_suffix=" (nothing was started)"
        )
    )
    execution_arn = _start(pipeline, name, request)
    lines = [f"Started {name}"]
    if planned is None:
        lines.append("  dry run    nothing changes: its output is the plan")
    else:
        lines.append(f"  planned    {_plan_summary(planned)}")
    lines.append(f"  execution  {execution_arn}")
    console = pipeline.console_url(execution_arn)
    if console:
        lines.append(f"  console    {console}")
    warnings = (planned.plan.get("warnings") or []) if planned else []
    lines += [f"  warning    {warning}" for warning in warnings]
    if not args.follow:
        lines.append(f"Follow it:   mwaa-migrate follow {name}{_flags(args)}")
        print("\n".join(lines))
        return ExitCode.OK
    print("\n".join(lines), end="\n\n")
    # The live view redraws below these lines: it has the rest of the terminal.
    return _follow(pipeline, execution_arn, args, above=progress.rows(lines) + 1)


def _plan_summary(planned: DryRun) -> str:
    """One line for the plan a start passed: the dry run, the versions, how many warnings."""
    plan = planned.plan
    source, target = plan.get("source") or {}, plan.get("target") or {}
    warnings = len(plan.get("warnings") or [])
    return (
        f"dry run {planned.name}: Airflow {source.get('airflowVersion', '?')} -> "
        f"{target.get('finalVersion', '?')}, "
        + ("no warnings" if warnings == 0 else f"{warnings} warning{'s' if warnings > 1 else ''}")
    )


def _follow(pipeline: Pipeline, execution_arn: str, args: argparse.Namespace, *, above: int = 0) -> int:
    watcher = progress.Watcher(pipeline, execution_arn)
    try:
        snapshot = progress.follow(
            watcher, interval=_interval(args), timeout=args.timeout, flags=_flags(args), above=above
        )
    except KeyboardInterrupt:
        name = execution_arn.rsplit(":", 1)[-1]
        print(
            f"\nStopped following; the migration goes on. Again: mwaa-migrate follow {name}{_flags(args)}",
            file=sys.stderr,
        )
        return ExitCode.INTERRUPTED
    print()
    print(progress.closing(snapshot, flags=_flags(args)))
    return progress.exit_code(snapshot.status)


def _flags(args: argparse.Namespace) -> str:
    """The options that say where the pipeline is, to repeat in the commands the tool suggests."""
    if args.local:
        return " --local"
    flags = ""
    if args.stack_name != DEFAULT_STACK_NAME:
        flags += f" --stack-name {args.stack_name}"
    if args.region:
        flags += f" --region {args.region}"
    if args.profile:
        flags += f" --profile {args.profile}"
    return flags


def command_status(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    snapshot = progress.Watcher(pipeline, _execution(pipeline, args.execution)).snapshot()
    print("\n".join(progress.render(snapshot)))
    print()
    print(progress.closing(snapshot, flags=_flags(args)))
    return progress.exit_code(snapshot.status)


def command_follow(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    return _follow(pipeline, _execution(pipeline, args.execution), args)


def _report_uri(pipeline: Pipeline, execution_arn: str) -> str:
    """Where the execution's last step wrote the report: its output, or the failure path's result."""
    with aws_errors(f"reading execution {execution_arn}"):
        described = pipeline.sfn.describe_execution(executionArn=execution_arn)
        name, status = described["name"], described["status"]
        if status == "RUNNING":
            raise CliError(f"{name} is still RUNNING: its report is written when it ends", ExitCode.RUNNING)
        request = json.loads(described.get("input") or "{}")
        if isinstance(request, dict) and request.get("dryRun") is True:
            raise CliError(
                f"{name} is a dry run: it writes no report, its plan is its output (mwaa-migrate plan)",
                ExitCode.NOT_FOUND,
            )
        output = json.loads(described.get("output") or "{}")
        if isinstance(output, dict) and output.get("reportUri"):
            return str(output["reportUri"])
        paginator = pipeline.sfn.get_paginator("get_execution_history")
        uri = None
        for page in paginator.paginate(executionArn=execution_arn):
            for event in page["events"]:
                details = event.get("taskSucceededEventDetails")
                result = details.get("output") if details else None
                if not result:
                    continue
                try:
                    payload = json.loads(result).get("Payload")
                except ValueError:
                    continue
                if isinstance(payload, dict) and payload.get("reportUri"):
                    uri = str(payload["reportUri"])
    if uri is None:
        raise CliError(f"{name} ended {status} without writing a report", ExitCode.NOT_FOUND)
    return uri


def command_report(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    execution_arn = _execution(pipeline, args.execution)
    uri = _report_uri(pipeline, execution_arn)
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    with aws_errors(f"reading the report {uri}"):
        body = pipeline.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    data = json.loads(body)
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
        status = str(data.get("status"))
    else:
        report = MigrationReport.model_validate(data)
        print(render_markdown(report, uri=uri))
        status = report.status
    return progress.exit_code(status)


def command_approve(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    name = cutover.approve(pipeline, _execution(pipeline, args.execution))
    print(f"Approved {name}: the cutover starts (the source's DAGs pause for the downtime window).")
    print(f"Follow it:   mwaa-migrate follow {name}{_flags(args)}")
    return ExitCode.OK


def command_reject(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    name = cutover.reject(pipeline, _execution(pipeline, args.execution), reason=args.reason)
    print(f"Rejected {name}: the migration ends; the source keeps running its DAGs.")
    print(f"Its report:  mwaa-migrate report {name}{_flags(args)}")
    return ExitCode.OK


def _rollback_migration(pipeline: Pipeline, args: argparse.Namespace) -> cutover.Migration:
    """The migration from --source and --target, or from the execution's plan."""
    if bool(args.source) != bool(args.target):
        raise CliError("--source and --target go together", ExitCode.USAGE)
    if args.source and args.execution:
        raise CliError("give an execution or --source and --target, not both", ExitCode.USAGE)
    if args.source:
        return cutover.Migration(
            source=args.source,
            target=args.target,
            bucket=args.bucket or pipeline.bucket,
            prefix=cutover.prefix_of(args.source, args.target),
        )
    migration = cutover.migration_of_execution(pipeline, _execution(pipeline, args.execution))
    if args.bucket:
        return replace(migration, bucket=args.bucket)
    return migration


def _confirmed(migration: cutover.Migration, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise CliError(
            "rollback changes which environment runs the DAGs: pass --yes to confirm (no terminal to ask on)",
            ExitCode.USAGE,
        )
    try:
        answer = input(
            f"Pause the migrated DAGs on {migration.target} and unpause them on {migration.source}? [y/N] "
        )
    except EOFError:  # Ctrl-D: no answer is no
        print()
        return False
    return answer.strip().lower() in {"y", "yes"}


def command_rollback(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    migration = _rollback_migration(pipeline, args)
    if not _confirmed(migration, args.yes):
        print("Nothing was changed.")
        return ExitCode.OK
    settlement = cutover.rollback(pipeline, migration)
    print(settlement.line)
    return ExitCode.OK


def command_local(args: argparse.Namespace) -> int:
    def ready(emulation: local.Emulation) -> None:
        print(
            f"Local emulation of scenario {emulation.scenario} is up at {emulation.endpoint} "
            f"(stack {emulation.stack_name}, region {emulation.region}).\n"
            "Use it with --local, e.g.:\n"
            "  mwaa-migrate plan --local --input events/migration_request.json\n"
            "Ctrl-C stops it.",
            flush=True,
        )

    return local.serve(
        args.scenario,
        port=args.port,
        poll_seconds=args.poll_seconds,
        stack_name=args.stack_name,
        ready=ready,
        verbose=args.verbose,
    )


COMMANDS = {
    "plan": command_plan,
    "start": command_start,
    "status": command_status,
    "follow": command_follow,
    "report": command_report,
    "approve": command_approve,
    "reject": command_reject,
    "rollback": command_rollback,
    "local": command_local,
}


def main(argv: list[str] | None = None) -> int:
    # Whatever the terminal's encoding, printing never fails.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    try:
        args = build_parser().parse_args(argv)
        try:
            return int(COMMANDS[args.command](args))
        except CliError as error:
            print(f"{PROGRAM}: error: {error.line}", file=sys.stderr)
            return int(error.code)
        except KeyboardInterrupt:
            print(f"\n{PROGRAM}: interrupted", file=sys.stderr)
            return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as a command SIGPIPE ends would. What is still
        # buffered goes nowhere, so that Python's own flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(ExitCode.BROKEN_PIPE)


if __name__ == "__main__":
    sys.exit(main())
