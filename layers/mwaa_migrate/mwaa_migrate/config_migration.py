"""Airflow configuration options that moved or changed between versions.

A declared table, applied in order of the version that made the change, so a source several
versions old gets every step. Options are MWAA's `section.key` form.
"""

from __future__ import annotations

from dataclasses import dataclass

from mwaa_migrate.versions import AirflowVersion


@dataclass(frozen=True)
class RenamedOption:
    since: str
    old: str
    new: str


@dataclass(frozen=True)
class MovedValue:
    """A value (a class path) that moved module."""

    since: str
    option: str
    old: str
    new: str


RENAMED_OPTIONS: tuple[RenamedOption, ...] = (
    RenamedOption("2.0.0", "scheduler.max_threads", "scheduler.parsing_processes"),
    RenamedOption("2.0.0", "core.non_pooled_task_slot_count", "core.default_pool_task_slot_count"),
    RenamedOption("2.2.0", "core.dag_concurrency", "core.max_active_tasks_per_dag"),
    RenamedOption("2.2.0", "scheduler.processor_poll_interval", "scheduler.scheduler_idle_sleep_time"),
    RenamedOption("2.3.0", "core.sql_alchemy_conn", "database.sql_alchemy_conn"),
    RenamedOption("2.3.0", "core.load_default_connections", "database.load_default_connections"),
    RenamedOption("2.3.0", "core.max_db_retries", "database.max_db_retries"),
    RenamedOption("2.3.0", "scheduler.deactivate_stale_dags_interval", "scheduler.parsing_cleanup_interval"),
    RenamedOption("2.4.0", "core.sql_engine_encoding", "database.sql_engine_encoding"),
)

MOVED_VALUES: tuple[MovedValue, ...] = (
    MovedValue(
        "2.0.0",
        "secrets.backend",
        "airflow.contrib.secrets.aws_secrets_manager.SecretsManagerBackend",
        "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend",
    ),
    MovedValue(
        "2.0.0",
        "secrets.backend",
        "airflow.contrib.secrets.aws_systems_manager.SystemsManagerParameterStoreBackend",
        "airflow.providers.amazon.aws.secrets.systems_manager.SystemsManagerParameterStoreBackend",
    ),
)


def _crossed(since: str, source: AirflowVersion, target: AirflowVersion) -> bool:
    change = AirflowVersion.parse(since)
    return source < change <= target


def migrate_configuration(
    options: dict[str, str], *, source_version: str, target_version: str
) -> tuple[dict[str, str], list[str]]:
    """Options adapted from the source's version to the target's, and what changed, in words."""
    source = AirflowVersion.parse(source_version)
    target = AirflowVersion.parse(target_version)
    result = dict(options)
    changes: list[str] = []
    for rename in RENAMED_OPTIONS:
        if rename.old in result and _crossed(rename.since, source, target):
            if rename.new in result:
                changes.append(f"dropped {rename.old}: {rename.new} is already set")
                del result[rename.old]
            else:
                result[rename.new] = result.pop(rename.old)
                changes.append(f"renamed {rename.old} to {rename.new} (Airflow {rename.since})")
    for moved in MOVED_VALUES:
        if result.get(moved.option) == moved.old and _crossed(moved.since, source, target):
            result[moved.option] = moved.new
            changes.append(f"{moved.option}: {moved.old} is now {moved.new} (Airflow {moved.since})")
    return result, changes
