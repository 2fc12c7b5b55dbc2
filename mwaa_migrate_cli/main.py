"""The mwaa-migrate command: what each command does, and `main`, which runs one and turns its
errors into one line and an exit code (arguments.USAGE lists both)."""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import shutil
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mwaa_migrate.errors import InvalidMigrationRequest
from mwaa_migrate.execution import DRY_RUN_PREFIX
from mwaa_migrate.models import describe_validation_error, parse_request
from mwaa_migrate.run.report import MigrationReport
from mwaa_migrate.run.report_markdown import render_markdown
from mwaa_migrate_cli import cutover, hands_on, local, plan_view, progress
from mwaa_migrate_cli.arguments import PROGRAM, build_parser
from mwaa_migrate_cli.aws import DEFAULT_STACK_NAME, Pipeline, Target, aws_errors
from mwaa_migrate_cli.cloudformation import RESOURCE_TYPE, environment_template, request_template
from mwaa_migrate_cli.errors import CliError, ExitCode
from mwaa_migrate_cli.executions import (
    DryRun,
    check_new_name,
    execution_arn_of,
    execution_name,
    report_uri,
    run_plan,
    start_execution,
)
from mwaa_migrate_cli.request_args import (
    field_notes,
    read_input,
    request_flags,
    staged_request,
    starter_request,
)
from mwaa_migrate_cli.source_upload import Upload, upload_sources

# How long `start` waits for the plan it runs first (one Lambda: seconds).
PLAN_TIMEOUT_SECONDS = 300.0


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


def _interval(args: argparse.Namespace) -> float:
    if args.interval is not None:
        return max(float(args.interval), 0.1)
    return 0.5 if args.local else 10.0


def _upload(pipeline: Pipeline, uploads: list[Upload]) -> None:
    """A self-managed source's local files, put where the request (as validated) names them."""
    if not uploads:
        return
    result = upload_sources(pipeline.s3, uploads)
    for upload in uploads:
        print(f"{upload.field}: {upload.path} -> {upload.uri}", file=sys.stderr)
    print(
        f"  {len(result.uploaded)} uploaded, {len(result.unchanged)} unchanged, "
        f"{len(result.removed)} removed",
        file=sys.stderr,
    )


def command_plan(args: argparse.Namespace) -> int:
    request, uploads = staged_request(args, dry_run=True)
    pipeline = _pipeline(args)
    _upload(pipeline, uploads)
    planned = run_plan(pipeline, request, timeout=args.timeout)
    if args.json:
        print(json.dumps(plan_view.redact_plan(planned.plan), indent=2, sort_keys=True))
    else:
        print("\n".join(plan_view.render_plan(planned.plan, execution_name=planned.name)))
        print("\nStart it: mwaa-migrate start " + " ".join(request_flags(request)) + _flags(args))
    return ExitCode.OK


def command_start(args: argparse.Namespace) -> int:
    request, uploads = staged_request(args, dry_run=False)
    pipeline = _pipeline(args)
    _upload(pipeline, uploads)
    requested_dry_run = request.get("dryRun") is True
    name = args.name or execution_name(request, prefix=DRY_RUN_PREFIX if requested_dry_run else "")
    check_new_name(pipeline, name)
    # The migration's first state is this same plan: a request it refuses is refused here, with the
    # plan's message, before anything starts. A request that is itself a dry run is its own plan.
    planned = (
        None
        if requested_dry_run
        else run_plan(
            pipeline, request, timeout=PLAN_TIMEOUT_SECONDS, refused_suffix=" (nothing was started)"
        )
    )
    execution_arn = start_execution(pipeline, name, request)
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
    snapshot = progress.Watcher(pipeline, execution_arn_of(pipeline, args.execution)).snapshot()
    print("\n".join(progress.render(snapshot)))
    print()
    print(progress.closing(snapshot, flags=_flags(args)))
    return progress.exit_code(snapshot.status)


def command_follow(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    return _follow(pipeline, execution_arn_of(pipeline, args.execution), args)


def command_report(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    execution_arn = execution_arn_of(pipeline, args.execution)
    uri = report_uri(pipeline, execution_arn)
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
    name = cutover.approve(pipeline, execution_arn_of(pipeline, args.execution))
    print(f"Approved {name}: the cutover starts (the source's DAGs pause for the downtime window).")
    print(f"Follow it:   mwaa-migrate follow {name}{_flags(args)}")
    return ExitCode.OK


def command_hands_on(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    migration = cutover.migration_of_execution(pipeline, execution_arn_of(pipeline, args.execution))
    phase = hands_on.current_phase(pipeline, migration)
    print(hands_on.steps(pipeline, migration, phase))
    if args.to:
        for path in hands_on.download(pipeline, migration, phase, args.to):
            print(f"wrote {path}")
    return ExitCode.OK


def command_reject(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    name = cutover.reject(pipeline, execution_arn_of(pipeline, args.execution), reason=args.reason)
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
    migration = cutover.migration_of_execution(pipeline, execution_arn_of(pipeline, args.execution))
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
    if args.source_unpaused:
        # The operator of a source run by hand unpaused its DAGs: no transport reaches it.
        migration = replace(migration, source_transport="hands_on")
    settlement = cutover.rollback(pipeline, migration, source_unpaused_by_hand=args.source_unpaused)
    print(settlement.line)
    return ExitCode.OK


def command_init(args: argparse.Namespace) -> int:
    try:
        request = starter_request(args.source, args.target, args.version, self_managed=args.self_managed)
    except ValidationError as error:
        raise CliError(describe_validation_error(error), ExitCode.USAGE) from None
    path = Path(args.output)
    if path.exists() and not args.force:
        raise CliError(f"{path} exists: --force replaces it, or give another --output", ExitCode.USAGE)
    try:
        path.write_text(json.dumps(request, indent=2) + "\n")
    except OSError as error:
        raise CliError(f"cannot write {path}: {error.strerror}", ExitCode.USAGE) from None
    notes = field_notes(self_managed=args.self_managed)
    width = max(len(field) for field, _ in notes)
    columns = max(shutil.get_terminal_size((100, 24)).columns, 60)
    print(f"Wrote {path}: every field at its default (null: not set). What each one means:\n")
    for field, note in notes:
        lead = f"  {field:<{width}}  "
        print(textwrap.fill(note, width=columns - 1, initial_indent=lead, subsequent_indent=" " * len(lead)))
    if args.self_managed:
        print(
            "\nA self-managed Apache Airflow source: replace the placeholders (the source's files in S3, its "
            "REST API and credentials secret, the target's role, bucket and network). Access mode reached "
            "runs the whole migration through your Airflow's REST API once dryRun is false; hands_on "
            f"hands you the export to run and waits for it ({PROGRAM} hands-on). "
            f"`{PROGRAM} template --input {shlex.quote(str(path))}` "
            "writes the target as CloudFormation."
        )
    print("\nIts JSON Schema: docs/migration-request.schema.json.")
    print(f"Next: {PROGRAM} plan --input {shlex.quote(str(path))}")
    return ExitCode.OK


def _template_of(args: argparse.Namespace) -> tuple[str, dict[str, Any], list[str]]:
    """(what it is of, the template, what it leaves out): an environment, or a request's target."""
    if (args.environment is None) == (args.input is None):
        raise CliError("name an ENVIRONMENT or give --input REQUEST (one of the two)", ExitCode.USAGE)
    if args.input is not None:
        try:
            request = parse_request(read_input(args.input))
            template, left_out = request_template(request)
        except (InvalidMigrationRequest, ValueError) as error:
            raise CliError(f"{args.input}: {error}", ExitCode.USAGE) from None
        return request.target_environment_name, template, left_out
    pipeline = _pipeline(args)
    with aws_errors(f"reading environment {args.environment}"):
        try:
            description = pipeline.mwaa.get_environment(Name=args.environment)["Environment"]
        except pipeline.mwaa.exceptions.ResourceNotFoundException:
            raise CliError(f"environment {args.environment} does not exist", ExitCode.NOT_FOUND) from None
    template, left_out = environment_template(dict(description))
    return str(args.environment), template, left_out


def command_template(args: argparse.Namespace) -> int:
    name, template, left_out = _template_of(args)
    text = json.dumps(template, indent=2, default=str) + "\n"
    if args.output:
        try:
            Path(args.output).write_text(text)
        except OSError as error:
            raise CliError(f"cannot write {args.output}: {error.strerror}", ExitCode.USAGE) from None
        print(f"Wrote {args.output}: {name} as {RESOURCE_TYPE} (DeletionPolicy Retain).")
    else:
        sys.stdout.write(text)
    secret = sorted(template.get("Parameters") or {})
    if secret:
        print(f"NoEcho parameters to give on deploy: {', '.join(secret)}", file=sys.stderr)
    for line in left_out:
        print(f"Not in the template: {line}", file=sys.stderr)
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
    "hands-on": command_hands_on,
    "rollback": command_rollback,
    "init": command_init,
    "template": command_template,
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


if __name__ == "__main__":
    sys.exit(main())
