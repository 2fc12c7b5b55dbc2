"""Fidelity of the MWAA emulator: a real boto3 client validates every request and parses every answer
against botocore's own model, so what passes here is what the pipeline will meet on AWS."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
import pytest
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError

from emulation.mwaa import DagRunResult, EmulatedEnvironment, MwaaEmulator, service_model

ROLE = "arn:aws:iam::123456789012:role/mwaa-execution"
BUCKET_ARN = "arn:aws:s3:::airflow-source"
NETWORK = {"SubnetIds": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"], "SecurityGroupIds": ["sg-0a1b2c3d"]}
READ_ONLY = {
    "Arn",
    "Status",
    "CreatedAt",
    "WebserverUrl",
    "ServiceRoleArn",
    "LastUpdate",
    "CeleryExecutorQueue",
    "LoggingConfiguration",
}


def create_request(name: str, **members: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "ExecutionRoleArn": ROLE,
        "SourceBucketArn": BUCKET_ARN,
        "DagS3Path": "dags",
        "NetworkConfiguration": NETWORK,
        **members,
    }


def poll_status(mwaa: Any, name: str, *, limit: int = 10) -> list[str]:
    """GetEnvironment until a status other than CREATING/UPDATING/DELETING (bounded)."""
    seen = []
    for _ in range(limit):
        status = mwaa.get_environment(Name=name)["Environment"]["Status"]
        seen.append(status)
        if status not in {"CREATING", "UPDATING", "DELETING"}:
            return seen
    raise AssertionError(f"{name} still {seen[-1]} after {limit} polls")


# ---- a maximal CreateEnvironment request, generated from botocore's model

# Values for string shapes with a pattern (a new patterned shape in botocore fails the test below).
EXAMPLES_BY_SHAPE: dict[str, Callable[[int], str]] = {
    "EnvironmentName": lambda i: "maximal-env",
    "IamRoleArn": lambda i: ROLE,
    "S3BucketArn": lambda i: BUCKET_ARN,
    "RelativePath": lambda i: "dags",
    "ConfigKey": lambda i: "core.default_task_retries",
    "ConfigValue": lambda i: "3",
    "KmsKey": lambda i: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "AirflowVersion": lambda i: "2.10.3",
    "WeeklyMaintenanceWindowStart": lambda i: "SUN:03:30",
    "TagKey": lambda i: "team",
    "TagValue": lambda i: "data",
    "SubnetId": lambda i: f"subnet-0a1b2c3d{i}",
    "SecurityGroupId": lambda i: f"sg-0a1b2c3d{i}",
    "IdentityCenterStartUrl": lambda i: "https://d-1234567890.awsapps.com/start",
    "IdentityCenterIdentityStoreId": lambda i: "d-1234567890",
    "TeamNameString": lambda i: "analytics",
}
EXAMPLES_BY_MEMBER = {
    "PluginsS3Path": "plugins.zip",
    "RequirementsS3Path": "requirements.txt",
    "StartupScriptS3Path": "startup.sh",
    "EnvironmentClass": "mw1.medium",
}


def example(shape: Any, member: str = "", index: int = 0) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return {name: example(item, name) for name, item in shape.members.items()}
    if kind == "list":
        count = max(shape.metadata.get("min", 1), 1)
        return [example(shape.member, member, i) for i in range(count)]
    if kind == "map":
        return {example(shape.key): example(shape.value)}
    if kind == "boolean":
        return True
    if kind == "integer":
        return min(max(shape.metadata.get("min", 0), 3), shape.metadata.get("max", 3))
    if kind == "string":
        if member in EXAMPLES_BY_MEMBER:
            return EXAMPLES_BY_MEMBER[member]
        if shape.enum:
            return shape.enum[-1]
        if shape.name in EXAMPLES_BY_SHAPE:
            return EXAMPLES_BY_SHAPE[shape.name](index)
        if "pattern" in shape.metadata:
            raise AssertionError(f"add an example for the patterned shape {shape.name} ({member})")
        return f"v-{member or shape.name}"
    raise AssertionError(f"no example for {kind} ({member})")


def assert_fits(shape: Any, value: Any, where: str = "Environment") -> None:
    """The raw JSON matches the shape: known members only, and the wire type of each."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), where
        unknown = set(value) - set(shape.members)
        assert not unknown, f"{where} has members outside the model: {unknown}"
        for name, item in value.items():
            assert_fits(shape.members[name], item, f"{where}.{name}")
    elif kind == "list":
        assert isinstance(value, list), where
        for item in value:
            assert_fits(shape.member, item, where)
    elif kind == "map":
        assert isinstance(value, dict), where
        for key, item in value.items():
            assert_fits(shape.key, key, where)
            assert_fits(shape.value, item, where)
    elif kind == "string":
        assert isinstance(value, str), where
        if shape.enum:
            assert value in shape.enum, where
    elif kind == "integer":
        assert isinstance(value, int), where
        assert not isinstance(value, bool), where
    elif kind == "boolean":
        assert isinstance(value, bool), where
    elif kind == "timestamp":
        assert isinstance(value, int | float), f"{where}: epoch seconds"
        assert not isinstance(value, bool), f"{where}: epoch seconds"
    else:
        raise AssertionError(f"{where}: unexpected {kind}")


def raw_environment(mwaa: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(raw JSON Environment on the wire, botocore's parsed Environment)."""
    captured: dict[str, bytes] = {}

    def keep(http_response: Any, **kwargs: Any) -> None:
        captured["body"] = http_response.content

    mwaa.meta.events.register("after-call.mwaa.GetEnvironment", keep)
    try:
        parsed = mwaa.get_environment(Name=name)["Environment"]
    finally:
        mwaa.meta.events.unregister("after-call.mwaa.GetEnvironment", keep)
    return json.loads(captured["body"])["Environment"], parsed


# ---- GetEnvironment / CreateEnvironment


def test_get_environment_of_a_seeded_environment_fits_the_model_and_carries_what_the_service_fills(
    emulator: MwaaEmulator, mwaa: Any
) -> None:
    emulator.add_environment({"Name": "source", "AirflowVersion": "2.8.1"})

    raw, parsed = raw_environment(mwaa, "source")

    assert_fits(service_model().shape_for("Environment"), raw)
    assert set(raw) >= READ_ONLY
    assert parsed["Status"] == "AVAILABLE"
    assert parsed["Arn"] == "arn:aws:airflow:us-east-1:123456789012:environment/source"
    assert isinstance(parsed["CreatedAt"], datetime)
    assert parsed["LastUpdate"]["Status"] == "SUCCESS"
    groups = {
        module: conf["CloudWatchLogGroupArn"] for module, conf in parsed["LoggingConfiguration"].items()
    }
    assert groups == {
        module: f"arn:aws:logs:us-east-1:123456789012:log-group:airflow-source-{suffix}"
        for module, suffix in {
            "TaskLogs": "Task",
            "WorkerLogs": "Worker",
            "SchedulerLogs": "Scheduler",
            "DagProcessingLogs": "DAGProcessing",
            "WebserverLogs": "WebServer",
        }.items()
    }


def test_add_environment_refuses_a_description_outside_the_model(emulator: MwaaEmulator) -> None:
    with pytest.raises(ValueError, match="NotAMember"):
        emulator.add_environment({"Name": "source", "NotAMember": 1})


def test_create_environment_accepts_every_input_member_and_get_environment_returns_them(
    emulator: MwaaEmulator, mwaa: Any
) -> None:
    input_shape = service_model().operation_model("CreateEnvironment").input_shape
    request = example(input_shape)
    assert set(request) == set(input_shape.members)

    answer = mwaa.create_environment(**request)
    raw, parsed = raw_environment(mwaa, "maximal-env")

    assert answer["Arn"] == "arn:aws:airflow:us-east-1:123456789012:environment/maximal-env"
    assert_fits(service_model().shape_for("Environment"), raw)
    for member, value in request.items():
        if member == "LoggingConfiguration":
            for module, conf in value.items():
                assert parsed[member][module].items() >= conf.items(), module
        else:
            assert parsed[member] == value, member
    assert parsed["Status"] == "CREATING"


def test_create_environment_fills_the_service_defaults(emulator: MwaaEmulator, mwaa: Any) -> None:
    mwaa.create_environment(**create_request("minimal"))

    environment = mwaa.get_environment(Name="minimal")["Environment"]

    assert environment["AirflowVersion"] == "3.0.6"  # the newest, as MWAA defaults
    assert environment["EnvironmentClass"] == "mw1.small"
    assert environment["LoggingConfiguration"]["TaskLogs"]["CloudWatchLogGroupArn"].endswith(
        ":airflow-minimal-Task"
    )
    assert "WebserverVpcEndpointService" not in environment  # SERVICE endpoint management


def test_create_environment_refuses_a_name_that_exists(emulator: MwaaEmulator, mwaa: Any) -> None:
    emulator.add_environment({"Name": "taken"})

    with pytest.raises(mwaa.exceptions.ValidationException, match="already exists"):
        mwaa.create_environment(**create_request("taken"))

    assert emulator.calls.count(("CreateEnvironment", "taken")) == 1


@pytest.mark.parametrize("version", ["2.5.1", "1.10.12", "2.9.9"])
def test_create_environment_refuses_a_version_mwaa_does_not_create(
    emulator: MwaaEmulator, mwaa: Any, version: str
) -> None:
    with pytest.raises(mwaa.exceptions.ValidationException, match=version):
        mwaa.create_environment(**create_request("target", AirflowVersion=version))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"ExecutionRoleArn": "not-an-arn"}, "ExecutionRoleArn"),
        ({"SourceBucketArn": "arn:aws:s3:::Upper_Case"}, "SourceBucketArn"),
        ({"NetworkConfiguration": {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}}, "SubnetIds"),
        ({"NetworkConfiguration": None}, "NetworkConfiguration"),
    ],
)
def test_create_environment_validates_on_the_server_when_the_client_does_not(
    emulator: MwaaEmulator, change: dict[str, Any], problem: str
) -> None:
    unvalidated = boto3.client(
        "mwaa", config=Config(parameter_validation=False, retries={"total_max_attempts": 1})
    )
    request = {
        key: value for key, value in {**create_request("target"), **change}.items() if value is not None
    }

    with pytest.raises(unvalidated.exceptions.ValidationException, match=problem):
        unvalidated.create_environment(**request)

    assert [call for call in emulator.calls if call[0] == "CreateEnvironment"] == [
        ("CreateEnvironment", "target")
    ]
    with pytest.raises(KeyError):
        emulator.environment("target")


def test_get_environment_of_an_unknown_name_raises_resource_not_found(
    emulator: MwaaEmulator, mwaa: Any
) -> None:
    with pytest.raises(mwaa.exceptions.ResourceNotFoundException) as caught:
        mwaa.get_environment(Name="missing")

    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "missing" in caught.value.response["Error"]["Message"]


# ---- status transitions and scripted failures


def test_a_new_environment_answers_creating_for_create_polls_then_available(
    emulator: MwaaEmulator, mwaa: Any
) -> None:
    mwaa.create_environment(**create_request("target", AirflowVersion="2.11.0"))

    seen = poll_status(mwaa, "target")

    assert seen == ["CREATING"] * emulator.create_polls + ["AVAILABLE"]
    assert mwaa.get_environment(Name="target")["Environment"]["LastUpdate"]["Status"] == "SUCCESS"


def test_a_failed_create_ends_create_failed_with_the_error_in_last_update(
    emulator: MwaaEmulator, mwaa: Any
) -> None:
    emulator.fail_next_create("target", "INCORRECT_CONFIGURATION", "Check the execution role.")
    mwaa.create_environment(**create_request("target", AirflowVersion="2.11.0"))

    seen = poll_status(mwaa, "target")

    assert seen[-1] == "CREATE_FAILED"
    last_update = mwaa.get_environment(Name="target")["Environment"]["LastUpdate"]
    assert last_update["Status"] == "FAILED"
    assert last_update["Error"] == {
        "ErrorCode": "INCORRECT_CONFIGURATION",
        "ErrorMessage": "Check the execution role.",
    }


def test_an_update_answers_updating_then_applies_the_new_version(emulator: MwaaEmulator, mwaa: Any) -> None:
    emulator.add_environment({"Name": "target", "AirflowVersion": "2.10.1"})

    mwaa.update_environment(Name="target", AirflowVersion="2.10.3", MaxWorkers=4)
    during = mwaa.get_environment(Name="target")["Environment"]
    seen = poll_status(mwaa, "target")

    assert during["Status"] == "UPDATING"
    assert during["AirflowVersion"] == "2.10.1"
    assert during["LastUpdate"]["Status"] == "PENDING"
    assert seen[-1] == "AVAILABLE"
    after = mwaa.get_environment(Name="target")["Environment"]
    assert (after["AirflowVersion"], after["MaxWorkers"]) == ("2.10.3", 4)
    assert after["LastUpdate"]["Status"] == "SUCCESS"


def test_a_failed_update_ends_update_failed_and_keeps_the_old_configuration(
    emulator: MwaaEmulator, mwaa: Any
) -> None:
    emulator.add_environment({"Name": "target", "AirflowVersion": "2.11.0"})
    emulator.fail_next_update("target", "UPGRADE_FAILED", "The metadata database could not be upgraded.")

    mwaa.update_environment(Name="target", AirflowVersion="3.0.6")
    seen = poll_status(mwaa, "target")

    assert seen[-1] == "UPDATE_FAILED"
    environment = mwaa.get_environment(Name="target")["Environment"]
    assert environment["AirflowVersion"] == "2.11.0"
    assert environment["LastUpdate"]["Error"]["ErrorCode"] == "UPGRADE_FAILED"


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("2.10.3", "3.0.6"),  # to 3.x only from the newest 2.11.x
        ("2.11.0", "2.10.3"),  # no downgrade
        ("3.0.6", "2.11.0"),
        ("2.10.1", "2.9.9"),  # not a version MWAA runs
        ("1.10.12", "2.7.2"),  # 1.10 needs a new environment
    ],
)
def test_an_update_outside_mwaa_in_place_paths_is_refused(
    emulator: MwaaEmulator, mwaa: Any, current: str, new: str
) -> None:
    emulator.add_environment({"Name": "target", "AirflowVersion": current})

    with pytest.raises(mwaa.exceptions.ValidationException):
        mwaa.update_environment(Name="target", AirflowVersion=new)

    assert emulator.environment("target").status == "AVAILABLE"


@pytest.mark.parametrize(("current", "new"), [("2.7.2", "2.10.3"), ("2.10.1", "2.10.3"), ("2.11.0", "3.0.6")])
def test_an_update_along_mwaa_in_place_paths_is_applied(
    emulator: MwaaEmulator, mwaa: Any, current: str, new: str
) -> None:
    emulator.add_environment({"Name": "target", "AirflowVersion": current})

    mwaa.update_environment(Name="target", AirflowVersion=new)

    assert poll_status(mwaa, "target")[-1] == "AVAILABLE"
    assert mwaa.get_environment(Name="target")["Environment"]["AirflowVersion"] == new


def test_an_environment_that_is_creating_cannot_be_updated(emulator: MwaaEmulator, mwaa: Any) -> None:
    mwaa.create_environment(**create_request("target", AirflowVersion="2.11.0"))

    with pytest.raises(mwaa.exceptions.ValidationException, match="CREATING"):
        mwaa.update_environment(Name="target", MaxWorkers=3)


def test_the_upgrade_to_airflow_3_migrates_the_dag_run_rows(emulator: MwaaEmulator, mwaa: Any) -> None:
    run = {
        "dag_id": "d",
        "run_id": "r",
        "execution_date": "2024-01-01T00:00:00+00:00",
        "external_trigger": True,
    }
    emulator.add_environment({"Name": "target", "AirflowVersion": "2.11.0"}, {"dag_run": [run]})

    mwaa.update_environment(Name="target", AirflowVersion="3.0.6")
    poll_status(mwaa, "target")

    (migrated,) = emulator.environment("target").metadata["dag_run"]
    assert migrated["logical_date"] == "2024-01-01T00:00:00+00:00"
    assert "execution_date" not in migrated
    assert "external_trigger" not in migrated


def test_delete_answers_deleting_then_the_environment_is_gone(emulator: MwaaEmulator, mwaa: Any) -> None:
    emulator.add_environment({"Name": "old"})

    mwaa.delete_environment(Name="old")

    assert mwaa.get_environment(Name="old")["Environment"]["Status"] == "DELETING"
    with pytest.raises(mwaa.exceptions.ResourceNotFoundException):
        mwaa.get_environment(Name="old")
    assert mwaa.list_environments()["Environments"] == []


# ---- listing and tags


def test_list_environments_pages_with_next_token(emulator: MwaaEmulator, mwaa: Any) -> None:
    names = [f"env-{index}" for index in range(5)]
    for name in names:
        emulator.add_environment({"Name": name})

    first = mwaa.list_environments(MaxResults=2)
    pages = [page["Environments"] for page in mwaa.get_paginator("list_environments").paginate(MaxResults=2)]

    assert first["Environments"] == names[:2]
    assert "NextToken" in first
    assert pages == [names[0:2], names[2:4], names[4:5]]


def test_list_environments_refuses_a_forged_next_token(emulator: MwaaEmulator, mwaa: Any) -> None:
    with pytest.raises(mwaa.exceptions.ValidationException, match="NextToken"):
        mwaa.list_environments(NextToken="not-a-token")


def test_tags_are_added_listed_and_removed(emulator: MwaaEmulator, mwaa: Any) -> None:
    arn = emulator.add_environment({"Name": "source", "Tags": {"team": "data"}}).description["Arn"]

    mwaa.tag_resource(ResourceArn=arn, Tags={"migration": "m-1"})
    tagged = mwaa.list_tags_for_resource(ResourceArn=arn)["Tags"]
    mwaa.untag_resource(ResourceArn=arn, tagKeys=["team", "migration"])

    assert tagged == {"team": "data", "migration": "m-1"}
    assert mwaa.list_tags_for_resource(ResourceArn=arn)["Tags"] == {}
    assert ("TagResource", "source") in emulator.calls


def test_tagging_an_unknown_environment_raises_resource_not_found(emulator: MwaaEmulator, mwaa: Any) -> None:
    with pytest.raises(mwaa.exceptions.ResourceNotFoundException):
        mwaa.tag_resource(
            ResourceArn="arn:aws:airflow:us-east-1:123456789012:environment/missing", Tags={"a": "b"}
        )


# ---- fault injection


def test_injected_throttling_is_retried_by_botocore(emulator: MwaaEmulator, no_retry_sleep: None) -> None:
    emulator.add_environment({"Name": "source"})
    emulator.inject_fault("GetEnvironment", times=2)
    retrying = boto3.client("mwaa", config=Config(retries={"mode": "standard", "total_max_attempts": 3}))

    answer = retrying.get_environment(Name="source")

    assert answer["ResponseMetadata"]["RetryAttempts"] == 2
    assert emulator.calls.count(("GetEnvironment", "source")) == 3


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("InternalServerException", 500),
        ("ServiceUnavailableException", 503),
        ("AccessDeniedException", 403),
        ("ValidationException", 400),
        ("ResourceNotFoundException", 404),
    ],
)
def test_injected_faults_raise_the_modeled_exceptions(
    emulator: MwaaEmulator, mwaa: Any, code: str, status: int
) -> None:
    emulator.add_environment({"Name": "source"})
    emulator.inject_fault("UpdateEnvironment", code, message="injected")

    with pytest.raises(getattr(mwaa.exceptions, code)) as caught:
        mwaa.update_environment(Name="source", MaxWorkers=3)

    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert caught.value.response["Error"]["Message"] == "injected"
    mwaa.update_environment(Name="source", MaxWorkers=3)  # only `times` calls fail


def test_injected_throttling_is_a_client_error_with_code_and_429(emulator: MwaaEmulator, mwaa: Any) -> None:
    emulator.inject_fault("ListEnvironments", "ThrottlingException", times=1)

    with pytest.raises(ClientError) as caught:
        mwaa.list_environments()

    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429


def test_inject_fault_refuses_an_unknown_operation(emulator: MwaaEmulator) -> None:
    with pytest.raises(ValueError, match="GetEnviroment"):
        emulator.inject_fault("GetEnviroment")


# ---- CreateCliToken and the CLI endpoint


def cli_request(
    emulator: MwaaEmulator, token: str | None, command: str, path: str = "/aws_mwaa/cli/"
) -> urllib3.BaseHTTPResponse:
    headers = {"Content-Type": "text/plain"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return urllib3.request(
        "POST",
        f"{emulator.endpoint_url}{path}",
        body=command.encode(),
        headers=headers,
        redirect=False,
        retries=False,
    )


def decoded(response: urllib3.BaseHTTPResponse) -> tuple[str, str]:
    assert response.status == 200, response.data
    payload = response.json()
    return base64.b64decode(payload["stdout"]).decode(), base64.b64decode(payload["stderr"]).decode()


def run(emulator: MwaaEmulator, mwaa: Any, environment: str, command: str) -> tuple[str, str]:
    token = mwaa.create_cli_token(Name=environment)["CliToken"]
    return decoded(cli_request(emulator, token, command))


def test_create_cli_token_answers_a_token_and_the_web_server_host(emulator: MwaaEmulator, mwaa: Any) -> None:
    emulator.add_environment({"Name": "source"})

    answer = mwaa.create_cli_token(Name="source")

    assert len(answer["CliToken"]) >= 32
    assert answer["WebServerHostname"] == f"127.0.0.1:{emulator.port}"


def test_create_cli_token_of_an_unknown_environment_raises_resource_not_found(
    emulator: MwaaEmulator, mwaa: Any
) -> None:
    with pytest.raises(mwaa.exceptions.ResourceNotFoundException):
        mwaa.create_cli_token(Name="missing")


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_the_cli_refuses_a_missing_or_unknown_token(emulator: MwaaEmulator, token: str | None) -> None:
    emulator.add_environment({"Name": "source"})

    response = cli_request(emulator, token, "dags list -o json")

    assert response.status == 403
    assert emulator.cli_commands == []


def test_a_cli_token_expires_after_60_seconds(emulator: MwaaEmulator, mwaa: Any, clock: Any) -> None:
    emulator.add_environment({"Name": "source"})
    token = mwaa.create_cli_token(Name="source")["CliToken"]

    clock.advance(59)
    young = cli_request(emulator, token, "version")
    clock.advance(2)
    expired = cli_request(emulator, token, "version")

    assert (young.status, expired.status) == (200, 403)


def test_the_cli_answers_503_while_the_environment_is_not_available(
    emulator: MwaaEmulator, mwaa: Any
) -> None:
    emulator.add_environment({"Name": "source", "AirflowVersion": "2.10.3"})
    token = mwaa.create_cli_token(Name="source")["CliToken"]
    mwaa.update_environment(Name="source", MaxWorkers=3)

    assert cli_request(emulator, token, "version").status == 503


@pytest.mark.parametrize(("version", "status"), [("3.0.6", 307), ("2.10.3", 200)])
def test_only_airflow_3_redirects_the_path_without_slash(
    emulator: MwaaEmulator, mwaa: Any, version: str, status: int
) -> None:
    emulator.add_environment({"Name": "source", "AirflowVersion": version})
    token = mwaa.create_cli_token(Name="source")["CliToken"]

    response = cli_request(emulator, token, "version", path="/aws_mwaa/cli")

    assert response.status == status
    if status == 307:
        assert response.headers["Location"] == "/aws_mwaa/cli/"


@pytest.mark.parametrize("command", ["db reset --yes", "connections list", "pools list", "users list"])
def test_the_cli_refuses_commands_mwaa_does_not_allow(
    emulator: MwaaEmulator, mwaa: Any, command: str
) -> None:
    emulator.add_environment({"Name": "source"})
    token = mwaa.create_cli_token(Name="source")["CliToken"]

    response = cli_request(emulator, token, command)

    assert response.status == 400
    assert "not supported" in response.json()["message"]
    assert emulator.cli_commands == []


def test_an_injected_cli_fault_answers_its_status(emulator: MwaaEmulator, mwaa: Any) -> None:
    emulator.add_environment({"Name": "source"})
    token = mwaa.create_cli_token(Name="source")["CliToken"]
    emulator.inject_fault("Cli", "ServiceUnavailableException")

    first = cli_request(emulator, token, "version")
    second = cli_request(emulator, token, "version")

    assert (first.status, second.status) == (503, 200)
    assert emulator.calls.count(("Cli", "source")) == 2


# ---- the emulated Airflow


def test_an_uploaded_dag_appears_in_dags_list_after_the_parse_polls(s3: Any, aws_environment: None) -> None:
    with MwaaEmulator(s3_client=s3, dag_parse_polls=1) as emulator:
        mwaa = boto3.client("mwaa", endpoint_url=emulator.endpoint_url)
        emulator.add_environment(
            {"Name": "source", "SourceBucketArn": BUCKET_ARN, "DagS3Path": "dags", "AirflowVersion": "2.10.3"}
        )
        dag = b"with DAG(dag_id='export_metadata'):\n    PythonOperator(task_id='export')\n"
        s3.put_object(Bucket="airflow-source", Key="dags/export_metadata.py", Body=dag)
        s3.put_object(Bucket="airflow-source", Key="dags/helpers.py", Body=b"def helper(dag_id): ...\n")
        s3.put_object(Bucket="airflow-source", Key="elsewhere/other.py", Body=dag)

        first, _ = run(emulator, mwaa, "source", "dags list -o json")
        second, _ = run(emulator, mwaa, "source", "dags list -o json")

    assert json.loads(first) == []
    assert json.loads(second) == [
        {
            "dag_id": "export_metadata",
            "fileloc": "/usr/local/airflow/dags/export_metadata.py",
            "owners": ["airflow"],
            "is_paused": "True",
        },
    ]


def test_a_dag_file_that_does_not_parse_is_an_import_error(s3: Any, aws_environment: None) -> None:
    with MwaaEmulator(s3_client=s3, dag_parse_polls=0) as emulator:
        mwaa = boto3.client("mwaa", endpoint_url=emulator.endpoint_url)
        emulator.add_environment({"Name": "source", "SourceBucketArn": BUCKET_ARN, "DagS3Path": "dags"})
        s3.put_object(Bucket="airflow-source", Key="dags/broken.py", Body=b"from airflow import DAG\nDAG(:\n")

        dags, _ = run(emulator, mwaa, "source", "dags list -o json")
        errors, _ = run(emulator, mwaa, "source", "dags list-import-errors -o json")

    assert json.loads(dags) == []
    (error,) = json.loads(errors)
    assert error["filepath"] == "/usr/local/airflow/dags/broken.py"
    assert "SyntaxError" in error["error"]


@dataclass
class RecordingRuntime:
    result: DagRunResult = field(default_factory=lambda: DagRunResult("success"))
    runs: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def run(self, environment: EmulatedEnvironment, dag_id: str, conf: dict[str, Any]) -> DagRunResult:
        self.runs.append((environment.name, dag_id, conf))
        return self.result


def seeded(emulator: MwaaEmulator, version: str = "2.10.3", *, paused: bool = False) -> EmulatedEnvironment:
    return emulator.add_environment(
        {"Name": "source", "AirflowVersion": version},
        {"dag": [{"dag_id": "export_metadata", "is_paused": paused}], "variable": [{"key": "k", "val": "v"}]},
    )


def states(emulator: MwaaEmulator, mwaa: Any, run_id: str, *, reads: int) -> list[str]:
    found = []
    for _ in range(reads):
        stdout, _ = run(emulator, mwaa, "source", "dags list-runs -d export_metadata -o json")
        found += [row["state"] for row in json.loads(stdout) if row["run_id"] == run_id]
    return found


def test_a_triggered_run_goes_queued_running_then_completes_through_the_runtime(
    aws_environment: None,
) -> None:
    runtime = RecordingRuntime()
    with MwaaEmulator(dag_runtime=runtime, dag_run_polls=2) as emulator:
        mwaa = boto3.client("mwaa", endpoint_url=emulator.endpoint_url)
        seeded(emulator)

        stdout, stderr = run(
            emulator, mwaa, "source", "dags trigger export_metadata -r r-1 --conf '{\"a\": 1}' -o json"
        )
        (printed,) = json.loads(stdout)
        seen = states(emulator, mwaa, "r-1", reads=4)

    assert stderr == ""
    assert printed["dag_run_id"] == "r-1"
    assert printed["state"] == "queued"
    assert printed["external_trigger"] == "True"
    assert printed.keys() >= {"dag_id", "logical_date", "conf", "run_type"}
    assert seen == ["running", "running", "success", "success"]
    assert runtime.runs == [("source", "export_metadata", {"a": 1})]


def test_a_paused_dag_keeps_its_run_queued_until_unpaused(aws_environment: None) -> None:
    with MwaaEmulator(dag_run_polls=0) as emulator:
        mwaa = boto3.client("mwaa", endpoint_url=emulator.endpoint_url)
        seeded(emulator, paused=True)
        run(emulator, mwaa, "source", "dags trigger export_metadata -r r-1")

        while_paused = states(emulator, mwaa, "r-1", reads=3)
        unpaused, _ = run(emulator, mwaa, "source", "dags unpause export_metadata")
        after = states(emulator, mwaa, "r-1", reads=1)

    assert while_paused == ["queued"] * 3
    assert unpaused == "Dag: export_metadata, paused: False\n"
    assert after == ["success"]


def test_a_failed_run_records_its_task_states_and_the_failing_task_log(s3: Any) -> None:
    runtime = RecordingRuntime(
        DagRunResult("failed", failed_task="import_rows", stderr="KeyError: 'dag_run'\n")
    )
    logs = boto3.client("logs", region_name="us-east-1")
    dag_file = b"with DAG('x'):\n  E(task_id='check') >> I(task_id='import_rows') >> C(task_id='cleanup')\n"
    s3.put_object(Bucket="airflow-source", Key="dags/import_metadata.py", Body=dag_file)
    with MwaaEmulator(
        s3_client=s3, logs_client=logs, dag_runtime=runtime, dag_parse_polls=0, dag_run_polls=0
    ) as emulator:
        mwaa = boto3.client("mwaa", endpoint_url=emulator.endpoint_url)
        emulator.add_environment(
            {"Name": "target", "SourceBucketArn": BUCKET_ARN, "AirflowVersion": "2.11.0"}
        )
        run(emulator, mwaa, "target", "dags list")
        run(emulator, mwaa, "target", "dags unpause import_metadata")
        run(emulator, mwaa, "target", "dags trigger import_metadata -r r-1")

        stdout, _ = run(emulator, mwaa, "target", "tasks states-for-dag-run import_metadata r-1 -o json")

    assert {row["task_id"]: row["state"] for row in json.loads(stdout)} == {
        "check": "success",
        "import_rows": "failed",
        "cleanup": "upstream_failed",
    }
    assert emulator.task_log("target", "import_metadata", "r-1", "import_rows") == "KeyError: 'dag_run'\n"
    events = logs.get_log_events(
        logGroupName="airflow-target-Task",
        logStreamName="dag_id=import_metadata/run_id=r-1/task_id=import_rows/attempt=1.log",
    )["events"]
    assert [event["message"] for event in events] == ["KeyError: 'dag_run'"]


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("dags trigger missing", "DagNotFound: Dag id missing not found in DagModel"),
        ("dags trigger export_metadata --conf '{not json'", "JSONDecodeError"),
        ("dags pause missing", "DAG: missing does not exist in 'dag' table"),
        ("dags list-runs -d missing", "Dag id missing not found"),
        ("tasks states-for-dag-run export_metadata no-such-run", "DagRunNotFound"),
        ("variables get missing", "Variable missing does not exist"),
        ("dags trigger", "the following arguments are required: dag_id"),
        ("dags trigger export_metadata --no-such-flag", "unrecognized arguments: --no-such-flag"),
    ],
)
def test_a_failing_command_prints_its_error_on_stderr_only(
    emulator: MwaaEmulator, mwaa: Any, command: str, error: str
) -> None:
    seeded(emulator)

    stdout, stderr = run(emulator, mwaa, "source", command)

    assert stdout == ""
    assert error in stderr


def test_a_duplicate_run_id_is_refused_like_airflow(emulator: MwaaEmulator, mwaa: Any) -> None:
    seeded(emulator)
    run(emulator, mwaa, "source", "dags trigger export_metadata -r r-1")

    stdout, stderr = run(emulator, mwaa, "source", "dags trigger export_metadata -r r-1")

    assert stdout == ""
    assert "DagRunAlreadyExists" in stderr
    assert [row["run_id"] for row in emulator.environment("source").metadata["dag_run"]] == ["r-1"]


def test_airflow_3_prints_logical_dates_and_no_external_trigger(emulator: MwaaEmulator, mwaa: Any) -> None:
    seeded(emulator, "3.0.6")

    stdout, _ = run(emulator, mwaa, "source", "dags trigger export_metadata -r r-1 -o json")
    runs, _ = run(emulator, mwaa, "source", "dags list-runs export_metadata -o json")

    (printed,) = json.loads(stdout)
    assert "external_trigger" not in printed
    assert printed["triggered_by"] == "cli"
    assert "logical_date" in json.loads(runs)[0]
    assert "logical_date" in emulator.environment("source").metadata["dag_run"][0]


def test_airflow_before_2_6_prints_the_created_run_and_has_no_output_option(
    emulator: MwaaEmulator, mwaa: Any
) -> None:
    seeded(emulator, "2.5.1")

    created, _ = run(emulator, mwaa, "source", "dags trigger export_metadata -r r-1")
    stdout, stderr = run(emulator, mwaa, "source", "dags trigger export_metadata -r r-2 -o json")

    assert created.startswith("Created <DagRun export_metadata @ ")
    assert "r-1, state:queued" in created
    assert stdout == ""
    assert "unrecognized arguments: -o json" in stderr


def test_airflow_1_10_has_no_dags_group(emulator: MwaaEmulator, mwaa: Any) -> None:
    seeded(emulator, "1.10.12")

    stdout, stderr = run(emulator, mwaa, "source", "dags list")

    assert stdout == ""
    assert "invalid choice: 'dags'" in stderr


def test_variables_are_read_from_the_metadata(emulator: MwaaEmulator, mwaa: Any) -> None:
    seeded(emulator)

    listed, _ = run(emulator, mwaa, "source", "variables list -o json")
    value, _ = run(emulator, mwaa, "source", "variables get k")

    assert json.loads(listed) == [{"key": "k"}]
    assert value == "v\n"
