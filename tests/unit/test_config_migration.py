"""Configuration options renamed or removed, from Airflow's own tables (airflow_config_changes.json)."""

from __future__ import annotations

from mwaa_migrate.environment.config_migration import (
    Airflow3Change,
    ConfigChanges,
    RenamedOption,
    airflow_config_changes,
    migrate_configuration,
)


def test_the_shipped_tables_are_airflow_2_11s_and_hold_the_known_renames():
    tables = airflow_config_changes()
    assert tables.airflow_version == "2.11.0"
    assert RenamedOption("2.2.0", "core.dag_concurrency", "core.max_active_tasks_per_dag") in tables.renamed
    removed = {change.option for change in tables.airflow3 if change.removed}
    assert "core.check_slas" in removed


def test_an_option_2x_renamed_takes_its_new_name_even_if_the_source_still_read_the_old_one():
    options, changes = migrate_configuration(
        {"core.dag_concurrency": "16", "core.default_timezone": "utc"},
        source_version="2.7.2",
        target_version="2.10.3",
    )
    assert options == {"core.max_active_tasks_per_dag": "16", "core.default_timezone": "utc"}
    [change] = changes
    assert change.startswith("renamed core.dag_concurrency to core.max_active_tasks_per_dag (Airflow 2.2.0")


def test_a_rename_newer_than_the_target_is_left_alone():
    tables = ConfigChanges("2.11.0", (RenamedOption("2.9.0", "core.old", "core.new"),), ())
    options, changes = migrate_configuration(
        {"core.old": "1"}, source_version="2.7.2", target_version="2.8.1", tables=tables
    )
    assert options == {"core.old": "1"}
    assert changes == []


def test_a_rename_whose_new_name_is_set_keeps_the_new_value():
    options, changes = migrate_configuration(
        {"core.dag_concurrency": "16", "core.max_active_tasks_per_dag": "32"},
        source_version="2.7.2",
        target_version="2.7.2",
    )
    assert options == {"core.max_active_tasks_per_dag": "32"}
    assert "dropped core.dag_concurrency" in changes[0]


def _airflow3(*changes: Airflow3Change) -> ConfigChanges:
    return ConfigChanges("2.11.0", (), changes)


def test_for_an_airflow_3_target_a_removed_option_is_dropped_with_airflows_suggestion():
    tables = _airflow3(Airflow3Change("core.check_slas", None, False, True, None, "SLAs are gone"))
    options, changes = migrate_configuration(
        {"core.check_slas": "True", "core.default_timezone": "utc"},
        source_version="2.10.3",
        target_version="2.11.0",
        final_version="3.0.6",
        tables=tables,
    )
    assert options == {"core.default_timezone": "utc"}
    assert changes == ["dropped core.check_slas: Airflow 3.0 removed it: SLAs are gone"]


def test_a_removal_with_a_value_condition_drops_only_that_value():
    tables = _airflow3(Airflow3Change("core.hostname", None, False, True, ":", ""))
    kept, _ = migrate_configuration(
        {"core.hostname": "worker-1"},
        source_version="2.10.3",
        target_version="2.11.0",
        final_version="3.0.6",
        tables=tables,
    )
    dropped, _ = migrate_configuration(
        {"core.hostname": ":"},
        source_version="2.10.3",
        target_version="2.11.0",
        final_version="3.0.6",
        tables=tables,
    )
    assert kept == {"core.hostname": "worker-1"}
    assert dropped == {}


def test_a_3_0_rename_2_11_knows_is_applied_and_one_it_does_not_is_kept_with_what_to_do():
    tables = _airflow3(
        Airflow3Change("core.a", "core.b", True, False, None, ""),
        Airflow3Change("webserver.base_url", "api.base_url", False, False, None, ""),
    )
    options, changes = migrate_configuration(
        {"core.a": "1", "webserver.base_url": "https://x"},
        source_version="2.10.3",
        target_version="2.11.0",
        final_version="3.0.6",
        tables=tables,
    )
    assert options == {"core.b": "1", "webserver.base_url": "https://x"}
    assert changes[0] == "renamed core.a to core.b (Airflow 3.0)"
    assert "set api.base_url on the target after its upgrade" in changes[1]


def test_a_2x_target_ignores_the_airflow_3_table():
    tables = _airflow3(Airflow3Change("core.check_slas", None, False, True, None, ""))
    options, changes = migrate_configuration(
        {"core.check_slas": "True"}, source_version="2.7.2", target_version="2.11.0", tables=tables
    )
    assert options == {"core.check_slas": "True"}
    assert changes == []
