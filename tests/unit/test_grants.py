import json

import boto3
import pytest
from moto import mock_aws

from mwaa_migrate.grants import delete_policies, migration_policies, policy_name, put_policies, role_name


def _policies(
    source_role="arn:aws:iam::123456789012:role/service-role/src",
    target_role="arn:aws:iam::123456789012:role/dst",
):
    return migration_policies(
        prefix="mwaa-migrate",
        migration_id="a-to-b",
        partition="aws",
        region="us-east-1",
        account_id="123456789012",
        bucket="bucket",
        object_prefix="migrations/a/b",
        source_environment="a",
        source_role_arn=source_role,
        target_role_arn=target_role,
    )


def test_the_role_name_leaves_out_the_path():
    assert role_name("arn:aws:iam::123456789012:role/service-role/AmazonMWAA-x") == "AmazonMWAA-x"


def test_the_source_may_only_write_the_export_prefix():
    export = _policies()[0]
    statement = export.document["Statement"][0]
    assert export.role_name == "src"
    assert statement["Resource"] == "arn:aws:s3:::bucket/migrations/a/b/export/*"
    assert "s3:GetObject" not in statement["Action"]


def test_the_target_may_read_the_export_and_the_source_log_groups_only():
    document = _policies()[1].document
    resources = {s["Sid"]: s["Resource"] for s in document["Statement"]}
    assert resources["ReadMigrationExport"] == "arn:aws:s3:::bucket/migrations/a/b/export/*"
    assert resources["ReadSourceLogs"] == "arn:aws:logs:us-east-1:123456789012:log-group:airflow-a-*"


def test_long_names_stay_within_iam_limits():
    name = policy_name("mwaa-migrate", "x" * 80 + "-to-" + "y" * 80, "import")
    assert len(name) <= 128
    assert name.endswith("-import")


@pytest.fixture
def iam():
    with mock_aws():
        client = boto3.client("iam")
        for name, path in (("src", "/service-role/"), ("dst", "/")):
            client.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument="{}")
        yield client


def test_putting_twice_replaces_instead_of_duplicating(iam):
    put_policies(iam, _policies())
    put_policies(iam, _policies())
    assert iam.list_role_policies(RoleName="src")["PolicyNames"] == ["mwaa-migrate-a-to-b-export"]
    stored = iam.get_role_policy(RoleName="dst", PolicyName="mwaa-migrate-a-to-b-import")["PolicyDocument"]
    assert stored == json.loads(json.dumps(_policies()[1].document))


def test_removing_is_complete_and_safe_to_repeat(iam):
    put_policies(iam, _policies())
    delete_policies(iam, _policies())
    delete_policies(iam, _policies())
    assert iam.list_role_policies(RoleName="src")["PolicyNames"] == []
    assert iam.list_role_policies(RoleName="dst")["PolicyNames"] == []


def test_one_role_for_both_sides_gets_both_policies(iam):
    same = "arn:aws:iam::123456789012:role/dst"
    put_policies(iam, _policies(source_role=same, target_role=same))
    assert sorted(iam.list_role_policies(RoleName="dst")["PolicyNames"]) == [
        "mwaa-migrate-a-to-b-export",
        "mwaa-migrate-a-to-b-import",
    ]
