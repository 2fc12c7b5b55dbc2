"""Task log stream names: what they say, how the target Airflow names them, which belong to failed
task instances.

MWAA writes a task attempt's log to the stream its Airflow's `log_filename_template` names, with every
`:` replaced by `_` (CloudWatch Logs allows neither `:` nor `*` in a stream name):

- Airflow 2.4 and later (MWAA 2.4.3+):
  `dag_id={dag_id}/run_id={run_id}/task_id={task_id}/[map_index={n}/]attempt={try_number}.log`
- before (MWAA 1.10.12, 2.0.2, 2.2.2): `{dag_id}/{task_id}/{execution_date}/{try_number}.log`

A stream in the older form is copied under the newer name when the target names streams the newer
way (every version MWAA accepts as a target does), so the target's Airflow finds the log of the task
instance it imported. The newer name needs the DAG run's `run_id`, which the older name does not
carry: it is looked up, by DAG and execution date, in the `dag_run` rows of the migration's export.
A stream whose run is not in the export keeps its name, and the report says why.

The task instances that failed come from the export's `task_instance` rows (state `failed`): every
attempt of such a task instance is copied, since the attempts before the last explain the failure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mwaa_migrate.environment.versions import AirflowVersion

# The first Airflow version MWAA runs that names task log streams dag_id=.../attempt=N.log.
NEW_NAMES_SINCE = AirflowVersion(2, 4, 0)

_NEW = re.compile(
    r"^dag_id=(?P<dag_id>[^/]+)/run_id=(?P<run_id>.+)/task_id=(?P<task_id>[^/]+)/"
    r"(?:map_index=(?P<map_index>-?\d+)/)?attempt=(?P<try_number>\d+)\.log$"
)
_OLD = re.compile(r"^(?P<dag_id>[^/=]+)/(?P<task_id>[^/=]+)/(?P<date>[^/]+)/(?P<try_number>\d+)\.log$")
# An ISO 8601 date-time as it appears in an old stream name, with `:` possibly replaced by `_`.
_DATE = re.compile(
    r"^(?P<day>\d{4}-\d{2}-\d{2})[T ](?P<h>\d{2})[:_](?P<m>\d{2})[:_](?P<s>\d{2})(?P<fraction>\.\d+)?"
    r"(?:(?P<zone>[+-]\d{2})[:_]?(?P<zone_m>\d{2})|Z)?$"
)
FAILED_STATES = frozenset({"failed"})


def cloudwatch_safe(text: str) -> str:
    """A name part as MWAA writes it into a stream name: CloudWatch Logs forbids `:` in stream names."""
    return text.replace(":", "_")


def names_streams_the_new_way(airflow_version: str) -> bool:
    return AirflowVersion.parse(airflow_version) >= NEW_NAMES_SINCE


def parse_date(text: str) -> datetime | None:
    """An execution date from a stream name or an export row, as an aware UTC datetime."""
    match = _DATE.match(text.strip())
    if match is None:
        return None
    zone = f"{match['zone']}:{match['zone_m']}" if match["zone"] else "+00:00"
    iso = f"{match['day']}T{match['h']}:{match['m']}:{match['s']}{match['fraction'] or ''}{zone}"
    try:
        return datetime.fromisoformat(iso).astimezone(UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class TaskStream:
    """What a task log stream's name says about the task attempt whose log it holds."""

    dag_id: str
    task_id: str
    try_number: int
    # In names since Airflow 2.4 (as written: `:` replaced by `_`).
    run_id: str | None = None
    map_index: int = -1
    # In names before Airflow 2.4.
    execution_date: datetime | None = None

    @property
    def legacy(self) -> bool:
        return self.run_id is None


def parse_task_stream(name: str) -> TaskStream | None:
    """The task attempt a stream name stands for, in either form; None for any other name."""
    match = _NEW.match(name)
    if match is not None:
        return TaskStream(
            dag_id=match["dag_id"],
            task_id=match["task_id"],
            try_number=int(match["try_number"]),
            run_id=match["run_id"],
            map_index=int(match["map_index"]) if match["map_index"] is not None else -1,
        )
    match = _OLD.match(name)
    if match is not None:
        date = parse_date(match["date"])
        if date is not None:
            return TaskStream(
                dag_id=match["dag_id"],
                task_id=match["task_id"],
                try_number=int(match["try_number"]),
                execution_date=date,
            )
    return None


def new_stream_name(dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
    """The stream name Airflow 2.4+ on MWAA writes a task attempt's log to."""
    mapped = f"map_index={map_index}/" if map_index >= 0 else ""
    return cloudwatch_safe(
        f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/{mapped}attempt={try_number}.log"
    )


def _row_date(row: Mapping[str, Any]) -> datetime | None:
    for column in ("execution_date", "logical_date"):
        value = row.get(column)
        if isinstance(value, str):
            parsed = parse_date(value)
            if parsed is not None:
                return parsed
    return None


@dataclass
class DagRuns:
    """The export's DAG runs: run_id by (dag_id, execution date), and the execution date by run_id."""

    run_ids: dict[tuple[str, datetime], str] = field(default_factory=dict)
    dates: dict[tuple[str, str], datetime] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> DagRuns:
        runs = cls()
        for row in rows:
            dag_id, run_id, date = row.get("dag_id"), row.get("run_id"), _row_date(row)
            if isinstance(dag_id, str) and isinstance(run_id, str) and date is not None:
                runs.run_ids[(dag_id, date)] = run_id
                runs.dates[(dag_id, cloudwatch_safe(run_id))] = date
        return runs

    def run_id(self, dag_id: str, date: datetime) -> str | None:
        return self.run_ids.get((dag_id, date))


@dataclass(frozen=True)
class StreamName:
    """Where a source stream goes: `target` is the name in the target group; `note` says why a name
    that the target's Airflow would write differently was kept."""

    target: str
    renamed: bool = False
    note: str | None = None


def target_stream_name(name: str, runs: DagRuns, *, target_airflow_version: str) -> StreamName:
    """The name a Task log stream gets in the target: kept, or in the newer form for an older name."""
    if not names_streams_the_new_way(target_airflow_version):
        return StreamName(target=name)
    stream = parse_task_stream(name)
    if stream is None or not stream.legacy or stream.execution_date is None:
        return StreamName(target=name)
    run_id = runs.run_id(stream.dag_id, stream.execution_date)
    if run_id is None:
        return StreamName(
            target=name,
            note=(
                f"kept its pre-Airflow-{NEW_NAMES_SINCE.major}.{NEW_NAMES_SINCE.minor} name: the export "
                f"has no run of {stream.dag_id} at {stream.execution_date.isoformat()} to name it by"
            ),
        )
    return StreamName(
        target=new_stream_name(stream.dag_id, run_id, stream.task_id, stream.try_number), renamed=True
    )


@dataclass
class FailedTaskInstances:
    """The task instances of the export whose state is failed, keyed the ways stream names can say."""

    by_run: set[tuple[str, str, str, int]] = field(default_factory=set)
    by_date: set[tuple[str, str, datetime]] = field(default_factory=set)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], runs: DagRuns) -> FailedTaskInstances:
        failed = cls()
        for row in rows:
            if row.get("state") not in FAILED_STATES:
                continue
            dag_id, task_id = row.get("dag_id"), row.get("task_id")
            if not isinstance(dag_id, str) or not isinstance(task_id, str):
                continue
            map_index = row.get("map_index")
            index = map_index if isinstance(map_index, int) and not isinstance(map_index, bool) else -1
            run_id = row.get("run_id")
            date = _row_date(row)
            if isinstance(run_id, str):
                failed.by_run.add((dag_id, task_id, cloudwatch_safe(run_id), index))
                date = date or runs.dates.get((dag_id, cloudwatch_safe(run_id)))
            if date is not None:
                failed.by_date.add((dag_id, task_id, date))
        return failed

    def holds(self, stream: TaskStream) -> bool:
        """Whether the stream is (an attempt of) a failed task instance."""
        if stream.run_id is not None:
            return (stream.dag_id, stream.task_id, stream.run_id, stream.map_index) in self.by_run
        if stream.execution_date is not None:
            return (stream.dag_id, stream.task_id, stream.execution_date) in self.by_date
        return False


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_millis(moment: datetime) -> int:
    """A moment as CloudWatch Logs counts time: whole milliseconds since the epoch (integer
    arithmetic: a float's rounding could move an event across a window's edge)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def log_group_name(environment_name: str, kind: str) -> str:
    """The CloudWatch Logs group MWAA writes one kind of an environment's logs to (`kind` "" gives
    the prefix every group of the environment starts with)."""
    return f"airflow-{environment_name}-{kind}"
