"""The report for people: a MigrationReport as Markdown (written beside the JSON, printed by
`mwaa-migrate report`), and the figures' lines the demo prints too."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mwaa_migrate.redaction import REDACTED
from mwaa_migrate.run.report import Downtime, MigrationReport, count_of, field_of, instant_of
from mwaa_migrate.run.report_overview import overview_section

if TYPE_CHECKING:
    from mwaa_migrate.execution import StepTiming


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
    figures = {key: count_of(value) for key, value in logs.items()}
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
    moment = instant_of(value)
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
    conflicts = field_of(imported, "conflicts")
    if not isinstance(conflicts, Mapping) or not conflicts:
        return []
    on_conflict = field_of(imported, "on_conflict")
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
    not_carried = field_of(imported, "not_carried")
    entries = [entry for entry in not_carried or [] if isinstance(entry, Mapping)]
    if isinstance(not_carried, list):
        lines += ["Not carried:", ""]
        lines += [
            f"- {_cell(entry.get('table', ''))}: {_cell(entry.get('rows', '?'))} rows, "
            f"{_cell(entry.get('reason', ''))}"
            for entry in entries
        ] or ["- nothing: every table with history was carried"]
        lines.append("")
    synthesized = field_of(imported, "synthesized")
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
    active = field_of(exported, "active_dags")
    unpaused = field_of(imported, "unpaused_dags")
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
