"""Least privilege and the migration bucket, over the template as CloudFormation reads it.

Every Allow statement names actions without wildcards, and each of its resources is one of: a
resource of this stack (by !Ref or !GetAtt, or an ARN built on ${AWS::StackName} or a resource's
${X.Arn}), a family of resources outside the stack that the pipeline works on (listed below, each
with why, all in this account and partition), or '*' for actions AWS authorizes on no resource, with
a comment in the template right above the statement saying so. checkov runs over the same template
(`make lint`); what it reports is either fixed or waived in .checkov.yaml with the reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
CHECKOV_CONFIG = ROOT / ".checkov.yaml"

_REGIONAL = "${AWS::Region}:${AWS::AccountId}"
_ALL_LOG_GROUPS = f"arn:${{AWS::Partition}}:logs:{_REGIONAL}:log-group:*"
# Resources outside the stack the pipeline works on, as ARN templates (after !Sub), and why.
EXTERNAL_RESOURCES = {
    f"arn:${{AWS::Partition}}:airflow:{_REGIONAL}:environment/*": "MWAA environments: the request names them",
    "arn:${AWS::Partition}:iam::${AWS::AccountId}:${ExecutionRoleArnPattern}": (
        "the MWAA execution roles the deployer allows"
    ),
    "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/airflow.amazonaws.com/"
    "AWSServiceRoleForAmazonMWAA": "MWAA's service-linked role",
    "arn:${AWS::Partition}:s3:::airflow-*": "MWAA DAG buckets (MWAA requires the airflow- prefix)",
    "arn:${AWS::Partition}:s3:::airflow-*/*": "objects of MWAA DAG buckets",
    "arn:${AWS::Partition}:s3:::airflow-*/mwaa-migrate/*": "the targets' own copies of their sources' files",
    "arn:${AWS::Partition}:s3:::airflow-*/*/mwaa_migrate_*.py": "the project's DAG files in a DAG folder",
    "arn:${AWS::Partition}:s3:::airflow-*/mwaa_migrate_*.py": "the project's DAG files at a bucket's root",
    f"arn:${{AWS::Partition}}:events:{_REGIONAL}:event-bus/default": "the default bus, for notifications",
    f"arn:${{AWS::Partition}}:kms:{_REGIONAL}:key/*": "the source environment's customer managed key",
    _ALL_LOG_GROUPS: "DescribeLogGroups is authorized against all of the Region's log groups",
    f"arn:${{AWS::Partition}}:airflow:{_REGIONAL}:role/*/User": (
        "an environment's Airflow User role, for InvokeRestApi (the least one that triggers and pauses)"
    ),
    f"arn:${{AWS::Partition}}:secretsmanager:{_REGIONAL}:secret:mwaa-migrate/*": (
        "a self-managed Airflow's REST API credentials: the deployer names them mwaa-migrate/..."
    ),
}
# Families only some actions may be granted on.
ONLY_FOR = {
    _ALL_LOG_GROUPS: {"logs:DescribeLogGroups"},
    f"arn:${{AWS::Partition}}:airflow:{_REGIONAL}:role/*/User": {"airflow:InvokeRestApi"},
    f"arn:${{AWS::Partition}}:secretsmanager:{_REGIONAL}:secret:mwaa-migrate/*": {
        "secretsmanager:GetSecretValue"
    },
}
# Families whose ARN carries an MWAA environment's name: MWAA names them after the environment.
EXTERNAL_PATTERNS = (
    re.compile(r"^arn:\$\{AWS::Partition\}:logs:\$\{AWS::Region\}:\$\{AWS::AccountId\}:log-group:airflow-\*"),
    re.compile(r"^arn:\$\{AWS::Partition\}:ec2:\$\{AWS::Region\}:\$\{AWS::AccountId\}:[a-z-]+/\*$"),
)
# Parameters that hold an ARN the deployer gives (an SNS topic of theirs).
ARN_PARAMETERS = frozenset({"NotificationTopicArn"})
ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATE_PATH))
    return loaded


def _statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM statement anywhere in the resources (inline, SAM Policies, conditional ones)."""
    if isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            yield node
        for value in node.values():
            yield from _statements(value)
    elif isinstance(node, list):
        for value in node:
            yield from _statements(value)


def _role_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Statements granted to the stack's own roles: identity policies. Resource policies (the
    bucket's, the queue's, a key's) name a Principal and are about who may use that resource."""
    for logical_id, resource in template["Resources"].items():
        for statement in _statements(resource.get("Properties", {})):
            if "Principal" not in statement and "NotPrincipal" not in statement:
                yield logical_id, statement


def _sub(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else str(sub[0])
    return None


def _is_stack_resource(value: Any, template: dict[str, Any]) -> bool:
    resources = template["Resources"]
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"] in resources or value["Ref"] in ARN_PARAMETERS
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return _as_list(value["Fn::GetAtt"])[0] in resources
    text = _sub(value)
    if text is None:
        return False
    if "${AWS::StackName}" in text:
        return True
    return any(f"${{{name}.Arn}}" in text for name in resources)


def test_every_allowed_action_is_named_without_wildcards(template):
    for logical_id, statement in _role_statements(template):
        assert "NotAction" not in statement, logical_id
        assert "NotResource" not in statement, logical_id
        if statement["Effect"] != "Allow":
            continue
        for action in _as_list(statement["Action"]):
            assert ACTION.match(action), f"{logical_id} allows {action!r}"


def test_every_allowed_resource_is_the_stacks_or_a_named_family_outside_it(template):
    for logical_id, statement in _role_statements(template):
        if statement["Effect"] != "Allow" or statement["Action"] == "sts:AssumeRole":
            continue
        for resource in _as_list(statement["Resource"]):
            if resource == "*" or _is_stack_resource(resource, template):
                continue
            arn = _sub(resource)
            assert arn is not None, f"{logical_id}: {resource}"
            assert arn in EXTERNAL_RESOURCES or any(p.match(arn) for p in EXTERNAL_PATTERNS), (
                f"{logical_id} {statement.get('Sid')}: {arn} is neither this stack's nor a known family"
            )
            if arn in ONLY_FOR:
                assert set(_as_list(statement["Action"])) <= ONLY_FOR[arn], (
                    f"{logical_id} {statement.get('Sid')}"
                )


def test_resource_star_is_justified_by_a_comment_above_its_statement(template):
    lines = TEMPLATE_PATH.read_text().splitlines()
    starred = [
        (logical_id, statement)
        for logical_id, statement in _role_statements(template)
        if statement["Effect"] == "Allow" and "*" in _as_list(statement["Resource"])
    ]
    assert starred, "the template has statements on Resource '*' (EC2 Describe*, log delivery)"
    for logical_id, statement in starred:
        sid = statement.get("Sid")
        assert sid, f"{logical_id}: a statement on '*' needs a Sid"
        # A statement the template repeats in several functions (a Sid used more than once): each.
        places = [i for i, line in enumerate(lines) if line.strip() == f"- Sid: {sid}"]
        assert places, f"{logical_id}: no line holds Sid {sid}"
        for at in places:
            comments = [line.strip() for line in lines[max(0, at - 4) : at] if line.strip().startswith("#")]
            assert lines[at - 1].strip().startswith("#"), f"{logical_id} {sid}: no comment above it"
            assert "'*'" in " ".join(comments), f"{logical_id} {sid}: the comment does not say why '*'"


def test_roles_are_passed_only_to_mwaa(template):
    passing = [s for _, s in _role_statements(template) if "iam:PassRole" in _as_list(s["Action"])]
    assert passing
    for statement in passing:
        assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == "airflow.amazonaws.com"


def test_no_function_has_a_managed_policy_or_a_full_access_template(template):
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        assert not properties.get("ManagedPolicyArns"), logical_id
        for policy in _as_list(properties.get("Policies", [])):
            if isinstance(policy, str):
                pytest.fail(f"{logical_id} uses the managed policy {policy}")
            if isinstance(policy, dict) and len(policy) == 1 and "Statement" not in policy:
                (name,) = policy
                assert name in {"LambdaInvokePolicy", "Fn::If"}, f"{logical_id} uses {name}"


# ------------------------------------------------------------------ the migration bucket


def _bucket(template: dict[str, Any]) -> dict[str, Any]:
    (bucket,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::S3::Bucket"]
    properties: dict[str, Any] = bucket["Properties"]
    return properties


def test_the_bucket_is_encrypted_versioned_private_and_owned_by_its_account(template):
    bucket = _bucket(template)
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms", "aws:kms:dsse"}
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_every_object_and_version_expires_and_unfinished_uploads_are_cleaned(template):
    rules = [r for r in _bucket(template)["LifecycleConfiguration"]["Rules"] if r["Status"] == "Enabled"]
    whole_bucket = [r for r in rules if not r.get("Prefix") and not r.get("Filter")]
    assert whole_bucket, "a rule for every object"
    assert any("ExpirationInDays" in r for r in whole_bucket)
    assert any("NoncurrentDays" in r.get("NoncurrentVersionExpiration", {}) for r in whole_bucket)
    assert any("AbortIncompleteMultipartUpload" in r for r in whole_bucket)


def _resource_text(resource: Any) -> str:
    """A resource as an ARN template: !GetAtt X.Arn as ${X.Arn}, a !Sub as its string."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        name, attribute = _as_list(resource["Fn::GetAtt"])
        return f"${{{name}.{attribute}}}"
    return _sub(resource) or str(resource)


def _denies_plain_http(statement: dict[str, Any], resource: str) -> bool:
    """Whether the statement denies everyone every S3 action on `resource` without TLS."""
    covered = any(
        pattern == resource or (pattern.endswith("/*") and resource.startswith(pattern[:-1]))
        for pattern in map(_resource_text, _as_list(statement["Resource"]))
    )
    return (
        covered
        and statement["Effect"] == "Deny"
        and statement["Principal"] in ("*", {"AWS": "*"})
        and _as_list(statement["Action"]) in (["s3:*"], ["*"])
        and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    )


def test_the_bucket_refuses_every_request_without_tls(template):
    (policy,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::S3::BucketPolicy"]
    assert policy["Properties"]["Bucket"] == {"Ref": "MigrationBucket"}
    statements = _as_list(policy["Properties"]["PolicyDocument"]["Statement"])
    for resource in (
        "${MigrationBucket.Arn}",
        "${MigrationBucket.Arn}/locks/target.json",
        "${MigrationBucket.Arn}/migrations/source/target/export/manifest.json",
    ):
        assert any(_denies_plain_http(s, resource) for s in statements), resource


# ------------------------------------------------------------------ linters


def test_every_checkov_waiver_is_a_known_check_with_its_reason():
    config = yaml.safe_load(CHECKOV_CONFIG.read_text())
    text = CHECKOV_CONFIG.read_text()
    for check in config["skip-check"]:
        line = next(line for line in text.splitlines() if check in line)
        assert re.match(r"^CKV_AWS_\d+$", check)
        assert "#" in line, f"{check} has no reason"
        assert len(line.split("#", 1)[1].strip()) > 20, f"{check} has no reason"


@pytest.mark.skipif(
    not (ROOT / ".venv-checkov" / "bin" / "checkov").exists(), reason="make lint installs checkov"
)
def test_checkov_finds_nothing_the_waivers_do_not_name():
    checkov = shutil.which("checkov", path=str(ROOT / ".venv-checkov" / "bin"))
    assert checkov
    result = subprocess.run(
        [checkov, "-f", str(TEMPLATE_PATH), "--config-file", str(CHECKOV_CONFIG), "--compact", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
