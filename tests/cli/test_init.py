"""mwaa-migrate init: a request to start from, valid as written, with every field shown and explained."""

from __future__ import annotations

import json

from mwaa_migrate.models import MigrationRequest, parse_model
from mwaa_migrate_cli import arguments, main, request_args


def test_init_writes_a_valid_request_with_every_field_and_explains_each(tmp_path, capsys):
    path = tmp_path / "request.json"

    assert main.main(["init", "--source", "analytics-prod", "--output", str(path)]) == 0

    written = json.loads(path.read_text())
    fields = {field.alias for field in MigrationRequest.model_fields.values()}
    assert set(written) == fields
    assert written["targetEnvironmentName"] == "analytics-prod-2-11"
    assert written["targetAirflowVersion"] == "2.11.0"
    # The pipeline takes it as written, and so does `plan --input`.
    assert parse_model(MigrationRequest, written).source_environment_name == "analytics-prod"
    args = arguments.build_parser().parse_args(["plan", "--input", str(path)])
    assert request_args.migration_request(args, dry_run=True)["sourceEnvironmentName"] == "analytics-prod"
    out = capsys.readouterr().out
    for field in fields:
        assert f"  {field} " in out, field
    assert "Days of task logs to copy" in out
    assert f"Next: mwaa-migrate plan --input {path}" in out


def test_init_keeps_an_existing_file_and_refuses_a_bad_version_before_writing(tmp_path, capsys):
    path = tmp_path / "request.json"
    path.write_text("{}")

    assert main.main(["init", "--output", str(path)]) == 2
    assert path.read_text() == "{}"
    assert "exists: --force replaces it" in capsys.readouterr().err

    other = tmp_path / "other.json"
    assert main.main(["init", "--version", "9.9.9", "--output", str(other)]) == 2
    assert "targetAirflowVersion: must be one of 2.7.2" in capsys.readouterr().err
    assert not other.exists()

    assert main.main(["init", "--output", str(path), "--force"]) == 0
    assert json.loads(path.read_text())["sourceEnvironmentName"] == "my-source-environment"
