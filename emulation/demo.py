"""`make demo`: a whole migration through the real state machine definition, on this machine.

    python -m emulation.demo [scenario name or path]

Prints each state as the execution enters it, then the report and a last line with the status.
Exits 0 when the outcome is the one the scenario expects.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from emulation.local_stack import TERMINAL, LocalStack, scenario_path
from emulation.scenario import Expectation, Scenario
from mwaa_migrate.execution import APPROVAL_STATE, new_execution_name
from mwaa_migrate.report import markdown_key

if TYPE_CHECKING:
    from datetime import datetime

    from mypy_boto3_stepfunctions.type_defs import HistoryEventTypeDef

_SHOWN_EVENTS = {
    "TaskStateEntered",
    "ChoiceStateEntered",
    "WaitStateEntered",
    "ParallelStateEntered",
    "MapStateEntered",
    "PassStateEntered",
    "SucceedStateEntered",
    "FailStateEntered",
}


def _describe(event: HistoryEventTypeDef, started: datetime) -> str | None:
    elapsed = (event["timestamp"] - started).total_seconds()
    kind = event["type"]
    if kind in _SHOWN_EVENTS:
        return f"  {elapsed:7.2f}s  {event['stateEnteredEventDetails']['name']}"
    if kind in {"TaskFailed", "LambdaFunctionFailed"}:
        details = event.get("taskFailedEventDetails") or event.get("lambdaFunctionFailedEventDetails") or {}
        return (
            f"  {elapsed:7.2f}s    ! {details.get('error', 'failed')}: {str(details.get('cause', ''))[:160]}"
        )
    return None


def follow(
    stack: LocalStack,
    execution_arn: str,
    timeout_seconds: float = 300,
    on_entered: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Print the states as they are entered, until the execution ends (or the deadline passes).
    `on_entered` is told each state's name as it is entered (the demo's operator answers there)."""
    seen = 0
    started = stack.sfn.describe_execution(executionArn=execution_arn)["startDate"]
    deadline = time.monotonic() + timeout_seconds
    while True:
        described = stack.sfn.describe_execution(executionArn=execution_arn)
        events = stack.history(execution_arn)
        for event in events[seen:]:
            line = _describe(event, started)
            if line:
                print(line, flush=True)
            entered = event.get("stateEnteredEventDetails")
            if on_entered is not None and entered:
                on_entered(entered["name"])
        seen = len(events)
        if described["status"] in TERMINAL:
            return dict(described)
        if time.monotonic() > deadline:
            raise TimeoutError(f"the execution is still {described['status']} after {timeout_seconds}s")
        time.sleep(0.1)


def _summary(stack: LocalStack, scenario: Scenario, described: dict[str, Any]) -> None:
    output = json.loads(described.get("output") or "{}")
    name = str(described["executionArn"]).rsplit(":", 1)[-1]
    request = scenario.input
    prefix = f"migrations/{request.get('sourceEnvironmentName')}/{request.get('targetEnvironmentName')}"
    # A failure's report is where a success's would be: the execution's output names only the latter.
    uri = output.get("reportUri") or f"s3://{scenario.migration_bucket}/{prefix}/reports/{name}.json"
    bucket, key = uri[5:].split("/", 1)
    try:
        markdown = stack.s3.get_object(Bucket=bucket, Key=markdown_key(key))["Body"].read().decode()
    except stack.s3.exceptions.NoSuchKey:
        print("\nNo report was written.")
    else:
        print(f"\nReport {uri} (and beside it, as Markdown):\n")
        print(markdown)
    target_name = str(scenario.input.get("targetEnvironmentName"))
    try:
        target = stack.mwaa.get_environment(Name=target_name)["Environment"]
    except stack.mwaa.exceptions.ResourceNotFoundException:
        print(f"\nTarget {target_name}: not created")
        return
    metadata = stack.mwaa_emulator.environment(target_name).metadata
    counts = {table: len(rows) for table, rows in sorted(metadata.items())}
    print(f"\nTarget {target_name}: {target['Status']}, Airflow {target['AirflowVersion']}, tables {counts}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", nargs="?", default="default", help="a name under scenarios/ or a path")
    args = parser.parse_args(argv)
    scenario = Scenario.load(scenario_path(args.scenario))
    print(f"Scenario {scenario.name}: {scenario.description}")
    print(f"Input: {json.dumps(scenario.input)}\n")
    with LocalStack(scenario, instant_retries=False) as stack:
        expected = _run(stack, scenario, scenario.expect)
        if scenario.rerun is not None:
            print("\nThe same input, started again:\n")
            expected = _run(stack, scenario, scenario.rerun) and expected
    return 0 if expected else 1


def _run(stack: LocalStack, scenario: Scenario, expect: Expectation) -> bool:
    """One execution of the scenario's input, followed to its end; True when it ends as expected."""
    name = new_execution_name(
        str(scenario.input.get("sourceEnvironmentName")),
        str(scenario.input.get("targetEnvironmentName")),
        prefix="demo-",
    )
    execution_arn = stack.start(name)

    def operator(state: str) -> None:
        if state == APPROVAL_STATE and scenario.approval is not None:
            stack.answer_approval(execution_arn, approve=scenario.approval == "approve")
            print(f"  (the operator answered: mwaa-migrate {scenario.approval} {name})", flush=True)

    described = follow(stack, execution_arn, on_entered=operator)
    _summary(stack, scenario, described)
    status = described["status"]
    detail = "" if status == "SUCCEEDED" else f" ({described.get('error')}: {described.get('cause')})"
    print(f"\nMigration {status}{detail}")
    expected = expect.status == status and expect.error in {None, described.get("error")}
    if not expected:
        print(f"(the scenario expected {expect.status})", file=sys.stderr)
    return expected


if __name__ == "__main__":
    sys.exit(main())
