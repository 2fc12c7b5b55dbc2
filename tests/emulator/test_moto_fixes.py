"""moto's interpreter writes a Task's TimeoutSeconds and HeartbeatSeconds into its TaskScheduled
event from its stack; while an execution stops (a Parallel branch failed) it pushed nothing and the
event took the state's input instead, which broke every read of the history. The fix pushes them."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.asl.component.common.timeouts.heartbeat import HeartbeatSeconds
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

from emulation.moto_fixes import execution_history_serialized_once, task_timeouts_always_evaluated

STATE_INPUT = {"plan": {"migrationId": "a.b"}}


class _Stopping:
    """What a component sees of an execution being stopped: not running, the state's input on the stack."""

    def __init__(self, running: bool) -> None:
        self.running = running
        self.stack: list[Any] = [STATE_INPUT]
        self.next_field_name = None

    def is_running(self) -> bool:
        return self.running


@pytest.mark.parametrize(
    "component", [TimeoutSeconds(300), HeartbeatSeconds(60)], ids=["timeout", "heartbeat"]
)
def test_without_the_fix_a_stopping_execution_pops_the_state_input_as_the_seconds(component):
    env = _Stopping(running=False)

    component.eval(env)

    assert env.stack.pop() is STATE_INPUT  # what moto put into timeoutInSeconds


@pytest.mark.parametrize(
    ("component", "seconds"),
    [(TimeoutSeconds(300), 300), (HeartbeatSeconds(60), 60)],
    ids=["timeout", "heartbeat"],
)
@pytest.mark.parametrize("running", [True, False], ids=["running", "stopping"])
def test_with_the_fix_the_seconds_are_on_top_whether_or_not_it_runs(component, seconds, running):
    env = _Stopping(running=running)

    with task_timeouts_always_evaluated():
        component.eval(env)

    assert env.stack == [STATE_INPUT, seconds]


def _history_of_a_run(with_data: bool | None) -> list[dict[str, Any]]:
    """The history of a two-state execution, read through botocore (which validates the request and
    parses the answer against Step Functions' model) with the fix in place."""
    definition = {
        "StartAt": "Shape",
        "States": {
            "Shape": {"Type": "Pass", "Parameters": {"kept.$": "$.secret"}, "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        execution_history_serialized_once(),
    ):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name="history", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"secret": "s3cr3t"}))[
            "executionArn"
        ]
        deadline = time.monotonic() + 30
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            assert time.monotonic() < deadline, "the execution did not end"
            time.sleep(0.02)
        arguments: dict[str, Any] = {"executionArn": arn}
        if with_data is not None:
            arguments["includeExecutionData"] = with_data
        # Read twice: the second read is served from the texts the first one made.
        sfn.get_execution_history(**arguments)
        return [dict(event) for event in sfn.get_execution_history(**arguments)["events"]]


@pytest.mark.parametrize("with_data", [None, True])
def test_the_history_holds_the_states_data_unless_told_not_to(with_data: bool | None) -> None:
    events = _history_of_a_run(with_data)
    assert [event["type"] for event in events] == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "SucceedStateEntered",
        "SucceedStateExited",
        "ExecutionSucceeded",
    ]
    assert json.loads(events[0]["executionStartedEventDetails"]["input"]) == {"secret": "s3cr3t"}
    assert json.loads(events[-1]["executionSucceededEventDetails"]["output"]) == {"kept": "s3cr3t"}


def test_without_execution_data_the_history_has_every_event_but_no_input_or_output() -> None:
    with_data, without = _history_of_a_run(True), _history_of_a_run(False)
    assert [(event["type"], event["id"]) for event in without] == [
        (event["type"], event["id"]) for event in with_data
    ]
    assert "s3cr3t" not in json.dumps(without, default=str)
    assert without[1]["stateEnteredEventDetails"]["name"] == "Shape"
    assert without[0]["executionStartedEventDetails"]["inputDetails"] == {"truncated": False}
