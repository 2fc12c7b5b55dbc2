"""The command line: every command's options, their types and their help (argparse)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from mwaa_migrate_cli.aws import DEFAULT_STACK_NAME

PROGRAM = "mwaa-migrate"
# What `mwaa-migrate --help` says first: the commands, where they act, and the exit codes.
USAGE = """\
mwaa-migrate: plan, start, follow and read the report of an MWAA migration.

    mwaa-migrate plan   --source NAME --target NAME --version X.Y.Z   the dry run: what would happen
    mwaa-migrate start  --source NAME --target NAME --version X.Y.Z   plan it, then start it
    mwaa-migrate status [EXECUTION]                                    where it stands, once
    mwaa-migrate follow [EXECUTION]                                    where it stands, live, to the end
    mwaa-migrate report [EXECUTION]                                    the migration's report
    mwaa-migrate approve [EXECUTION]                                   start the cutover it waits for
    mwaa-migrate reject [EXECUTION] [--reason TEXT]                    end it; the source keeps running
    mwaa-migrate hands-on [EXECUTION] [--to DIR]                       the steps of an export run by hand
    mwaa-migrate rollback [EXECUTION] [--yes]                          the source runs the DAGs again
    mwaa-migrate init [--source NAME --target NAME --version X.Y.Z]    a request to start from, explained
    mwaa-migrate init --self-managed [...]                             the same, for a self-managed Airflow
    mwaa-migrate template ENVIRONMENT [--output FILE]                  the environment as CloudFormation
    mwaa-migrate template --input REQUEST [--output FILE]              a self-managed request's target, so
    mwaa-migrate local up                                              the local emulation, for --local

The commands act on the state machine of a deployed stack (--stack-name, default mwaa-migrate),
found in the region and with the credentials the AWS CLI would use (--region, --profile, then
AWS_REGION, AWS_DEFAULT_REGION, AWS_PROFILE and the shared config files), or, with --local, on
the local emulation. EXECUTION is an execution's name or ARN; without it, the latest migration.

Exit codes: 0 done (and the migration succeeded), 1 the migration failed, 2 bad arguments,
3 request refused, 4 not found, 5 AWS error, 6 still running, 130 interrupted, 141 the output's
reader went away (| head).
"""


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


def _add_operator_commands(commands: Any, connection: argparse.ArgumentParser) -> None:
    """What an operator answers a running migration with: approve, reject, hands-on, rollback."""
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

    hands_on = commands.add_parser(
        "hands-on",
        parents=[connection],
        help="a self-managed source run by hand: the steps of the export it waits for (--to: its files)",
    )
    hands_on.add_argument(
        "execution", nargs="?", help="execution name or ARN (default: the latest migration)"
    )
    hands_on.add_argument("--to", type=Path, help="download the export DAG's files and the phase's conf here")

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
    rollback.add_argument(
        "--source-unpaused",
        action="store_true",
        help="a source run by hand (hands_on): you unpaused its recorded DAGs yourself; record the way back",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter
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

    init = commands.add_parser(
        "init", help="write a migration request with every field at its default, each one explained"
    )
    init.add_argument(
        "--source",
        help="the MWAA environment to migrate (--self-managed: the source's name; default: a placeholder)",
    )
    init.add_argument(
        "--self-managed",
        action="store_true",
        help="a self-managed Apache Airflow source (files in S3, the target's own settings)",
    )
    init.add_argument("--target", help="the new environment's name (default: a placeholder)")
    init.add_argument("--version", help="the target's Airflow version (default: the newest Airflow 2)")
    init.add_argument(
        "--output", metavar="FILE", default="migration-request.json", help="where to write it (%(default)s)"
    )
    init.add_argument("--force", action="store_true", help="replace FILE if it exists")

    template = commands.add_parser(
        "template",
        parents=[connection],
        help="an MWAA environment (a migration's target) as a CloudFormation template, to keep in a stack",
    )
    template.add_argument("environment", nargs="?", help="the environment's name")
    template.add_argument(
        "--input",
        metavar="REQUEST",
        help="instead of an environment: a self-managed source's request (its target, from targetSettings)",
    )
    template.add_argument("--output", metavar="FILE", help="write the template there (default: print it)")

    _add_operator_commands(commands, connection)

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
