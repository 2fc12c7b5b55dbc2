"""The layer's Airflow CLI client against the MWAA emulator: tokens, quoting, redirects, error mapping."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
import urllib3
from botocore.config import Config
from botocore.stub import Stubber

from emulation.mwaa import DagRunResult, EmulatedEnvironment, MwaaEmulator
from mwaa_migrate.environment.airflow_cli import AirflowCli, CliOutput, default_http, extract_json
from mwaa_migrate.errors import AwsAccessDenied, MigrationConflict, TransientAwsError

TERMINAL = {"success", "failed"}


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class RecordingRuntime:
    result: DagRunResult = field(default_factory=lambda: DagRunResult("success"))
    runs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def run(self, environment: EmulatedEnvironment, dag_id: str, conf: dict[str, Any]) -> DagRunResult:
        self.runs.append((dag_id, conf))
        return self.result


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")


@pytest.fixture
def server_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def runtime() -> RecordingRuntime:
    return RecordingRuntime()


@pytest.fixture
def emulator(
    aws_environment: None, monkeypatch: pytest.MonkeyPatch, server_clock: FakeClock, runtime: RecordingRuntime
) -> Iterator[MwaaEmulator]:
    with MwaaEmulator(clock=server_clock, dag_runtime=runtime, dag_run_polls=2) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", running.endpoint_url)
        running.add_environment(
            {"Name": "source", "AirflowVersion": "2.10.3"},
            {
                "dag": [{"dag_id": "export_metadata", "is_paused": False}],
                "variable": [{"key": "k", "val": "v"}],
            },
        )
        yield running


@pytest.fixture
def mwaa(emulator: MwaaEmulator) -> Any:
    return boto3.client("mwaa", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


def make_cli(mwaa: Any, name: str = "source", **options: Any) -> AirflowCli:
    return AirflowCli(mwaa, name, scheme="http", http=default_http(backoff_factor=0), **options)


# ---- running commands


def test_run_returns_the_decoded_stdout_and_stderr(emulator: MwaaEmulator, mwaa: Any) -> None:
    cli = make_cli(mwaa)

    found = cli.run("variables", "get", "k")
    missing = cli.run("variables", "get", "nope")

    assert found == CliOutput(stdout="v\n", stderr="")
    assert missing == CliOutput(stdout="", stderr="Variable nope does not exist\n")


def test_trigger_a_run_and_follow_it_to_success(
    emulator: MwaaEmulator, mwaa: Any, runtime: RecordingRuntime
) -> None:
    cli = make_cli(mwaa)

    (triggered,) = cli.run_json(
        "dags", "trigger", "export_metadata", "--run-id", "mig-1", "--conf", '{"prefix": "m/1"}', "-o", "json"
    )
    states = []
    for _ in range(10):
        (run,) = cli.run_json("dags", "list-runs", "-d", "export_metadata", "-o", "json")
        states.append(run["state"])
        if run["state"] in TERMINAL:
            break

    assert triggered["dag_run_id"] == "mig-1"
    assert states == ["running", "running", "success"]
    assert runtime.runs == [("export_metadata", {"prefix": "m/1"})]


def test_a_failed_run_shows_its_failing_task(
    emulator: MwaaEmulator, mwaa: Any, runtime: RecordingRuntime
) -> None:
    runtime.result = DagRunResult("failed", failed_task="export_rows", stderr="boom\n")
    cli = make_cli(mwaa)
    cli.run("dags", "trigger", "export_metadata", "--run-id", "mig-1")

    tasks: list[dict[str, Any]] = []
    for _ in range(10):
        tasks = cli.run_json("tasks", "states-for-dag-run", "export_metadata", "mig-1", "-o", "json")
        if tasks:
            break

    assert [(task["task_id"], task["state"]) for task in tasks] == [("export_rows", "failed")]
    assert emulator.task_log("source", "export_metadata", "mig-1", "export_rows") == "boom\n"


# ---- quoting


@pytest.mark.parametrize(
    "value",
    ["x; airflow db reset", "--yes", "a b", "it's", '"quoted"', "$(reboot)", "`id`", "x\ndb reset", "*"],
)
def test_a_hostile_value_stays_one_argument(emulator: MwaaEmulator, mwaa: Any, value: str) -> None:
    cli = make_cli(mwaa)

    cli.run("variables", "get", value)

    assert emulator.cli_commands == [("source", ["variables", "get", value])]


def test_a_hostile_conf_reaches_the_dag_unchanged(
    emulator: MwaaEmulator, mwaa: Any, runtime: RecordingRuntime
) -> None:
    conf = '{"note": "x\' ; airflow db reset --yes; echo \'", "flag": "--yes"}'
    cli = make_cli(mwaa)

    cli.run("dags", "trigger", "export_metadata", "--run-id=--yes", f"--conf={conf}")
    for _ in range(4):
        cli.run("dags", "list-runs", "-d", "export_metadata")

    assert runtime.runs == [
        ("export_metadata", {"note": "x' ; airflow db reset --yes; echo '", "flag": "--yes"})
    ]
    assert [row["run_id"] for row in emulator.environment("source").metadata["dag_run"]] == ["--yes"]
    assert [argv[0] for _, argv in emulator.cli_commands] == ["dags"] * 5


# ---- redirects and tokens


class CountingPool(urllib3.PoolManager):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.urls: list[str] = []

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> Any:
        self.urls.append(url)
        return super().urlopen(method, url, redirect=redirect, **kw)


class NoSlashCli(AirflowCli):
    CLI_PATH = "/aws_mwaa/cli"


def test_the_307_of_an_airflow_3_environment_is_followed_with_the_command(
    emulator: MwaaEmulator, mwaa: Any
) -> None:
    emulator.add_environment({"Name": "airflow3", "AirflowVersion": "3.0.6"})
    pool = CountingPool(retries=urllib3.Retry(total=3, redirect=2))
    cli = NoSlashCli(mwaa, "airflow3", scheme="http", http=pool)

    output = cli.run("version")

    assert output.stdout == "3.0.6\n"
    assert [url.split(str(emulator.port))[1] for url in pool.urls] == ["/aws_mwaa/cli", "/aws_mwaa/cli/"]
    assert emulator.cli_commands == [("airflow3", ["version"])]


def test_the_token_is_reused_while_it_is_young(emulator: MwaaEmulator, mwaa: Any) -> None:
    clock = FakeClock()
    cli = make_cli(mwaa, clock=clock)

    cli.run("version")
    clock.advance(49)
    cli.run("version")

    assert emulator.calls.count(("CreateCliToken", "source")) == 1


def test_a_token_older_than_50_seconds_is_replaced_before_use(emulator: MwaaEmulator, mwaa: Any) -> None:
    clock = FakeClock()
    cli = make_cli(mwaa, clock=clock)

    cli.run("version")
    clock.advance(51)
    cli.run("version")

    assert emulator.calls.count(("CreateCliToken", "source")) == 2
    assert emulator.calls.count(("Cli", None)) == 0


def test_a_token_the_server_finds_expired_is_refreshed_once(
    emulator: MwaaEmulator, mwaa: Any, server_clock: FakeClock
) -> None:
    cli = make_cli(mwaa)  # its own clock does not move: only the server sees the token expire
    cli.run("version")
    server_clock.advance(61)

    output = cli.run("variables", "get", "k")

    assert output.stdout == "v\n"
    assert emulator.calls[-3:] == [("Cli", None), ("CreateCliToken", "source"), ("Cli", "source")]


def test_a_403_with_a_fresh_token_raises_aws_access_denied(emulator: MwaaEmulator, mwaa: Any) -> None:
    emulator.inject_fault("Cli", "AccessDeniedException", times=2)
    cli = make_cli(mwaa)

    with pytest.raises(AwsAccessDenied, match="HTTP 403"):
        cli.run("version")

    assert emulator.calls.count(("CreateCliToken", "source")) == 2


def test_the_token_never_shows_in_errors_repr_or_logs(
    emulator: MwaaEmulator, mwaa: Any, caplog: pytest.LogCaptureFixture
) -> None:
    token = "SECRET-CLI-TOKEN-0123456789"
    stubber = Stubber(mwaa)
    for _ in range(2):
        stubber.add_response(
            "create_cli_token",
            {"CliToken": token, "WebServerHostname": f"127.0.0.1:{emulator.port}"},
            {"Name": "source"},
        )
    cli = make_cli(mwaa)
    caplog.set_level(logging.DEBUG)

    with stubber, pytest.raises(AwsAccessDenied) as caught:
        cli.run("version")

    assert token not in str(caught.value)
    assert token not in repr(cli)
    assert token not in caplog.text


# ---- error mapping


def test_throttling_is_retried_then_the_command_runs(emulator: MwaaEmulator, mwaa: Any) -> None:
    emulator.inject_fault("Cli", "ThrottlingException", times=2)
    cli = make_cli(mwaa)

    output = cli.run("version")

    assert output.stdout == "2.10.3\n"
    assert emulator.calls.count(("Cli", "source")) == 3


def test_throttling_that_outlasts_the_retries_raises_transient(emulator: MwaaEmulator, mwaa: Any) -> None:
    emulator.inject_fault("Cli", "ThrottlingException", times=10)
    cli = make_cli(mwaa)

    with pytest.raises(TransientAwsError, match="HTTP 429"):
        cli.run("version")

    assert emulator.calls.count(("Cli", "source")) == 4  # the request and urllib3's 3 retries


def test_a_server_error_raises_transient_without_sending_the_command_again(
    emulator: MwaaEmulator, mwaa: Any
) -> None:
    emulator.inject_fault("Cli", "InternalServerException", times=1)
    cli = make_cli(mwaa)

    with pytest.raises(TransientAwsError, match="HTTP 500"):
        cli.run("dags", "trigger", "export_metadata")

    assert emulator.calls.count(("Cli", "source")) == 1


def test_an_environment_that_is_not_available_raises_transient(emulator: MwaaEmulator, mwaa: Any) -> None:
    cli = make_cli(mwaa)
    mwaa.update_environment(Name="source", MaxWorkers=3)

    with pytest.raises(TransientAwsError, match="HTTP 503"):
        cli.run("version")


def test_a_command_mwaa_refuses_raises_migration_conflict_with_its_message(
    emulator: MwaaEmulator, mwaa: Any
) -> None:
    cli = make_cli(mwaa)

    with pytest.raises(MigrationConflict, match="not supported"):
        cli.run("db", "reset", "--yes")


def test_a_web_server_that_does_not_answer_raises_transient(emulator: MwaaEmulator, mwaa: Any) -> None:
    stubber = Stubber(mwaa)
    stubber.add_response(
        "create_cli_token", {"CliToken": "t", "WebServerHostname": "127.0.0.1:1"}, {"Name": "source"}
    )
    cli = make_cli(mwaa)

    with stubber, pytest.raises(TransientAwsError, match="did not answer"):
        cli.run("version")


def test_an_unknown_environment_raises_migration_conflict(emulator: MwaaEmulator, mwaa: Any) -> None:
    cli = make_cli(mwaa, name="missing")

    with pytest.raises(MigrationConflict, match="ResourceNotFoundException"):
        cli.run("version")


def test_a_throttled_create_cli_token_raises_transient(emulator: MwaaEmulator, mwaa: Any) -> None:
    emulator.inject_fault("CreateCliToken", "ThrottlingException")
    cli = make_cli(mwaa)

    with pytest.raises(TransientAwsError, match="creating a CLI token for source"):
        cli.run("version")


def test_run_refuses_an_empty_command(emulator: MwaaEmulator, mwaa: Any) -> None:
    with pytest.raises(ValueError, match="command"):
        make_cli(mwaa).run()


# ---- JSON on stdout


def test_run_json_raises_migration_conflict_with_stderr_when_no_json_is_printed(
    emulator: MwaaEmulator, mwaa: Any
) -> None:
    cli = make_cli(mwaa)

    with pytest.raises(MigrationConflict, match="DagNotFound"):
        cli.run_json("dags", "trigger", "missing", "-o", "json")


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ('[{"a": "1"}]\n', [{"a": "1"}]),
        (
            "/usr/local/lib/python3.11/site-packages/airflow/x.py:1 DeprecationWarning: [old] api\n"
            '[2024-05-01T10:00:00.000+0000] {logging_mixin.py:188} WARNING - {"not": json\n'
            '[\n  {\n    "dag_id": "d"\n  }\n]\n',
            [{"dag_id": "d"}],
        ),
        ('{"a": 1}\nA warning printed after the value\n', {"a": 1}),
        ("warning: none\n[]\n", []),
    ],
)
def test_extract_json_finds_the_value_among_warnings(stdout: str, expected: Any) -> None:
    assert extract_json(stdout) == expected


@pytest.mark.parametrize("stdout", ["", "No data found\n", "[2024-05-01T10:00:00] {x.py:1} INFO - started\n"])
def test_extract_json_raises_value_error_without_json(stdout: str) -> None:
    with pytest.raises(ValueError, match="no JSON"):
        extract_json(stdout)
