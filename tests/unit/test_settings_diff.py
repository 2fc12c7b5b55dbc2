"""The plan's and the report's settings diff: what changed, what was carried, and no sensitive value."""

from __future__ import annotations

from datetime import UTC, datetime

from mwaa_migrate.redaction import REDACTED
from mwaa_migrate.run.settings_diff import redact_request, settings_diff

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:mwaa-migrate-migration:run-1"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


# ------------------------------------------------------------------ settings


def test_settings_the_request_keeps_are_carried_and_the_others_listed_by_kind():
    source = {
        "Name": "prod",
        "AirflowVersion": "2.7.2",
        "MaxWorkers": 10,
        "AirflowConfigurationOptions": {"core.dag_concurrency": "16", "core.default_timezone": "utc"},
        "Tags": {"team": "data"},
    }
    request = {
        "Name": "prod-2-10",
        "AirflowVersion": "2.10.3",
        "MaxWorkers": 10,
        "AirflowConfigurationOptions": {
            "core.max_active_tasks_per_dag": "16",
            "core.default_timezone": "utc",
        },
        "Tags": {"team": "data", "mwaa-migrate:source-environment": "prod"},
    }

    summary = settings_diff(source, request)

    assert summary.carried == ["AirflowConfigurationOptions.core.default_timezone", "MaxWorkers", "Tags.team"]
    assert {(c.setting, c.change, c.source, c.target) for c in summary.changed} == {
        # Every configuration option's value is redacted but for a few harmless ones (redaction.py).
        ("AirflowConfigurationOptions.core.dag_concurrency", "removed", REDACTED, None),
        ("AirflowConfigurationOptions.core.max_active_tasks_per_dag", "added", None, REDACTED),
        ("AirflowVersion", "changed", "2.7.2", "2.10.3"),
        ("Name", "changed", "prod", "prod-2-10"),
        ("Tags.mwaa-migrate:source-environment", "added", None, "prod"),
    }


def test_sensitive_setting_values_never_appear_but_their_changes_do():
    source = {
        "AirflowConfigurationOptions": {
            "smtp.smtp_password": "hunter2",
            "secrets.backend": "airflow.contrib.secrets.aws_secrets_manager.SecretsManagerBackend",
            "secrets.backend_kwargs": '{"connections_prefix": "x", "token": "s3cr3t"}',
        }
    }
    request = {
        "AirflowConfigurationOptions": {
            "smtp.smtp_password": "hunter3",
            "secrets.backend": "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend",
            "secrets.backend_kwargs": '{"connections_prefix": "x", "token": "s3cr3t"}',
            "webserver.secret_key": "k3y",
        }
    }

    summary = settings_diff(source, request)
    shown = summary.model_dump_json()

    for secret in ("hunter2", "hunter3", "s3cr3t", "k3y"):
        assert secret not in shown
    changes = {c.setting: c for c in summary.changed}
    assert changes["AirflowConfigurationOptions.smtp.smtp_password"].source == REDACTED
    assert changes["AirflowConfigurationOptions.webserver.secret_key"].target == REDACTED
    # Where the secrets backend's class moved is not a secret, and is worth seeing.
    assert changes["AirflowConfigurationOptions.secrets.backend"].target.startswith("airflow.providers.")
    assert "AirflowConfigurationOptions.secrets.backend_kwargs" in summary.carried


def test_a_redacted_request_keeps_its_shape_and_shows_only_harmless_option_values():
    request = {
        "Name": "x",
        "AirflowConfigurationOptions": {
            "core.fernet_key": "abc",
            "smtp.smtp_host": "smtp://relay:pw@mail",
            "core.dags_are_paused_at_creation": "True",
        },
        "Tags": {"team": "data", "api_token": "t0k"},
    }
    assert redact_request(request) == {
        "Name": "x",
        "AirflowConfigurationOptions": {
            "core.fernet_key": REDACTED,
            "smtp.smtp_host": REDACTED,
            "core.dags_are_paused_at_creation": "True",
        },
        "Tags": {"team": "data", "api_token": REDACTED},
    }
