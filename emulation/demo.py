"""`make demo`: a whole migration through the real state machine definition, on this machine.

    python -m emulation.demo [scenario name or path]

Prints the states as the execution enters them, then the report's figures (the same the Markdown
report shows: the outcome, the downtime, the rows of each table, the log streams and events, the
retries) and where the whole report and the functions' log lines were written. Exits 0 when the
outcome is the one the scenario expects, 1 when it is not, 2 for a scenario that does not exist.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from emulation.local_stack import TERMINAL, LocalStack
from emulation.scenario import Expectation, Scenario, UnknownScenario, find
from mwaa_migrate.execution import APPROVAL_STATE, StepTiming, execution_history, new_execution_name
from mwaa_migrate.migration_bucket import markdown_key
from mwaa_migrate.models import source_name_of
from mwaa_migrate.run.report import MigrationReport, TableCount
from mwaa_migrate.run.report_markdown import human, log_copy_lines

# Where the demo writes the whole report and the functions' log lines (named at the end).
OUTPUT_DIR = Path(tempfile.gettempdir()) / "mwaa-migrate-demo"
WIDTH = 100
RULE = "-" * WIDTH
# States that do the work; Choice, Pass and Wait states only route and wait.
_SHOWN_STATES = frozenset({"Task", "Parallel", "Map", "Succeed", "Fail"})
_FAILED_TRIES = frozenset({"TaskFailed", "LambdaFunctionFailed", "TaskTimedOut", "LambdaFunctionTimedOut"})


class _States:
    """The states as they are first entered, on lines of at most WIDTH characters, each line starting
    with the seconds since the execution started: `    3.2s  CloneEnvironment → DeployExportDag`."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.column = 0
        self.seen: set[str] = set()

    def entered(self, elapsed: float, name: str) -> None:
        if name in self.seen:
            return
        self.seen.add(name)
        if self.column and self.column + 3 + len(name) > WIDTH:
            self.end()
        text = f" → {name}" if self.column else f"  {elapsed:6.1f}s  {name}"
        self.out.write(text)
        self.column += len(text)
        self.out.flush()

    def note(self, text: str) -> None:
        """A line of its own under the states (a failed try, the operator's answer)."""
        self.end()
        print(f"           {text}", file=self.out, flush=True)

    def end(self) -> None:
        if self.column:
            self.out.write("\n")
            self.out.flush()
        self.column = 0


def _failed_try(event: Mapping[str, Any]) -> str:
    """`! TransientAwsError: reading ...`: a failed try's error and the first line of its message."""
    details: Any = event.get("taskFailedEventDetails") or event.get("lambdaFunctionFailedEventDetails") or {}
    error = str(details.get("error") or "failed")
    cause = str(details.get("cause") or "")
    try:  # a Lambda's error comes as its runtime's JSON: {"errorType", "errorMessage", ...}
        parsed = json.loads(cause)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("errorMessage"):
        cause = str(parsed["errorMessage"])
    first = cause.strip().splitlines()[0] if cause.strip() else ""
    line = f"! {error}: {first}" if first else f"! {error}"
    room = WIDTH - 11
    return line if len(line) <= room else line[: room - 1].rstrip() + "…"


def follow(
    stack: LocalStack,
    execution_arn: str,
    timeout_seconds: float = 300,
    on_entered: Callable[[str], str | None] | None = None,
    out: IO[str] | None = None,
) -> dict[str, Any]:
    """Print the states as they are entered, until the execution ends (or the deadline passes).
    `on_entered` is told each state's name as it is entered (the demo's operator answers there); a
    text it returns is printed under the states."""
    states = _States(out or sys.stdout)
    seen = 0
    started = stack.sfn.describe_execution(executionArn=execution_arn)["startDate"]
    deadline = time.monotonic() + timeout_seconds
    try:
        while True:
            looked = time.monotonic()
            described = stack.sfn.describe_execution(executionArn=execution_arn)
            # Names, times and errors: no state's data.
            events = execution_history(stack.sfn, execution_arn)
            for event in events[seen:]:
                elapsed = (event["timestamp"] - started).total_seconds()
                kind = event["type"]
                entered = event.get("stateEnteredEventDetails")
                if entered and kind.removesuffix("StateEntered") in _SHOWN_STATES:
                    states.entered(elapsed, entered["name"])
                elif kind in _FAILED_TRIES:
                    states.note(_failed_try(event))
                said = on_entered(entered["name"]) if on_entered is not None and entered else None
                if said:
                    states.note(said)
            seen = len(events)
            if described["status"] in TERMINAL:
                return dict(described)
            if time.monotonic() > deadline:
                raise TimeoutError(f"the execution is still {described['status']} after {timeout_seconds}s")
            # Each look is moto's work, in this process: the whole history, sent and parsed again. It is
            # slower the longer the history: wait twice what it took, so that following the run
            # takes at most a third of the time from the run itself.
            time.sleep(max(0.1, 2 * (time.monotonic() - looked)))
    finally:
        states.end()


# ---------------------------------------------------------------------------------------------------
# The report's figures


def _rows(counts: list[TableCount]) -> str:
    """`connection 2→2, dag_run 4→4`: each table with rows, its rows in the source → in the target."""
    shown = [
        f"{count.table} {_figure(count.source_rows)}→{_figure(count.target_rows)}"
        for count in counts
        if count.source_rows or count.target_rows
    ]
    return ", ".join(shown) or "no rows"


def _figure(value: int | None) -> str:
    return "?" if value is None else str(value)


def _retries(steps: list[StepTiming]) -> str:
    retried = [
        f"{step.state} retried {step.retries} time{'s' if step.retries > 1 else ''}"
        + (f" after {', '.join(step.retried_errors)}" if step.retried_errors else "")
        for step in steps
        if step.retries
    ]
    return "; ".join(retried) or "none"


def _wrap(text: str, width: int) -> list[str]:
    """A text cut at spaces into lines of at most `width` characters (a longer word stays whole)."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return [*lines, current]


def _wrapped(label: str, texts: list[str]) -> list[str]:
    """Texts beside a label of 10 columns, each wrapped to WIDTH."""
    lines = [line for text in texts for line in _wrap(text, WIDTH - 11)]
    return [f"{label if index == 0 else '':<10} {line}" for index, line in enumerate(lines)]


def report_lines(report: MigrationReport) -> list[str]:
    """The report's headline figures for a terminal: the same figures as its Markdown sections."""
    source, target = report.source, report.target
    lines = [
        f"Migration {source.get('name', 'unknown')} → {target.get('name', 'unknown')}: {report.status} "
        f"in {human(report.duration_seconds)}"
    ]
    if report.dags_running:
        lines += _wrap(report.dags_running, WIDTH)
    if report.failure:
        failure = report.failure
        cause = [line.strip() for line in failure.cause.strip().splitlines() if line.strip()]
        # The first line says what failed, the last the error it ended with (a task's log, say).
        shown = cause if len(cause) <= 2 else [cause[0], "…", cause[-1]]
        lines += _wrapped("Failure", [f"{failure.state} failed with {failure.error}:", *shown])
    downtime = report.downtime
    if downtime is not None:
        text = (
            f"{human(downtime.seconds)}, from the pause on the source to the start on the target"
            if downtime.seconds is not None and downtime.live_at
            else f"the DAGs were paused on the source at {downtime.paused_at[:19]}Z; no start on the "
            "target was reported"
        )
        lines += _wrapped("Downtime", [text])
    tables = []
    if report.tables:
        tables.append(f"bulk copy: {_rows(report.tables)}")
    if report.cutover_tables:
        tables.append(f"cutover: {_rows(report.cutover_tables)}")
    lines += _wrapped(
        "Metadata", [*tables, "(rows in the source → in the target)"] if tables else ["none moved"]
    )
    logs = log_copy_lines(report.logs) if report.logs else []
    lines += _wrapped("Logs", logs or ["not copied"])
    lines += _wrapped("Retries", [_retries(report.steps)])
    lines += _wrapped("Warnings", report.warnings or ["none"])
    return lines


# ---------------------------------------------------------------------------------------------------
# The functions' log lines


class LogFile(logging.Filter):
    """Every log line sent to one file instead of the terminal: the functions' JSON lines (Powertools
    writes to stdout), moto's, botocore's and Python's warnings; counted by level."""

    def __init__(self, file: IO[str]) -> None:
        super().__init__()
        self.file = file
        self.levels: Counter[str] = Counter()
        self._moved: list[tuple[logging.StreamHandler[Any], IO[str]]] = []
        self._propagating: list[logging.Logger] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.levels[record.levelname] += 1
        return True

    def reroute(self) -> None:
        """Point every handler that writes to the terminal at the file: call it again once more
        loggers exist (the functions are loaded when the stack starts)."""
        loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]
        for logger in loggers:
            for handler in logger.handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream in {sys.stdout, sys.stderr}:
                    self._moved.append((handler, handler.stream))
                    handler.setStream(self.file)
                    handler.addFilter(self)
                    if logger.propagate and logger is not logging.getLogger():
                        # Its own handler writes the line: the root's would write it a second time.
                        logger.propagate = False
                        self._propagating.append(logger)

    def restore(self) -> None:
        for handler, stream in self._moved:
            handler.setStream(stream)
            handler.removeFilter(self)
        for logger in self._propagating:
            logger.propagate = True
        self._moved.clear()
        self._propagating.clear()


@contextmanager
def logs_to(path: Path) -> Iterator[LogFile]:
    """Log lines to `path` while the block runs (root logger at WARNING, Python's warnings too)."""
    with path.open("w", encoding="utf-8") as file:
        route = LogFile(file)
        root = logging.getLogger()
        saved_handlers, saved_level = root.handlers[:], root.level
        handler = logging.StreamHandler(file)
        handler.addFilter(route)
        root.handlers = [handler]
        root.setLevel(logging.WARNING)
        logging.captureWarnings(True)
        route.reroute()
        try:
            yield route
        finally:
            route.restore()
            logging.captureWarnings(False)
            root.handlers = saved_handlers
            root.setLevel(saved_level)


# ---------------------------------------------------------------------------------------------------
# The run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", nargs="?", default="default", help="a name under scenarios/ or a path")
    args = parser.parse_args(argv)
    try:
        scenario = Scenario.load(find(args.scenario))
    except UnknownScenario as error:
        print(f"make demo: {error}", file=sys.stderr)
        return 2
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, problem['loc'])) or 'the file'}: {problem['msg']}"
            for problem in error.errors()
        )
        print(f"make demo: scenario {args.scenario} is not valid: {problems}", file=sys.stderr)
        return 2
    request = scenario.input
    print("\n".join(_wrap(f"Scenario {scenario.name}: {scenario.description}", WIDTH)))
    print(
        f"Migrating {source_name_of(request)} (Airflow {scenario.source.get('AirflowVersion')}) "
        f"to {request.get('targetEnvironmentName')} (Airflow {request.get('targetAirflowVersion')})"
        + (f", cutover {request['cutover']}" if request.get("cutover") else "")
        + "\n"
    )
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log_path = OUTPUT_DIR / f"{scenario.name}-{stamp}.log"
    with logs_to(log_path) as log_file, LocalStack(scenario, instant_retries=False) as stack:
        log_file.reroute()
        expected, outcome, reports = _run(stack, scenario, scenario.expect)
        outcomes = [outcome]
        if scenario.rerun is not None:
            print(f"{RULE}\nThe same input, started again:\n")
            again, outcome, more = _run(stack, scenario, scenario.rerun)
            expected, reports = again and expected, reports + more
            outcomes.append(outcome)
    print(RULE)
    for path in reports:
        print(f"The whole report: {path} (and its JSON beside it)")
    levels = log_file.levels
    tally = ", ".join(
        f"{levels[level]} {word}{'' if levels[level] == 1 else 's'}"
        for level, word in (("ERROR", "error"), ("WARNING", "warning"))
        if levels[level]
    )
    print(f"The functions' log lines: {log_path}" + (f" ({tally})" if tally else ""))
    print(_outcome(scenario, outcomes, expected))
    return 0 if expected else 1


def _outcome(scenario: Scenario, outcomes: list[str], expected: bool) -> str:
    """The last line: how the execution(s) ended, and whether the scenario expects it."""
    ended = " then ".join(outcomes)
    if expected:
        return f"Migration {ended}, as scenario {scenario.name} expects."
    wanted = [scenario.expect] + ([scenario.rerun] if scenario.rerun else [])
    expects = " then ".join(w.status + (f" ({w.error})" if w.error else "") for w in wanted)
    return f"Migration {ended}, but scenario {scenario.name} expects {expects}."


def _run(stack: LocalStack, scenario: Scenario, expect: Expectation) -> tuple[bool, str, list[Path]]:
    """One execution of the scenario's input, followed to its end: whether it ended as expected, how
    it ended, and the report written locally."""
    name = new_execution_name(
        str(source_name_of(scenario.input)),
        str(scenario.input.get("targetEnvironmentName")),
        prefix="demo-",
    )
    execution_arn = stack.start(name)
    states = sys.stdout

    def operator(state: str) -> str | None:
        if state != APPROVAL_STATE or scenario.approval is None:
            return None
        stack.answer_approval(execution_arn, approve=scenario.approval == "approve")
        return f"(the operator answered: mwaa-migrate {scenario.approval} {name})"

    print("States, as the execution enters them (seconds since its start):")
    described = follow(stack, execution_arn, on_entered=operator, out=states)
    status = str(described["status"])
    print()
    written = _summary(stack, scenario, described, name)
    expected = expect.status == status and expect.error in {None, described.get("error")}
    outcome = status if status == "SUCCEEDED" else f"{status} ({described.get('error')})"
    if not expected:
        wanted = expect.status + (f" ({expect.error})" if expect.error else "")
        print(
            f"The scenario {scenario.name} expected {wanted}, the execution ended {outcome}.", file=sys.stderr
        )
    return expected, outcome, written


def _summary(stack: LocalStack, scenario: Scenario, described: dict[str, Any], name: str) -> list[Path]:
    """Print the report's figures and the target's state; write the Markdown report locally."""
    output = json.loads(described.get("output") or "{}")
    request = scenario.input
    prefix = f"migrations/{source_name_of(request)}/{request.get('targetEnvironmentName')}"
    # A failure's report is where a success's would be: the execution's output names only the latter.
    uri = output.get("reportUri") or f"s3://{scenario.migration_bucket}/{prefix}/reports/{name}.json"
    bucket, key = uri[5:].split("/", 1)
    written: list[Path] = []
    try:
        data = stack.read_json(bucket, key)
        markdown = stack.s3.get_object(Bucket=bucket, Key=markdown_key(key))["Body"].read().decode()
    except stack.s3.exceptions.NoSuchKey:
        print("No report was written.")
    else:
        print(RULE)
        print("\n".join(report_lines(MigrationReport.model_validate(data))))
        # The report as the pipeline wrote it to the (emulated) bucket, Markdown and JSON side by side.
        path = OUTPUT_DIR / f"{name}.md"
        path.write_text(markdown, encoding="utf-8")
        path.with_suffix(".json").write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        written.append(path)
    target_name = str(request.get("targetEnvironmentName"))
    try:
        target = stack.mwaa.get_environment(Name=target_name)["Environment"]
    except stack.mwaa.exceptions.ResourceNotFoundException:
        print(*_wrapped("Target", [f"{target_name}: not created"]), sep="\n")
    else:
        print(
            *_wrapped("Target", [f"{target_name}: {target['Status']}, Airflow {target['AirflowVersion']}"]),
            sep="\n",
        )
    return written


if __name__ == "__main__":
    sys.exit(main())
