"""Task log stream names: parsing both of MWAA's forms, the target's name, failed task instances."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mwaa_migrate.logs.log_names import (
    DagRuns,
    FailedTaskInstances,
    TaskStream,
    new_stream_name,
    parse_date,
    parse_task_stream,
    target_stream_name,
)

JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)
RUNS = DagRuns.from_rows(
    [
        {
            "dag_id": "etl",
            "run_id": "scheduled__2026-01-01T00:00:00+00:00",
            "execution_date": "2026-01-01T00:00:00+00:00",
        },
        {
            "dag_id": "etl",
            "run_id": "manual__2026-01-02T10:30:00.123456+00:00",
            "logical_date": "2026-01-02T10:30:00.123456Z",
        },
    ]
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "dag_id=etl/run_id=scheduled__2026-01-01T00_00_00+00_00/task_id=load/attempt=2.log",
            TaskStream("etl", "load", 2, run_id="scheduled__2026-01-01T00_00_00+00_00"),
        ),
        (
            "dag_id=etl/run_id=manual__x/task_id=group.load/map_index=3/attempt=1.log",
            TaskStream("etl", "group.load", 1, run_id="manual__x", map_index=3),
        ),
        ("etl/load/2026-01-01T00_00_00+00_00/1.log", TaskStream("etl", "load", 1, execution_date=JAN_1)),
        ("etl/load/2026-01-01T00:00:00+00:00/3.log", TaskStream("etl", "load", 3, execution_date=JAN_1)),
    ],
)
def test_both_of_mwaas_task_log_stream_forms_are_read(name: str, expected: TaskStream) -> None:
    assert parse_task_stream(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "scheduler_2026-01-01.log",
        "etl/load/not-a-date/1.log",
        "dag_id=etl/task_id=load/attempt=1.log",
        "a/b/c",
    ],
)
def test_other_names_are_not_task_streams(name: str) -> None:
    assert parse_task_stream(name) is None


def test_dates_in_names_are_read_with_colons_or_underscores_and_any_offset() -> None:
    assert parse_date("2026-01-01T01_00_00+01_00") == JAN_1
    assert parse_date("2026-01-01T00:00:00Z") == JAN_1
    assert parse_date("2026-01-01T00:00:00.500000+00:00") == datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    assert parse_date("yesterday") is None


def test_the_new_name_has_no_colon() -> None:
    name = new_stream_name("etl", "scheduled__2026-01-01T00:00:00+00:00", "load", 2, map_index=0)

    assert (
        name
        == "dag_id=etl/run_id=scheduled__2026-01-01T00_00_00+00_00/task_id=load/map_index=0/attempt=2.log"
    )


def test_an_old_name_is_translated_by_the_exported_run_of_its_date() -> None:
    naming = target_stream_name(
        "etl/load/2026-01-01T00_00_00+00_00/2.log", RUNS, target_airflow_version="2.10.3"
    )

    assert naming.renamed
    assert (
        naming.target == "dag_id=etl/run_id=scheduled__2026-01-01T00_00_00+00_00/task_id=load/attempt=2.log"
    )


def test_fractional_seconds_and_a_z_zone_find_their_run_too() -> None:
    naming = target_stream_name(
        "etl/extract/2026-01-02T10_30_00.123456+00_00/1.log", RUNS, target_airflow_version="3.0.6"
    )

    assert naming.target == (
        "dag_id=etl/run_id=manual__2026-01-02T10_30_00.123456+00_00/task_id=extract/attempt=1.log"
    )


def test_an_old_name_without_an_exported_run_keeps_its_name_and_says_why() -> None:
    naming = target_stream_name(
        "etl/load/2026-03-01T00_00_00+00_00/1.log", RUNS, target_airflow_version="2.10.3"
    )

    assert (naming.target, naming.renamed) == ("etl/load/2026-03-01T00_00_00+00_00/1.log", False)
    assert naming.note is not None
    assert "no run of etl at 2026-03-01T00:00:00+00:00" in naming.note


def test_new_names_and_a_target_that_names_the_old_way_keep_the_name() -> None:
    new = "dag_id=etl/run_id=r/task_id=load/attempt=1.log"
    old = "etl/load/2026-01-01T00_00_00+00_00/1.log"

    assert target_stream_name(new, RUNS, target_airflow_version="2.10.3").target == new
    assert target_stream_name(old, RUNS, target_airflow_version="2.2.2").target == old


def test_failed_task_instances_match_every_attempt_in_both_forms() -> None:
    failed = FailedTaskInstances.from_rows(
        [
            {
                "dag_id": "etl",
                "task_id": "load",
                "run_id": "scheduled__2026-01-01T00:00:00+00:00",
                "state": "failed",
                "map_index": -1,
            },
            {"dag_id": "etl", "task_id": "fan", "run_id": "manual__x", "state": "failed", "map_index": 2},
            {
                "dag_id": "etl",
                "task_id": "extract",
                "run_id": "scheduled__2026-01-01T00:00:00+00:00",
                "state": "success",
            },
            {
                "dag_id": "old",
                "task_id": "t",
                "execution_date": "2020-05-01T00:00:00+00:00",
                "state": "failed",
            },
        ],
        RUNS,
    )

    def holds(name: str) -> bool:
        stream = parse_task_stream(name)
        assert stream is not None
        return failed.holds(stream)

    assert holds("dag_id=etl/run_id=scheduled__2026-01-01T00_00_00+00_00/task_id=load/attempt=1.log")
    assert holds("dag_id=etl/run_id=scheduled__2026-01-01T00_00_00+00_00/task_id=load/attempt=3.log")
    assert holds("etl/load/2026-01-01T00_00_00+00_00/2.log")  # its date, through the exported run
    assert holds("dag_id=etl/run_id=manual__x/task_id=fan/map_index=2/attempt=1.log")
    assert not holds("dag_id=etl/run_id=manual__x/task_id=fan/map_index=1/attempt=1.log")
    assert not holds("dag_id=etl/run_id=scheduled__2026-01-01T00_00_00+00_00/task_id=extract/attempt=1.log")
    assert holds("old/t/2020-05-01T00_00_00+00_00/1.log")
