"""The migration's record: what it carried (settings, tables and their row counts on both sides, the
downtime window, the log copy's figures, the steps and their times, the warnings), as one model written
to the migration bucket whether it succeeded or failed (migration_bucket.py). Its Markdown is
report_markdown.py; its settings diff settings_diff.py; its steps execution.py."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field

from mwaa_migrate.execution import StepTiming
from mwaa_migrate.models import Model
from mwaa_migrate.run.settings_diff import SettingsSummary


class Failure(Model):
    state: str
    error: str
    cause: str


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


def count_of(value: Any) -> int | None:
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
                source_rows=count_of(source.get("rows")),
                read=count_of(target.get("read")),
                inserted=count_of(target.get("inserted")),
                updated=count_of(target.get("updated")),
                identical=count_of(target.get("identical")),
                unchanged=count_of(target.get("unchanged")),
                already_present=count_of(target.get("skipped")),
                rejected=count_of(target.get("rejected")),
                conflicts=count_of(target.get("conflicts")),
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


def field_of(data: Mapping[str, Any], key: str) -> Any:
    """A value under its snake_case key (as the DAGs write it) or its camelCase one (as a pydantic
    model with camelCase aliases passes it on)."""
    value = data.get(key)
    return data.get(_camel(key)) if value is None else value


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = field_of(data, key)
    return value if isinstance(value, Mapping) else {}


def instant_of(value: Any) -> datetime | None:
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
    for value in (field_of(_mapping(result, "timings"), key), field_of(result, key)):
        if instant_of(value) is not None:
            return str(value)
    return None


def _seconds(started_at: str | None, ended_at: str | None) -> float | None:
    started, ended = instant_of(started_at), instant_of(ended_at)
    if started is None or ended is None:
        return None
    return round((ended - started).total_seconds(), 3)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _still_running(value: Any) -> int | None:
    """A count, or the list of the task instances still running."""
    if isinstance(value, list):
        return len(value)
    return count_of(value)


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
    if live_at is None and instant_of(live.get("at")) is not None:
        live_at = str(live["at"])
    spans = (
        ("drain", drain_started, drained),
        ("delta export", drained, exported),
        ("delta import", import_started, imported),
        ("verification", imported, verified),
        ("start on target", verified, live_at),
    )
    drain = _mapping(cutover_exported, "drain")
    timed_out = field_of(drain, "timed_out")
    return Downtime(
        paused_at=paused_at,
        live_at=live_at,
        seconds=_seconds(paused_at, live_at),
        parts=[
            DowntimePart(part=part, started_at=start, ended_at=end, seconds=_seconds(start, end))
            for part, start, end in spans
        ],
        drain_waited_seconds=_number(field_of(drain, "waited_seconds")),
        drain_timed_out=timed_out if isinstance(timed_out, bool) else None,
        drain_still_running=_still_running(field_of(drain, "still_running")),
    )


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
