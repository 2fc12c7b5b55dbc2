"""Every function outlasts the worst one of its calls, and every Task state retries Lambda's own
timeout: read from template.yaml, the functions' handlers, the clients' configuration and the ASL.

A call that hangs must end with the client's error (TransientAwsError, which the states retry) before
Lambda's timeout kills the step; a step killed anyway (Sandbox.Timedout) is run again, which is safe
because each step is idempotent. Adding a slower client to a handler, slowing a client's configuration
or lowering a Timeout fails here.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from botocore.config import Config
from cfnlint.decode import cfn_yaml

from mwaa_migrate import clients
from mwaa_migrate.environment import airflow_cli
from statemachine.definition import function_of

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
ASL_PATH = ROOT / "statemachine" / "migration.asl.json"
# Left to the handler once its worst call has ended: to raise, log and answer.
MARGIN_SECONDS = 30
# Between Lambda's timeout and the state's: the invocation's own overhead. A state that timed out
# first (States.Timeout) would leave the function running while a retry starts another.
STATE_MARGIN_SECONDS = 30
CLIENT_USE = re.compile(r"\bclients\.(\w+)\b")
TIMEOUT_ERRORS = {"Sandbox.Timedout", "Lambda.Unknown"}
# Task states whose step is not safe to run again after Lambda's timeout killed it mid-way: none.
# Each step either only reads (CheckEnvironment, CheckDagRun, SummarizeLogCopy), or finds what an
# earlier run of it did and goes on from there: the plan is computed again; the grants are put again
# under the lock its own execution holds; CloneEnvironment and UpgradeEnvironment find the target
# created or upgrading; DeployDag skips files already there; TriggerDag finds its run by run id;
# StartTargetDags and the way back set paused states; ListLogStreams and CopyLogStreams resume from
# their checkpoints; FinishMigration and RecordFailure remove what is left and write the report again;
# AwaitApproval announces the wait again and `approve` answers its latest token. They already retry
# TransientAwsError, which may come after some of their work, for the same reason.
NOT_IDEMPOTENT: dict[str, str] = {}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dict(cfn_yaml.load(str(TEMPLATE_PATH)))


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    return dict(json.loads(ASL_PATH.read_text()))


@pytest.fixture(autouse=True)
def _region(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    clients.reset()
    yield
    clients.reset()


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def function_timeout(template: dict[str, Any], logical_id: str) -> int:
    properties = _functions(template)[logical_id]
    return int(properties.get("Timeout", template["Globals"]["Function"]["Timeout"]))


def worst_calls(template: dict[str, Any], logical_id: str) -> dict[str, float]:
    """Each client the function's handler uses (the logic gets its clients from the handler) and
    the worst one call through it can take, from the client as clients.py makes it."""
    handler = ROOT / _functions(template)[logical_id]["CodeUri"] / "app.py"
    source = handler.read_text()
    worst: dict[str, float] = {}
    for factory in sorted(set(CLIENT_USE.findall(source))):
        client = getattr(clients, factory)()
        worst[factory] = clients.worst_call_seconds(client.meta.config)
    # The web server's CLI endpoint: directly, or as the transport the plan may choose (InvokeRestApi
    # goes through the mwaa client, counted above).
    if re.search(r"\b(AirflowCli|open_transport|transports)\(", source):
        worst["airflow CLI endpoint"] = airflow_cli.worst_post_seconds(airflow_cli.default_http())
    return worst


def violations(template: dict[str, Any]) -> list[str]:
    found = []
    for logical_id in sorted(_functions(template)):
        timeout = function_timeout(template, logical_id)
        for client, seconds in worst_calls(template, logical_id).items():
            if seconds + MARGIN_SECONDS > timeout:
                found.append(f"{logical_id}: {client} may take {seconds:.0f} s, Timeout is {timeout} s")
    return found


def _tasks(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        for branch in state.get("Branches", []):
            yield from _tasks(branch["States"])
        if "ItemProcessor" in state:
            yield from _tasks(state["ItemProcessor"]["States"])


def _function_of(task: dict[str, Any]) -> str:
    function = function_of(task)
    assert function is not None, task
    return f"{function}Function"


# ------------------------------------------------------------------------------ the calls' worst case


def test_worst_call_counts_every_attempt_and_the_longest_backoff_before_each_retry() -> None:
    config = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=1, read_timeout=2)

    # 3 attempts of 1 + 2 s; before retry n, min(2^(n-1), 20) s and up to 5 s of x-amz-retry-after.
    assert clients.worst_call_seconds(config) == 3 * 3 + (1 + 5) + (2 + 5)


def test_adaptive_mode_adds_its_rate_limiters_wait_to_every_attempt() -> None:
    standard = Config(
        retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=1, read_timeout=1
    )
    adaptive = standard.merge(Config(retries={"mode": "adaptive", "total_max_attempts": 2}))

    assert clients.worst_call_seconds(adaptive) - clients.worst_call_seconds(standard) == 2 * 2


def test_a_retry_mode_without_a_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="legacy"):
        clients.worst_call_seconds(Config(retries={"mode": "legacy", "max_attempts": 4}))


def test_the_cli_endpoints_worst_post_is_every_request_and_the_capped_waits() -> None:
    # total=4: 5 requests of 3 s connect + 60 s read; before each retry at most the capped Retry-After.
    assert airflow_cli.worst_post_seconds(airflow_cli.default_http()) == 5 * 63 + 4 * 10


def test_a_retry_after_longer_than_the_cap_waits_the_cap() -> None:
    retries = airflow_cli.default_http().connection_pool_kw["retries"]
    response = urllib3.HTTPResponse(status=429, headers={"Retry-After": "3600"})

    assert retries.get_retry_after(response) == airflow_cli.RETRY_AFTER_CAP


def test_a_pool_without_a_bounded_retry_has_no_worst_case() -> None:
    with pytest.raises(ValueError, match="bounded"):
        airflow_cli.worst_post_seconds(urllib3.PoolManager(retries=urllib3.Retry(total=None)))


# ------------------------------------------------------------------------------ functions against calls


def test_every_function_outlasts_the_worst_call_it_makes(template: dict[str, Any]) -> None:
    assert violations(template) == []


@pytest.mark.parametrize(
    ("function", "client"),
    [
        ("CheckEnvironmentFunction", "mwaa"),
        ("TriggerDagFunction", "airflow CLI endpoint"),
        ("CheckDagRunFunction", "logs"),
        ("CopyLogStreamsFunction", "logs"),
        ("SummarizeLogCopyFunction", "s3"),
    ],
)
def test_the_handlers_clients_are_found(template: dict[str, Any], function: str, client: str) -> None:
    assert client in worst_calls(template, function)


def test_a_slower_client_configuration_breaks_the_relation(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The configuration before this change: 8 attempts of up to 5 s connect + 30 s read.
    slow = Config(retries={"mode": "standard", "total_max_attempts": 8}, connect_timeout=5, read_timeout=30)
    monkeypatch.setattr(clients, "RETRY_CONFIG", slow)
    clients.reset()

    assert any(found.startswith("CheckEnvironmentFunction: mwaa") for found in violations(template))


def test_a_lower_timeout_breaks_the_relation(template: dict[str, Any]) -> None:
    lowered = json.loads(json.dumps(template, default=str))
    lowered["Globals"]["Function"]["Timeout"] = 60
    lowered["Resources"]["TriggerDagFunction"]["Properties"]["Timeout"] = 300

    found = violations(lowered)

    assert any(v.startswith("CheckEnvironmentFunction: mwaa") for v in found)
    assert any(v.startswith("TriggerDagFunction: airflow CLI endpoint") for v in found)


def test_a_slower_cli_endpoint_breaks_the_relation(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The read timeout before this change.
    slow = functools.partial(airflow_cli.default_http, read_timeout=120.0)
    monkeypatch.setattr(airflow_cli, "default_http", slow)

    assert any(v.startswith("TriggerDagFunction: airflow CLI endpoint") for v in violations(template))


# ------------------------------------------------------------------------------ the states


def test_every_task_state_outlasts_its_function(template: dict[str, Any], asl: dict[str, Any]) -> None:
    short = []
    for name, task in _tasks(asl["States"]):
        if "TimeoutSeconds" not in task:
            continue  # AwaitApproval's deadline is the approval's (TimeoutSecondsPath)
        needed = function_timeout(template, _function_of(task)) + STATE_MARGIN_SECONDS
        if task["TimeoutSeconds"] < needed:
            short.append(f"{name}: TimeoutSeconds {task['TimeoutSeconds']} < {needed}")
    assert short == []


def test_every_idempotent_task_state_retries_lambdas_own_timeout(asl: dict[str, Any]) -> None:
    tasks = dict(_tasks(asl["States"]))
    missing = {
        name: sorted(
            TIMEOUT_ERRORS - {error for retry in task.get("Retry", []) for error in retry["ErrorEquals"]}
        )
        for name, task in tasks.items()
        if name not in NOT_IDEMPOTENT
    }

    assert {name: errors for name, errors in missing.items() if errors} == {}
    assert set(NOT_IDEMPOTENT) <= set(tasks)


def test_a_timeout_retry_is_bounded_and_waits(asl: dict[str, Any]) -> None:
    for name, task in _tasks(asl["States"]):
        for retry in task.get("Retry", []):
            if "Sandbox.Timedout" in retry["ErrorEquals"]:
                assert 1 <= retry["MaxAttempts"] <= 3, name
                assert retry["IntervalSeconds"] >= 5, name


def test_only_the_log_copy_retries_a_state_timeout(asl: dict[str, Any]) -> None:
    # States.Timeout leaves the function running: only steps that write nothing twice when two
    # invocations overlap (the log copy's checkpoints) may start another.
    retried = {
        name
        for name, task in _tasks(asl["States"])
        for retry in task.get("Retry", [])
        if "States.Timeout" in retry["ErrorEquals"]
    }
    assert retried == {"ListLogStreams", "CopyLogStreams"}
