"""The fault matrix: every AWS call the pipeline makes gets throttled, a 5xx and a timeout, and the
migration still ends SUCCEEDED with the same end state as a run without faults; an access denied or a
validation error on any call fails the migration once, at once, with the cause.

The calls are not listed here: the injector sees every call a step makes, and each test checks
that every call it saw got the fault. A call another issue adds to a step is covered as it lands.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from emulation.faults import CLI, Call, FaultInjector, FaultKind, instant_botocore_retries
from emulation.local_stack import LocalStack
from mwaa_migrate import clients
from tests.hardening.conftest import CLIENT_TIMEOUT_SECONDS, Harness
from tests.hardening.discovery import default_scenario, discover, failing_scenario
from tests.hardening.end_state import differences, snapshot

SOURCE = "analytics-prod"

# A handler that fails before it counts anything has no metrics to flush: Powertools warns.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

SOURCE_ROLE = "AmazonMWAA-analytics-prod"
# Every service but Lambda: a lost Invoke answer makes Step Functions run the step again, which
# would hide what a timeout inside the step does. Invoke timeouts have their own run.
IN_STEP_SERVICES = frozenset({"s3", "iam", "cloudwatch-logs", "sfn", "mwaa", "kms", "eventbridge", "sns"})
# Error names a permanent fault may end a migration with: the project's own, or Step Functions'
# name for a Lambda error.
PERMANENT_ERRORS = {
    FaultKind.ACCESS_DENIED: {"AwsAccessDenied", "Lambda.AccessDeniedException"},
    FaultKind.VALIDATION: {
        "MigrationConflict",
        "InvalidMigrationRequest",
        "Lambda.InvalidRequestContentException",
    },
}


def _faulted_calls(harness: Harness) -> set[tuple[str, str]]:
    return set(harness.faults.injected_by_call())


@pytest.mark.parametrize(
    ("kind", "services"),
    [
        pytest.param(FaultKind.THROTTLING, None, id="throttling"),
        pytest.param(FaultKind.SERVER_ERROR, None, id="server-error"),
        pytest.param(FaultKind.TIMEOUT, IN_STEP_SERVICES, id="timeout-in-steps"),
        pytest.param(FaultKind.TIMEOUT, frozenset({"lambda"}), id="timeout-of-invoke"),
    ],
)
def test_a_transient_fault_on_every_call_leaves_the_same_end_state(
    harness, scenario, uninterrupted, kind, services
):
    run = harness(scenario, client_timeout=CLIENT_TIMEOUT_SECONDS if kind is FaultKind.TIMEOUT else None)
    run.faults.every_step(kind, services=services)

    described = run.run("faulted")

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert differences(uninterrupted, snapshot(run.stack)) == []
    made = {call for call in run.faults.distinct_calls() if services is None or call[0] in services}
    assert made, "the run made calls"
    assert _faulted_calls(run) == made, "every call the pipeline made got the fault"
    assert run.stack.mwaa_emulator.pending_faults() == {}, "every fault armed in the MWAA emulator met a call"


@pytest.mark.parametrize(
    "kind",
    [FaultKind.THROTTLING, FaultKind.SERVER_ERROR, FaultKind.TIMEOUT],
    ids=lambda kind: kind.value,
)
def test_transient_faults_on_the_failure_path_still_record_the_original_failure(harness, kind):
    run = harness(
        failing_scenario(), client_timeout=CLIENT_TIMEOUT_SECONDS if kind is FaultKind.TIMEOUT else None
    )
    run.faults.every_step(kind, services=IN_STEP_SERVICES if kind is FaultKind.TIMEOUT else None)

    described = run.run("failing")

    assert described["status"] == "FAILED"
    assert described["error"] == "EnvironmentFailed"
    assert described["cause"].startswith("CheckTarget: ")
    assert "INCORRECT_CONFIGURATION: no NAT" in described["cause"]
    assert run.stack.iam.list_role_policies(RoleName=SOURCE_ROLE)["PolicyNames"] == []
    faulted = _faulted_calls(run)
    assert {("sfn", "GetExecutionHistory"), ("iam", "DeleteRolePolicy")} <= faulted
    assert run.invocations("RecordFailureFunction")[-1] is None, "the failure was recorded"


# A fault that outlasts botocore's own retries (all its attempts): the step fails with TransientAwsError
# and the state machine's Retry runs it again. One call per service, all in one run.
_OUTLASTING = [
    ("s3", "PutObject", "DeployDagFunction", FaultKind.THROTTLING),
    ("s3", "GetObject", "CheckDagRunFunction", FaultKind.TIMEOUT),
    ("iam", "PutRolePolicy", "GrantPermissionsFunction", FaultKind.SERVER_ERROR),
    ("mwaa", "CreateEnvironment", "CloneEnvironmentFunction", FaultKind.THROTTLING),
    ("mwaa", "GetEnvironment", "CheckEnvironmentFunction", FaultKind.SERVER_ERROR),
]


def _botocore_attempts(service: str) -> int:
    """How many times the pipeline's client for `service` sends a call (clients.py)."""
    config = getattr(clients, "LOGS_RETRY_CONFIG", None) if service == "cloudwatch-logs" else None
    retries: dict[str, int] = (config or clients.RETRY_CONFIG).retries
    return retries["total_max_attempts"]


def test_faults_that_outlast_botocores_retries_are_retried_by_the_state_machine(
    harness, scenario, uninterrupted
):
    run = harness(scenario)
    for service, operation, step, kind in _OUTLASTING:
        run.faults.inject(service, operation, kind, times=_botocore_attempts(service), step=step)
    # Not sent again, so one fault is enough: a 500 of the CLI endpoint (the command may have run) and
    # a 5xx of PutLogEvents (the batch may have been written; the log copy never resends one).
    run.faults.inject("mwaa", CLI, FaultKind.SERVER_ERROR, step="TriggerDagFunction")
    run.faults.inject(
        "cloudwatch-logs", "PutLogEvents", FaultKind.SERVER_ERROR, step="CopyLogStreamsFunction"
    )
    run.faults.inject("lambda", "Invoke", FaultKind.THROTTLING, times=2, step="FinishMigrationFunction")

    described = run.run("outlasting")

    assert described["status"] == "SUCCEEDED", described.get("cause")
    for step in [*(case[2] for case in _OUTLASTING), "TriggerDagFunction", "CopyLogStreamsFunction"]:
        assert "TransientAwsError" in run.invocations(step), step
    assert run.stack.retry_sleeps, "the state machine's Retry waited"
    assert differences(uninterrupted, snapshot(run.stack)) == []


# ------------------------------------------------------------------------------ permanent faults


PIPELINE_CALLS = discover().calls


class _World:
    """One emulated AWS for many failing migrations, each to a target of its own."""

    def __init__(self, stacks: ExitStack) -> None:
        self.retries = stacks.enter_context(instant_botocore_retries())
        self.stack = stacks.enter_context(LocalStack(default_scenario()))
        self.faults = stacks.enter_context(FaultInjector(self.stack.mwaa_emulator))
        self.runs = 0

    def next_name(self) -> str:
        return f"denied-{self.runs + 1}"

    def _forget_earlier_cutovers(self) -> None:
        """Each migration meets the source as the scenario made it: one that went live before left
        the source paused and a live record, which would refuse the next (already migrated)."""
        bucket = self.stack.scenario.migration_bucket
        listed = self.stack.s3.list_objects_v2(Bucket=bucket, Prefix=f"migrations/{SOURCE}/")
        for item in listed.get("Contents", []):
            if item["Key"].endswith("/cutover/record.json"):
                self.stack.s3.delete_object(Bucket=bucket, Key=item["Key"])
        initially = {row["dag_id"]: row["is_paused"] for row in self.stack.scenario.source_metadata["dag"]}
        for row in self.stack.mwaa_emulator.environment(SOURCE).metadata["dag"]:
            row["is_paused"] = initially.get(row["dag_id"], row["is_paused"])

    def run(self, scenario_input: dict[str, Any]) -> tuple[dict[str, Any], str]:
        self._forget_earlier_cutovers()
        self.runs += 1
        execution_input = {**scenario_input, "targetEnvironmentName": f"target-{self.runs}"}
        arn = self.stack.start(f"denied-{self.runs}", execution_input)
        described = dict(self.stack.wait(arn, timeout_seconds=120))
        described["history"] = self.stack.history(arn)
        return described, arn


@pytest.fixture(scope="module")
def world() -> Iterator[_World]:
    with ExitStack() as stacks:
        yield _World(stacks)


# Notifications are best effort: one that cannot be sent is logged and the migration goes on.
BEST_EFFORT_SERVICES = frozenset({"eventbridge", "sns"})


def _permanent_cases() -> Iterator[Any]:
    def case(call: Call, kind: FaultKind, label: str) -> Any:
        return pytest.param(call, kind, id=f"{call.service}:{call.operation}:{label}")

    for call in PIPELINE_CALLS:
        yield case(call, FaultKind.ACCESS_DENIED, "denied")
    for service in sorted({call.service for call in PIPELINE_CALLS}):
        call = next(c for c in PIPELINE_CALLS if c.service == service and c.operation != CLI)
        yield case(call, FaultKind.VALIDATION, "invalid")


@pytest.mark.parametrize(("call", "kind"), list(_permanent_cases()))
def test_a_permanent_fault_fails_the_migration_once_at_once_with_its_cause(world, call, kind):
    scenario = default_scenario()
    if call.step == "RecordFailureFunction":
        # The failure path's own calls: make the migration fail first (its target cannot be created).
        world.stack.mwaa_emulator.fail_next_create(f"target-{world.runs + 1}", "INCORRECT_CONFIGURATION", "x")
    # The MWAA CLI client asks for a fresh token after a 403 (an expired one): deny that one too.
    times = 2 if (call.operation, kind) == (CLI, FaultKind.ACCESS_DENIED) else 1
    injected_before = len(world.faults.injected)
    retries_before, state_retries_before = len(world.retries), len(world.stack.retry_sleeps)
    world.faults.inject(
        call.service, call.operation, kind, times=times, step=call.step, execution=world.next_name()
    )

    described, arn = world.run(scenario.input)

    assert len(world.faults.injected) - injected_before == times, "the fault met its call"
    if call.service in BEST_EFFORT_SERVICES:
        assert described["status"] == "SUCCEEDED", "an undelivered notification stops no migration"
        assert len(world.retries) == retries_before, "botocore did not retry it"
        return
    assert described["status"] == "FAILED"
    if call.step == "RecordFailureFunction":
        # Recording failed: the execution keeps the migration's own failure.
        assert described["error"] == "EnvironmentFailed"
    else:
        assert described["error"] in PERMANENT_ERRORS[kind], described.get("cause")
        injected = world.faults.injected[-1]
        # A HEAD answer has no body: botocore names the error by its HTTP status.
        assert injected.code in described["cause"] or f": {injected.status}:" in described["cause"], (
            described["cause"]
        )
    assert len(world.retries) == retries_before, "botocore did not retry it"
    assert len(world.stack.retry_sleeps) == state_retries_before, "no state was retried"
    failed = [
        i.function
        for i in world.stack.lambdas.invocations
        if i.event.get("executionId") == arn and i.error_type
    ]
    expected = [] if call.operation == "Invoke" else [call.step]
    if call.step == "RecordFailureFunction":
        expected = ["CheckEnvironmentFunction", call.step]
    assert failed == expected, "each failing step ran once"
