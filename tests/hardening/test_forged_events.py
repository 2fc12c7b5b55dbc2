"""Functions that change IAM, invoked by someone other than the state machine. The state machine's
own path cannot put a policy nobody planned or remove one it did not put; these tests check that a
forged event cannot either: GrantPermissions acts only for a running execution of these two
environments and derives its policies again, the clean-up removes only this migration's names."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from emulation.lambdas import REPO_ROOT, FakeLambdaContext
from emulation.local_stack import LocalStack, scenario_path
from emulation.scenario import Scenario
from mwaa_migrate.errors import InvalidMigrationRequest
from mwaa_migrate.execution import approval_wait
from mwaa_migrate.models import parse_model
from mwaa_migrate.step_events import TriggerDagEvent

SOURCE_ROLE = "AmazonMWAA-analytics-prod"
GRANT = "GrantPermissionsFunction"
RECORD_FAILURE = "RecordFailureFunction"


def invoke(stack: LocalStack, function: str, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = stack.lambdas.handlers[function](
        event, FakeLambdaContext(function_name=function)
    )
    return result


def scheduled_payload(stack: LocalStack, execution_arn: str, state: str) -> dict[str, Any]:
    """The event the state machine sent the state's function (its first scheduling)."""
    history = sorted(stack.history(execution_arn), key=lambda event: int(event["id"]))
    inside = False
    for event in history:
        if event["type"].endswith("StateEntered"):
            inside = event["stateEnteredEventDetails"]["name"] == state
        elif inside and event["type"] == "TaskScheduled":
            payload = json.loads(event["taskScheduledEventDetails"]["parameters"])["Payload"]
            return dict(payload)
        elif inside and event["type"] == "LambdaFunctionScheduled":  # the function's ARN as Resource
            return dict(json.loads(event["lambdaFunctionScheduledEventDetails"]["input"]))
    raise AssertionError(f"{state} was never scheduled")


def policies(stack: LocalStack, role: str) -> dict[str, Any]:
    return {
        name: stack.iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in stack.iam.list_role_policies(RoleName=role)["PolicyNames"]
    }


@pytest.fixture(scope="module")
def waiting() -> Iterator[tuple[LocalStack, str]]:
    """A migration waiting for its cutover's approval: running, granted, production untouched."""
    scenario = Scenario.load(scenario_path("approve"))
    with LocalStack(scenario) as stack:
        execution_arn = stack.start()
        deadline = time.monotonic() + 120
        while not approval_wait(stack.history(execution_arn)).waiting:
            assert time.monotonic() < deadline, "no approval wait"
            time.sleep(0.2)
        yield stack, execution_arn
        stack.answer_approval(execution_arn, approve=False)
        while stack.sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING":
            assert time.monotonic() < deadline + 120, "the rejected execution did not end"
            time.sleep(0.2)


def test_a_grant_event_with_a_policy_nobody_planned_puts_nothing(waiting):
    stack, execution_arn = waiting
    event = scheduled_payload(stack, execution_arn, "GrantPermissions")
    before = policies(stack, SOURCE_ROLE)
    forged = copy.deepcopy(event)
    forged["plan"]["policies"][0]["document"] = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }

    with pytest.raises(InvalidMigrationRequest, match="plan.policies: not the policies this migration needs"):
        invoke(stack, GRANT, forged)

    assert policies(stack, SOURCE_ROLE) == before
    assert all(
        statement["Action"] != "*" for document in before.values() for statement in document["Statement"]
    )


def test_a_grant_event_for_a_role_nobody_named_is_refused(waiting):
    stack, execution_arn = waiting
    stack.iam.create_role(
        RoleName="AmazonMWAA-someone-else",
        Path="/service-role/",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "airflow.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ]
            }
        ),
    )
    forged = scheduled_payload(stack, execution_arn, "GrantPermissions")
    other = "arn:aws:iam::123456789012:role/service-role/AmazonMWAA-someone-else"
    forged["plan"]["target"]["executionRoleArn"] = other
    forged["plan"]["policies"][1]["roleName"] = "AmazonMWAA-someone-else"

    with pytest.raises(InvalidMigrationRequest, match="is not the role the execution's request names"):
        invoke(stack, GRANT, forged)

    assert policies(stack, "AmazonMWAA-someone-else") == {}


def test_a_grant_event_of_an_execution_for_other_environments_is_refused(waiting):
    stack, execution_arn = waiting
    forged = scheduled_payload(stack, execution_arn, "GrantPermissions")
    forged["plan"]["target"]["name"] = "somewhere-else"
    with pytest.raises(
        InvalidMigrationRequest, match="was started for analytics-prod to analytics-prod-2-10"
    ):
        invoke(stack, GRANT, forged)


def test_a_grant_event_naming_no_execution_of_this_state_machine_is_refused(waiting):
    stack, execution_arn = waiting
    forged = scheduled_payload(stack, execution_arn, "GrantPermissions")
    forged["executionId"] = execution_arn.replace(":execution:", ":execution:other-machine-", 1)
    with pytest.raises(InvalidMigrationRequest, match="is not an execution of"):
        invoke(stack, GRANT, forged)


def test_the_real_grant_event_may_be_repeated_while_the_execution_runs(waiting):
    stack, execution_arn = waiting
    before = policies(stack, SOURCE_ROLE)
    result = invoke(stack, GRANT, scheduled_payload(stack, execution_arn, "GrantPermissions"))
    assert len(result["policies"]) == 2
    assert policies(stack, SOURCE_ROLE) == before


def test_a_failure_event_naming_another_policy_removes_only_this_migrations(waiting):
    stack, execution_arn = waiting
    # Someone's deny policy on the same role, which the forged event asks the clean-up to remove.
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
    stack.iam.put_role_policy(RoleName=SOURCE_ROLE, PolicyName="keep-me", PolicyDocument=json.dumps(deny))
    plan = scheduled_payload(stack, execution_arn, "GrantPermissions")["plan"]
    plan["policies"] = [{"roleName": SOURCE_ROLE, "policyName": "keep-me", "document": {}}]
    forged = {
        "executionId": execution_arn,
        "state": {"plan": plan, "error": {"Error": "Forged", "Cause": "forged"}},
    }

    invoke(stack, RECORD_FAILURE, forged)

    remaining = policies(stack, SOURCE_ROLE)
    assert "keep-me" in remaining
    assert not [name for name in remaining if name.startswith("mwaa-migrate-")]


# ------------------------------------------------------------------ the DAGs' conf


def _trigger_event() -> dict[str, Any]:
    return dict(json.loads((REPO_ROOT / "events" / "trigger_dag.json").read_text()))


def test_a_trigger_cannot_send_the_export_to_another_bucket_or_key():
    step = parse_model(TriggerDagEvent, _trigger_event())
    stack = {"bucket": step.conf.bucket, "kms_key_arn": step.conf.kms_key_id}
    step.conf.require_stack(**stack)  # the recorded event is the stack's own
    with pytest.raises(InvalidMigrationRequest, match="conf.bucket: .* is not this stack's bucket"):
        step.conf.require_stack(**{**stack, "bucket": "someone-elses-bucket"})
    with pytest.raises(InvalidMigrationRequest, match="conf.kmsKeyId: .* is not this stack's key"):
        step.conf.require_stack(**{**stack, "kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/other"})


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("migrationId", "analytics-prod.elsewhere", "conf.migrationId: is not the id"),
        ("prefix", "migrations/analytics-prod/elsewhere", "conf.prefix: is not the prefix"),
    ],
)
def test_a_trigger_cannot_point_one_migration_at_anothers_export(field, value, rule):
    event = _trigger_event()
    event["conf"][field] = value
    with pytest.raises(InvalidMigrationRequest, match=rule):
        parse_model(TriggerDagEvent, event)


def test_a_trigger_cannot_run_the_dag_on_a_third_environment():
    event = _trigger_event()
    event["deployment"]["environmentName"] = "payments-prod"
    with pytest.raises(InvalidMigrationRequest, match="neither the conf's source nor its target"):
        parse_model(TriggerDagEvent, event)
