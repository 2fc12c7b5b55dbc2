"""The way back and going live: which environment runs the DAGs after each outcome."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest
from moto import mock_aws

from mwaa_migrate.environment.airflow_cli import AirflowCli, CliOutput
from mwaa_migrate.errors import MigrationConflict
from mwaa_migrate.run.cutover import MigrationPlace, rollback, settle_after_failure, start_target_dags

BUCKET = "mwaa-migrate-test"
PREFIX = "migrations/prod/prod-2"
MIGRATION = "prod.prod-2"
RECORD_KEY = f"{PREFIX}/cutover/record.json"
PLACE = MigrationPlace(bucket=BUCKET, prefix=PREFIX, source="prod", target="prod-2", migration_id=MIGRATION)


class FakeCli:
    """An environment's DAGs and their pause states, answered as Airflow's CLI does."""

    def __init__(self, dags: dict[str, bool], *, reachable: bool = True) -> None:
        self.dags = dict(dags)
        self.reachable = reachable
        self.commands: list[tuple[str, ...]] = []

    def run(self, *argv: str) -> CliOutput:
        if not self.reachable:
            raise MigrationConflict("creating a CLI token: ResourceNotFoundException")
        self.commands.append(argv)
        if argv[:2] in {("dags", "pause"), ("dags", "unpause")}:
            if argv[2] not in self.dags:
                raise MigrationConflict(f"DAG {argv[2]} does not exist")
            self.dags[argv[2]] = argv[1] == "pause"
            return CliOutput("", "")
        if argv[:2] == ("dags", "list"):
            rows = [{"dag_id": dag_id, "is_paused": paused} for dag_id, paused in self.dags.items()]
            return CliOutput(json.dumps(rows), "")
        raise AssertionError(f"unexpected command {argv}")

    def run_json(self, *argv: str) -> Any:
        return json.loads(self.run(*argv).stdout)

    @property
    def cli(self) -> AirflowCli:
        return cast(AirflowCli, self)


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def _record(s3: Any, state: str, active: list[str], migration_id: str = MIGRATION) -> None:
    body = {"migration_id": migration_id, "active_dags": active, "state": state, "history": []}
    s3.put_object(Bucket=BUCKET, Key=RECORD_KEY, Body=json.dumps(body).encode())


def _state(s3: Any) -> str:
    return str(json.loads(s3.get_object(Bucket=BUCKET, Key=RECORD_KEY)["Body"].read())["state"])


def _settle(s3: Any, source: FakeCli, target: FakeCli, *, target_live: bool = False) -> Any:
    return settle_after_failure(
        s3, PLACE, source_cli=source.cli, target_cli=target.cli, target_live=target_live
    )


def test_a_failure_inside_the_window_restores_exactly_the_recorded_dags_and_pauses_the_targets(s3):
    # Given the cutover paused a and b (c was paused by its owner before), and the import failed
    _record(s3, "paused", ["a", "b"])
    source = FakeCli({"a": True, "b": True, "c": True, "mwaa_migrate_export": False})
    target = FakeCli({"a": False, "b": True, "c": True, "mwaa_migrate_import": False})

    settled = _settle(s3, source, target)

    assert (source.dags["a"], source.dags["b"], source.dags["c"]) == (False, False, True)
    assert (target.dags["a"], target.dags["b"]) == (True, True)
    assert source.dags["mwaa_migrate_export"] is True, "no task of the export runs again"
    assert target.dags["mwaa_migrate_import"] is True, "no task of the import runs again"
    assert settled.running == "source"
    assert settled.line.startswith("The source prod runs the DAGs again")
    assert _state(s3) == "restored"


def test_the_target_is_paused_before_the_source_is_unpaused(s3):
    _record(s3, "paused", ["a"])
    order: list[str] = []
    source = FakeCli({"a": True})
    target = FakeCli({"a": False})
    source_run, target_run = source.run, target.run
    source.run = lambda *argv: (order.append(f"source {' '.join(argv[:2])}"), source_run(*argv))[1]  # type: ignore[method-assign]
    target.run = lambda *argv: (order.append(f"target {' '.join(argv[:2])}"), target_run(*argv))[1]  # type: ignore[method-assign]

    _settle(s3, source, target)

    assert order.index("target dags pause") < order.index("source dags unpause")


def test_a_failure_before_the_pause_leaves_the_source_running_and_changes_no_user_dag(s3):
    source = FakeCli({"a": False, "mwaa_migrate_export": False})
    target = FakeCli({}, reachable=False)

    settled = _settle(s3, source, target)

    assert source.dags["a"] is False
    assert settled.running == "source"
    assert "never paused" in settled.line
    assert [c for c in source.commands if c[:2] == ("dags", "unpause")] == []


def test_a_failure_after_the_target_went_live_leaves_it_live(s3):
    _record(s3, "paused", ["a"])
    source = FakeCli({"a": True})
    target = FakeCli({"a": False})

    settled = _settle(s3, source, target, target_live=True)

    assert (source.dags["a"], target.dags["a"]) == (True, False)
    assert settled.running == "target"
    assert _state(s3) == "live"


def test_an_unreachable_target_keeps_the_source_paused_and_says_how_to_finish(s3):
    _record(s3, "paused", ["a"])
    source = FakeCli({"a": True})
    target = FakeCli({"a": False}, reachable=False)

    settled = _settle(s3, source, target)

    assert source.dags["a"] is True, "never both running: the target's copy could not be paused"
    assert settled.running is None
    assert "mwaa-migrate rollback" in settled.line
    assert _state(s3) == "paused"


def test_another_migrations_record_is_not_this_ones(s3):
    _record(s3, "paused", ["a"], migration_id="prod.other")
    source = FakeCli({"a": True})

    settled = _settle(s3, source, FakeCli({}))

    assert source.dags["a"] is True
    assert settled.running == "source"


def test_going_live_after_an_upgrade_unpauses_the_recorded_dags_on_the_target(s3):
    _record(s3, "paused", ["a", "b"])
    target = FakeCli({"a": True, "b": True, "c": True})

    settled = start_target_dags(s3, PLACE, target_cli=target.cli, imported={"unpausedDags": []})

    assert (target.dags["a"], target.dags["b"], target.dags["c"]) == (False, False, True)
    assert settled.running == "target"
    assert _state(s3) == "live"


def test_going_live_after_the_import_unpaused_them_makes_no_cli_call_to_unpause(s3):
    _record(s3, "paused", ["a"])
    target = FakeCli({"a": False})

    start_target_dags(s3, PLACE, target_cli=target.cli, imported={"unpausedDags": ["a"]})

    assert [c for c in target.commands if c[:2] == ("dags", "unpause")] == []


def test_rollback_of_a_live_cutover_moves_the_dags_back_to_the_source(s3):
    _record(s3, "live", ["a"])
    source = FakeCli({"a": True})
    target = FakeCli({"a": False})

    settled = rollback(
        s3=s3,
        bucket=BUCKET,
        prefix=PREFIX,
        source="prod",
        target="prod-2",
        source_cli=source.cli,
        target_cli=target.cli,
    )

    assert (source.dags["a"], target.dags["a"]) == (False, True)
    assert settled.line.startswith("Rolled back")
    assert _state(s3) == "rolled_back"


def test_rollback_without_a_cutover_is_refused(s3):
    with pytest.raises(MigrationConflict, match="nothing to roll back"):
        rollback(
            s3=s3,
            bucket=BUCKET,
            prefix=PREFIX,
            source="prod",
            target="prod-2",
            source_cli=FakeCli({}).cli,
            target_cli=FakeCli({}).cli,
        )
