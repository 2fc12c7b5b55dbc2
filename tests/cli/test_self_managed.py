"""A self-managed Apache Airflow source from the command line: `init --self-managed` writes a request
to start from, `template --input` writes its target as CloudFormation, `plan` makes its dry run, and
anything more than a plan is refused before it starts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cfnlint.api

from emulation.lambdas import REPO_ROOT
from emulation.local_stack import scenario_path
from emulation.scenario import Scenario
from mwaa_migrate.models import MigrationRequest, parse_model
from mwaa_migrate_cli import main
from mwaa_migrate_cli.cloudformation import RESOURCE_TYPE
from tests.cli.conftest import Emulation, running_emulation

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mwaa-migrate/onprem-AbCdEf"
SELF_MANAGED_EVENT = REPO_ROOT / "events" / "plan_migration_self_managed.json"


def _request(tmp_path: Path, **changes: object) -> Path:
    request = {**json.loads(SELF_MANAGED_EVENT.read_text())["request"], **changes}
    path = tmp_path / "self-managed.json"
    path.write_text(json.dumps(request))
    return path


def test_init_self_managed_writes_a_valid_dry_run_request_and_explains_the_source_block(tmp_path, capsys):
    path = tmp_path / "request.json"

    assert main.main(["init", "--self-managed", "--source", "onprem", "--output", str(path)]) == 0

    request = parse_model(MigrationRequest, json.loads(path.read_text()))
    assert request.source is not None
    assert (request.source_name, request.source_environment_name, request.dry_run) == ("onprem", None, True)
    assert request.target_environment_name == "onprem-2-11"
    assert set(request.target_settings or {}) >= {
        "ExecutionRoleArn",
        "SourceBucketArn",
        "NetworkConfiguration",
    }
    out = capsys.readouterr().out
    for field in ("source.dagsUri", "source.airflowVersion", "source.access.restApiUrl", "targetSettings"):
        assert f"  {field} " in out, field
    assert "runs the whole migration through your Airflow's REST API once dryRun is false" in out
    assert request.source.access.mode == "reached"
    assert f"template --input {path}" in out


def test_template_input_writes_the_self_managed_targets_resource_that_cfn_lint_accepts(tmp_path, capsys):
    output = tmp_path / "target.json"

    assert main.main(["template", "--input", str(_request(tmp_path)), "--output", str(output)]) == 0

    template = json.loads(output.read_text())
    assert cfnlint.api.lint(json.dumps(template), regions=["us-east-1"]) == []
    (resource,) = template["Resources"].values()
    assert (resource["Type"], resource["DeletionPolicy"]) == (RESOURCE_TYPE, "Retain")
    properties = resource["Properties"]
    assert properties["Name"] == "onprem-airflow-2-10"
    assert properties["AirflowVersion"] == "2.10.3"
    assert properties["SourceBucketArn"] == "arn:aws:s3:::airflow-analytics-prod"
    # The paths of the target's own copy, as the plan makes them.
    assert properties["DagS3Path"] == "mwaa-migrate/onprem-airflow-2-10/dags"
    assert properties["RequirementsS3Path"] == "mwaa-migrate/onprem-airflow-2-10/requirements.txt"
    assert "RequirementsS3ObjectVersion" not in properties
    err = capsys.readouterr().err
    assert "Not in the template: RequirementsS3ObjectVersion: the version of the target's copy" in err


def test_template_input_of_an_mwaa_source_request_or_of_nothing_is_refused(tmp_path, capsys):
    mwaa = REPO_ROOT / "events" / "migration_request.json"

    assert main.main(["template", "--input", str(mwaa)]) == 2
    assert "names an MWAA source" in capsys.readouterr().err
    assert main.main(["template"]) == 2
    assert "name an ENVIRONMENT or give --input REQUEST" in capsys.readouterr().err


def test_plan_of_a_self_managed_request_is_its_dry_run(emulation: Emulation, tmp_path: Path):
    result = emulation.run("plan", "--local", "--input", str(_request(tmp_path)))

    assert result.code == 0, result.err
    assert result.out.startswith(
        "Plan: onprem-airflow (Airflow 2.8.4) -> onprem-airflow-2-10 (Airflow 2.10.3)\n"
    )
    assert (
        "a self-managed source run by hand: you run the export with the conf the execution hands you"
        in result.out
    )
    assert "no task logs to copy: onprem-airflow is self-managed" in result.out


def test_plan_of_a_reached_source_says_the_export_runs_through_its_rest_api(
    emulation: Emulation, tmp_path: Path
):
    source = json.loads(SELF_MANAGED_EVENT.read_text())["request"]["source"]
    access = {
        "mode": "reached",
        "restApiUrl": "https://airflow.example.com/api/v1",
        "credentialsSecretArn": SECRET_ARN,
    }

    result = emulation.run(
        "plan", "--local", "--input", str(_request(tmp_path, source={**source, "access": access}))
    )

    assert result.code == 0, result.err
    assert "through its REST API (a self-managed source: no AWS credentials on it)" in result.out
    assert "run by hand" not in result.out


def test_a_hands_on_deadline_longer_than_its_forms_last_is_refused_before_anything_starts(
    emulation: Emulation, tmp_path: Path
):
    source = json.loads(SELF_MANAGED_EVENT.read_text())["request"]["source"]
    access = {"mode": "hands_on", "exportDeadlineHours": 13}
    request = _request(tmp_path, dryRun=False, source={**source, "access": access})

    result = emulation.run("start", "--local", "--input", str(request))

    assert result.code == 3
    assert "source.access.hands_on.exportDeadlineHours" in result.err
    assert "(nothing was started)" in result.err


def test_plan_uploads_a_local_dag_folder_first_and_again_only_what_changed(
    emulation: Emulation, tmp_path: Path
):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "etl.py").write_text("from airflow import DAG\n")
    request = _request(tmp_path)
    data = json.loads(request.read_text())
    data["source"]["dagsUri"] = str(dags)
    request.write_text(json.dumps(data))

    first = emulation.run("plan", "--local", "--input", str(request))
    again = emulation.run("plan", "--local", "--input", str(request))

    assert first.code == 0, first.err
    uri = "s3://airflow-analytics-prod/mwaa-migrate/sources/onprem-airflow/dags/"
    assert f"dagsUri: {dags} -> {uri}" in first.err
    assert "1 uploaded, 0 unchanged, 0 removed" in first.err
    assert again.code == 0, again.err
    assert "0 uploaded, 1 unchanged, 0 removed" in again.err


def test_hands_on_prints_the_steps_and_downloads_the_export_and_its_conf(tmp_path: Path):
    """A source run by hand: the emulation's operator runs the bulk only, so the execution waits for
    the cutover's export; `mwaa-migrate hands-on` prints its steps and `--to` writes the export's
    files and the conf, as the operator needs them."""
    scenario = Scenario.load(scenario_path("self_managed_hands_on"))
    waiting = tmp_path / "waits_for_the_cutover.json"
    waiting.write_text(
        json.dumps({"extends": str(scenario_path("self_managed_hands_on")), "handsOnPhases": ["bulk"]})
    )
    request = tmp_path / "request.json"
    request.write_text(json.dumps(scenario.input))
    with running_emulation(tmp_path, str(waiting)) as emulation:
        started = emulation.run("start", "--local", "--input", str(request))
        assert started.code == 0, started.err
        execution = emulation.executions()[0]  # the newest: the migration (its dry run came first)
        deadline = time.monotonic() + 120
        result = emulation.run("hands-on", execution["name"], "--local", "--to", str(tmp_path / "export"))
        while "the cutover export" not in result.out and time.monotonic() < deadline:
            time.sleep(0.5)
            result = emulation.run("hands-on", execution["name"], "--local", "--to", str(tmp_path / "export"))
        status = emulation.run("status", execution["name"], "--local")

    assert f"Its steps and files: mwaa-migrate hands-on {execution['name']}" in status.out
    assert result.code == 0, result.err
    assert result.out.startswith("# mwaa-migrate: the cutover export of onprem-airflow, run by hand")
    assert f"--run-id mwaa_migrate__cutover__{execution['name']}" in result.out
    downloaded = tmp_path / "export"
    assert sorted(path.name for path in downloaded.iterdir()) == [
        "conf.json",
        "mwaa_migrate_export.py",
        "mwaa_migrate_metadata.py",
    ]
    conf = json.loads((downloaded / "conf.json").read_text())
    assert conf["phase"] == "cutover"
    # The conf holds presigned URLs: readable by its owner only, and never printed.
    assert (downloaded / "conf.json").stat().st_mode & 0o077 == 0
    assert conf["selfManaged"]["uploads"][0]["url"] not in result.out
    assert "X-Amz" not in result.out
