"""The evaluator decides as IAM does for the elements and operators the project's policies use."""

from __future__ import annotations

from typing import Any

import pytest

from tests.iam.evaluator import Request, UnsupportedPolicy, arn_like, evaluate

BUCKET = "arn:aws:s3:::mwaa-migrate-local"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234"


def allow(
    action: Any, resource: Any, condition: dict[str, Any] | None = None, sid: str = "A"
) -> dict[str, Any]:
    statement = {"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource}
    if condition is not None:
        statement["Condition"] = condition
    return statement


def test_an_action_no_statement_names_is_implicitly_denied() -> None:
    decision = evaluate([allow("s3:GetObject", f"{BUCKET}/*")], Request("s3:PutObject", f"{BUCKET}/a"))

    assert (decision.allowed, decision.reason) == (False, "no statement allows it")


def test_an_explicit_deny_wins_over_any_allow() -> None:
    statements = [
        allow("iam:*", "*"),
        {
            "Sid": "Never",
            "Effect": "Deny",
            "Action": "iam:PutRolePolicy",
            "Resource": "arn:aws:iam::1:role/stack-*",
        },
    ]

    denied = evaluate(statements, Request("iam:PutRolePolicy", "arn:aws:iam::1:role/stack-Role-X"))
    allowed = evaluate(statements, Request("iam:PutRolePolicy", "arn:aws:iam::1:role/other"))

    assert (denied.allowed, denied.reason) == (False, "explicitly denied by Never")
    assert allowed.allowed


def test_actions_match_with_wildcards_and_ignore_case() -> None:
    statements = [allow("S3:Get*", "*")]

    assert evaluate(statements, Request("s3:GetObjectVersion", f"{BUCKET}/a")).allowed
    assert not evaluate(statements, Request("s3:PutObject", f"{BUCKET}/a")).allowed


def test_a_resource_wildcard_stays_within_its_arn_part() -> None:
    assert arn_like("arn:aws:s3:::airflow-*/*", "arn:aws:s3:::airflow-prod/dags/a.py")
    assert arn_like(
        "arn:aws:logs:us-east-1:1:log-group:airflow-*-Task:*",
        "arn:aws:logs:us-east-1:1:log-group:airflow-x-Task:log-stream:a/b",
    )
    # `*` in the region part does not reach into the account part.
    assert not arn_like("arn:aws:kms:*::key/a", "arn:aws:kms:us-east-1:1:key/a")
    assert arn_like("arn:aws:kms:*:*:key/a", "arn:aws:kms:us-east-1:1:key/a")
    # ... but within the resource part it crosses slashes and colons: a bucket pattern covers objects.
    assert arn_like("arn:aws:s3:::airflow-*", "arn:aws:s3:::airflow-prod/dags/a.py")
    # case-sensitive
    assert not arn_like("arn:aws:s3:::Airflow-*", "arn:aws:s3:::airflow-prod")


def test_not_action_and_not_resource_apply_to_everything_else() -> None:
    statements = [{"Effect": "Allow", "NotAction": "iam:*", "NotResource": f"{BUCKET}/secret/*"}]

    assert evaluate(statements, Request("s3:GetObject", f"{BUCKET}/a")).allowed
    assert not evaluate(statements, Request("s3:GetObject", f"{BUCKET}/secret/a")).allowed
    assert not evaluate(statements, Request("iam:GetRole", "arn:aws:iam::1:role/a")).allowed


@pytest.mark.parametrize(
    ("operator", "wanted", "context", "allowed"),
    [
        ("StringEquals", "m-1", {"kms:EncryptionContext:mwaa-migrate-migration": "m-1"}, True),
        ("StringEquals", "m-1", {"kms:EncryptionContext:mwaa-migrate-migration": "m-2"}, False),
        # condition key names are case-insensitive, values are not
        ("StringEquals", "m-1", {"KMS:EncryptionContext:MWAA-migrate-migration": "m-1"}, True),
        ("StringEquals", "M-1", {"kms:EncryptionContext:mwaa-migrate-migration": "m-1"}, False),
        ("StringEqualsIgnoreCase", "M-1", {"kms:EncryptionContext:mwaa-migrate-migration": "m-1"}, True),
        ("StringLike", "*", {"kms:EncryptionContext:mwaa-migrate-migration": "m-1"}, True),
        # the key the request does not carry: no positive operator matches (the bug of issue 10)
        ("StringLike", "*", {"kms:EncryptionContext:mwaa-migrate:migration": "m-1"}, False),
        ("StringLike", "*", {}, False),
        ("StringLikeIfExists", "m-*", {}, True),
        ("StringNotEquals", "m-1", {}, True),
        ("StringNotEquals", "m-1", {"kms:EncryptionContext:mwaa-migrate-migration": "m-1"}, False),
        ("StringNotLike", "x-*", {"kms:EncryptionContext:mwaa-migrate-migration": "m-1"}, True),
    ],
)
def test_string_conditions(operator: str, wanted: str, context: dict[str, str], allowed: bool) -> None:
    statements = [
        allow("kms:Decrypt", KEY, {operator: {"kms:EncryptionContext:mwaa-migrate-migration": wanted}})
    ]

    assert evaluate(statements, Request("kms:Decrypt", KEY, context)).allowed is allowed


def test_a_condition_with_several_values_matches_any_of_them() -> None:
    statements = [allow("s3:ListBucket", BUCKET, {"StringLike": {"s3:prefix": ["a/*", "b/*"]}})]

    assert evaluate(statements, Request("s3:ListBucket", BUCKET, {"s3:prefix": "b/x"})).allowed
    assert not evaluate(statements, Request("s3:ListBucket", BUCKET, {"s3:prefix": "c/x"})).allowed


def test_every_key_and_every_operator_of_a_condition_must_match() -> None:
    condition = {
        "StringEquals": {"events:source": "mwaa.migration", "events:detail-type": "Migration Started"},
        "ArnLike": {"aws:SourceArn": "arn:aws:states:*:1:stateMachine:x"},
    }
    statements = [allow("events:PutEvents", "*", condition)]
    context = {
        "events:source": "mwaa.migration",
        "events:detail-type": "Migration Started",
        "aws:SourceArn": "arn:aws:states:us-east-1:1:stateMachine:x",
    }

    assert evaluate(statements, Request("events:PutEvents", "*", context)).allowed
    assert not evaluate(
        statements, Request("events:PutEvents", "*", {**context, "events:source": "x"})
    ).allowed
    assert not evaluate(
        statements,
        Request(
            "events:PutEvents", "*", {**context, "aws:SourceArn": "arn:aws:states:us-east-1:1:stateMachine:y"}
        ),
    ).allowed


def test_bool_and_null_conditions() -> None:
    grant = [allow("kms:CreateGrant", KEY, {"Bool": {"kms:GrantIsForAWSResource": "true"}})]
    tagged = [allow("airflow:DeleteEnvironment", "*", {"Null": {"aws:ResourceTag/owner": "false"}})]

    assert evaluate(grant, Request("kms:CreateGrant", KEY, {"kms:GrantIsForAWSResource": True})).allowed
    assert not evaluate(grant, Request("kms:CreateGrant", KEY, {"kms:GrantIsForAWSResource": False})).allowed
    assert not evaluate(grant, Request("kms:CreateGrant", KEY, {})).allowed
    assert evaluate(
        tagged, Request("airflow:DeleteEnvironment", "x", {"aws:ResourceTag/owner": "me"})
    ).allowed
    assert not evaluate(tagged, Request("airflow:DeleteEnvironment", "x", {})).allowed


def test_set_operators_on_a_multivalued_key() -> None:
    any_value = [
        allow("kms:Decrypt", KEY, {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["a"]}})
    ]
    all_values = [
        allow("kms:Decrypt", KEY, {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["a"]}})
    ]

    assert evaluate(any_value, Request("kms:Decrypt", KEY, {"kms:EncryptionContextKeys": ["a", "b"]})).allowed
    assert not evaluate(any_value, Request("kms:Decrypt", KEY, {})).allowed
    assert not evaluate(
        all_values, Request("kms:Decrypt", KEY, {"kms:EncryptionContextKeys": ["a", "b"]})
    ).allowed
    assert evaluate(all_values, Request("kms:Decrypt", KEY, {"kms:EncryptionContextKeys": ["a"]})).allowed
    # ForAllValues holds for a key the request does not carry (IAM user guide's warning)
    assert evaluate(all_values, Request("kms:Decrypt", KEY, {})).allowed


def test_what_the_evaluator_does_not_know_raises_instead_of_guessing() -> None:
    numeric = [allow("s3:ListBucket", BUCKET, {"NumericLessThan": {"s3:max-keys": "10"}})]
    principal = [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}]

    with pytest.raises(UnsupportedPolicy, match="NumericLessThan"):
        evaluate(numeric, Request("s3:ListBucket", BUCKET, {"s3:max-keys": "5"}))
    with pytest.raises(UnsupportedPolicy, match="Principal"):
        evaluate(principal, Request("s3:ListBucket", BUCKET))
    with pytest.raises(UnsupportedPolicy, match="six parts"):
        evaluate([allow("kms:Decrypt", "arn:aws:kms:*")], Request("kms:Decrypt", KEY))
    with pytest.raises(UnsupportedPolicy, match="multivalued"):
        evaluate(
            [allow("kms:Decrypt", KEY, {"StringEquals": {"k": "a"}})],
            Request("kms:Decrypt", KEY, {"k": ["a"]}),
        )
