import json

import boto3
import pytest
from moto import mock_aws

from mwaa_migrate.run.grants import delete_policies, migration_policies, policy_name, put_policies, role_name
from mwaa_migrate.run.migration_names import migration_id

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _policies(
    source_role="arn:aws:iam::123456789012:role/service-role/src",
    target_role="arn:aws:iam::123456789012:role/dst",
):
    return migration_policies(
        prefix="mwaa-migrate",
        migration_id="a.b",
        partition="aws",
        region="us-east-1",
        account_id="123456789012",
        bucket="bucket",
        object_prefix="migrations/a/b",
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


def test_the_target_may_read_the_export_and_nothing_of_the_sources_logs():
    document = _policies()[1].document
    resources = {s["Sid"]: s["Resource"] for s in document["Statement"]}
    assert resources["ReadMigrationExport"] == "arn:aws:s3:::bucket/migrations/a/b/export/*"
    # A Lambda copies the logs: the target's role never reads them.
    assert not [s for s in document["Statement"] if any("logs:" in a for a in s["Action"])]


def test_the_source_may_write_its_cutover_record_and_read_only_the_bulk_watermark():
    document = _policies()[0].document
    resources = {s["Sid"]: (s["Action"], s["Resource"]) for s in document["Statement"]}
    assert resources["RecordActiveDags"] == (
        ["s3:GetObject", "s3:PutObject"],
        "arn:aws:s3:::bucket/migrations/a/b/cutover/record.json",
    )
    assert resources["ReadBulkWatermark"] == (
        ["s3:GetObject"],
        "arn:aws:s3:::bucket/migrations/a/b/export/bulk/manifest.json",
    )


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
            "StringEquals": {"kms:EncryptionContext:mwaa-migrate-migration": "a.b"}
        }


def test_long_names_stay_within_iam_limits():
    name = policy_name("mwaa-migrate", "x" * 80 + "." + "y" * 80, "import")
    assert len(name) <= 128
    assert name.endswith("-import")


def test_migrations_whose_names_once_collided_get_different_policies():
    # Given "a-to-b" -> "c" and "a" -> "b-to-c" (both were "a-to-b-to-c")
    # When their policies are named from their migration ids
    first = policy_name("mwaa-migrate", migration_id("a-to-b", "c"), "export")
    second = policy_name("mwaa-migrate", migration_id("a", "b-to-c"), "export")
    # Then the names differ, and each is a name IAM accepts
    assert (first, second) == ("mwaa-migrate-a-to-b.c-export", "mwaa-migrate-a.b-to-c-export")


def test_long_names_of_once_colliding_migrations_get_different_digests():
    first = policy_name("mwaa-migrate", migration_id("a" * 70 + "-to-b", "c" * 70), "export")
    second = policy_name("mwaa-migrate", migration_id("a" * 70, "b-to-" + "c" * 70), "export")
    assert first != second
    assert max(len(first), len(second)) <= 128


def test_a_prefix_iam_would_refuse_is_refused():
    with pytest.raises(ValueError, match="breaks IAM's rule"):
        policy_name("mwaa migrate", "a.b", "export")


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
    assert iam.list_role_policies(RoleName="src")["PolicyNames"] == ["mwaa-migrate-a.b-export"]
    stored = iam.get_role_policy(RoleName="dst", PolicyName="mwaa-migrate-a.b-import")["PolicyDocument"]
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
        "mwaa-migrate-a.b-export",
        "mwaa-migrate-a.b-import",
    ]
