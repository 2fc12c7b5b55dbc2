"""The tier can fail: one migration's recorded calls, evaluated against a policy with one statement
dropped, one condition key changed or one resource narrowed, give a denial of exactly that call.

The default scenario's migration (copying the failed tasks' logs only) runs once for the module;
its calls are also checked against the real policies by the suite's own IAM check
(tests/conftest.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from emulation.faults import instant_botocore_retries
from emulation.local_stack import LocalStack, scenario_path
from emulation.scenario import Scenario
from tests.iam import recorder
from tests.iam.recorder import Call
from tests.iam.template import STATE_MACHINE, load_template
from tests.iam.tier import KNOWN_GAPS, Denial, KnownGap, RolePolicies, denials


@pytest.fixture(scope="module")
def calls() -> list[Call]:
    scenario = Scenario.load(scenario_path("default"))
    # The scenario's throttling outlasts botocore's retries: their backoffs recorded, not slept.
    with recorder.recording() as recorded, instant_botocore_retries(), LocalStack(scenario) as stack:
        # failedTasksOnly: the log listing opens the export (which task instances failed) too.
        execution = stack.start(execution_input={**scenario.input, "failedTasksOnly": True})
        described = stack.wait(execution, timeout_seconds=180)
    # A whole migration, every step's calls: a failed one would leave calls unevaluated.
    assert described["status"] == "SUCCEEDED", described.get("error")
    return recorded


def _statement(template: Mapping[str, Any], resource: str, sid: str) -> dict[str, Any]:
    for policy in template["Resources"][resource]["Properties"]["Policies"]:
        for statement in policy.get("Statement", []) if isinstance(policy, Mapping) else []:
            if statement.get("Sid") == sid:
                return statement  # type: ignore[no-any-return]
    raise LookupError(f"{resource} has no statement {sid}: update the mutation to the template")


def _drop(template: Mapping[str, Any], resource: str, sid: str) -> None:
    dropped = _statement(template, resource, sid)
    for policy in template["Resources"][resource]["Properties"]["Policies"]:
        if isinstance(policy, dict) and dropped in policy.get("Statement", []):
            policy["Statement"].remove(dropped)


def _new_denials(calls: list[Call], **mutated: Any) -> set[tuple[str, str]]:
    """(principal's last name part, action) of the denials the mutation adds."""

    def key(found: Denial | str) -> tuple[str, str]:
        assert isinstance(found, Denial), found
        return found.call.principal.rsplit("/", 1)[-1], found.request.action

    before = {key(found) for found in denials(calls)}
    return {key(found) for found in denials(calls, **mutated)} - before


def _grant_statement(documents: RolePolicies, sid: str) -> tuple[RolePolicies, dict[str, Any]]:
    changed = copy.deepcopy(documents)
    for _, document in changed:
        for statement in document["Statement"]:
            if statement.get("Sid") == sid:
                return changed, statement
    raise LookupError(f"no grant statement {sid}")


def _mutate_grants(change: Callable[[RolePolicies], RolePolicies]) -> Callable[[RolePolicies], RolePolicies]:
    return lambda documents: change(documents) if documents else documents


def test_the_migration_is_evaluated_for_the_state_machine_the_functions_and_the_execution_role(
    calls: list[Call],
) -> None:
    principals = {call.principal for call in calls}

    assert STATE_MACHINE in principals
    assert "arn:aws:iam::123456789012:role/service-role/AmazonMWAA-analytics-prod" in principals
    assert len({p for p in principals if p.endswith("Function")}) >= 10
    assert sum(len(call.requests) for call in calls) >= len(calls)


def test_dropping_a_statement_denies_the_calls_it_allowed(calls: list[Call]) -> None:
    template = load_template()
    _drop(template, "CloneEnvironmentFunction", "PassExecutionRoleToMwaa")

    assert ("CloneEnvironmentFunction", "iam:PassRole") in _new_denials(calls, template=template)


def test_without_list_bucket_a_missing_object_is_a_denial_not_a_404(calls: list[Call]) -> None:
    """FinishMigration looks for a DAG file it already removed: S3 says 404 only with s3:ListBucket."""
    template = load_template()
    _drop(template, "FinishMigrationFunction", "TellRemovedDagFilesFromDenied")

    assert _new_denials(calls, template=template) == {("FinishMigrationFunction", "s3:ListBucket")}


def test_dropping_a_sam_policy_template_denies_the_state_machine_its_invocations(calls: list[Call]) -> None:
    template = load_template()
    policies = template["Resources"][STATE_MACHINE]["Properties"]["Policies"]
    policies[:] = [
        policy
        for policy in policies
        if policy.get("LambdaInvokePolicy", {}).get("FunctionName", {}).get("Ref")
        != "CheckEnvironmentFunction"
    ]

    assert (STATE_MACHINE, "lambda:InvokeFunction") in _new_denials(calls, template=template)


def test_changing_a_condition_key_denies_the_calls_it_allowed(calls: list[Call]) -> None:
    template = load_template()
    condition = _statement(template, "CloneEnvironmentFunction", "PassExecutionRoleToMwaa")["Condition"]
    condition["StringEquals"] = {
        "iam:AssociatedResourceArn": condition["StringEquals"]["iam:PassedToService"]
    }

    assert ("CloneEnvironmentFunction", "iam:PassRole") in _new_denials(calls, template=template)


def test_a_condition_on_an_encryption_context_key_the_export_does_not_use_denies_the_log_listing(
    calls: list[Call],
) -> None:
    """Issue 10's finding: ListLogStreams could decrypt only under `mwaa-migrate:migration`, a key
    the export's encryption context does not have (it has `mwaa-migrate-migration`)."""
    template = load_template()
    condition = _statement(template, "ListLogStreamsFunction", "OpenExportDataKey")["Condition"]
    [(operator, keys)] = condition.items()
    [(key, value)] = keys.items()
    condition[operator] = {key.replace("mwaa-migrate-migration", "mwaa-migrate:migration"): value}

    assert _new_denials(calls, template=template) == {("ListLogStreamsFunction", "kms:Decrypt")}


def test_a_grant_condition_on_an_encryption_context_key_the_export_does_not_use_denies_the_export(
    calls: list[Call],
) -> None:
    """Issue 10's finding: a KMS condition key that never matches (`:` for `-`)."""

    def change(documents: RolePolicies) -> RolePolicies:
        changed, statement = _grant_statement(documents, "SealMigrationExport")
        [(key, value)] = statement["Condition"]["StringEquals"].items()
        statement["Condition"]["StringEquals"] = {
            key.replace("mwaa-migrate-migration", "mwaa-migrate:migration"): value
        }
        return changed

    found = _new_denials(calls, role_policies=_mutate_grants(change))

    assert found == {("AmazonMWAA-analytics-prod", "kms:GenerateDataKey")}


def test_dropping_a_grant_denies_the_dag_its_calls(calls: list[Call]) -> None:
    def change(documents: RolePolicies) -> RolePolicies:
        changed, statement = _grant_statement(documents, "ReadMigrationExport")
        statement["Action"] = ["s3:GetObjectTagging"]
        return changed

    assert ("AmazonMWAA-analytics-prod", "s3:GetObject") in _new_denials(
        calls, role_policies=_mutate_grants(change)
    )


def test_narrowing_a_resource_denies_the_calls_outside_it(calls: list[Call]) -> None:
    template = load_template()
    statement = _statement(template, "DeployDagFunction", "WriteDagFiles")
    statement["Resource"] = {
        "Fn::Sub": statement["Resource"]["Fn::Sub"].replace("airflow-*/*", "airflow-*/plugins/*")
    }

    assert ("DeployDagFunction", "s3:PutObject") in _new_denials(calls, template=template)


def test_an_explicit_deny_overrides_the_allow(calls: list[Call]) -> None:
    template = load_template()
    policies = template["Resources"]["CheckDagRunFunction"]["Properties"]["Policies"]
    policies.append(
        {"Statement": [{"Sid": "NoReads", "Effect": "Deny", "Action": "s3:Get*", "Resource": "*"}]}
    )

    assert ("CheckDagRunFunction", "s3:GetObject") in _new_denials(calls, template=template)


@pytest.mark.parametrize("gap", KNOWN_GAPS, ids=lambda gap: f"{gap.action} for {gap.operation}")
def test_a_known_gap_is_still_a_gap_until_its_fix_removes_it(calls: list[Call], gap: KnownGap) -> None:
    assert any(gap.covers(found) for found in denials(calls)), f"fixed: remove it from KNOWN_GAPS ({gap.why})"
