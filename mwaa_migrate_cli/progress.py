"""Where a migration stands, from its execution's history: the states it went through, each with its
status, how often it ran and how long it took, nested as the state machine nests them (the branches
of a Parallel under it). `follow` redraws the view in place on a terminal and prints one line per
new state otherwise (a log file, CI), then the whole view when the execution ends."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from mwaa_migrate.execution import APPROVAL_STATE, StepTiming, execution_history, step_timings
from mwaa_migrate.models import source_name_of
from mwaa_migrate.run.report_markdown import duration
from mwaa_migrate_cli.aws import Pipeline, aws_errors
from mwaa_migrate_cli.errors import CliError, ExitCode

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.type_defs import DescribeExecutionOutputTypeDef

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
# The state whose output is the plan (under "plan"), with the source's Airflow version.
PLAN_STATE = "PlanMigration"
_NAME_WIDTH = 34


def state_depths(definition: Mapping[str, Any], depth: int = 0) -> dict[str, int]:
    """How deep each state is nested: 0 at the top, one more inside each Parallel branch or Map."""
    depths: dict[str, int] = {}
    for name, state in (definition.get("States") or {}).items():
        depths[name] = depth
        for branch in state.get("Branches") or []:
            depths.update(state_depths(branch, depth + 1))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            depths.update(state_depths(processor, depth + 1))
    return depths


@dataclass
class Snapshot:
    """One look at an execution."""

    execution_arn: str
    name: str
    status: str
    started: datetime
    stopped: datetime | None
    request: dict[str, Any]
    steps: list[StepTiming]
    depths: dict[str, int]
    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    cause: str | None = None
    # The source's Airflow version, once the plan has read it (the request does not carry it).
    source_version: str | None = None

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    @property
    def elapsed(self) -> float:
        return ((self.stopped or datetime.now(UTC)) - self.started).total_seconds()

    @property
    def dry_run(self) -> bool:
        return self.request.get("dryRun") is True


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class Watcher:
    """Reads an execution's state; the state machine's definition is read once."""

    def __init__(self, pipeline: Pipeline, execution_arn: str) -> None:
        self.pipeline = pipeline
        self.execution_arn = execution_arn
        self._depths: dict[str, int] | None = None
        self._planned: str | None = None
        self._plan_read = False

    def describe(self) -> DescribeExecutionOutputTypeDef:
        with aws_errors(f"reading execution {self.execution_arn}"):
            return self.pipeline.sfn.describe_execution(executionArn=self.execution_arn)

    def depths(self) -> dict[str, int]:
        if self._depths is None:
            with aws_errors(f"reading the state machine of {self.execution_arn}"):
                machine = self.pipeline.sfn.describe_state_machine_for_execution(
                    executionArn=self.execution_arn
                )
            self._depths = state_depths(_json(machine.get("definition")))
        return self._depths

    def source_version(self) -> str | None:
        """The source's Airflow version from the plan's output: read once, from the history with its
        data (the history without it, read at each look, has no outputs), up to the plan's exit."""
        if not self._plan_read:
            with aws_errors(f"reading the plan of {self.execution_arn}"):
                history = execution_history(self.pipeline.sfn, self.execution_arn, with_data=True)
            # Read again at the next look until the plan's exit is in the history: the task can read
            # as succeeded an instant before its state's exit is written.
            self._plan_read, self._planned = planned_source_version(history)
        return self._planned

    def snapshot(self) -> Snapshot:
        described = self.describe()
        with aws_errors(f"reading the history of {self.execution_arn}"):
            history = execution_history(self.pipeline.sfn, self.execution_arn)
        status = described["status"]
        stopped = described.get("stopDate")
        steps = step_timings(history, now=stopped or datetime.now(UTC), ended=status in TERMINAL)
        planned = any(step.state == PLAN_STATE and step.status == "succeeded" for step in steps)
        return Snapshot(
            execution_arn=self.execution_arn,
            name=described.get("name") or self.execution_arn.rsplit(":", 1)[-1],
            status=status,
            started=described["startDate"],
            stopped=stopped,
            request=_json(described.get("input")),
            steps=steps,
            depths=self.depths(),
            output=_json(described.get("output")),
            error=described.get("error"),
            cause=described.get("cause"),
            source_version=self.source_version() if planned else None,
        )


def planned_source_version(events: list[Any]) -> tuple[bool, str | None]:
    """Whether the events hold the plan state's exit, and the source's Airflow version in its output."""
    for event in events:
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") != PLAN_STATE:
            continue
        plan = _json(details.get("output")).get("plan")
        source = plan.get("source") if isinstance(plan, dict) else None
        version = source.get("airflowVersion") if isinstance(source, dict) else None
        return True, str(version) if version else None
    return False, None


# ------------------------------------------------------------------------------ rendering


def _heading(snapshot: Snapshot) -> list[str]:
    request = snapshot.request
    source = str(source_name_of(request) or "?")
    if snapshot.source_version:
        source += f" (Airflow {snapshot.source_version})"
    what = (
        f"{source} -> {request.get('targetEnvironmentName', '?')}"
        f" (Airflow {request.get('targetAirflowVersion', '?')})"
    )
    kind = "Dry run" if snapshot.dry_run else "Migration"
    return [
        f"{kind} {what}",
        f"Execution {snapshot.name}   {snapshot.status}   {duration(snapshot.elapsed)}",
    ]


def _step_line(step: StepTiming, depth: int) -> str:
    name = ("  " * depth + step.state)[:_NAME_WIDTH]
    runs = f"x{step.runs}" if step.runs > 1 else ""
    notes = []
    if step.retries:
        notes.append(f"retried {step.retries}")
    if step.error:
        notes.append(step.error)
    note = f"  ({', '.join(notes)})" if notes else ""
    return f"  {name:<{_NAME_WIDTH}} {step.status:<9} {runs:>5} {duration(step.seconds):>9}{note}"


def render(snapshot: Snapshot) -> list[str]:
    """The whole view: a heading, then one line per state entered."""
    lines = [*_heading(snapshot), ""]
    lines += [_step_line(step, snapshot.depths.get(step.state, 0)) for step in snapshot.steps]
    return lines


def report_uri(snapshot: Snapshot) -> str | None:
    uri = snapshot.output.get("reportUri")
    return str(uri) if uri else None


# The state that waits for `mwaa-migrate approve` (cutover: approve).


def awaiting_approval(snapshot: Snapshot) -> bool:
    return not snapshot.ended and any(
        step.state == APPROVAL_STATE and step.status == "running" for step in snapshot.steps
    )


def approval_line(snapshot: Snapshot, *, flags: str = "") -> str:
    return (
        f"Waiting for approval in {APPROVAL_STATE}: the source still runs its DAGs. "
        f"Approve: mwaa-migrate approve {snapshot.name}{flags}   "
        f"Reject: mwaa-migrate reject {snapshot.name}{flags}"
    )


# The states that wait for an export run by hand (a self-managed source in access mode hands_on).
HAND_OVER_STATES = ("HandOverExport", "HandOverCutoverExport")


def awaiting_export_by_hand(snapshot: Snapshot) -> bool:
    return not snapshot.ended and any(
        step.state in HAND_OVER_STATES and step.status == "running" for step in snapshot.steps
    )


def closing(snapshot: Snapshot, *, flags: str = "") -> str:
    """The last lines: how it ended, and where to look next (`flags`: to add to the commands shown)."""
    if awaiting_approval(snapshot):
        return approval_line(snapshot, flags=flags)
    if awaiting_export_by_hand(snapshot):
        return (
            "Waiting for the export you run by hand on the source (access mode hands_on). "
            f"Its steps and files: mwaa-migrate hands-on {snapshot.name}{flags} --to DIR"
        )
    if not snapshot.ended:
        return f"Still {snapshot.status}. Follow it: mwaa-migrate follow {snapshot.name}{flags}"
    took = duration(snapshot.elapsed)
    if snapshot.status == "SUCCEEDED" and snapshot.dry_run:
        return f"Dry run SUCCEEDED in {took}: nothing was changed. See the plan: mwaa-migrate plan"
    if snapshot.status == "SUCCEEDED":
        where = report_uri(snapshot) or "the migration bucket"
        return f"Migration SUCCEEDED in {took}. Report {where}: mwaa-migrate report {snapshot.name}{flags}"
    cause = " ".join((snapshot.cause or "").split())
    # The cause is AWS's or a step's text, with or without a full stop: the report goes on a line of its
    # own rather than run into it.
    return (
        f"Migration {snapshot.status} after {took}: {snapshot.error or 'no error given'}"
        + (f": {cause}" if cause else "")
        + f"\nReport: mwaa-migrate report {snapshot.name}{flags}"
    )


def exit_code(status: str) -> ExitCode:
    if status == "SUCCEEDED":
        return ExitCode.OK
    if status in TERMINAL:
        return ExitCode.MIGRATION_FAILED
    return ExitCode.RUNNING


# ------------------------------------------------------------------------------ following


# The closing lines after the view (a blank line, the outcome and its report, which a terminal may
# wrap, and the shell's next line).
CLOSING_ROOM = 5


class _Screen:
    """Redraws the view in place on a terminal, below `above` lines printed before it."""

    def __init__(self, out: TextIO, above: int = 0) -> None:
        self.out = out
        self.above = above
        self.drawn = 0

    def draw(self, lines: list[str]) -> None:
        size = shutil.get_terminal_size()
        # Room for the lines above it and for the closing lines printed below its last frame: the
        # terminal scrolls when the whole does not fit, and a redraw cannot reach above its top.
        room = size.lines - 1 - self.above - CLOSING_ROOM
        width, height = max(size.columns - 1, 20), max(room, 6)
        if len(lines) > height:
            # The cursor cannot go back above the screen's top: keep the heading and the latest states.
            hidden = len(lines) - height + 1
            lines = [*lines[:3], f"  ... {hidden} earlier states ...", *lines[3 + hidden :]]
        if self.drawn:
            # Back to the first line of the last frame, and clear everything below it.
            self.out.write(f"\x1b[{self.drawn}F\x1b[J")
        self.out.write("\n".join(line[:width] for line in lines) + "\n")
        self.out.flush()
        self.drawn = len(lines)


class _Log:
    """Prints a line per state entered, for output that is not a terminal."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.seen: set[str] = set()
        self.headed = False

    def draw(self, snapshot: Snapshot) -> None:
        if not self.headed:
            self.out.write("\n".join(_heading(snapshot)) + "\n\n")
            self.headed = True
        for step in snapshot.steps:
            if step.state not in self.seen:
                self.seen.add(step.state)
                entered = datetime.fromisoformat(step.first_entered_at)
                offset = duration(max((entered - snapshot.started).total_seconds(), 0.0))
                indent = "  " * snapshot.depths.get(step.state, 0)
                self.out.write(f"  +{offset:>8}  {indent}{step.state}\n")
        self.out.flush()


def follow(
    watcher: Watcher,
    *,
    interval: float,
    timeout: float,
    out: TextIO = sys.stdout,
    live: bool | None = None,
    flags: str = "",
    above: int = 0,
) -> Snapshot:
    """Show the execution until it ends or the deadline passes; returns the last snapshot. On a
    terminal the view keeps below the `above` lines the command printed before it."""
    live = out.isatty() if live is None else live
    screen, log = _Screen(out, above), _Log(out)
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        snapshot = watcher.snapshot()
        waiting = awaiting_approval(snapshot)
        if live:
            screen.draw([*render(snapshot), *(["", approval_line(snapshot, flags=flags)] if waiting else [])])
        else:
            log.draw(snapshot)
            if waiting and not announced:
                out.write(f"  {approval_line(snapshot, flags=flags)}\n")
                out.flush()
            announced = waiting
        if snapshot.ended:
            if not live:
                out.write("\n" + "\n".join(render(snapshot)) + "\n")
            return snapshot
        if time.monotonic() >= deadline:
            raise CliError(
                f"{snapshot.name} is still {snapshot.status} after {duration(timeout)} of following: "
                + (
                    approval_line(snapshot, flags=flags)
                    if waiting
                    else f"mwaa-migrate follow {snapshot.name}{flags}"
                ),
                ExitCode.RUNNING,
            )
        time.sleep(interval)


def rows(lines: list[str]) -> int:
    """The terminal rows these lines take once the terminal wraps them."""
    columns = max(shutil.get_terminal_size().columns, 1)
    return sum(max(1, -(-len(line) // columns)) for line in lines)
