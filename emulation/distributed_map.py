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
  paths the ItemReader uses too). moto then writes a manifest.json under the prefix, as AWS does, but
  no result files (AWS writes SUCCEEDED_n.json / FAILED_n.json): the pipeline does not read them.

`emulate_distributed_map()` patches both while it is entered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
from moto.stepfunctions.parser.asl.component.state.state_props import StateProps
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

# A threshold the state does not declare never fails the run.
_UNLIMITED_COUNT = 2**62
_UNLIMITED_PERCENTAGE = 100.0


def exceeds_tolerance(failed: int, total: int, *, tolerated_count: int, tolerated_percentage: float) -> bool:
    """AWS's rule: the Map Run fails when the failed (or timed out) items exceed a threshold."""
    if failed == 0:
        return False
    return failed > tolerated_count or (total > 0 and failed * 100 / total > tolerated_percentage)


@contextmanager
def emulate_distributed_map() -> Iterator[None]:
    original_map_run = DistributedIterationComponent._map_run
    original_from_state_props = StateMap.from_state_props

    def from_state_props(self: StateMap, state_props: StateProps) -> None:
        """Only the thresholds the state declares apply; with neither declared, both are 0."""
        original_from_state_props(self, state_props)
        count = state_props.get(ToleratedFailureCountDecl) is not None
        percentage = state_props.get(ToleratedFailurePercentageDecl) is not None
        if percentage and not count:
            self.tolerated_failure_count_decl = ToleratedFailureCountInt(_UNLIMITED_COUNT)
        if count and not percentage:
            self.tolerated_failure_percentage_decl = ToleratedFailurePercentage(_UNLIMITED_PERCENTAGE)

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
            raise FailureEventException(
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
        outputs: Any = env.stack.pop()
        env.stack.append(env.states.get_input())
        self.parargs.eval(env=env)
        parameters = env.stack.pop()
        env.stack.pop()
        env.stack.append(outputs)
        env.stack.append(parameters)
        self.resource_eval.eval_resource(env=env)

    with (
        mock.patch.object(StateMap, "from_state_props", from_state_props),
        mock.patch.object(DistributedIterationComponent, "_map_run", map_run),
        mock.patch.object(ResultWriter, "_eval_body", result_writer),
    ):
        yield
