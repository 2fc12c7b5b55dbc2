"""The report's picture of one migration: what moved from where to where, in which phase, and the
downtime window, drawn as a Mermaid sequence diagram with this migration's own figures.

Only what the report recorded is drawn: a phase the execution never reached is absent, and a
failure ends the picture with where it stopped and which environment runs the DAGs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mwaa_migrate.run.report import MigrationReport, TableCount

# Mermaid reads ";" as the end of a statement and "#" as the start of an entity code.
_UNSAFE = str.maketrans({";": ",", "#": "no. ", "\n": " ", "\r": " "})


def _text(value: Any) -> str:
    return str(value).translate(_UNSAFE).strip()


def _rows(counts: Iterable[TableCount], side: str) -> int | None:
    values = [getattr(count, side) for count in counts]
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _copied(label: str, counts: Sequence[TableCount]) -> tuple[str, str]:
    exported, in_target = _rows(counts, "source_rows"), _rows(counts, "target_rows")
    tables = f"{len(counts)} table" + ("" if len(counts) == 1 else "s")
    return (
        f"{label} export: {exported if exported is not None else 'unknown'} rows in {tables}",
        f"{label} import: {in_target if in_target is not None else 'unknown'} rows now in the target",
    )


def _ran(report: MigrationReport, *states: str) -> bool:
    return any(step.state in states for step in report.steps)


def _dags(names: Any) -> str:
    count = len(names) if isinstance(names, list) else 0
    return f"{count} DAG" + ("" if count == 1 else "s")


def overview_diagram(report: MigrationReport) -> list[str]:
    """The Mermaid lines (without the fence) of the migration's sequence diagram."""
    source, target = report.source, report.target
    target_version = target.get("airflowVersion") or target.get("createdVersion") or "unknown"
    lines = [
        "sequenceDiagram",
        f"  participant S as {_text(source.get('name', 'source'))} (Airflow "
        f"{_text(source.get('airflowVersion') or 'unknown')})",
        "  participant B as migration bucket",
        f"  participant T as {_text(target.get('name', 'target'))} (Airflow {_text(target_version)})",
        "  Note over S,T: before the cutover the source runs its DAGs, the target's stay paused",
    ]
    if _ran(report, "CloneEnvironment"):
        lines.append("  S->>T: own copy of DAGs, plugins and requirements, created with every DAG paused")
    if report.tables:
        export, imported = _copied("bulk", report.tables)
        lines += [f"  S->>B: {export}", f"  B->>T: {imported}"]
    downtime = report.downtime
    if downtime is not None:
        window = (
            f"downtime {downtime.seconds:.1f} s" if downtime.seconds is not None else "downtime (not ended)"
        )
        exported = report.metadata.get("cutoverExport") or {}
        paused = exported.get("active_dags", exported.get("activeDags"))
        drain = (
            f", drained in {downtime.drain_waited_seconds:.1f} s"
            if downtime.drain_waited_seconds is not None
            else ""
        )
        lines += [
            "  rect rgb(255, 235, 235)",
            f"  Note over S,T: {window}",
            f"  Note over S: paused {_dags(paused) if paused is not None else 'the active DAGs'}{drain}",
        ]
        if report.cutover_tables:
            export, imported = _copied("delta", report.cutover_tables)
            lines += [f"  S->>B: {export}", f"  B->>T: {imported}"]
        unpaused = report.cutover.get("unpaused")
        if downtime.live_at and unpaused:
            lines.append(f"  Note over T: unpaused {_dags(unpaused)}")
        lines.append("  end")
    if target.get("upgradedTo") and _ran(report, "UpgradeEnvironment"):
        lines.append(f"  Note over T: upgraded in place to Airflow {_text(target['upgradedTo'])}")
    if report.logs:
        logs: Mapping[str, Any] = report.logs
        lines.append(
            f"  S->>T: task logs, {logs.get('eventsWritten', 0)} events written in "
            f"{logs.get('streamsCopied', 0)} streams"
        )
    if report.failure is not None:
        lines.append(
            f"  Note over S,T: failed in {_text(report.failure.state)} ({_text(report.failure.error)})"
        )
    if report.dags_running:
        lines.append(f"  Note over S,T: {_text(report.dags_running)}")
    return lines


def overview_section(report: MigrationReport) -> list[str]:
    """The Markdown section: a heading and the fenced diagram."""
    return ["## Overview", "", "```mermaid", *overview_diagram(report), "```", ""]
