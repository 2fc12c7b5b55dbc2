"""The IAM a deployer needs (docs/deployer-policy.json) and CloudFormation's service role
(docs/cloudformation-service-role.json): in step with template.yaml, enough for every resource the
stack holds, and nothing a deployer could use around the stack."""

from __future__ import annotations

import copy
import importlib.util
import json
from fnmatch import fnmatchcase
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deployer_policy", ROOT / "scripts" / "deployer_policy.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_yaml.load(str(ROOT / "template.yaml"))  # type: ignore[no-any-return]


def _allowed(document: dict[str, Any], action: str, resource: str) -> bool:
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        if (
            statement["Effect"] == "Allow"
            and any(fnmatchcase(action, pattern) for pattern in actions)
            and any(fnmatchcase(resource, pattern) for pattern in resources)
        ):
            return True
    return False


def test_the_files_are_what_the_template_gives(generator: ModuleType):
    for path, text in generator.rendered().items():
        assert path.read_text() == text, f"{path.name} differs from template.yaml: run make docs"


def test_the_stack_holds_what_sam_makes_of_its_types(generator: ModuleType, template: dict[str, Any]):
    types = generator.deployed_types(template)
    assert {"AWS::Lambda::Function", "AWS::StepFunctions::StateMachine", "AWS::IAM::Role"} <= set(types)
    assert {"AWS::Events::Rule", "AWS::Lambda::Permission", "AWS::KMS::Key", "AWS::S3::Bucket"} <= set(types)
    assert not [kind for kind in types if kind.startswith("AWS::Serverless::")]


def test_a_type_the_generator_cannot_expand_fails_it(generator: ModuleType, template: dict[str, Any]):
    changed = copy.deepcopy(template)
    changed["Resources"]["Api"] = {"Type": "AWS::Serverless::Api", "Properties": {}}
    with pytest.raises(generator.UnknownResourceType, match="AWS::Serverless::Api"):
        generator.deployed_types(changed)
    changed = copy.deepcopy(template)
    changed["Resources"]["PlanMigrationFunction"]["Properties"]["Events"] = {"Sqs": {"Type": "SQS"}}
    with pytest.raises(generator.UnknownResourceType, match="SQS events"):
        generator.deployed_types(changed)


def test_the_service_role_allows_every_handler_permission_iam_knows_on_the_stacks_names(
    generator: ModuleType, template: dict[str, Any]
):
    role = json.loads((ROOT / "docs" / "cloudformation-service-role.json").read_text())
    sample = {
        "iam": "arn:aws:iam::123456789012:role/mwaa-migrate-PlanMigrationFunctionRole-ABC",
        "lambda": "arn:aws:lambda:us-east-1:123456789012:function:mwaa-migrate-PlanMigrationFunction-ABC",
        "states": "arn:aws:states:us-east-1:123456789012:stateMachine:mwaa-migrate-migration",
        "events": "arn:aws:events:us-east-1:123456789012:rule/mwaa-migrate-migration-stopped",
        "sqs": "arn:aws:sqs:us-east-1:123456789012:mwaa-migrate-MigrationRequestDeadLetterQueue-ABC",
        "logs": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/mwaa-migrate/PlanMigration",
        "s3": "arn:aws:s3:::mwaa-migrate-migrationbucket-abc",
        "kms": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "ec2": "*",
    }
    needed = set().union(
        *(generator.handler_permissions(kind) for kind in generator.deployed_types(template))
    )
    missing = [
        action
        for action in sorted(needed)
        if generator.known_to_iam(action)
        and action.split(":")[0] not in generator.UNUSED_SERVICES
        and not _allowed(role["PolicyDocument"], action, sample.get(action.split(":")[0], "*"))
        and not _allowed(role["PolicyDocument"], action, "*")
    ]
    assert missing == []
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "cloudformation.amazonaws.com"
    }


def test_the_service_role_cannot_touch_roles_or_functions_of_other_stacks():
    role = json.loads((ROOT / "docs" / "cloudformation-service-role.json").read_text())["PolicyDocument"]
    assert not _allowed(role, "iam:PutRolePolicy", "arn:aws:iam::123456789012:role/service-role/AmazonMWAA-x")
    assert not _allowed(role, "iam:CreateRole", "arn:aws:iam::123456789012:role/admin")
    assert not _allowed(role, "lambda:UpdateFunctionCode", "arn:aws:lambda:us-east-1:1:function:payroll")
    assert not _allowed(role, "s3:PutBucketPolicy", "arn:aws:s3:::airflow-analytics-prod")
    assert _allowed(role, "iam:PutRolePolicy", "arn:aws:iam::123456789012:role/mwaa-migrate-FnRole-X")


def test_the_deployer_acts_only_through_this_stack():
    policy = json.loads((ROOT / "docs" / "deployer-policy.json").read_text())
    actions = {
        action
        for statement in policy["Statement"]
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert {action.split(":")[0] for action in actions} == {"cloudformation", "s3", "iam"}
    assert [action for action in actions if action.startswith("iam:")] == ["iam:PassRole"]
    [passing] = [s for s in policy["Statement"] if s["Action"] == "iam:PassRole"]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}
    assert passing["Resource"].endswith(":role/mwaa-migrate-cloudformation")
    stack = "arn:aws:cloudformation:us-east-1:123456789012:stack/mwaa-migrate/abc"
    assert _allowed(policy, "cloudformation:ExecuteChangeSet", stack)
    other = "arn:aws:cloudformation:us-east-1:123456789012:stack/payroll/abc"
    assert not _allowed(policy, "cloudformation:ExecuteChangeSet", other)
    assert not _allowed(policy, "s3:PutObject", "arn:aws:s3:::mwaa-migrate-migrationbucket-abc/x")
