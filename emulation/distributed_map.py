"""A Distributed Map as AWS runs it, for moto's Step Functions.

moto 5 executes Distributed Map states (ItemReader from S3, ItemSelector with `$$.Map.Item`,
MaxConcurrency as that many worker threads, child executions of the ItemProcessor) with two gaps that
matter to a pipeline that relies on them:

- ToleratedFailureCount / ToleratedFailurePercentage (and their *Path forms) are read but not
  enforced: a failed child execution leaves a null output and the Map Run succeeds. On AWS the Map Run
  fails with `States.ExceedToleratedFailureThreshold` once failed or timed-out items exceed the
  threshold the state declares (either of the two when it declares both; with neither, any failure
  fails it). Here the threshold is checked once every child has ended (AWS may fail the run sooner;
  the outcome is the same).
- ResultWriter's Parameters are evaluated against the Map's collected output instead of the state's
  input, so `"Bucket.$": "$.x"` fails with States.Runtime. On AWS they refer to the state's input (the
  paths the ItemReader uses too). moto then writes a manifest.json under the prefix but no result
  files. Here the writer does what AWS does: `{Prefix}/{map run id}/manifest.json` lists the result
  files (`ResultFiles` by status, each with its Key and Size), and `SUCCEEDED_0.json` /
  `FAILED_0.json` hold one JSON array of child executions each, with AWS's fields (ExecutionArn,
  Name, StateMachineArn, Status, StartDate, StopDate, Input, then Output for a succeeded one, Error
  and Cause for a failed, timed out or aborted one). As on AWS, a Map Run that fails on its tolerated
  failure threshold still writes them: the failed children's own errors are read from there.

`emulate_distributed_map()` patches both while it is entered.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (  # noqa: E501
    DistributedIterationComponent,
    DistributedIterationComponentEvalInput,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (  # noqa: E501
    DistributedItemProcessorWorker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.map_run_record import (  # noqa: E501
    MapRunRecord,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.job import Job
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.result_writer_decl import (
    ResultWriter,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
from moto.stepfunctions.parser.asl.component.state.exec.state_map.tolerated_failure import (
    ToleratedFailureCountDecl,
    ToleratedFailureCountInt,
    ToleratedFailurePercentage,
    ToleratedFailurePercentageDecl,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials
from moto.stepfunctions.parser.asl.component.state.state_props import StateProps
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.program_state import ProgramError, ProgramStopped, ProgramTimedOut
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

# A threshold the state does not declare never fails the run.
_UNLIMITED_COUNT = 2**62
_UNLIMITED_PERCENTAGE = 100.0


def exceeds_tolerance(failed: int, total: int, *, tolerated_count: int, tolerated_percentage: float) -> bool:
    """AWS's rule: the Map Run fails when the failed (or timed out) items exceed a threshold."""
    if failed == 0:
        return False
    return failed > tolerated_count or (total > 0 and failed * 100 / total > tolerated_percentage)


class _ThresholdExceeded(FailureEventException):
    """The Map Run failed on its tolerated failure threshold (its children have all ended)."""


class _ChildExecutions:
    """Each Map Run's child executions as they end, in the form AWS's result files give them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_map_run: dict[str, list[dict[str, Any]]] = {}

    def add(self, map_run_arn: str, execution: dict[str, Any]) -> None:
        with self._lock:
            self._by_map_run.setdefault(map_run_arn, []).append(execution)

    def of(self, map_run_arn: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._by_map_run.get(map_run_arn, []))


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def child_execution(
    record: MapRunRecord,
    *,
    child_input: Any,
    state: Any,
    output: Any,
    started: datetime,
    stopped: datetime,
) -> dict[str, Any]:
    """One child execution as a result file lists it (AWS: DescribeExecution's fields)."""
    name = str(uuid.uuid4())
    execution: dict[str, Any] = {
        "ExecutionArn": f"{record.map_state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}",
        "Input": json.dumps(child_input, separators=(",", ":")),
        "InputDetails": {"Included": True},
        "Name": name,
        "RedriveCount": 0,
        "StartDate": _timestamp(started),
        "StateMachineArn": record.map_state_machine_arn,
        "StopDate": _timestamp(stopped),
    }
    if isinstance(state, ProgramError):
        details = state.error or {}
        execution.update(
            Status="FAILED",
            Error=details.get("error") or "States.Runtime",
            Cause=details.get("cause") or "",
            RedriveStatus="REDRIVABLE",
        )
    elif isinstance(state, ProgramTimedOut):
        execution.update(Status="TIMED_OUT", Error="States.Timeout", Cause="", RedriveStatus="REDRIVABLE")
    elif isinstance(state, ProgramStopped):
        execution.update(Status="ABORTED", Error="States.Aborted", Cause="", RedriveStatus="REDRIVABLE")
    elif output is None:
        # moto caught the child's failure itself (an exception outside its program): no details.
        execution.update(Status="FAILED", Error="States.Runtime", Cause="", RedriveStatus="REDRIVABLE")
    else:
        execution.update(
            Status="SUCCEEDED",
            Output=json.dumps(output, separators=(",", ":")),
            OutputDetails={"Included": True},
            RedriveStatus="NOT_REDRIVABLE",
        )
    return execution


def write_results(
    s3: Any, bucket: str, prefix: str, map_run_arn: str, executions: list[dict[str, Any]]
) -> str:
    """AWS's export: the result files by status and the manifest that lists them; the manifest's key."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    base = f"{prefix}{map_run_arn.rsplit(':', 1)[-1]}/"
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for status in ("SUCCEEDED", "FAILED"):
        listed = [e for e in executions if (e["Status"] == "SUCCEEDED") == (status == "SUCCEEDED")]
        if not listed:
            continue
        body = json.dumps(listed).encode()
        key = f"{base}{status}_0.json"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        files[status].append({"Key": key, "Size": len(body)})
    manifest = {"DestinationBucket": bucket, "MapRunArn": map_run_arn, "ResultFiles": files}
    key = f"{base}manifest.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest, indent=2).encode())
    return key


def _export(writer: ResultWriter, env: Environment, children: _ChildExecutions) -> dict[str, Any]:
    """Write the last Map Run's results where the writer's Parameters (on the state's input) say."""
    env.stack.append(env.states.get_input())
    writer.parargs.eval(env=env)
    parameters = env.stack.pop()
    env.stack.pop()
    writer.resource_eval.resource.eval(env=env)
    runtime = env.stack.pop()
    s3 = boto_client_for(
        service="s3",
        region=runtime.region,
        state_credentials=StateCredentials(role_arn=env.aws_execution_details.role_arn),
    )
    record = env.map_run_record_pool_manager.get_all()[-1]
    key = write_results(
        s3,
        parameters["Bucket"],
        parameters.get("Prefix", ""),
        record.map_run_arn,
        children.of(record.map_run_arn),
    )
    return {
        "MapRunArn": record.map_run_arn,
        "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": key},
    }


@contextmanager
def emulate_distributed_map() -> Iterator[None]:
    original_map_run = DistributedIterationComponent._map_run
    original_from_state_props = StateMap.from_state_props
    original_eval_execution = StateMap._eval_execution
    original_eval_job = DistributedItemProcessorWorker._eval_job
    original_eval_input = DistributedItemProcessorWorker._eval_input
    children = _ChildExecutions()
    child_inputs = threading.local()

    def from_state_props(self: StateMap, state_props: StateProps) -> None:
        """Only the thresholds the state declares apply; with neither declared, both are 0."""
        original_from_state_props(self, state_props)
        count = state_props.get(ToleratedFailureCountDecl) is not None
        percentage = state_props.get(ToleratedFailurePercentageDecl) is not None
        if percentage and not count:
            self.tolerated_failure_count_decl = ToleratedFailureCountInt(_UNLIMITED_COUNT)
        if count and not percentage:
            self.tolerated_failure_percentage_decl = ToleratedFailurePercentage(_UNLIMITED_PERCENTAGE)

    def eval_input(self: DistributedItemProcessorWorker, env_frame: Environment) -> None:
        original_eval_input(self, env_frame)
        child_inputs.value = env_frame.states.get_input()

    def eval_job(self: DistributedItemProcessorWorker, env: Environment, job: Job) -> None:
        """The job as moto runs it, then its child execution recorded for the result files."""
        started = datetime.now(UTC)
        child_inputs.value = job.job_input
        original_eval_job(self, env, job)
        record: MapRunRecord = self._map_run_record
        children.add(
            record.map_run_arn,
            child_execution(
                record,
                child_input=child_inputs.value,
                state=env.program_state(),
                output=job.job_output,
                started=started,
                stopped=datetime.now(UTC),
            ),
        )

    def map_run(
        self: DistributedIterationComponent,
        env: Environment,
        eval_input: DistributedIterationComponentEvalInput,
    ) -> None:
        original_map_run(self, env, eval_input)
        counter = eval_input.map_run_record.item_counter
        failed = counter.failed.get() + counter.timed_out.get()
        total = counter.total.get()
        if exceeds_tolerance(
            failed,
            total,
            tolerated_count=int(eval_input.tolerated_failure_count),
            tolerated_percentage=float(eval_input.tolerated_failure_percentage),
        ):
            error = StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold)
            cause = f"{failed} of {total} items failed or timed out: more than the Map Run tolerates"
            raise _ThresholdExceeded(
                FailureEvent(
                    env=env,
                    error_name=error,
                    event_type=HistoryEventType.MapRunFailed,
                    # moto's own TypedDict lists every kind of details as required; moto fills one.
                    event_details=EventDetails(  # type: ignore[typeddict-item]
                        mapRunFailedEventDetails=MapRunFailedEventDetails(error=error.error_name, cause=cause)
                    ),
                )
            )

    def result_writer(self: ResultWriter, env: Environment) -> None:
        env.stack.pop()  # the children's outputs: the result files hold them
        env.stack.append(_export(self, env, children))

    def eval_execution(self: StateMap, env: Environment) -> None:
        try:
            original_eval_execution(self, env)
        except _ThresholdExceeded:
            if self.result_writer is not None:
                _export(self.result_writer, env, children)
            raise

    with (
        mock.patch.object(StateMap, "from_state_props", from_state_props),
        mock.patch.object(StateMap, "_eval_execution", eval_execution),
        mock.patch.object(DistributedIterationComponent, "_map_run", map_run),
        mock.patch.object(DistributedItemProcessorWorker, "_eval_job", eval_job),
        mock.patch.object(DistributedItemProcessorWorker, "_eval_input", eval_input),
        mock.patch.object(ResultWriter, "_eval_body", result_writer),
    ):
        yield
