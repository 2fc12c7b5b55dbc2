"""Each API call becomes the IAM requests AWS authorises for it, where the names differ most."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.iam.actions import UnmappedCall, Where, iam_requests
from tests.iam.evaluator import Request

WHERE = Where("aws", "eu-west-1", "123456789012")
KEY = "arn:aws:kms:eu-west-1:123456789012:key/k-1"
MIGRATION = "arn:aws:s3:::migration"


class FakeWorld:
    def __init__(
        self,
        *,
        tags: Mapping[str, str] | None = None,
        object_key: tuple[str, bool] | None = None,
        bucket_default: tuple[str | None, bool] = (None, False),
    ) -> None:
        self.tags = tags
        self.object_key = object_key
        self.bucket_default = bucket_default

    def role_arn(self, role_name: str) -> str:
        return f"arn:aws:iam::123456789012:role/service-role/{role_name}"

    def environment_tags(self, name: str) -> Mapping[str, str] | None:
        return self.tags

    def object_kms_key(self, bucket: str, key: str, version_id: str | None) -> tuple[str, bool] | None:
        return self.object_key

    def bucket_encryption(self, bucket: str) -> tuple[str | None, bool]:
        return self.bucket_default


def requests(service: str, operation: str, world: FakeWorld | None = None, **params: Any) -> list[Request]:
    return iam_requests(service, operation, params, WHERE, world or FakeWorld())


@pytest.mark.parametrize(
    ("operation", "params", "action", "resource"),
    [
        ("HeadBucket", {"Bucket": "migration"}, "s3:ListBucket", MIGRATION),
        ("HeadObject", {"Bucket": "migration", "Key": "a"}, "s3:GetObject", f"{MIGRATION}/a"),
        (
            "HeadObject",
            {"Bucket": "migration", "Key": "a", "VersionId": "v"},
            "s3:GetObjectVersion",
            f"{MIGRATION}/a",
        ),
        (
            "GetObject",
            {"Bucket": "migration", "Key": "a", "VersionId": "v"},
            "s3:GetObjectVersion",
            f"{MIGRATION}/a",
        ),
        ("DeleteObject", {"Bucket": "migration", "Key": "a"}, "s3:DeleteObject", f"{MIGRATION}/a"),
        (
            "DeleteObject",
            {"Bucket": "migration", "Key": "a", "VersionId": "v"},
            "s3:DeleteObjectVersion",
            f"{MIGRATION}/a",
        ),
        ("GetBucketEncryption", {"Bucket": "migration"}, "s3:GetEncryptionConfiguration", MIGRATION),
        ("ListObjectVersions", {"Bucket": "migration"}, "s3:ListBucketVersions", MIGRATION),
    ],
)
def test_s3_operations_are_authorised_under_their_iam_action(
    operation: str, params: dict[str, Any], action: str, resource: str
) -> None:
    assert requests("s3", operation, **params) == [Request(action, resource)]


def test_listing_a_bucket_carries_its_prefix_as_s3_prefix() -> None:
    [listing] = requests("s3", "ListObjectsV2", Bucket="migration", Prefix="migrations/a/logs/")
    [whole] = requests("s3", "ListObjectsV2", Bucket="migration")

    assert listing == Request("s3:ListBucket", MIGRATION, {"s3:prefix": "migrations/a/logs/"})
    assert "s3:prefix" not in whole.context


def test_copy_object_reads_the_source_version_and_writes_the_destination() -> None:
    found = requests(
        "s3",
        "CopyObject",
        Bucket="airflow-target",
        Key="dags/a.py",
        CopySource={"Bucket": "airflow-source", "Key": "dags/a.py", "VersionId": "v1"},
    )

    assert [(r.action, r.resource) for r in found] == [
        ("s3:GetObjectVersion", "arn:aws:s3:::airflow-source/dags/a.py"),
        ("s3:PutObject", "arn:aws:s3:::airflow-target/dags/a.py"),
    ]


def test_sse_kms_makes_the_writer_generate_and_the_reader_decrypt_with_the_key() -> None:
    [put, generate] = requests(
        "s3",
        "PutObject",
        Bucket="migration",
        Key="s/a.json",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=KEY,
        BucketKeyEnabled=False,
    )
    [get, decrypt] = requests(
        "s3", "GetObject", FakeWorld(object_key=(KEY, False)), Bucket="migration", Key="s/a.json"
    )

    assert (put.action, generate.action, generate.resource) == ("s3:PutObject", "kms:GenerateDataKey", KEY)
    assert generate.context["kms:EncryptionContext:aws:s3:arn"] == f"{MIGRATION}/s/a.json"
    assert generate.context["kms:ViaService"] == "s3.eu-west-1.amazonaws.com"
    assert (get.action, decrypt.action, decrypt.resource) == ("s3:GetObject", "kms:Decrypt", KEY)


def test_a_bucket_key_binds_the_data_key_to_the_bucket() -> None:
    world = FakeWorld(bucket_default=(KEY, True))

    [_, generate] = requests("s3", "PutObject", world, Bucket="migration", Key="a")

    assert generate.context["kms:EncryptionContext:aws:s3:arn"] == MIGRATION


def test_an_object_without_sse_kms_uses_no_key() -> None:
    assert requests("s3", "GetObject", Bucket="migration", Key="a") == [
        Request("s3:GetObject", f"{MIGRATION}/a")
    ]


def test_creating_an_environment_passes_its_execution_role_to_mwaa() -> None:
    role = "arn:aws:iam::123456789012:role/service-role/AmazonMWAA-x"

    create, passing = requests(
        "airflow",
        "CreateEnvironment",
        Name="x",
        ExecutionRoleArn=role,
        Tags={"mwaa-migrate:created-by": "mwaa-migrate"},
    )

    assert create.action == "airflow:CreateEnvironment"
    assert create.resource == "arn:aws:airflow:eu-west-1:123456789012:environment/x"
    assert create.context["aws:RequestTag/mwaa-migrate:created-by"] == "mwaa-migrate"
    assert passing == Request("iam:PassRole", role, {"iam:PassedToService": "airflow.amazonaws.com"})


def test_an_environment_with_a_customer_managed_key_has_mwaa_grant_itself_the_key_as_the_caller() -> None:
    found = requests(
        "airflow", "CreateEnvironment", Name="x", ExecutionRoleArn="arn:aws:iam::1:role/r", KmsKey=KEY
    )

    describe, grant = found[2:]
    assert (describe.action, describe.resource) == ("kms:DescribeKey", KEY)
    assert (grant.action, grant.resource) == ("kms:CreateGrant", KEY)
    assert grant.context["kms:GrantIsForAWSResource"] is True
    assert grant.context["kms:ViaService"] == "airflow.eu-west-1.amazonaws.com"


def test_an_existing_environments_tags_are_its_resource_tags() -> None:
    [delete] = requests("airflow", "DeleteEnvironment", FakeWorld(tags={"owner": "me"}), Name="x")

    assert delete.context == {"aws:ResourceTag/owner": "me"}


def test_iam_role_calls_name_the_role_with_its_path() -> None:
    [put] = requests("iam", "PutRolePolicy", RoleName="AmazonMWAA-x", PolicyName="p", PolicyDocument="{}")

    assert put.resource == "arn:aws:iam::123456789012:role/service-role/AmazonMWAA-x"


def test_kms_calls_carry_their_encryption_context() -> None:
    [decrypt] = requests(
        "kms", "Decrypt", KeyId=KEY, CiphertextBlob=b"x", EncryptionContext={"mwaa-migrate-migration": "a.b"}
    )

    assert decrypt.context["kms:EncryptionContext:mwaa-migrate-migration"] == "a.b"
    assert decrypt.context["kms:EncryptionContextKeys"] == ["mwaa-migrate-migration"]


def test_an_rsa_decryption_carries_its_algorithm_and_no_encryption_context() -> None:
    [decrypt] = requests(
        "kms", "Decrypt", KeyId=KEY, CiphertextBlob=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256"
    )

    assert decrypt.context["kms:EncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    assert not any(key.startswith("kms:EncryptionContext") for key in decrypt.context)


def test_a_secret_is_read_by_its_arn_or_its_name() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mwaa-migrate/onprem-AbCdEf"

    [by_arn] = requests("secretsmanager", "GetSecretValue", SecretId=arn)
    [by_name] = requests("secretsmanager", "GetSecretValue", SecretId="mwaa-migrate/onprem")

    assert (by_arn.action, by_arn.resource) == ("secretsmanager:GetSecretValue", arn)
    assert by_name.resource == WHERE.arn("secretsmanager", "secret:mwaa-migrate/onprem")


def test_log_group_actions_name_the_group_with_a_trailing_star_and_stream_actions_the_stream() -> None:
    [describe] = requests("logs", "DescribeLogStreams", logGroupName="airflow-x-Task")
    [get] = requests("logs", "GetLogEvents", logGroupName="airflow-x-Task", logStreamName="d/r/t/1.log")
    [groups] = requests("logs", "DescribeLogGroups", logGroupNamePrefix="airflow-x-")

    assert describe.resource == "arn:aws:logs:eu-west-1:123456789012:log-group:airflow-x-Task:*"
    assert (
        get.resource == "arn:aws:logs:eu-west-1:123456789012:log-group:airflow-x-Task:log-stream:d/r/t/1.log"
    )
    assert groups.resource == "arn:aws:logs:eu-west-1:123456789012:log-group:*"


def test_put_events_is_authorised_per_entry_with_its_source_and_detail_type() -> None:
    found = requests(
        "events",
        "PutEvents",
        Entries=[
            {"Source": "mwaa.migration", "DetailType": "Migration Started", "Detail": "{}"},
            {"Source": "other", "DetailType": "X", "Detail": "{}", "EventBusName": "bus"},
        ],
    )

    assert [(r.resource, r.context["events:source"]) for r in found] == [
        ("arn:aws:events:eu-west-1:123456789012:event-bus/default", "mwaa.migration"),
        ("arn:aws:events:eu-west-1:123456789012:event-bus/bus", "other"),
    ]


def test_an_operation_without_a_mapping_is_refused_not_guessed() -> None:
    with pytest.raises(UnmappedCall, match="s3.PutBucketPolicy"):
        requests("s3", "PutBucketPolicy", Bucket="migration", Policy="{}")
    with pytest.raises(UnmappedCall, match="ec2"):
        requests("ec2", "DescribeSubnets")
