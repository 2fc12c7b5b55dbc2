"""What IAM a person (or a CI role) needs to deploy this stack with `sam deploy`, written from
template.yaml and CloudFormation's own resource schemas:

- docs/cloudformation-service-role.json: a role only CloudFormation can assume, which creates,
  updates and deletes the stack's resources. Each resource type the stack holds (SAM's types
  expanded to what SAM turns them into) names, in its registry schema (shipped with cfn-lint), the
  permissions its handlers need; those are its policy. Roles it may touch are the stack's only.
- docs/deployer-policy.json: the person's policy: CloudFormation on this stack and SAM's transform,
  SAM CLI's managed deployment bucket, and passing that role to CloudFormation, nothing else. So
  a deployer changes the stack's resources only through the stack (`sam deploy --role-arn`).

Schemas list a few actions IAM does not have (stale or misspelt names, such as
s3:DeleteBucketCors for s3:PutBucketCORS): those are left out, checked against parliament's table.

    python -m scripts.deployer_policy          # print both
    python -m scripts.deployer_policy --write  # rewrite both files (make docs)
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import cfnlint
from cfnlint.decode import cfn_yaml

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # parliament imports pkg_resources, deprecated
    from parliament import (
        UnknownActionException,
        UnknownPrefixException,
        analyze_policy_string,
        expand_action,
    )

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
POLICY = ROOT / "docs" / "deployer-policy.json"
SERVICE_ROLE_FILE = ROOT / "docs" / "cloudformation-service-role.json"
SERVICE_ROLE = "mwaa-migrate-cloudformation"
SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"
# The stack names samconfig.toml's environments deploy (mwaa-migrate, mwaa-migrate-prod).
STACK_PATTERN = "mwaa-migrate*"
# What SAM turns its own types into (and an EventBridgeRule event into), as deployed.
SAM_TYPES: dict[str, tuple[str, ...]] = {
    "AWS::Serverless::Function": ("AWS::Lambda::Function", "AWS::IAM::Role"),
    "AWS::Serverless::LayerVersion": ("AWS::Lambda::LayerVersion",),
    "AWS::Serverless::StateMachine": ("AWS::StepFunctions::StateMachine", "AWS::IAM::Role"),
}
SAM_EVENTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("AWS::Serverless::Function", "EventBridgeRule"): ("AWS::Events::Rule", "AWS::Lambda::Permission"),
    # The rule starts the execution through a role SAM creates for it.
    ("AWS::Serverless::StateMachine", "EventBridgeRule"): ("AWS::Events::Rule", "AWS::IAM::Role"),
}
HANDLERS = ("create", "read", "update", "delete")
# Where each service's actions may act: the names this stack gives its resources (the stack's name
# first, as template.yaml writes them; SAM's generated names start with it too).
STACK_RESOURCES: dict[str, list[str]] = {
    "iam": [f"arn:aws:iam::*:role/{STACK_PATTERN}"],
    "lambda": [f"arn:aws:lambda:*:*:function:{STACK_PATTERN}", f"arn:aws:lambda:*:*:layer:{STACK_PATTERN}"],
    "states": [f"arn:aws:states:*:*:stateMachine:{STACK_PATTERN}"],
    "events": [f"arn:aws:events:*:*:event-bus/{STACK_PATTERN}", f"arn:aws:events:*:*:rule/{STACK_PATTERN}"],
    "sqs": [f"arn:aws:sqs:*:*:{STACK_PATTERN}"],
    "logs": [
        f"arn:aws:logs:*:*:log-group:/aws/lambda/{STACK_PATTERN}",
        f"arn:aws:logs:*:*:log-group:/aws/vendedlogs/states/{STACK_PATTERN}",
    ],
    "s3": [f"arn:aws:s3:::{STACK_PATTERN}"],
}
# Services whose actions name no resource IAM could scope here, and why.
UNNAMED_RESOURCES: dict[str, str] = {
    "ec2": "Describe* actions support no resource-level permissions",
    "kms": "a key's ARN is a random id known only once created (kms:CreateKey names no resource)",
}
# Handlers list these for features the stack does not use (EFS and S3 Files mounts, Firehose log
# delivery, S3 Tables): left out, so the role cannot touch them.
UNUSED_SERVICES = frozenset({"elasticfilesystem", "firehose", "s3files", "s3tables"})


class UnknownResourceType(ValueError):
    """A type this generator cannot expand or find a schema for: the policy would be incomplete."""


def deployed_types(template: dict[str, Any]) -> list[str]:
    """Every CloudFormation resource type the stack holds once SAM's transform ran."""
    types: set[str] = set()
    for name, resource in template.get("Resources", {}).items():
        kind = str(resource.get("Type"))
        if kind.startswith("AWS::Serverless::"):
            if kind not in SAM_TYPES:
                raise UnknownResourceType(f"{name}: {kind} is not expanded by scripts/deployer_policy.py")
            types.update(SAM_TYPES[kind])
            for event_name, event in (resource.get("Properties", {}).get("Events") or {}).items():
                key = (kind, str(event.get("Type")))
                if key not in SAM_EVENTS:
                    raise UnknownResourceType(f"{name}.Events.{event_name}: {key[1]} events are not expanded")
                types.update(SAM_EVENTS[key])
        else:
            types.add(kind)
    return sorted(types)


@cache
def _schema_index() -> dict[str, str]:
    return json.loads((SCHEMAS / "providers" / "us-east-1.json").read_text())  # type: ignore[no-any-return]


def handler_permissions(resource_type: str) -> set[str]:
    """The permissions CloudFormation's registry schema lists for the type's handlers."""
    file = _schema_index().get(resource_type)
    if file is None:
        raise UnknownResourceType(f"{resource_type} has no CloudFormation resource schema")
    schema = json.loads((SCHEMAS / "resources" / f"{file}.json").read_text())
    handlers = schema.get("handlers") or {}
    return {
        permission
        for handler in HANDLERS
        for permission in (handlers.get(handler) or {}).get("permissions", [])
        if permission
    }


def known_to_iam(action: str) -> bool:
    """Whether IAM has the action (parliament's table of the Service Authorization Reference)."""
    try:
        expand_action(action)
    except (UnknownActionException, UnknownPrefixException):
        return False
    return True


def _needing_other_resources(actions: list[str], resources: list[str]) -> list[str]:
    """The actions IAM would not match against `resources` (parliament's RESOURCE_MISMATCH)."""
    statement = {"Effect": "Allow", "Action": actions, "Resource": resources}
    policy = analyze_policy_string(json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    return sorted(
        {
            str(item["action"])
            for finding in policy.findings
            if finding.issue == "RESOURCE_MISMATCH"
            for item in finding.detail
        }
    )


def _by_service(actions: Iterable[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for action in sorted(set(actions)):
        grouped.setdefault(action.split(":", 1)[0], []).append(action)
    return grouped


def service_role_permissions(template: dict[str, Any]) -> list[str]:
    """Every action the stack's resource handlers need that IAM knows, but for the services of
    features the stack does not use."""
    needed = set().union(*(handler_permissions(kind) for kind in deployed_types(template)))
    return sorted(
        action for action in needed if known_to_iam(action) and action.split(":", 1)[0] not in UNUSED_SERVICES
    )


def service_role(template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation service role: its trust policy and its one inline policy, each service's
    actions on the resources of this stack's names only, where IAM can name them."""
    grouped = _by_service(service_role_permissions(template))
    unscoped = sorted(grouped.keys() - STACK_RESOURCES.keys() - UNNAMED_RESOURCES.keys())
    if unscoped:
        raise UnknownResourceType(f"no resources named for the actions of {', '.join(unscoped)}")
    statements = []
    for service, service_actions in grouped.items():
        sid = "".join(part.title() for part in service.split("-"))
        resources = STACK_RESOURCES.get(service)
        anywhere = (
            service_actions if resources is None else _needing_other_resources(service_actions, resources)
        )
        named = [action for action in service_actions if action not in anywhere]
        if named:
            statements.append({"Sid": sid, "Effect": "Allow", "Action": named, "Resource": resources})
        if anywhere:
            # Actions IAM scopes by no resource (or by one the stack never names, such as a
            # Lambda code-signing config): "*" is the only Resource that lets them act.
            statements.append(
                {"Sid": f"{sid}WithoutResourceLevel", "Effect": "Allow", "Action": anywhere, "Resource": "*"}
            )
    return {
        "RoleName": SERVICE_ROLE,
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudformation.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
    }


def deployer_policy() -> dict[str, Any]:
    """The person's policy: the stack through CloudFormation and the service role, nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DeployThisStack",
                "Effect": "Allow",
                "Action": [
                    "cloudformation:CreateChangeSet",
                    "cloudformation:DeleteChangeSet",
                    "cloudformation:DeleteStack",
                    "cloudformation:DescribeChangeSet",
                    "cloudformation:DescribeStackEvents",
                    "cloudformation:DescribeStackResource",
                    "cloudformation:DescribeStackResources",
                    "cloudformation:DescribeStacks",
                    "cloudformation:ExecuteChangeSet",
                    "cloudformation:GetTemplate",
                    "cloudformation:ListStackResources",
                ],
                "Resource": [
                    f"arn:aws:cloudformation:*:*:stack/{STACK_PATTERN}/*",
                    "arn:aws:cloudformation:*:aws:transform/Serverless-2016-10-31",
                ],
            },
            {
                # Neither acts on a stack that exists yet.
                "Sid": "ReadTemplates",
                "Effect": "Allow",
                "Action": ["cloudformation:GetTemplateSummary", "cloudformation:ValidateTemplate"],
                "Resource": "*",
            },
            {
                # resolve_s3: the packaged code and template go to SAM CLI's managed bucket (made
                # once per account and Region by `sam deploy --resolve-s3` with an admin's rights).
                "Sid": "SamManagedDeploymentBucket",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:GetBucketLocation", "s3:ListBucket"],
                "Resource": [
                    "arn:aws:s3:::aws-sam-cli-managed-default-samclisourcebucket-*",
                    "arn:aws:s3:::aws-sam-cli-managed-default-samclisourcebucket-*/*",
                ],
            },
            {
                "Sid": "ReadSamManagedStack",
                "Effect": "Allow",
                "Action": ["cloudformation:DescribeStacks"],
                "Resource": "arn:aws:cloudformation:*:*:stack/aws-sam-cli-managed-default/*",
            },
            {
                "Sid": "PassTheServiceRoleToCloudFormation",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": f"arn:aws:iam::*:role/{SERVICE_ROLE}",
                "Condition": {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
            },
        ],
    }


def rendered() -> dict[Path, str]:
    template = cfn_yaml.load(str(TEMPLATE))
    return {
        SERVICE_ROLE_FILE: json.dumps(service_role(template), indent=2) + "\n",
        POLICY: json.dumps(deployer_policy(), indent=2) + "\n",
    }


def main(argv: list[str]) -> int:
    for path, text in rendered().items():
        if "--write" in argv:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
        else:
            sys.stdout.write(f"# {path.relative_to(ROOT)}\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
