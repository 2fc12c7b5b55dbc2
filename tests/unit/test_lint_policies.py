"""make lint's IAM linter (scripts/lint_policies.py): it reads every policy the project writes, and a
policy IAM would not understand fails it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def linter() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lint_policies", ROOT / "scripts" / "lint_policies.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _findings(linter: ModuleType, template: dict[str, Any]) -> list[str]:
    return [
        found for where, document in linter.documents(template) for found in linter.findings(where, document)
    ]


def test_every_policy_of_the_template_and_the_grants_is_read_and_clean(linter):
    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    places = [where for where, _ in linter.documents(template)]
    # Each function's policies, the state machine's, and the bucket, key, queue and bus policies.
    assert {
        "MigrationBucketPolicy.PolicyDocument",
        "MigrationKey.KeyPolicy",
        "SealingKey.KeyPolicy",
        "MigrationEventBusPolicy.Statement",
    } <= set(places)
    # An MWAA source's export and import policies, and a self-managed source's import policy.
    assert len([where for where, _ in linter.grant_documents()]) == 3
    assert _findings(linter, template) == []
    assert [f for where, doc in linter.grant_documents() for f in linter.findings(where, doc)] == []


def test_a_condition_key_iam_does_not_know_fails_the_lint(linter, tmp_path):
    text = (
        (ROOT / "template.yaml")
        .read_text()
        .replace("kms:GrantIsForAWSResource", "kms:GrantIsForAwsResources")
    )
    (tmp_path / "template.yaml").write_text(text)
    found = _findings(linter, cfn_yaml.load(str(tmp_path / "template.yaml")))
    assert any(
        "UNKNOWN_CONDITION_FOR_ACTION" in line and "kms:GrantIsForAwsResources" in line for line in found
    )


def test_an_action_iam_does_not_know_fails_the_lint(linter):
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "airflow:GetEnvironments", "Resource": "*"}],
    }
    assert any("UNKNOWN_ACTION" in line for line in linter.findings("sample", document))
