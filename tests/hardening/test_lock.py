"""The migration lock on its own (moto's S3 conditional writes and Step Functions' execution status):
at most one running execution holds a target's lock; a stopped holder's lock is taken over; only
the holder releases it; a write whose answer was lost and is sent again still counts as taken."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from emulation.faults import FaultInjector, FaultKind, instant_botocore_retries
from mwaa_migrate import clients
from mwaa_migrate.migration_bucket import lock_key
from mwaa_migrate.run.lock import Holder, MigrationInProgress, acquire, holder, release

BUCKET = "mwaa-migrate-tests"
TARGET = "analytics-2-10"


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any, str]]:
    """moto's S3 with the stack's bucket, and a state machine whose executions stay RUNNING until
    stopped (moto does not run it)."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        machine = sfn.create_state_machine(
            name="mwaa-migrate-migration",
            definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        yield s3, sfn, machine


def _start(sfn: Any, machine: str, name: str) -> str:
    return str(sfn.start_execution(stateMachineArn=machine, name=name)["executionArn"])


def _take(s3: Any, sfn: Any, execution: str) -> None:
    acquire(
        s3,
        sfn,
        bucket=BUCKET,
        source_environment="analytics",
        target_environment=TARGET,
        execution_id=execution,
    )


def test_a_running_holder_keeps_the_lock_and_the_other_changes_nothing(aws):
    s3, sfn, machine = aws
    first, second = _start(sfn, machine, "first"), _start(sfn, machine, "second")
    _take(s3, sfn, first)
    before = s3.get_object(Bucket=BUCKET, Key=lock_key(TARGET))["ETag"]

    with pytest.raises(MigrationInProgress, match="first"):
        _take(s3, sfn, second)

    assert s3.get_object(Bucket=BUCKET, Key=lock_key(TARGET))["ETag"] == before
    assert holder(s3, BUCKET, TARGET, first) is Holder.THIS_EXECUTION
    assert release(s3, bucket=BUCKET, target_environment=TARGET, execution_id=second) is False
    assert holder(s3, BUCKET, TARGET, first) is Holder.THIS_EXECUTION


def test_the_holder_takes_it_again_and_releases_it(aws):
    s3, sfn, machine = aws
    first = _start(sfn, machine, "first")
    _take(s3, sfn, first)
    _take(s3, sfn, first)

    assert release(s3, bucket=BUCKET, target_environment=TARGET, execution_id=first) is True
    assert holder(s3, BUCKET, TARGET, first) is Holder.NOBODY


@pytest.mark.parametrize("gone", ["stopped", "never existed"])
def test_the_lock_of_an_execution_that_no_longer_runs_is_taken_over(aws, gone):
    s3, sfn, machine = aws
    if gone == "stopped":
        stale = _start(sfn, machine, "crashed")
        sfn.stop_execution(executionArn=stale)
    else:
        stale = machine.replace(":stateMachine:", ":execution:") + ":forgotten"
    _take(s3, sfn, stale)
    rerun = _start(sfn, machine, "rerun")

    _take(s3, sfn, rerun)

    assert holder(s3, BUCKET, TARGET, rerun) is Holder.THIS_EXECUTION


def test_a_lock_write_whose_answer_was_lost_counts_as_taken(aws):
    s3, sfn, machine = aws
    first = _start(sfn, machine, "first")
    with instant_botocore_retries() as retries, FaultInjector() as faults:
        faults.inject("s3", "PutObject", FaultKind.TIMEOUT)
        clients.reset()
        with faults.as_step("GrantPermissionsFunction"):
            _take(clients.s3(), clients.stepfunctions(), first)

    assert retries, "botocore sent the write again and met its own lock"
    assert holder(s3, BUCKET, TARGET, first) is Holder.THIS_EXECUTION


@settings(max_examples=25, deadline=None)
@given(
    steps=st.lists(st.tuples(st.sampled_from(["take", "release", "stop"]), st.integers(0, 2)), max_size=12)
)
def test_at_most_one_running_execution_ever_holds_the_lock(steps):
    """Any sequence of takes, releases and stops by three executions, against a model: a take
    succeeds when the lock is free, the taker's, or held by an execution that stopped."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        machine = sfn.create_state_machine(
            name="m",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        executions = [_start(sfn, machine, f"e{i}") for i in range(3)]
        held: int | None = None
        stopped: set[int] = set()
        for action, index in steps:
            execution = executions[index]
            if action == "stop":
                sfn.stop_execution(executionArn=execution)
                stopped.add(index)
            elif action == "release":
                released = release(s3, bucket=BUCKET, target_environment=TARGET, execution_id=execution)
                assert released == (held == index)
                if released:
                    held = None
            else:
                may = held is None or held == index or held in stopped
                if may:
                    _take(s3, sfn, execution)
                    held = index
                else:
                    with pytest.raises(MigrationInProgress):
                        _take(s3, sfn, execution)
            for i, other in enumerate(executions):
                expected = Holder.THIS_EXECUTION if held == i else Holder.NOBODY if held is None else None
                if expected is not None:
                    assert holder(s3, BUCKET, TARGET, other) is expected
