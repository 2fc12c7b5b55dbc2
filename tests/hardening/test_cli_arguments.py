"""No input can add a command or a flag to what the pipeline runs on the MWAA CLI endpoint.

Every value that reaches an Airflow command line comes from a step event (the DAG id, the run id,
the execution's name, the export's bucket and prefix). For any value hypothesis makes up, either the
event's model refuses it naming the field, or each command the step posts splits (as the endpoint
splits it) into exactly the arguments the step meant, with every value a whole argument or glued to
its own option, and no value read as an option.
"""

from __future__ import annotations

import base64
import json
import shlex
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulation.lambdas import REPO_ROOT
from mwaa_migrate.environment.airflow_cli import AirflowCli
from mwaa_migrate.metadata.metadata_dags import check_dag_run, trigger_dag
from mwaa_migrate.models import parse_model
from mwaa_migrate.step_events import CheckDagRunEvent, TriggerDagEvent
from tests.hardening.test_bad_input import refusal_of

# The options the pipeline itself puts on its command lines, and the ones it glues values to.
PIPELINE_OPTIONS = frozenset({"-o", "-d"})
GLUED_OPTIONS = ("--run-id=", "--conf=")
COMMANDS = frozenset(
    {
        ("dags", "list"),
        ("dags", "list-import-errors"),
        ("dags", "list-runs"),
        ("dags", "unpause"),
        ("dags", "trigger"),
        ("tasks", "states-for-dag-run"),
    }
)
# What people and attackers type: shell and argparse syntax, quotes, whitespace, unicode.
_NASTY = st.text(
    alphabet=st.sampled_from(list("abcXYZ019_.-~:+= ;|&$`'\"\\\n\t*?<>(){}[]#%^!/@é中")),
    min_size=1,
    max_size=30,
)
_VALUE = (
    _NASTY
    | st.sampled_from(["--help", "-y", "--yes", "-o yaml", "x; rm -rf /", "$(reboot)", "`id`", "-"])
    | st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.~:+-]{0,30}\Z")
)


@dataclass
class _Endpoint:
    """Stands in for the web server: records each command line as the endpoint splits it, and answers
    like Airflow for the DAG and run the test is about."""

    dag_id: str
    run_id: str
    commands: list[list[str]] = field(default_factory=list)
    triggered: bool = False

    def request(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> Any:
        argv = shlex.split(body.decode("utf-8"))
        self.commands.append(argv)
        command = tuple(argv[:2])
        stdout: Any = ""
        if command == ("dags", "list"):
            stdout = [{"dag_id": self.dag_id}]
        elif command == ("dags", "list-runs"):
            stdout = [{"run_id": self.run_id, "state": "failed"}] if self.triggered else []
        elif command == ("dags", "trigger"):
            self.triggered = True
        elif command == ("tasks", "states-for-dag-run"):
            stdout = [{"task_id": "t", "state": "failed"}]
        text = stdout if isinstance(stdout, str) else json.dumps(stdout)
        payload = {"stdout": base64.b64encode(text.encode()).decode(), "stderr": ""}
        return _Answer(200, json.dumps(payload).encode())


@dataclass
class _Answer:
    status: int
    data: bytes


class _Mwaa:
    def create_cli_token(self, Name: str) -> dict[str, str]:  # noqa: N803 (botocore's parameter name)
        return {"CliToken": "token", "WebServerHostname": "webserver"}


class _NoLogs:
    def describe_log_streams(self, **_: Any) -> dict[str, Any]:
        return {"logStreams": []}


def _sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((REPO_ROOT / "events" / f"{name}.json").read_text())
    return event


def _check_command_lines(endpoint: _Endpoint, dag_id: str, run_id: str) -> None:
    """Each command is one the pipeline runs, its only options are the pipeline's own, and the values
    are exactly the arguments they are meant to be."""
    assert endpoint.commands, "the step ran commands"
    for argv in endpoint.commands:
        assert tuple(argv[:2]) in COMMANDS, f"unexpected command {argv[:2]}"
        for argument in argv[2:]:
            if argument.startswith("-"):
                assert argument in PIPELINE_OPTIONS or argument.startswith(GLUED_OPTIONS), (
                    f"{argument!r} would be read as an option"
                )
        if argv[:2] == ["dags", "list-runs"]:
            assert argv == ["dags", "list-runs", "-d", dag_id, "-o", "json"]
        if argv[:2] == ["dags", "unpause"]:
            assert argv == ["dags", "unpause", dag_id]
        if argv[:2] == ["tasks", "states-for-dag-run"]:
            assert argv == ["tasks", "states-for-dag-run", dag_id, run_id, "-o", "json"]


@settings(max_examples=300, deadline=None)
@given(dag_id=_VALUE, execution=_VALUE, bucket=_VALUE, prefix=_VALUE)
def test_trigger_dag_values_reach_the_cli_as_whole_arguments_or_are_refused(
    dag_id, execution, bucket, prefix
):
    event = _sample("trigger_dag")
    event["deployment"]["dagId"] = dag_id
    event["executionId"] = event["executionId"].rsplit(":", 1)[0] + ":" + execution
    event["conf"].update(bucket=bucket, prefix=prefix)
    refusal = refusal_of(TriggerDagEvent, event)
    if refusal is not None:
        # "conf": a conf whose prefix is not its migration's is refused as a whole.
        assert any(field in refusal for field in ("deployment.dagId", "executionId", "conf")), refusal
        return
    step = parse_model(TriggerDagEvent, event)
    endpoint = _Endpoint(dag_id=step.deployment.dag_id, run_id=step.run_id)
    cli = AirflowCli(_Mwaa(), step.deployment.environment_name, http=endpoint)  # type: ignore[arg-type]

    trigger_dag(cli, step.deployment, run_id=step.run_id, conf=step.conf.to_event(), attempt=0)

    assert endpoint.triggered
    _check_command_lines(endpoint, step.deployment.dag_id, step.run_id)
    (trigger,) = [argv for argv in endpoint.commands if argv[:2] == ["dags", "trigger"]]
    assert trigger == [
        "dags",
        "trigger",
        step.deployment.dag_id,
        f"--run-id={step.run_id}",
        f"--conf={json.dumps(step.conf.to_event())}",
    ]
    assert json.loads(trigger[4].removeprefix("--conf=")) == step.conf.to_event()


@settings(max_examples=300, deadline=None)
@given(dag_id=_VALUE, run_id=_VALUE)
def test_check_dag_run_values_reach_the_cli_as_whole_arguments_or_are_refused(dag_id, run_id):
    event = _sample("check_dag_run")
    event["deployment"]["dagId"] = dag_id
    event["runId"] = run_id
    refusal = refusal_of(CheckDagRunEvent, event)
    if refusal is not None:
        assert any(field in refusal for field in ("deployment.dagId", "runId")), refusal
        return
    step = parse_model(CheckDagRunEvent, event)
    endpoint = _Endpoint(dag_id=step.deployment.dag_id, run_id=step.run_id, triggered=True)
    cli = AirflowCli(_Mwaa(), step.deployment.environment_name, http=endpoint)  # type: ignore[arg-type]

    with pytest.raises(Exception, match="failed"):
        check_dag_run(cli, _NoLogs(), step.deployment, run_id=step.run_id, attempt=0)  # type: ignore[arg-type]

    _check_command_lines(endpoint, step.deployment.dag_id, step.run_id)
    assert ["tasks", "states-for-dag-run"] in [argv[:2] for argv in endpoint.commands]
