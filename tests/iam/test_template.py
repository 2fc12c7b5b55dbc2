"""template.yaml's policies resolve to what the deployed stack's roles would hold."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.iam.template import (
    STATE_MACHINE,
    StackValues,
    UnresolvedTemplate,
    load_template,
    parameter_variables,
    policies,
)

STACK = StackValues(
    region="eu-west-1",
    account_id="210987654321",
    stack_name="mig",
    bucket="mig-bucket",
    key_arn="arn:aws:kms:eu-west-1:210987654321:key/k-1",
)


def _by_sid(statements: list[dict[str, object]], sid: str) -> dict[str, object]:
    [found] = [s for s in statements if s.get("Sid") == sid]
    return found


def test_subs_refs_and_get_atts_resolve_to_the_stacks_values() -> None:
    resolved = policies(load_template(), STACK)

    writing = _by_sid(resolved["FinishMigrationFunction"], "WriteMigrationReport")
    history = _by_sid(resolved["FinishMigrationFunction"], "ReadExecutionHistoryForDurations")

    assert writing["Resource"] == "arn:aws:s3:::mig-bucket/*"
    assert history["Resource"] == "arn:aws:states:eu-west-1:210987654321:execution:mig-migration:*"
    assert all("${" not in str(s) for statements in resolved.values() for s in statements)


def test_sam_policy_templates_are_expanded_for_the_state_machine() -> None:
    invocations = [
        s for s in policies(load_template(), STACK)[STATE_MACHINE] if s["Action"] == ["lambda:InvokeFunction"]
    ]

    assert "arn:aws:lambda:eu-west-1:210987654321:function:PlanMigrationFunction*" in [
        s["Resource"] for s in invocations
    ]


def test_a_parameter_set_in_the_functions_environment_replaces_its_default() -> None:
    template = load_template()
    assert parameter_variables(template)["NOTIFICATION_TOPIC_ARN"] == "NotificationTopicArn"
    topic = "arn:aws:sns:eu-west-1:210987654321:migrations"

    without = policies(template, STACK)["FinishMigrationFunction"]
    with_topic = policies(template, replace(STACK, parameters=(("NotificationTopicArn", topic),)))

    assert "PublishToNotificationTopic" not in [s.get("Sid") for s in without]
    assert _by_sid(with_topic["FinishMigrationFunction"], "PublishToNotificationTopic")["Resource"] == topic


def test_an_intrinsic_the_resolver_does_not_know_raises() -> None:
    template = load_template()
    statement = template["Resources"]["CheckEnvironmentFunction"]["Properties"]["Policies"][0]["Statement"][0]
    statement["Resource"] = {"Fn::ImportValue": "elsewhere"}

    with pytest.raises(UnresolvedTemplate, match="Fn::ImportValue"):
        policies(template, STACK)
