"""Redaction: configuration option values are secret but for a short allow-list, and free text (a
failing task's last log lines) loses its secret-looking values but keeps what says what failed."""

from __future__ import annotations

import pytest

from mwaa_migrate.redaction import REDACTED, is_sensitive, redact_text, shown_options
from mwaa_migrate.run.failure import readable_cause


def test_every_option_value_is_hidden_but_the_harmless_ones():
    options = {
        "smtp.smtp_password": "hunter2",
        "smtp.smtp_host": "relay.internal",
        "core.parallelism": "32",
        "core.dags_are_paused_at_creation": "True",
        "secrets.backend": "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend",
    }
    assert shown_options(options) == {
        "smtp.smtp_password": REDACTED,
        "smtp.smtp_host": REDACTED,
        "core.parallelism": REDACTED,
        "core.dags_are_paused_at_creation": "True",
        "secrets.backend": options["secrets.backend"],
    }


@pytest.mark.parametrize(
    ("path", "sensitive"),
    [
        ("AirflowConfigurationOptions.webserver.instance_name", True),
        ("AirflowConfigurationOptions.secrets.backend_kwargs", True),
        ("AirflowConfigurationOptions.secrets.backend", False),
        ("Tags.api_token", True),
        ("Tags.team", False),
        ("MaxWorkers", False),
    ],
)
def test_a_setting_is_sensitive_by_where_it_is_and_its_name(path, sensitive):
    assert is_sensitive(path) is sensitive


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        (
            "could not connect to postgresql://etl:pa55w0rd@warehouse.internal:5432/dw",
            "could not connect to postgresql://etl:****@warehouse.internal:5432/dw",
        ),
        ("redis://:pa55w0rd@cache:6379/0 refused", "redis://:****@cache:6379/0 refused"),
        ("cloning https://ghp_abcdefghijklmnop1234@github.com/x", "cloning https://****@github.com/x"),
        ("password=pa55w0rd user=etl", "password=**** user=etl"),
        ("login ok, db_password: 'pa55w0rd'", "login ok, db_password: '****'"),
        ('{"api_key": "abc123", "rows": 3}', '{"api_key": "****", "rows": 3}'),
        ("backend_kwargs={'token': 'abc', 'prefix': 'x'} set", "backend_kwargs=**** set"),
        ("headers: Authorization: Bearer abcdefgh12345678", "headers: Authorization: Bearer ****"),
        ("sent Bearer abcdefgh12345678 to the API", "sent Bearer **** to the API"),
        ("key AKIAIOSFODNN7EXAMPLE refused", "key **** refused"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key=****"),
        ("found wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY in env", "found **** in env"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl end", "jwt **** end"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\nnext", "****\nnext"),
    ],
)
def test_secret_looking_values_are_redacted_and_the_rest_kept(line, shown):
    assert redact_text(line) == shown
    assert redact_text(shown) == shown


@pytest.mark.parametrize(
    "line",
    [
        "VerificationError: variable: read 3 but inserted 2",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "see s3://bucket/migrations/a/b/reports/x.json",
        "https://airflow.example.com/dags/etl/grid",
        "password authentication failed for user etl",
    ],
)
def test_lines_without_secrets_are_left_alone(line):
    assert redact_text(line) == line


def test_a_lambda_cause_is_redacted_before_it_is_cut():
    # Given a failing task whose log ends with a connection string, its cause past the limit
    head = "x" * (4000 - len(" postgresql://etl:pa55"))
    message = head + " postgresql://etl:pa55w0rd@warehouse/dw"
    assert "pa55" in message[:4000], "a cut alone would leave part of the password"
    cause = '{"errorType": "DagRunFailed", "errorMessage": "' + message + '"}'
    # Then no part of the password is left where the cut falls
    shown = readable_cause(cause)
    assert "pa55" not in shown
    assert "pa55w0rd" not in readable_cause("plain postgresql://etl:pa55w0rd@warehouse/dw")


@pytest.mark.parametrize("text", ["y" * 200_000, "Ab1/" * 50_000, "x=" * 100_000])
def test_long_unbroken_text_is_redacted_in_one_pass(text):
    # Unbounded runs around the secret word used to make this quadratic (minutes for a 32 KB cause).
    assert redact_text(text + " password=hunter2").endswith("password=****")
