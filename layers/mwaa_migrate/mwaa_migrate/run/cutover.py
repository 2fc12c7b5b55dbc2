"""Which environment runs the DAGs: going live, the way back after a failure, and rollback.

The export DAG records the source's active DAGs (`{prefix}/cutover/record.json`, see
docs/cutover.md) before it pauses exactly those. Everything here reads that record and moves the
same DAGs between the two environments through the transport the plan chose for each (the CLI
endpoint or InvokeRestApi, webserver_transport.py), always pausing one side before
unpausing the other, so that at no moment do both run them. The record's state says the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError
from pydantic import Field

from mwaa_migrate.environment.webserver_transport import WebserverTransport, as_transport
from mwaa_migrate.errors import MigrationConflict, MigrationError
from mwaa_migrate.execution import now
from mwaa_migrate.metadata.metadata_dags import (
    EXPORT_DAG,
    IMPORT_DAG,
    read_cutover_record,
    write_cutover_record_state,
)
from mwaa_migrate.migration_bucket import cutover_record_key, import_result_key, read_json_if_any
from mwaa_migrate.models import Model
from mwaa_migrate.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from mwaa_migrate.environment.airflow_cli import AirflowCli
    from mwaa_migrate.models import MigrationPlan

Side = Literal["source", "target"]


class Settlement(Model):
    """Where a migration left the user's DAGs."""

    # The environment that runs the DAGs; None when the pipeline could not make sure of one.
    running: Side | None
    line: str
    record_state: str | None = None
    unpaused: list[str] = Field(default_factory=list)
    paused: list[str] = Field(default_factory=list)
    # Steps that did not go through (an environment not reachable, ...): for the operator.
    problems: list[str] = Field(default_factory=list)
    at: str = ""


def pause_states(webserver: WebserverTransport | AirflowCli) -> dict[str, bool]:
    """Every DAG the environment knows, and whether it is paused."""
    return as_transport(webserver).dags()


def set_paused(
    webserver: WebserverTransport | AirflowCli, dag_ids: Collection[str], *, paused: bool
) -> list[str]:
    """Pause (or unpause) those of dag_ids the environment knows and that are not so already;
    returns the DAGs changed. Each is one call to Airflow, so a retry does only what is left."""
    airflow = as_transport(webserver)
    states = airflow.dags()
    changed = sorted(dag_id for dag_id in dag_ids if dag_id in states and states[dag_id] != paused)
    for dag_id in changed:
        airflow.set_paused(dag_id, paused=paused)
    return changed


def _attempt(problems: list[str], doing: str, call: Callable[[], Any]) -> Any:
    """Run one step of the way back; a failure is recorded for the operator, not raised, so the
    steps after it still run and the report still gets written."""
    try:
        return call()
    except MigrationError as error:
        problems.append(f"{doing}: {error}")
        logger.warning("way back step failed", extra={"doing": doing, "error": type(error).__name__})
        return None


@dataclass(frozen=True)
class MigrationPlace:
    """A migration's place: the bucket and prefix its cutover record is under, and the two
    environments it moves the DAGs between. Every step here reads the record there."""

    bucket: str
    prefix: str
    source: str
    target: str
    # The record at the prefix is this migration's only if it names this id.
    migration_id: str

    @classmethod
    def of(cls, plan: MigrationPlan) -> MigrationPlace:
        return cls(plan.bucket, plan.prefix, plan.source.name, plan.target.name, plan.migration_id)


def _record_of(s3: S3Client, place: MigrationPlace) -> dict[str, Any] | None:
    record = read_cutover_record(s3, place.bucket, place.prefix)
    if record is None or record.get("migration_id") != place.migration_id:
        return None
    return record


def _dags(record: dict[str, Any]) -> list[str]:
    return sorted(str(dag_id) for dag_id in record.get("active_dags", []))


def target_went_live(s3: S3Client, place: MigrationPlace) -> bool:
    """The cutover import wrote its result, which it does only after unpausing the recorded DAGs."""
    try:
        result = read_json_if_any(s3, place.bucket, import_result_key(place.prefix, "cutover"))
    except MigrationError:
        # Unknown: the way back then pauses the target's copies before it unpauses the source's.
        return False
    return bool(result and result.get("unpaused_dags"))


def standing(s3: S3Client, place: MigrationPlace) -> str:
    """Which environment runs the DAGs when this execution changed none: as the record of an
    earlier run of the migration left it (a run refused at its plan says what it found)."""
    source, target = place.source, place.target
    try:
        record = read_cutover_record(s3, place.bucket, place.prefix)
    except (MigrationError, BotoCoreError):
        record = None
    state = str(record.get("state")) if record else None
    if state == "live":
        return live_line(place, len(_dags(record or {})))
    if state == "paused":
        return (
            f"The source {source}'s DAGs stay paused by an earlier run of this migration that did not "
            f"finish: mwaa-migrate rollback --source {source} --target {target} restores them."
        )
    return f"The source {source} runs the DAGs: this execution changed nothing."


def live_line(place: MigrationPlace, count: int) -> str:
    return (
        f"The target {place.target} runs the DAGs ({count} unpaused); the source {place.source} stays "
        f"paused (mwaa-migrate rollback reverses it)."
    )


def settle_after_failure(
    s3: S3Client,
    place: MigrationPlace,
    *,
    source_cli: WebserverTransport | AirflowCli,
    target_cli: WebserverTransport | AirflowCli,
    target_live: bool,
) -> Settlement:
    """After a failure, leave exactly one environment running the DAGs and say which.

    `target_live`: the cutover import reported the recorded DAGs unpaused on the target (its
    result exists). Before the pause the source never stopped: nothing to do but stop the project's
    own DAG runs. After the target went live, it stays live. In between, the target's recorded DAGs
    are paused first, then the source's unpaused: never both running."""
    source, target = place.source, place.target
    problems: list[str] = []
    # No further task of the project's DAGs starts: an export run still going cannot pause the
    # source after this, nor an import run unpause the target.
    _attempt(
        problems,
        f"pausing {EXPORT_DAG.dag_id} on {source}",
        lambda: set_paused(source_cli, [EXPORT_DAG.dag_id], paused=True),
    )
    _attempt(
        problems,
        f"pausing {IMPORT_DAG.dag_id} on {target}",
        lambda: set_paused(target_cli, [IMPORT_DAG.dag_id], paused=True),
    )
    at = now().isoformat()
    record = _record_of(s3, place)
    state = str(record.get("state")) if record else None
    if record is None or state in {"restored", "rolled_back"}:
        line = (
            f"The source {source} runs the DAGs: this migration never paused them."
            if record is None
            else f"The source {source} runs the DAGs: they were restored earlier ({state})."
        )
        return Settlement(running="source", line=line, record_state=state, problems=problems, at=at)
    dags = _dags(record)
    if state == "live" or target_live:
        if state != "live":
            write_cutover_record_state(s3, place.bucket, place.prefix, "live")
        return Settlement(
            running="target",
            line=live_line(place, len(dags)),
            record_state="live",
            problems=problems,
            at=at,
        )
    # state == "paused": the window was open when the migration failed.
    paused = _attempt(
        problems, f"pausing the recorded DAGs on {target}", lambda: set_paused(target_cli, dags, paused=True)
    )
    if paused is None:
        return Settlement(
            running=None,
            line=(
                f"The DAGs run nowhere: the source {source} stays paused because its target {target} "
                f"could not be reached to make sure its copies are paused. Once it can: "
                f"mwaa-migrate rollback --source {source} --target {target}."
            ),
            record_state="paused",
            problems=problems,
            at=at,
        )
    if _run_by_hand(source_cli):
        # Nothing reaches a source run by hand: the way back is its operator's, step by step.
        return Settlement(
            running=None,
            line=unpause_by_hand_line(place.source, place.target, dags),
            record_state="paused",
            paused=paused,
            problems=problems,
            at=at,
        )
    unpaused = _attempt(
        problems,
        f"unpausing the recorded DAGs on {source}",
        lambda: set_paused(source_cli, dags, paused=False),
    )
    if unpaused is None:
        return Settlement(
            running=None,
            line=(
                f"The DAGs run nowhere: {len(dags)} recorded DAGs of the source {source} could not be "
                f"unpaused. Once it answers: mwaa-migrate rollback --source {source} --target {target}."
            ),
            record_state="paused",
            paused=paused,
            problems=problems,
            at=at,
        )
    write_cutover_record_state(s3, place.bucket, place.prefix, "restored")
    return Settlement(
        running="source",
        line=(
            f"The source {source} runs the DAGs again: its {len(dags)} recorded DAGs were unpaused; "
            f"the target {target} keeps them paused."
        ),
        record_state="restored",
        unpaused=unpaused,
        paused=paused,
        problems=problems,
        at=at,
    )


def _run_by_hand(webserver: WebserverTransport | AirflowCli) -> bool:
    return getattr(webserver, "kind", None) == "hands_on"


def unpause_by_hand_line(source: str, target: str, dags: Collection[str]) -> str:
    """The way back that only the operator of a source run by hand (hands_on) can take."""
    commands = "; ".join(f"airflow dags unpause {dag_id}" for dag_id in sorted(dags)) or "nothing to unpause"
    return (
        f"The DAGs run nowhere until you unpause them: the target {target} keeps its copies paused, and "
        f"the source {source} is run by hand, so the pipeline cannot reach it. In the source's Airflow "
        f"run: {commands}. Then record it: mwaa-migrate rollback --source {source} --target {target} "
        "--source-unpaused."
    )


def start_target_dags(
    s3: S3Client,
    place: MigrationPlace,
    *,
    target_cli: WebserverTransport | AirflowCli,
    imported: dict[str, Any],
) -> Settlement:
    """Close the window: the recorded DAGs run on the target (the import unpaused them, or this
    does after an upgrade), and the record says the target is live."""
    record = _record_of(s3, place)
    if record is None:
        raise MigrationConflict(
            f"s3://{place.bucket}/{cutover_record_key(place.prefix)}: no cutover record for this migration"
        )
    dags = _dags(record)
    already = set(imported.get("unpaused_dags") or imported.get("unpausedDags") or [])
    unpaused = [] if set(dags) <= already else set_paused(target_cli, dags, paused=False)
    write_cutover_record_state(s3, place.bucket, place.prefix, "live")
    return Settlement(
        running="target",
        line=live_line(place, len(dags)),
        record_state="live",
        unpaused=sorted(already | set(unpaused)),
        at=now().isoformat(),
    )


def rollback(
    *,
    s3: S3Client,
    bucket: str,
    prefix: str,
    source: str,
    target: str,
    source_cli: WebserverTransport | AirflowCli,
    target_cli: WebserverTransport | AirflowCli,
    source_unpaused_by_hand: bool = False,
) -> Settlement:
    """Reverse a cutover: pause the target's migrated DAGs, then unpause the source's recorded
    ones, and record it. Also finishes a way back that could not reach an environment. A source run
    by hand (hands_on) is unpaused by its operator: the rollback pauses the target, says the
    commands, and records the way back once the operator confirms (`source_unpaused_by_hand`)."""
    record = read_cutover_record(s3, bucket, prefix)
    if record is None:
        raise MigrationConflict(f"no cutover was recorded for {source} -> {target}: nothing to roll back")
    state = str(record.get("state"))
    if state in {"restored", "rolled_back"}:
        return Settlement(
            running="source",
            line=f"The source {source} runs the DAGs already ({state}): nothing to roll back.",
            record_state=state,
        )
    dags = _dags(record)
    paused = set_paused(target_cli, dags, paused=True)
    if _run_by_hand(source_cli) and not source_unpaused_by_hand:
        return Settlement(
            running=None, line=unpause_by_hand_line(source, target, dags), record_state=state, paused=paused
        )
    unpaused = dags if _run_by_hand(source_cli) else set_paused(source_cli, dags, paused=False)
    write_cutover_record_state(s3, bucket, prefix, "rolled_back")
    return Settlement(
        running="source",
        line=(
            f"Rolled back: the source {source} runs its {len(dags)} recorded DAGs again; the target "
            f"{target} has them paused."
        ),
        record_state="rolled_back",
        paused=paused,
        unpaused=unpaused,
        at=now().isoformat(),
    )
