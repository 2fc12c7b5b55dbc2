import json

import boto3
import pytest
from moto import mock_aws

from mwaa_migrate.grants import delete_policies, migration_policies, policy_name, put_policies, role_name

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


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
        kms_key_arn=KEY_ARN,
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


def test_only_the_source_makes_and_only_the_target_opens_this_migrations_data_keys():
    export, import_ = (_policies()[0].document, _policies()[1].document)
    actions = {
        side: {s["Action"] if isinstance(s["Action"], str) else tuple(s["Action"]) for s in doc["Statement"]}
        for side, doc in (("export", export), ("import", import_))
    }
    [seal] = [s for s in export["Statement"] if s["Sid"] == "SealMigrationExport"]
    [open_] = [s for s in import_["Statement"] if s["Sid"] == "OpenMigrationExport"]
    assert seal["Action"] == "kms:GenerateDataKey"
    assert open_["Action"] == "kms:Decrypt"
    assert "kms:Decrypt" not in actions["export"]
    assert "kms:GenerateDataKey" not in actions["import"]
    for statement in (seal, open_):
        assert statement["Resource"] == KEY_ARN
        assert statement["Condition"] == {
            "StringEquals": {"kms:EncryptionContext:mwaa-migrate-migration": "a-to-b"}
        }


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
