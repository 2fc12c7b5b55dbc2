"""Lint every IAM policy the project writes with parliament, which knows IAM's actions, resource
types and condition keys: the functions' and the state machine's policies and the resource policies
in template.yaml, and the temporary policies GrantPermissions puts on the execution roles (grants.py).

The template's intrinsics are resolved to sample values first (parliament reads plain JSON). A
finding fails `make lint` unless it is waived below, with the reason."""

from __future__ import annotations

import json
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # parliament imports pkg_resources, deprecated
    from parliament import analyze_policy_string

from mwaa_migrate.run.grants import migration_policies

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT, REGION, PARTITION, STACK = "123456789012", "us-east-1", "aws", "mwaa-migrate"
SAMPLE_ARNS = {
    "MigrationBucket.Arn": f"arn:{PARTITION}:s3:::{STACK}-migrationbucket-0123456789ab",
    "MigrationKey.Arn": f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/00000000-0000-4000-8000-000000000000",
    "SealingKey.Arn": f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555",
    "MigrationEventBus.Arn": f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:event-bus/{STACK}-migrations",
    "MigrationRequestDeadLetterQueue.Arn": f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{STACK}-dlq",
}
# What parliament says that is right here, and why: (issue, action or "*") -> reason.
WAIVERS: dict[tuple[str, str], str] = {
    # EC2's Describe* actions and CloudWatch Logs' log-delivery actions support no resource-level
    # permissions (their statements say so in the template).
    ("RESOURCE_STAR", "*"): "actions without resource-level permissions",
    # parliament's action table knows only the express-execution resource of DescribeExecution;
    # the Service Authorization Reference lists the standard "execution" resource first.
    ("RESOURCE_MISMATCH", "states:DescribeExecution"): "standard executions are execution:MACHINE:NAME",
    # CloudWatch Logs' permissions reference names log-group:* for DescribeLogGroups; parliament's
    # table says "*". Both let it list the Region's groups, which is what it does.
    ("RESOURCE_MISMATCH", "logs:DescribeLogGroups"): "log-group:* is the documented resource",
    # CloudFormation's service role writes the stack's own bucket's policy (and its ACL settings):
    # that is the deploy, on the stack's buckets only.
    ("RESOURCE_POLICY_PRIVILEGE_ESCALATION", "*"): "the service role sets the stack's bucket policy",
}


# ARNs parliament misreads, and why.
ARN_WAIVERS = {
    # AWS owns SAM's transform: its account is "aws" (the CloudFormation permissions reference).
    "arn:aws:cloudformation:*:aws:transform/Serverless-2016-10-31": "AWS-owned transform",
}


def _waived(issue: str, detail: Any, location: Any = None) -> bool:
    if issue == "INVALID_ARN" and isinstance(location, dict) and location.get("string") in ARN_WAIVERS:
        return True
    if (issue, "*") in WAIVERS:
        return True
    actions = [item.get("action") for item in detail] if isinstance(detail, list) else []
    return bool(actions) and all((issue, action) in WAIVERS for action in actions)


def _parameter_defaults(template: dict[str, Any]) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for name, parameter in template.get("Parameters", {}).items():
        default = parameter.get("Default", "")
        if parameter.get("Type") == "CommaDelimitedList":
            default = [f"arn:{PARTITION}:iam::{ACCOUNT}:role/deployer"]  # a value, to lint the condition
        elif name == "NotificationTopicArn":
            default = f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:migrations"
        defaults[name] = default
    return defaults


def _resolve(node: Any, parameters: dict[str, Any]) -> Any:
    """Intrinsics to sample values: Ref, Fn::Sub, Fn::GetAtt, Fn::If (the true branch)."""
    if isinstance(node, list):
        return [_resolve(item, parameters) for item in node if item != {"Ref": "AWS::NoValue"}]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"}:
        name = node["Ref"]
        pseudo = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
        if name in pseudo:
            return pseudo[name]
        if name in parameters:
            return parameters[name]
        return f"{STACK}-{name}"
    if set(node) == {"Fn::GetAtt"}:
        target = node["Fn::GetAtt"]
        key = ".".join(target) if isinstance(target, list) else str(target)
        return SAMPLE_ARNS.get(key, f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{key}")
    if set(node) == {"Fn::Sub"}:
        text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
        values = {
            "AWS::Partition": PARTITION,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": STACK,
            **{name: str(value) for name, value in parameters.items()},
            **SAMPLE_ARNS,
        }
        return re.sub(r"\$\{([^}]+)\}", lambda match: values.get(match[1], f"{STACK}-{match[1]}"), text)
    if set(node) == {"Fn::If"}:
        return _resolve(node["Fn::If"][1], parameters)
    return {
        key: _resolve(value, parameters) for key, value in node.items() if value != {"Ref": "AWS::NoValue"}
    }


def _sam_policy(name: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """The SAM policy templates the template uses, as SAM expands them."""
    if name == "LambdaInvokePolicy":
        function = arguments["FunctionName"]
        arn = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{function}"
        return [{"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": [arn, f"{arn}:*"]}]
    raise ValueError(f"unknown SAM policy template {name}: teach lint_policies.py to expand it")


def documents(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, policy document) for every policy in the template, resolved."""
    parameters = _parameter_defaults(template)
    resolved = _resolve(template["Resources"], parameters)
    for name, resource in resolved.items():
        properties = resource.get("Properties", {})
        if resource["Type"] in {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}:
            for index, policy in enumerate(properties.get("Policies", [])):
                if "Statement" in policy:
                    statements = policy["Statement"]
                else:
                    ((template_name, arguments),) = policy.items()
                    statements = _sam_policy(template_name, arguments)
                yield f"{name}.Policies[{index}]", {"Version": "2012-10-17", "Statement": statements}
        elif "PolicyDocument" in properties:
            yield f"{name}.PolicyDocument", properties["PolicyDocument"]
        elif "KeyPolicy" in properties:
            yield f"{name}.KeyPolicy", properties["KeyPolicy"]
        elif resource["Type"] == "AWS::Events::EventBusPolicy":
            yield f"{name}.Statement", {"Version": "2012-10-17", "Statement": [properties["Statement"]]}


def grant_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    roles = f"arn:{PARTITION}:iam::{ACCOUNT}:role/service-role/AmazonMWAA-"
    # An MWAA source (export and import policies), and a self-managed one (the import's only,
    # opening the export with the sealing key).
    samples = (
        ("analytics", f"{roles}analytics", None, ""),
        ("onprem", None, SAMPLE_ARNS["SealingKey.Arn"], " (self-managed source)"),
    )
    for source, source_role, sealing_key, kind in samples:
        for policy in migration_policies(
            prefix="mwaa-migrate",
            migration_id=f"{source}.{source}-next",
            partition=PARTITION,
            region=REGION,
            account_id=ACCOUNT,
            bucket="mwaa-migrate-migrationbucket-0123456789ab",
            object_prefix=f"migrations/{source}/{source}-next",
            source_role_arn=source_role,
            target_role_arn=f"{roles}{source}-next",
            kms_key_arn=SAMPLE_ARNS["MigrationKey.Arn"],
            sealing_key_arn=sealing_key,
        ):
            yield f"grants.py {policy.policy_name}{kind}", policy.document


def deployment_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    """The deployer's policy and the CloudFormation service role's (scripts/deployer_policy.py)."""
    yield "docs/deployer-policy.json", json.loads((ROOT / "docs" / "deployer-policy.json").read_text())
    role = json.loads((ROOT / "docs" / "cloudformation-service-role.json").read_text())
    yield "docs/cloudformation-service-role.json", role["PolicyDocument"]


def findings(where: str, document: dict[str, Any]) -> list[str]:
    policy = analyze_policy_string(json.dumps(document))
    return [
        f"{where}: {finding.issue} {finding.detail}"
        for finding in policy.findings
        if not _waived(finding.issue, finding.detail, finding.location)
    ]


def main() -> int:
    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    problems: list[str] = []
    checked = 0
    for where, document in [*documents(template), *grant_documents(), *deployment_documents()]:
        problems.extend(findings(where, document))
        checked += 1
    for problem in problems:
        print(problem)
    print(f"parliament: {checked} policies, {len(problems)} findings")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
