"""The plan's choice of transport (every row of the decision), and the two transports doing the
pipeline's work against the MWAA emulator through boto3 (botocore validates every request)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.retries.standard
import pytest
from moto import mock_aws

from emulation.mwaa import DagRunResult, EmulatedEnvironment, MwaaEmulator
from emulation.self_managed import SelfManagedWebserver
from mwaa_migrate.environment.airflow_cli import AirflowCli
from mwaa_migrate.environment.webserver_transport import (
    MAX_PATH,
    AirflowApiTransport,
    CliTransport,
    RestApiTransport,
    WebserverTransport,
    as_transport,
    choose_route,
    choose_routes,
    open_transport,
    read_credentials,
)
from mwaa_migrate.errors import (
    AwsAccessDenied,
    DagRunFailed,
    InvalidMigrationRequest,
    MigrationConflict,
    TransientAwsError,
)
from mwaa_migrate.metadata.metadata_dags import EXPORT_DAG, check_dag_run, deploy_dag, deployment, trigger_dag
from mwaa_migrate.models import AirflowApi
from mwaa_migrate.run.cutover import set_paused

# ---------------------------------------------------------------- the decision


def _route(access_mode: str, version: str, in_vpc: bool | None) -> Any:
    return choose_route(
        field="sourceEnvironmentName",
        environment_name="prod",
        access_mode=access_mode,
        airflow_version=version,
        functions_in_vpc=in_vpc,
    )


@pytest.mark.parametrize("in_vpc", [True, False, None])
@pytest.mark.parametrize("version", ["2.2.2", "2.7.2", "3.0.6"])
def test_a_public_web_server_is_reached_through_its_cli_endpoint(version, in_vpc):
    route = _route("PUBLIC_ONLY", version, in_vpc)

    assert route.transport == "cli"
    assert "PUBLIC_ONLY" in route.reason


@pytest.mark.parametrize("version", ["2.2.2", "2.10.3"])
def test_a_private_web_server_is_reached_through_its_cli_endpoint_from_the_stacks_vpc(version):
    route = _route("PRIVATE_ONLY", version, True)

    assert route.transport == "cli"
    assert "run in a VPC" in route.reason


@pytest.mark.parametrize("version", ["2.4.3", "2.7.2", "3.0.6"])
def test_a_private_web_server_is_reached_through_invoke_rest_api_from_outside_any_vpc(version):
    route = _route("PRIVATE_ONLY", version, False)

    assert route.transport == "rest_api"
    assert "InvokeRestApi" in route.reason
    assert "outside any VPC" in route.reason


@pytest.mark.parametrize("version", ["1.10.12", "2.0.2", "2.2.2"])
def test_a_private_web_server_too_old_for_invoke_rest_api_is_refused_with_what_to_set(version):
    with pytest.raises(InvalidMigrationRequest) as refused:
        _route("PRIVATE_ONLY", version, False)

    message = str(refused.value)
    assert message.startswith("sourceEnvironmentName: ")
    assert "WebserverSubnetIds" in message
    assert "WebserverSecurityGroupIds" in message
    assert "2.4.3" in message


def test_a_stack_that_does_not_say_where_its_functions_run_keeps_the_cli_endpoint():
    route = _route("PRIVATE_ONLY", "2.2.2", None)

    assert route.transport == "cli"
    assert "not set" in route.reason


def test_routes_default_to_mwaas_private_access_and_take_the_targets_create_version():
    routes = choose_routes(
        {"Name": "prod", "AirflowVersion": "2.7.2"},
        {"Name": "prod-next", "AirflowVersion": "2.10.3", "WebserverAccessMode": "PUBLIC_ONLY"},
        functions_in_vpc=False,
    )

    assert (routes.source.transport, routes.target.transport) == ("rest_api", "cli")
    assert "Airflow 2.7.2" in routes.source.reason


def test_a_refused_target_names_its_field():
    with pytest.raises(InvalidMigrationRequest, match=r"^targetEnvironmentName: "):
        choose_routes(
            {"Name": "prod", "AirflowVersion": "2.7.2", "WebserverAccessMode": "PUBLIC_ONLY"},
            {"Name": "prod-next", "AirflowVersion": "2.2.2"},
            functions_in_vpc=False,
        )


# ---------------------------------------------------------------- the transports against the emulator

ENVIRONMENT = {
    "Name": "analytics",
    "AirflowVersion": "2.10.3",
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/mwaa",
    "SourceBucketArn": "arn:aws:s3:::airflow-analytics",
    "DagS3Path": "dags",
    "WebserverAccessMode": "PRIVATE_ONLY",
    "NetworkConfiguration": {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]},
    "LoggingConfiguration": {"TaskLogs": {"Enabled": True, "LogLevel": "INFO"}},
}
CONF = {"bucket": "migrations", "prefix": "migrations/a/b", "migrationId": "a-to-b"}
# As long as the pipeline's: its own path does not fit InvokeRestApi's 64 characters.
RUN_ID = "mwaa_migrate__cutover__analytics-to-analytics-next-0123456789abcdef"


class ScriptedRuntime:
    def __init__(self) -> None:
        self.failure: str | None = None
        self.confs: list[dict[str, Any]] = []

    def run(self, environment: EmulatedEnvironment, dag_id: str, conf: dict[str, Any]) -> DagRunResult:
        self.confs.append(conf)
        if self.failure:
            return DagRunResult(state="failed", failed_task="export_tables", stderr=self.failure)
        return DagRunResult(state="success")


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    with mock_aws():
        s3 = boto3.client("s3")
        logs = boto3.client("logs")
        s3.create_bucket(Bucket="airflow-analytics")
        runtime = ScriptedRuntime()
        with MwaaEmulator(s3_client=s3, logs_client=logs, dag_runtime=runtime) as emulator:
            monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", emulator.endpoint_url)
            emulator.add_environment(dict(ENVIRONMENT))
            yield {
                "s3": s3,
                "logs": logs,
                "runtime": runtime,
                "emulator": emulator,
                "mwaa": boto3.client("mwaa"),
                "target": deployment(EXPORT_DAG, "analytics", "airflow-analytics", "dags/"),
            }


# A self-managed Airflow's credentials (the emulated web server's): never in a message.
USERNAME, PASSWORD = "migrator", "s3cr3t-Pa55word"


@pytest.fixture
def webserver(world: dict[str, Any]) -> Iterator[SelfManagedWebserver]:
    with SelfManagedWebserver(world["emulator"], "analytics", username=USERNAME, password=PASSWORD) as server:
        yield server


@pytest.fixture(params=["cli", "rest_api", "airflow_api"])
def airflow(request: pytest.FixtureRequest, world: dict[str, Any]) -> Iterator[WebserverTransport]:
    """Each transport as the functions open it from a deployment (the plan's route)."""
    if request.param != "airflow_api":
        route = deployment(EXPORT_DAG, "analytics", "airflow-analytics", "dags/", request.param)
        yield open_transport(route, world["mwaa"], scheme="http")
        return
    secrets = boto3.client("secretsmanager")
    with SelfManagedWebserver(world["emulator"], "analytics", username=USERNAME, password=PASSWORD) as server:
        value = {"restApiUrl": server.api_url, "username": USERNAME, "password": PASSWORD}
        secret = secrets.create_secret(Name="mwaa-migrate/analytics", SecretString=json.dumps(value))
        access = AirflowApi(rest_api_url=server.api_url, credentials_secret_arn=secret["ARN"])
        route = deployment(
            EXPORT_DAG, "analytics", "airflow-analytics", "dags/", "airflow_api", airflow_api=access
        )
        yield open_transport(route, world["mwaa"], secretsmanager=lambda: secrets)


def _trigger_until_parsed(world: dict[str, Any], airflow: WebserverTransport) -> None:
    for attempt in range(5):  # the emulator parses a new file after a set number of DAG listings
        if trigger_dag(airflow, world["target"], run_id=RUN_ID, conf=CONF, attempt=attempt).parsed:
            return
    raise AssertionError("the DAG was never parsed")


def _poll(world: dict[str, Any], airflow: WebserverTransport) -> list[str]:
    states = []
    for attempt in range(6):  # a deadline; every terminal state ends it (failed raises)
        check = check_dag_run(airflow, world["logs"], world["target"], run_id=RUN_ID, attempt=attempt)
        states.append(check.state)
        if check.done:
            return states
    raise AssertionError(f"the run did not finish: {states}")


def test_a_run_is_triggered_with_its_conf_and_followed_to_success(world, airflow):
    deploy_dag(world["s3"], world["target"])

    _trigger_until_parsed(world, airflow)
    states = _poll(world, airflow)

    assert states[-1] == "success"
    assert world["runtime"].confs == [CONF]


def test_a_retried_trigger_finds_the_first_run(world, airflow):
    deploy_dag(world["s3"], world["target"])

    _trigger_until_parsed(world, airflow)
    _trigger_until_parsed(world, airflow)

    runs = world["emulator"].environment("analytics").metadata["dag_run"]
    assert [run["run_id"] for run in runs] == [RUN_ID]


def test_a_failed_run_names_its_task_and_log(world, airflow):
    world["runtime"].failure = "PermissionError: cannot write s3://migrations/x"
    deploy_dag(world["s3"], world["target"])
    _trigger_until_parsed(world, airflow)

    with pytest.raises(DagRunFailed) as failed:
        _poll(world, airflow)

    assert "failed in task export_tables" in str(failed.value)
    assert "PermissionError: cannot write s3://migrations/x" in str(failed.value)


def test_a_dag_file_that_does_not_import_fails_at_once(world, airflow):
    world["s3"].put_object(
        Bucket="airflow-analytics", Key="dags/mwaa_migrate_export.py", Body=b"from airflow import DAG\nDAG(\n"
    )

    with pytest.raises(DagRunFailed, match="mwaa_migrate_export.py does not import"):
        _trigger_until_parsed(world, airflow)


def test_pausing_changes_only_the_dags_not_so_already(world, airflow):
    world["emulator"].environment("analytics").metadata["dag"] = [
        {"dag_id": "a", "is_paused": False},
        {"dag_id": "b", "is_paused": True},
    ]

    changed = set_paused(airflow, ["a", "b", "unknown"], paused=True)

    assert changed == ["a"]
    assert airflow.dags() == {"a": True, "b": True}


def test_an_airflow_cli_is_taken_as_the_cli_transport(world):
    cli = AirflowCli(world["mwaa"], "analytics", scheme="http")

    transport = as_transport(cli)

    assert isinstance(transport, CliTransport)
    assert transport.environment_name == "analytics"
    assert as_transport(transport) is transport


# ---------------------------------------------------------------- InvokeRestApi only


@pytest.fixture
def rest(world: dict[str, Any]) -> RestApiTransport:
    return RestApiTransport(world["mwaa"], "analytics")


def test_a_dag_id_too_long_for_the_path_is_paused_by_a_pattern_that_matches_it_alone(world, rest):
    long_id = "d" * MAX_PATH
    world["emulator"].environment("analytics").metadata["dag"] = [
        {"dag_id": long_id, "is_paused": False},
        {"dag_id": "other", "is_paused": False},
    ]

    rest.set_paused(long_id, paused=True)

    assert rest.dags() == {long_id: True, "other": False}
    assert ("analytics", "PATCH", "/dags") in world["emulator"].rest_api.requests


def test_a_long_dag_id_that_other_ids_contain_is_not_paused_by_pattern(world, rest):
    long_id = "d" * MAX_PATH
    world["emulator"].environment("analytics").metadata["dag"] = [
        {"dag_id": long_id, "is_paused": False},
        {"dag_id": f"{long_id}_v2", "is_paused": False},
    ]

    with pytest.raises(MigrationConflict, match="not the only DAG id that contains it"):
        rest.set_paused(long_id, paused=True)

    assert set(rest.dags().values()) == {False}


def test_the_dag_list_is_read_page_by_page(world, rest):
    world["emulator"].environment("analytics").metadata["dag"] = [
        {"dag_id": f"dag_{n:03}", "is_paused": n % 2 == 0} for n in range(250)
    ]

    dags = rest.dags()

    assert len(dags) == 250
    assert dags["dag_000"] is True
    gets = [r for r in world["emulator"].rest_api.requests if r == ("analytics", "GET", "/dags")]
    assert len(gets) == 3


def test_airflow_3_gets_a_logical_date_with_the_trigger(world, rest):
    environment = world["emulator"].environment("analytics")
    environment.description["AirflowVersion"] = "3.0.6"
    environment.metadata["dag"] = [{"dag_id": "d", "is_paused": False}]

    rest.trigger("d", run_id="r1", conf={"a": 1})

    assert rest.run_state("d", "r1") in {"queued", "running"}


def test_a_timed_out_call_is_transient(world, rest):
    world["emulator"].rest_api.timeout = 0.2
    world["emulator"].inject_delay("InvokeRestApi", 1.0)

    with pytest.raises(TransientAwsError, match="HTTP 504"):
        rest.dags()


def test_throttling_is_retried_by_botocore(world, rest):
    world["emulator"].inject_fault("InvokeRestApi", "ThrottlingException", times=2)

    assert rest.dags() == {}
    assert world["emulator"].calls.count(("InvokeRestApi", "analytics")) == 3


def test_an_environment_too_old_for_invoke_rest_api_is_a_conflict(world, rest):
    world["emulator"].environment("analytics").description["AirflowVersion"] = "2.2.2"

    with pytest.raises(MigrationConflict, match="Update your environment to use InvokeRestApi"):
        rest.dags()


def test_a_call_iam_refuses_is_access_denied(world, rest):
    world["emulator"].inject_fault("InvokeRestApi", "AccessDeniedException")

    with pytest.raises(AwsAccessDenied, match="InvokeRestApi GET /dags"):
        rest.dags()


def test_an_airflow_role_that_may_not_do_it_is_access_denied(world, rest, monkeypatch):
    def forbidden(*args: Any, **kwargs: Any) -> tuple[int, Any]:
        return 403, {"detail": "Forbidden", "status": 403, "title": "Forbidden", "type": "x"}

    monkeypatch.setattr("emulation.mwaa.rest_api.AirflowRestApi.answer", forbidden)

    with pytest.raises(AwsAccessDenied, match="Airflow role User"):
        rest.set_paused("d", paused=True)


def test_the_rest_transport_holds_no_secret():
    assert repr(RestApiTransport(boto3.client("mwaa", region_name="us-east-1"), "prod")) == (
        "RestApiTransport('prod')"
    )


# ---------------------------------------------------------------- a self-managed Airflow's REST API


@pytest.fixture
def direct(webserver: SelfManagedWebserver) -> AirflowApiTransport:
    return AirflowApiTransport(
        webserver.api_url, {"username": USERNAME, "password": PASSWORD}, environment_name="onprem"
    )


def test_a_self_managed_airflow_takes_a_path_invoke_rest_api_could_not_carry(world, webserver, direct):
    long_id = "d" * MAX_PATH
    world["emulator"].environment("analytics").metadata["dag"] = [
        {"dag_id": long_id, "is_paused": False},
        {"dag_id": f"{long_id}_v2", "is_paused": False},
    ]

    direct.set_paused(long_id, paused=True)

    assert direct.dags() == {long_id: True, f"{long_id}_v2": False}
    assert ("PATCH", f"/dags/{long_id}") in webserver.requests


def test_wrong_credentials_are_access_denied_without_showing_them(world, webserver):
    wrong = AirflowApiTransport(
        webserver.api_url, {"username": USERNAME, "password": "not-" + PASSWORD}, environment_name="onprem"
    )

    with pytest.raises(AwsAccessDenied, match="HTTP 401") as denied:
        wrong.dags()

    assert PASSWORD not in str(denied.value)
    assert PASSWORD not in repr(wrong)


def test_a_bearer_token_is_sent_as_one(world, webserver):
    token = AirflowApiTransport(webserver.api_url, {"token": "t0ken"}, environment_name="onprem")

    # The emulated web server takes basic auth only: a token is refused, as such a server would.
    with pytest.raises(AwsAccessDenied, match="HTTP 401"):
        token.dags()


def test_a_web_server_that_does_not_answer_is_transient(world):
    with SelfManagedWebserver(world["emulator"], "analytics", username="u", password="p") as server:
        url = server.api_url
    # The server is closed: the connection is refused.
    gone = AirflowApiTransport(url, {"username": "u", "password": "p"}, environment_name="onprem")

    with pytest.raises(TransientAwsError, match="listing the DAGs on onprem"):
        gone.dags()


@pytest.mark.parametrize(
    "credentials", [{}, {"username": "u"}, {"password": "p"}, {"token": ""}, {"username": 1, "password": "p"}]
)
def test_credentials_without_a_usable_login_are_refused_naming_the_field(credentials):
    with pytest.raises(InvalidMigrationRequest, match="credentialsSecretArn"):
        AirflowApiTransport("https://airflow.example.com/api/v1", credentials, environment_name="onprem")


def test_a_url_that_is_not_http_is_refused_naming_the_field():
    with pytest.raises(InvalidMigrationRequest, match="restApiUrl"):
        AirflowApiTransport("ftp://airflow/api/v1", {"token": "t"}, environment_name="onprem")


def test_the_credentials_are_read_from_secrets_manager():
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(
            Name="airflow", SecretString=f'{{"username": "{USERNAME}", "password": "{PASSWORD}"}}'
        )["ARN"]
        bad = secrets.create_secret(Name="bad", SecretString="not json")["ARN"]

        assert read_credentials(secrets, arn) == {"username": USERNAME, "password": PASSWORD}
        with pytest.raises(InvalidMigrationRequest, match="is not a JSON object") as refused:
            read_credentials(secrets, bad)
        assert "not json" not in str(refused.value)


def test_a_route_that_points_the_credentials_at_another_url_is_refused_before_any_request(
    world: dict[str, Any], webserver: SelfManagedWebserver
) -> None:
    secrets = boto3.client("secretsmanager")
    value = {"restApiUrl": webserver.api_url, "username": USERNAME, "password": PASSWORD}
    secret = secrets.create_secret(Name="mwaa-migrate/analytics", SecretString=json.dumps(value))
    elsewhere = AirflowApi(
        rest_api_url="https://attacker.example/api/v1", credentials_secret_arn=secret["ARN"]
    )
    route = deployment(
        EXPORT_DAG, "analytics", "airflow-analytics", "dags/", "airflow_api", airflow_api=elsewhere
    )

    with pytest.raises(
        InvalidMigrationRequest, match="is not for https://attacker.example/api/v1"
    ) as refused:
        open_transport(route, world["mwaa"], secretsmanager=lambda: secrets)

    assert PASSWORD not in str(refused.value)
    assert webserver.requests == []
