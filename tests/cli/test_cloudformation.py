"""mwaa-migrate template: an environment as the CloudFormation resource that describes it, which
cfn-lint accepts, without the values of options that hold secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import cfnlint
import pytest

from emulation.mwaa import MwaaEmulator
from mwaa_migrate.environment.environment_request import create_environment_input
from mwaa_migrate_cli import main
from mwaa_migrate_cli.cloudformation import NOT_IN_CLOUDFORMATION, RESOURCE_TYPE, environment_template

SECRET = "pa55-Word-for-smtp"
DESCRIPTION = {
    "Name": "analytics-prod-2-10",
    "AirflowVersion": "2.10.3",
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/service-role/mwaa-analytics",
    "SourceBucketArn": "arn:aws:s3:::airflow-analytics",
    "DagS3Path": "mwaa-migrate/analytics-prod-2-10/dags",
    "RequirementsS3Path": "mwaa-migrate/analytics-prod-2-10/requirements.txt",
    "RequirementsS3ObjectVersion": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
    "NetworkConfiguration": {
        "SubnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0a1b2c3d4e5f60719"],
        "SecurityGroupIds": ["sg-0a1b2c3d4e5f60710"],
    },
    "EnvironmentClass": "mw1.medium",
    "MaxWorkers": 10,
    "WebserverAccessMode": "PRIVATE_ONLY",
    "LoggingConfiguration": {"TaskLogs": {"Enabled": True, "LogLevel": "INFO"}},
    "AirflowConfigurationOptions": {
        "core.parallelism": "64",
        "smtp.smtp_password": SECRET,
        "core.dags_are_paused_at_creation": "True",
    },
    "Tags": {"team": "data", "mwaa-migrate:source-environment": "analytics-prod"},
}


@pytest.fixture
def described(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The environment as GetEnvironment answers for it (botocore parses the emulator's answer)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with MwaaEmulator() as emulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", emulator.endpoint_url)
        emulator.add_environment(dict(DESCRIPTION))
        client = boto3.client("mwaa")
        yield {
            "client": client,
            "environment": client.get_environment(Name=DESCRIPTION["Name"])["Environment"],
        }


def test_the_members_cloudformation_lacks_are_exactly_those_its_registry_schema_lacks():
    index = json.loads((Path(cfnlint.__file__).parent / "data/schemas/providers/us-east-1.json").read_text())
    schema = json.loads(
        (
            Path(cfnlint.__file__).parent / "data/schemas/resources" / f"{index[RESOURCE_TYPE]}.json"
        ).read_text()
    )

    assert set(create_environment_input().members) - set(schema["properties"]) == NOT_IN_CLOUDFORMATION


def test_the_template_describes_the_environment_passes_cfn_lint_and_holds_no_secret(described):
    template, left_out = environment_template(dict(described["environment"]))

    text = json.dumps(template, default=str)
    assert SECRET not in text
    assert cfnlint.api.lint(text, regions=["us-east-1"]) == []
    (resource,) = template["Resources"].values()
    assert resource["Type"] == RESOURCE_TYPE
    assert resource["DeletionPolicy"] == "Retain"  # an import into a stack requires it
    properties = resource["Properties"]
    for member in ("Name", "AirflowVersion", "NetworkConfiguration", "EnvironmentClass", "MaxWorkers"):
        assert properties[member] == DESCRIPTION[member]
    assert properties["RequirementsS3ObjectVersion"] == DESCRIPTION["RequirementsS3ObjectVersion"]
    # The output-only members GetEnvironment adds (Arn, Status, log group ARNs ...) are not properties.
    assert "Arn" not in properties
    assert "CloudWatchLogGroupArn" not in json.dumps(properties["LoggingConfiguration"])
    # An option named as a secret is a NoEcho parameter; the others keep their values.
    options = properties["AirflowConfigurationOptions"]
    assert options["smtp.smtp_password"] == {"Ref": "OptionSmtpSmtpPassword"}
    assert template["Parameters"]["OptionSmtpSmtpPassword"]["NoEcho"] is True
    assert "Default" not in template["Parameters"]["OptionSmtpSmtpPassword"]
    assert options["core.parallelism"] == "64"
    assert properties["Tags"] == DESCRIPTION["Tags"]
    assert left_out == []


def test_the_command_prints_it_names_the_parameters_and_refuses_an_unknown_environment(
    described, monkeypatch, capsys, tmp_path
):
    monkeypatch.setattr(main, "_pipeline", lambda args: SimpleNamespace(mwaa=described["client"]))

    assert main.main(["template", DESCRIPTION["Name"]]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["Resources"]["AnalyticsProd210"]["Type"] == RESOURCE_TYPE
    assert "NoEcho parameters to give on deploy: OptionSmtpSmtpPassword" in err

    written = tmp_path / "target.json"
    assert main.main(["template", DESCRIPTION["Name"], "--output", str(written)]) == 0
    assert json.loads(written.read_text())["Resources"]["AnalyticsProd210"]["Properties"]["MaxWorkers"] == 10

    assert main.main(["template", "nope"]) == 4
    assert "environment nope does not exist" in capsys.readouterr().err
