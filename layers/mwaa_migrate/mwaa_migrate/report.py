"""Step 7: the migration's record. Written to the migration bucket whether the migration succeeded or
failed, as JSON for machines and Markdown for people, so every execution ends with an outcome someone
can read: the settings carried over and changed, the tables and their row counts on both sides, the
log streams and events copied, the time each step took, and the warnings.

The same pieces serve the command-line tool: `settings_diff` shows a plan's CreateEnvironment request
against the source, `step_timings` turns an execution's history into the steps and their durations,
and `render_markdown` prints a report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError
from pydantic import Field

from mwaa_migrate.errors import from_client_error
from mwaa_migrate.execution import execution_history, execution_name
from mwaa_migrate.models import Model

# Which settings are sensitive and what their values are replaced with (redaction.py, shared with the
# plan, which never carries an Airflow configuration option's value, and the failure path).
from mwaa_migrate.redaction import REDACTED, is_sensitive
from mwaa_migrate.report_overview import overview_section

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient


class Failure(Model):
    state: str
    error: str
    cause: str


# ---------------------------------------------------------------------------- settings


class SettingChange(Model):
    """One setting of the CreateEnvironment request compared with the source environment.
    `changed`: both have it with different values; `added`: only the request has it;
    `removed`: the source has it and the request does not. Sensitive values are REDACTED."""

    setting: str
    change: Literal["changed", "added", "removed"]
    source: Any = None
    target: Any = None


class SettingsSummary(Model):
    carried: list[str] = Field(default_factory=list)
    changed: list[SettingChange] = Field(default_factory=list)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"A": {"b": 1}, "C": [1]} -> {"A.b": 1, "C": [1]}: structures by member, lists whole."""
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key, member in value.items():
            flat.update(flatten(member, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value} if prefix else {}


def _shown(path: str, value: Any) -> Any:
    return REDACTED if value is not None and is_sensitive(path) else value


def settings_diff(source: Mapping[str, Any], request: Mapping[str, Any]) -> SettingsSummary:
    """The request compared with the source's own settings (both in CreateEnvironment's shape),
    setting by setting (Airflow configuration options and tags one by one)."""
    before, after = flatten(source), flatten(request)
    carried: list[str] = []
    changed: list[SettingChange] = []
    for path in sorted(before.keys() | after.keys()):
        if path in before and path in after:
            if before[path] == after[path]:
                carried.append(path)
            else:
                changed.append(
                    SettingChange(
                        setting=path,
                        change="changed",
                        source=_shown(path, before[path]),
                        target=_shown(path, after[path]),
                    )
                )
        elif path in after:
            changed.append(SettingChange(setting=path, change="added", target=_shown(path, after[path])))
        else:
            changed.append(SettingChange(setting=path, change="removed", source=_shown(path, before[path])))
    return SettingsSummary(carried=carried, changed=changed)


def redact_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """A CreateEnvironment request with sensitive configuration values replaced, for showing."""

    def walk(value: Any, prefix: str) -> Any:
        if isinstance(value, Mapping):
            return {
                key: walk(member, f"{prefix}.{key}" if prefix else str(key)) for key, member in value.items()
            }
        return _shown(prefix, value)

    redacted: dict[str, Any] = walk(request, "")
    return redacted


# ---------------------------------------------------------------------------- tables


class TableCount(Model):
    """Rows of one table: exported from the source, and what the import did with them on the target.
    A count the import did not report stays None (results carry `updated`, `identical` and
    `conflicts`; older ones `skipped`, `unchanged` or `rejected`)."""

    table: str
    source_rows: int | None = None
    read: int | None = None
    inserted: int | None = None
    # Rows already in the target by natural key with other values, set to the exported ones (cutover).
    updated: int | None = None
    # Rows the target held with the exported values.
    identical: int | None = None
    # An older result's: rows already in the target as exported (cutover), or at all (bulk).
    unchanged: int | None = None
    # An older bulk result's `skipped`: rows already in the target.
    already_present: int | None = None
    # An older result's: rows not in the target after the import.
    rejected: int | None = None
    # Rows the target refused or held differently (not as an import of this migration left them).
    conflicts: int | None = None

    @property
    def already_there(self) -> int | None:
        """Rows the target had already: `identical`, or an older result's `unchanged` or `skipped`."""
        if self.identical is not None:
            return self.identical
        return self.unchanged if self.unchanged is not None else self.already_present

    @property
    def not_imported(self) -> int | None:
        return self.rejected if self.rejected is not None else self.conflicts

    @property
    def target_rows(self) -> int | None:
        """The exported rows now in the target: inserted, updated, or found there already."""
        parts = [part for part in (self.inserted, self.updated, self.already_there) if part is not None]
        return sum(parts) if parts else None


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def table_counts(exported: Mapping[str, Any], imported: Mapping[str, Any]) -> list[TableCount]:
    """Row counts per table from an export's manifest and its import's result (one phase)."""
    source_tables: Mapping[str, Any] = exported.get("tables") or {}
    target_tables: Mapping[str, Any] = imported.get("tables") or {}
    counts = []
    for table in sorted(source_tables.keys() | target_tables.keys()):
        source = source_tables.get(table) or {}
        target = target_tables.get(table) or {}
        counts.append(
            TableCount(
                table=table,
                source_rows=_count(source.get("rows")),
                read=_count(target.get("read")),
                inserted=_count(target.get("inserted")),
                updated=_count(target.get("updated")),
                identical=_count(target.get("identical")),
                unchanged=_count(target.get("unchanged")),
                already_present=_count(target.get("skipped")),
                rejected=_count(target.get("rejected")),
                conflicts=_count(target.get("conflicts")),
            )
        )
    return counts


# ---------------------------------------------------------------------------- downtime


class DowntimePart(Model):
    """One part of the downtime window; None where its start or end was not reported."""

    part: str
    started_at: str | None = None
    ended_at: str | None = None
    seconds: float | None = None


class Downtime(Model):
    """The downtime window: from the pause of the recorded DAGs on the source to the moment they run
    on the target. Only what the DAGs and StartTargetDags reported; nothing is estimated."""

    paused_at: str
    # None while (or because) the target never ran the DAGs.
    live_at: str | None = None
    seconds: float | None = None
    parts: list[DowntimePart] = Field(default_factory=list)
    # The drain: how long it waited for the source's running and queued tasks, whether it hit its
    # deadline, and how many task instances still ran then.
    drain_waited_seconds: float | None = None
    drain_timed_out: bool | None = None
    drain_still_running: int | None = None


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _field(data: Mapping[str, Any], key: str) -> Any:
    """A value under its snake_case key (as the DAGs write it) or its camelCase one (as a pydantic
    model with camelCase aliases passes it on)."""
    value = data.get(key)
    return data.get(_camel(key)) if value is None else value


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _field(data, key)
    return value if isinstance(value, Mapping) else {}


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stamp(result: Mapping[str, Any], key: str) -> str | None:
    """A moment from a result's `timings`, or the result's own field of that name (`exported_at`
    and `imported_at` are also top-level fields)."""
    for value in (_field(_mapping(result, "timings"), key), _field(result, key)):
        if _instant(value) is not None:
            return str(value)
    return None


def _seconds(started_at: str | None, ended_at: str | None) -> float | None:
    started, ended = _instant(started_at), _instant(ended_at)
    if started is None or ended is None:
        return None
    return round((ended - started).total_seconds(), 3)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _still_running(value: Any) -> int | None:
    """A count, or the list of the task instances still running."""
    if isinstance(value, list):
        return len(value)
    return _count(value)


def downtime_of(
    cutover_exported: Mapping[str, Any], cutover_imported: Mapping[str, Any], live: Mapping[str, Any]
) -> Downtime | None:
    """The downtime window from the cutover export's and import's results and StartTargetDags'
    settlement; None when nothing was paused. The window ends when the import unpaused the DAGs
    (`timings.unpaused_at`) or, when it left that to StartTargetDags (an upgrade came first), at
    the settlement's `at`."""
    paused_at = _stamp(cutover_exported, "paused_at")
    if paused_at is None:
        return None
    drain_started = _stamp(cutover_exported, "drain_started_at")
    drained = _stamp(cutover_exported, "drained_at")
    exported = _stamp(cutover_exported, "exported_at")
    import_started = _stamp(cutover_imported, "import_started_at")
    imported = _stamp(cutover_imported, "imported_at")
    verified = _stamp(cutover_imported, "verified_at")
    live_at = _stamp(cutover_imported, "unpaused_at")
    if live_at is None and _instant(live.get("at")) is not None:
        live_at = str(live["at"])
    spans = (
        ("drain", drain_started, drained),
        ("delta export", drained, exported),
        ("delta import", import_started, imported),
        ("verification", imported, verified),
        ("start on target", verified, live_at),
    )
    drain = _mapping(cutover_exported, "drain")
    timed_out = _field(drain, "timed_out")
    return Downtime(
        paused_at=paused_at,
        live_at=live_at,
        seconds=_seconds(paused_at, live_at),
        parts=[
            DowntimePart(part=part, started_at=start, ended_at=end, seconds=_seconds(start, end))
            for part, start, end in spans
        ],
        drain_waited_seconds=_number(_field(drain, "waited_seconds")),
        drain_timed_out=timed_out if isinstance(timed_out, bool) else None,
        drain_still_running=_still_running(_field(drain, "still_running")),
    )


# ---------------------------------------------------------------------------- steps


class StepTiming(Model):
    """One state of the state machine as the execution went through it (loops add up)."""

    state: str
    type: str
    runs: int
    seconds: float
    status: Literal["succeeded", "failed", "running", "stopped"]
    retries: int = 0
    error: str | None = None
    first_entered_at: str
    # The errors of the tries the state retried (distinct, first seen first): what a retry was for,
    # e.g. TransientAwsError for a call throttled past botocore's own retries.
    retried_errors: list[str] = Field(default_factory=list)


# History events of states that take time or end a path; Pass, Choice and Succeed take none.
_TIMED_TYPES = ("Task", "Wait", "Parallel", "Map", "Fail")
# A task's try that failed (it may be retried).
_TASK_FAILED_EVENTS = frozenset(
    {
        "TaskFailed",
        "TaskTimedOut",
        "TaskStartFailed",
        "TaskSubmitFailed",
        "LambdaFunctionFailed",
        "LambdaFunctionTimedOut",
        "LambdaFunctionStartFailed",
        "LambdaFunctionScheduleFailed",
    }
)
# What comes right before the exit of a state that failed.
_FAILED_EVENTS = _TASK_FAILED_EVENTS | {
    "ParallelStateFailed",
    "ParallelStateAborted",
    "MapStateFailed",
    "MapStateAborted",
    "MapRunFailed",
    "MapRunAborted",
}
_SUCCEEDED_EVENTS = frozenset({"TaskSucceeded", "LambdaFunctionSucceeded"})


_SCHEDULED_EVENTS = frozenset({"TaskScheduled", "LambdaFunctionScheduled"})


@dataclass
class _Run:
    """One entry into a state, until it exits."""

    name: str
    type: str
    entered: datetime
    exited: datetime | None = None
    # None until the state's work ends: "succeeded", "failed", or "retrying" (failed, scheduled again).
    outcome: str | None = None
    failures: int = 0
    error: str | None = None
    # The error of each failed try, in order.
    errors: list[str] = field(default_factory=list)
    # Closed because the Parallel or Map around it failed, not by its own exit.
    stopped: bool = False


@dataclass
class _Timeline:
    runs: dict[int, _Run] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)


def _event_error(event: Mapping[str, Any]) -> str | None:
    for key, details in event.items():
        if key.endswith("EventDetails") and isinstance(details, Mapping) and details.get("error"):
            return str(details["error"])
    return None


def _previous(events: Mapping[int, Mapping[str, Any]], event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return events.get(int(event.get("previousEventId") or 0))


def _owning_run(
    events: Mapping[int, Mapping[str, Any]],
    runs: Mapping[int, _Run],
    event: Mapping[str, Any],
    name: str | None,
) -> tuple[int, _Run] | None:
    """The state run an event belongs to: follow previousEventId back to a state's entry (of the
    same name, for an exit: a Parallel's exit comes right after its branches' last events)."""
    cursor = _previous(events, event)
    while cursor is not None:
        run = runs.get(int(cursor["id"]))
        if run is not None and (name is None or run.name == name):
            return int(cursor["id"]), run
        cursor = _previous(events, cursor)
    return None


def _record(timeline: _Timeline, events: Mapping[int, Mapping[str, Any]], event: Mapping[str, Any]) -> None:
    kind = str(event["type"])
    timestamp: datetime = event["timestamp"]
    if kind.endswith("StateEntered"):
        state_type = kind.removesuffix("StateEntered")
        if state_type not in _TIMED_TYPES:
            return
        name = str(event["stateEnteredEventDetails"]["name"])
        run = _Run(name=name, type=state_type, entered=timestamp)
        if state_type == "Fail":
            run.exited, run.outcome = timestamp, "failed"
        timeline.runs[int(event["id"])] = run
        if name not in timeline.order:
            timeline.order.append(name)
    elif kind.endswith("StateExited"):
        owner = _owning_run(events, timeline.runs, event, str(event["stateExitedEventDetails"]["name"]))
        if owner is None:
            return
        entry_id, run = owner
        run.exited = timestamp
        previous = _previous(events, event) or {}
        if previous.get("type") in _FAILED_EVENTS:
            run.outcome = "failed"
            if run.type in {"Parallel", "Map"}:
                _stop_inside(timeline, entry_id, int(event["id"]), timestamp)
        elif run.outcome != "failed" or run.type != "Task":
            run.outcome = "succeeded"
    elif kind in _TASK_FAILED_EVENTS | _SUCCEEDED_EVENTS | _SCHEDULED_EVENTS:
        owner = _owning_run(events, timeline.runs, event, None)
        if owner is None or owner[1].exited is not None or owner[1].type != "Task":
            return
        run = owner[1]
        if kind in _TASK_FAILED_EVENTS:
            run.failures += 1
            run.outcome, run.error = "failed", _event_error(event) or run.error
            run.errors.append(_event_error(event) or "unknown")
        elif kind in _SUCCEEDED_EVENTS:
            run.outcome = "succeeded"
        elif run.outcome == "failed":
            run.outcome = "retrying"


def _stop_inside(timeline: _Timeline, entered_id: int, exited_id: int, timestamp: datetime) -> None:
    """A failed Parallel or Map ends every run still open inside it."""
    for run_id, run in timeline.runs.items():
        if entered_id < run_id < exited_id and run.exited is None:
            run.exited, run.stopped = timestamp, True


def step_timings(
    history: Iterable[Mapping[str, Any]], *, now: datetime | None = None, ended: bool = False
) -> list[StepTiming]:
    """The states an execution entered, in the order it first entered them, each with how often it
    ran, how long it took in all (a run still going counts up to `now`), and how it ended.
    `ended`: the execution is over, so a state still open was stopped, not running."""
    events = {int(event["id"]): event for event in history}
    timeline = _Timeline()
    for event_id in sorted(events):
        _record(timeline, events, events[event_id])
    return _summarise(timeline, now or datetime.now(UTC), ended)


def _status(run: _Run, ended: bool) -> Literal["succeeded", "failed", "running", "stopped"]:
    if run.outcome == "failed" and (run.exited is not None or ended):
        return "failed"
    if run.stopped or (run.exited is None and ended):
        return "stopped"
    if run.exited is None:
        return "running"
    return "succeeded"


def _summarise(timeline: _Timeline, now: datetime, ended: bool) -> list[StepTiming]:
    by_name: dict[str, list[_Run]] = {}
    for run in timeline.runs.values():
        by_name.setdefault(run.name, []).append(run)
    timings = []
    for name in timeline.order:
        runs = by_name[name]
        statuses = [_status(run, ended) for run in runs]
        # A loop is running while any of its runs is; otherwise its last run says how it ended.
        status = "running" if "running" in statuses else statuses[-1]
        failures = sum(run.failures for run in runs)
        last = runs[-1]
        errors = [error for run in runs for error in run.errors]
        if status == "failed" and last.failures:
            errors = errors[:-1]  # the last failure was not retried: it ended the step
        timings.append(
            StepTiming(
                state=name,
                type=last.type,
                runs=len(runs),
                seconds=round(
                    max(sum(((r.exited or now) - r.entered).total_seconds() for r in runs), 0.0), 3
                ),
                status=status,
                retries=failures - (1 if status == "failed" and last.failures else 0),
                error=last.error if last.outcome in {"failed", "retrying"} else None,
                first_entered_at=runs[0].entered.isoformat(),
                retried_errors=list(dict.fromkeys(errors)),
            )
        )
    return timings


def finished_steps(sfn: SFNClient, execution_arn: str) -> list[StepTiming]:
    """The steps of an execution up to the state now running, which calls this to write its report:
    everything before it is over (a state still open there was stopped)."""
    history = execution_history(sfn, execution_arn)
    entries = [event for event in history if str(event["type"]).endswith("StateEntered")]
    current = max((int(event["id"]) for event in entries), default=None)
    return step_timings([event for event in history if int(event["id"]) != current], ended=True)


# ---------------------------------------------------------------------------- the report


class MigrationReport(Model):
    status: Literal["SUCCEEDED", "FAILED"]
    migration_id: str
    execution_id: str
    source: dict[str, Any]
    target: dict[str, Any]
    started_at: str
    finished_at: str
    duration_seconds: float
    # The CreateEnvironment request compared with the source (sensitive values redacted).
    settings: SettingsSummary | None = None
    warnings: list[str] = Field(default_factory=list)
    tables: list[TableCount] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    logs: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepTiming] = Field(default_factory=list)
    policies_removed: list[str] = Field(default_factory=list)
    failure: Failure | None = None
    # The cutover's counts per table (the delta, in the downtime window); `tables` are the bulk's.
    cutover_tables: list[TableCount] = Field(default_factory=list)
    # One line: which environment runs the DAGs (the Markdown's first line under the title).
    dags_running: str | None = None
    # Where the DAGs were left: the Settlement of the failure path, or of StartTargetDags.
    cutover: dict[str, Any] = Field(default_factory=dict)
    downtime: Downtime | None = None


def seconds_between(started_at: str, finished: datetime) -> float:
    started = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    return round((finished - started).total_seconds(), 3)


def report_key(prefix: str, execution_id: str) -> str:
    return f"{prefix}/reports/{execution_name(execution_id)}.json"


def markdown_key(json_key: str) -> str:
    """The Markdown report beside the JSON one."""
    return json_key.removesuffix(".json") + ".md"


def write_report(s3: S3Client, bucket: str, key: str, report: MigrationReport) -> str:
    """Write the report as JSON at `key` and as Markdown beside it; returns the JSON's URI."""
    uri = f"s3://{bucket}/{key}"
    bodies = (
        (key, json.dumps(report.to_event(), indent=2, sort_keys=True), "application/json"),
        (markdown_key(key), render_markdown(report, uri=uri), "text/markdown; charset=utf-8"),
    )
    for object_key, body, content_type in bodies:
        try:
            s3.put_object(Bucket=bucket, Key=object_key, Body=body.encode(), ContentType=content_type)
        except ClientError as error:
            raise from_client_error(error, f"writing the report to s3://{bucket}/{object_key}") from None
    return uri


# ---------------------------------------------------------------------------- Markdown


def duration(seconds: float) -> str:
    """3725.2 -> 1:02:05; under a minute keeps one decimal (4.2s)."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _cell(value: Any) -> str:
    """A value in a Markdown table cell: JSON for structures, pipes and line breaks escaped."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return lines


def _environment(side: Mapping[str, Any]) -> str:
    text = str(side.get("name", "unknown"))
    if side.get("airflowVersion"):
        text += f", Airflow {side['airflowVersion']}"
    if side.get("upgradedTo") and side.get("createdVersion"):
        text += f" (created on {side['createdVersion']}, upgraded in place)"
    return text


_GROUP_COLUMNS = (
    ("streamsListed", "Listed"),
    ("streamsSelected", "Selected"),
    ("streamsCopied", "Copied"),
    ("streamsSkipped", "Skipped"),
    ("streamsFailed", "Failed"),
    ("eventsWritten", "Events written"),
    ("eventsAlreadyPresent", "Already there"),
)
# Past this many skipped streams, the Markdown counts them by reason only (the JSON lists them all).
_SKIPPED_SHOWN = 20


def _sum_line(total: tuple[int | None, str], parts: Sequence[tuple[int | None, str]]) -> str | None:
    """'7 listed = 1 outside the window + 6 selected': the parts a report has (None: not reported),
    after their total when it has it; None when it has none of them."""
    shown = [f"{count} {label}" for count, label in parts if count is not None]
    if total[0] is None:
        return ", ".join(shown) or None
    return f"{total[0]} {total[1]} = " + " + ".join(shown) if shown else f"{total[0]} {total[1]}"


def log_copy_lines(logs: Mapping[str, Any]) -> list[str]:
    """The log copy's figures as sentences whose parts add up to their totals: the streams listed,
    the streams selected, the events read and the calls made. The Markdown report (which the CLI
    prints) and the demo print these."""
    figures = {key: _count(value) for key, value in logs.items()}
    selected = figures.get("streamsSelected")
    not_failed = figures.get("streamsNotFailed")
    if not (logs.get("failedTasksOnly") or not_failed):
        not_failed = None  # every stream is of interest: not worth a "+ 0"
    listing = _sum_line(
        (figures.get("streamsListed"), "listed"),
        [
            (figures.get("streamsOutsideWindow"), "outside the window"),
            (not_failed, "not of a failed task"),
            (selected, "selected"),
        ],
    )
    copy = _sum_line(
        (selected, "selected"),
        [
            (figures.get("streamsCopied"), "copied"),
            (figures.get("streamsSkipped"), "skipped"),
            (figures.get("streamsFailed"), "failed"),
        ],
    )
    lines = []
    streams = [
        part for part in (listing, copy) if part and (listing is None or part != f"{selected} selected")
    ]
    if streams:
        lines.append("Log streams: " + "; ".join(streams) + ".")
    events = _sum_line(
        (figures.get("eventsRead"), "read"),
        [
            (figures.get("eventsWritten"), "written"),
            (figures.get("eventsAlreadyPresent"), "already in the target"),
            (figures.get("eventsTooOld"), "too old for CloudWatch Logs"),
            (figures.get("eventsRejected"), "rejected"),
        ],
    )
    if events:
        truncated = figures.get("eventsTruncated")
        lines.append(
            "Events in the window: "
            + events
            + (f" ({truncated} written truncated to fit)" if truncated else "")
            + "."
        )
    calls = [
        f"{figures[key]} {name}"
        for key, name in (
            ("describeLogStreamsCalls", "DescribeLogStreams"),
            ("getLogEventsCalls", "GetLogEvents"),
            ("filterLogEventsCalls", "FilterLogEvents"),
            ("putLogEventsCalls", "PutLogEvents"),
        )
        if figures.get(key)
    ]
    if calls:
        lines.append("Calls: " + ", ".join(calls) + ".")
    return lines


def _streams(count: int) -> str:
    return f"{count} stream" if count == 1 else f"{count} streams"


def _logs_section(logs: Mapping[str, Any]) -> list[str]:
    lines = ["## Logs copied", ""]
    if not logs:
        return [*lines, "Not copied.", ""]
    if logs.get("since") and logs.get("until"):
        lines += [f"Log events from {logs['since']} to {logs['until']}.", ""]
    figures = log_copy_lines(logs)
    if figures:
        lines += [*(f"- {line}" for line in figures), ""]
    groups = [group for group in logs.get("groups") or [] if isinstance(group, Mapping)]
    if groups:
        lines += _table(
            ("Log group", "Into", *(label for _, label in _GROUP_COLUMNS)),
            [
                (
                    group.get("sourceGroup", group.get("group")),
                    group.get("targetGroup"),
                    *(group.get(key) for key, _ in _GROUP_COLUMNS),
                )
                for group in groups
            ],
        )
        lines.append("")
    reasons = [
        f"- {group.get('sourceGroup', group.get('group'))}: not copied, {_cell(group['skippedReason'])}"
        for group in groups
        if group.get("skippedReason")
    ]
    for key, verb in (("skippedByReason", "skipped"), ("failedByReason", "failed")):
        by_reason = logs.get(key) or {}
        reasons += [
            f"- {_streams(int(count))} {verb}: {_cell(reason)}" for reason, count in sorted(by_reason.items())
        ]
    named = [
        skip
        for skip in logs.get("skipped") or []
        if isinstance(skip, Mapping) and not (skip.get("stream") == "*" and groups)
    ]
    if len(named) <= _SKIPPED_SHOWN or not reasons:
        reasons += [
            f"- skipped `{_cell(skip.get('stream'))}`: {_cell(skip.get('reason'))}"
            for skip in named
            if skip.get("reason") not in (logs.get("failedByReason") or {})
        ]
        reasons += [
            f"- failed `{_cell(skip.get('stream'))}` and the rest of its item: {_cell(skip.get('reason'))}"
            for skip in named
            if skip.get("reason") in (logs.get("failedByReason") or {})
        ]
    if reasons:
        lines += [*reasons, ""]
    return lines


def human(seconds: float) -> str:
    """3725.2 -> 1 h 2 min 5 s; 252 -> 4 min 12 s; 4.25 -> 4.2 s."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, minutes, rest = whole // 3600, whole % 3600 // 60, whole % 60
    parts = [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes or hours else []
    parts += [f"{rest} s"] if rest else []
    return " ".join(parts)


def _downtime_section(downtime: Downtime | None) -> list[str]:
    if downtime is None:
        return []
    lines = ["## Downtime", ""]
    if downtime.seconds is None or downtime.live_at is None:
        lines.append(
            f"The DAGs were paused on the source at {downtime.paused_at}; "
            "no start on the target was reported."
        )
    else:
        lines.append(
            f"The DAGs stood still for **{human(downtime.seconds)}**: paused on the source at "
            f"{downtime.paused_at}, running on the target at {downtime.live_at}."
        )
    lines.append("")
    lines += _table(
        ("Part", "From", "To", "Duration"),
        [
            (
                part.part,
                part.started_at,
                part.ended_at,
                None if part.seconds is None else duration(part.seconds),
            )
            for part in downtime.parts
        ],
    )
    lines.append("")
    drain = []
    if downtime.drain_waited_seconds is not None:
        drain.append(f"waited {duration(downtime.drain_waited_seconds)} for running and queued tasks")
    if downtime.drain_timed_out is not None:
        drain.append("hit its deadline" if downtime.drain_timed_out else "finished before its deadline")
    if downtime.drain_still_running is not None:
        drain.append(f"{downtime.drain_still_running} task instances still running at its end")
    if drain:
        lines += ["Drain: " + ", ".join(drain) + ".", ""]
    return lines


def _epoch_ms(value: str | None) -> int | None:
    moment = _instant(value)
    return None if moment is None else round(moment.timestamp() * 1000)


def _gantt_name(name: str) -> str:
    # Mermaid reads ":" as the end of a task's name, "#" and ";" as comments and separators.
    return re.sub(r"[:#;]", " ", name).strip() or "step"


def _timeline_section(steps: Sequence[StepTiming], downtime: Downtime | None) -> list[str]:
    """A Mermaid gantt chart of the steps (each from its first entry, as long as its runs took in
    all: a loop's bar is its time in the state, not its span) and the downtime window."""
    bars = []
    for step in steps:
        start = _epoch_ms(step.first_entered_at)
        if start is not None:
            tag = "crit, " if step.status == "failed" else ""
            end = start + round(step.seconds * 1000)
            bars.append(f"    {_gantt_name(step.state)} :{tag}{start}, {end}")
    if not bars:
        return []
    lines = ["## Timeline", "", "```mermaid", "gantt", "    dateFormat x", "    axisFormat %H:%M"]
    lines += ["    section Steps", *bars]
    if downtime is not None:
        paused, live = _epoch_ms(downtime.paused_at), _epoch_ms(downtime.live_at)
        if paused is not None:
            lines.append("    section DAGs")
            if live is not None:
                lines.append(f"    downtime :crit, {paused}, {live}")
            lines.append(f"    paused :milestone, {paused}, {paused}")
            if live is not None:
                lines.append(f"    live :milestone, {live}, {live}")
    return [*lines, "```", ""]


_TABLE_HEADERS = (
    "Table",
    "Source rows",
    "Read by import",
    "Inserted",
    "Updated",
    "Already in target",
    "Conflicts",
    "In target",
)
# Conflicts listed per table in the report (the import's result lists up to 20, with the count).
_CONFLICTS_SHOWN = 20


def _conflicts_lines(imported: Mapping[str, Any]) -> list[str]:
    """The import's conflicts by table and key, as its result lists them."""
    conflicts = _field(imported, "conflicts")
    if not isinstance(conflicts, Mapping) or not conflicts:
        return []
    on_conflict = _field(imported, "on_conflict")
    lines = [f"Conflicts (onConflict `{_cell(on_conflict or 'fail')}`):", ""]
    for table, found in sorted(conflicts.items()):
        if not isinstance(found, Mapping):
            continue
        listed = [item for item in found.get("listed") or [] if isinstance(item, Mapping)]
        count = found.get("count", len(listed))
        lines.append(f"- {_cell(table)}: {count}, {_cell(found.get('resolution', ''))}")
        for item in listed[:_CONFLICTS_SHOWN]:
            key = item.get("key")
            shown = ", ".join(f"{k}={v}" for k, v in key.items()) if isinstance(key, Mapping) else ""
            lines.append(f"  - {_cell(shown)} ({_cell(item.get('reason', ''))})")
        if isinstance(count, int) and count > len(listed[:_CONFLICTS_SHOWN]):
            lines.append(f"  - and {count - len(listed[:_CONFLICTS_SHOWN])} more")
    return [*lines, ""]


def _history_lines(imported: Mapping[str, Any]) -> list[str]:
    """What the import did not carry (by table, with its rows and why) and the history it wrote for
    the target's next Airflow version (failed tries kept in task_instance_history before Airflow 3)."""
    lines: list[str] = []
    not_carried = _field(imported, "not_carried")
    entries = [entry for entry in not_carried or [] if isinstance(entry, Mapping)]
    if isinstance(not_carried, list):
        lines += ["Not carried:", ""]
        lines += [
            f"- {_cell(entry.get('table', ''))}: {_cell(entry.get('rows', '?'))} rows, "
            f"{_cell(entry.get('reason', ''))}"
            for entry in entries
        ] or ["- nothing: every table with history was carried"]
        lines.append("")
    synthesized = _field(imported, "synthesized")
    for table, written in sorted(synthesized.items()) if isinstance(synthesized, Mapping) else []:
        if not isinstance(written, Mapping):
            continue
        lines.append(
            f"Written to {_cell(table)} from {_cell(written.get('from', ''))}: "
            f"{_cell(written.get('written', 0))} rows ({_cell(written.get('why', ''))})."
        )
        lines.append("")
    return lines


def _tables_section(report: MigrationReport) -> list[str]:
    lines = ["## Metadata", ""]
    phases = (
        ("Bulk copy (while the source ran)", report.tables, report.metadata.get("import") or {}),
        (
            "Cutover (the delta, in the downtime window)",
            report.cutover_tables,
            report.metadata.get("cutoverImport") or {},
        ),
    )
    for title, counts, phase_import in phases:
        if not counts:
            continue
        lines += [f"### {title}", ""]
        lines += _table(
            _TABLE_HEADERS,
            [
                (
                    count.table,
                    count.source_rows,
                    count.read,
                    count.inserted,
                    count.updated,
                    count.already_there,
                    count.not_imported,
                    count.target_rows,
                )
                for count in counts
            ],
        )
        lines.append("")
        lines += _conflicts_lines(phase_import)
        lines += _history_lines(phase_import)
    if not report.tables and not report.cutover_tables:
        lines += ["No tables were moved.", ""]
    exported = report.metadata.get("cutoverExport") or report.metadata.get("export") or {}
    imported = report.metadata.get("cutoverImport") or report.metadata.get("import") or {}
    active = _field(exported, "active_dags")
    unpaused = _field(imported, "unpaused_dags")
    if active is not None:
        lines.append("Active DAGs on the source: " + (", ".join(map(str, active)) or "none"))
    if unpaused is not None:
        lines.append("Unpaused on the target: " + (", ".join(map(str, unpaused)) or "none"))
    if active is not None or unpaused is not None:
        lines.append("")
    return lines


def _cutover_section(cutover: Mapping[str, Any], shown: str | None) -> list[str]:
    """Where the way back (or the start on the target) left the DAGs, and what did not go through
    (`shown`: the line already at the top)."""
    if not cutover:
        return []
    lines = ["## The DAGs", ""]
    if cutover.get("line") and cutover["line"] != shown:
        lines.append(_cell(cutover["line"]))
    if cutover.get("recordState"):
        lines.append(f"Cutover record: `{_cell(cutover['recordState'])}`.")
    for key, label in (("paused", "Paused"), ("unpaused", "Unpaused")):
        dags = cutover.get(key)
        if isinstance(dags, list) and dags:
            lines.append(f"{label}: " + ", ".join(_cell(dag) for dag in dags))
    problems = [problem for problem in cutover.get("problems") or [] if problem]
    lines.append("")
    if problems:
        lines += [*(f"- not done: {_cell(problem)}" for problem in problems), ""]
    return lines


def render_markdown(report: MigrationReport, *, uri: str | None = None) -> str:
    """The report for people: which environment runs the DAGs, a summary, the downtime, then the
    failure, warnings, settings, tables, logs, a timeline and the steps."""
    source, target = report.source, report.target
    lines = [
        f"# Migration {source.get('name', 'unknown')} → {target.get('name', 'unknown')}: {report.status}",
        "",
        *([f"**{_cell(report.dags_running)}**", ""] if report.dags_running else []),
        *_table(
            ("", ""),
            [
                ("Migration", report.migration_id),
                ("Execution", report.execution_id),
                ("Source", _environment(source)),
                ("Target", _environment(target)),
                ("Started", report.started_at),
                ("Finished", report.finished_at),
                ("Duration", duration(report.duration_seconds)),
                *([("Report", uri)] if uri else []),
            ],
        ),
        "",
    ]
    lines += overview_section(report)
    lines += _downtime_section(report.downtime)
    if report.failure:
        lines += [
            "## Failure",
            "",
            f"State `{report.failure.state}` failed with `{report.failure.error}`:",
            "",
            *[f"> {line}" if line else ">" for line in report.failure.cause.splitlines() or [""]],
            "",
        ]
    lines += _cutover_section(report.cutover, report.dags_running)
    lines += ["## Warnings", ""]
    lines += [f"- {_cell(warning)}" for warning in report.warnings] or ["None."]
    lines.append("")

    lines += ["## Environment settings", ""]
    if report.settings is None:
        lines += ["Not known: the migration stopped before its plan was made.", ""]
    else:
        changes = report.settings.changed
        lines.append(
            f"{len(report.settings.carried)} settings carried over unchanged, {len(changes)} changed "
            f"(values of sensitive settings are shown as `{REDACTED}`)."
        )
        lines.append("")
        if changes:
            lines += _table(
                ("Setting", "Change", "Source", "Target"),
                [(change.setting, change.change, change.source, change.target) for change in changes],
            )
            lines.append("")
        if report.settings.carried:
            lines += ["Carried over unchanged: " + ", ".join(f"`{p}`" for p in report.settings.carried), ""]

    lines += _tables_section(report)

    lines += _logs_section(report.logs)

    lines += _timeline_section(report.steps, report.downtime)
    lines += ["## Steps", ""]
    if report.steps:
        lines += _table(
            ("Step", "Type", "Runs", "Duration", "Result"),
            [
                (
                    step.state,
                    step.type,
                    step.runs,
                    duration(step.seconds),
                    step.status
                    + (f", {step.retries} retried" if step.retries else "")
                    + (f" after {', '.join(step.retried_errors)}" if step.retried_errors else "")
                    + (f" ({step.error})" if step.error else ""),
                )
                for step in report.steps
            ],
        )
        lines.append("")
    else:
        lines += ["Not recorded.", ""]

    lines += ["## Temporary policies removed", ""]
    lines += [f"- `{policy}`" for policy in report.policies_removed] or ["None."]
    lines.append("")
    return "\n".join(lines)
