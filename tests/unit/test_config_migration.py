from mwaa_migrate.config_migration import migrate_configuration


def test_an_option_renamed_between_the_versions_is_renamed():
    options, changes = migrate_configuration(
        {"core.dag_concurrency": "16", "core.default_timezone": "utc"},
        source_version="2.0.2",
        target_version="2.10.3",
    )
    assert options == {"core.max_active_tasks_per_dag": "16", "core.default_timezone": "utc"}
    assert changes == ["renamed core.dag_concurrency to core.max_active_tasks_per_dag (Airflow 2.2.0)"]


def test_an_option_renamed_before_the_source_version_is_left_alone():
    options, changes = migrate_configuration(
        {"scheduler.max_threads": "2"}, source_version="2.2.2", target_version="2.10.3"
    )
    assert options == {"scheduler.max_threads": "2"}
    assert changes == []


def test_the_secrets_backend_class_path_moves_from_airflow_1_10_to_2():
    options, changes = migrate_configuration(
        {"secrets.backend": "airflow.contrib.secrets.aws_secrets_manager.SecretsManagerBackend"},
        source_version="1.10.12",
        target_version="2.7.2",
    )
    assert (
        options["secrets.backend"]
        == "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
    )
    assert len(changes) == 1


def test_a_rename_whose_new_name_is_set_keeps_the_new_value():
    options, changes = migrate_configuration(
        {"core.dag_concurrency": "16", "core.max_active_tasks_per_dag": "32"},
        source_version="2.0.2",
        target_version="2.7.2",
    )
    assert options == {"core.max_active_tasks_per_dag": "32"}
    assert "dropped core.dag_concurrency" in changes[0]
