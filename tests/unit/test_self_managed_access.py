"""The selfManaged block the pipeline signs for a self-managed Airflow's export
(metadata/self_managed_access.py): S3 policies that reach only this migration's export prefix and
cutover record, GET URLs for the two objects the export reads, the sealing key's public half."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from moto import mock_aws
from mypy_boto3_kms import KMSClient
from mypy_boto3_s3 import S3Client

from mwaa_migrate.dags import mwaa_migrate_metadata as metadata
from mwaa_migrate.errors import MigrationConflict
from mwaa_migrate.metadata.self_managed_access import MAX_POST_BYTES, export_access, sealing_public_key

BUCKET = "mwaa-migrate-migrations"
PREFIX = "runs/m-1"


@pytest.fixture
def aws() -> Iterator[tuple[S3Client, KMSClient]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield s3, boto3.client("kms", region_name="us-east-1")


def policy(form: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(base64.b64decode(form["fields"]["policy"]))
    return loaded


def test_each_form_s3_checks_reaches_only_its_keys_size_and_deadline(aws: tuple[S3Client, KMSClient]) -> None:
    s3, _ = aws

    access = export_access(s3, bucket=BUCKET, prefix=f"/{PREFIX}/", public_key=b"der", expires_in=600)

    exports, record = access["uploads"]
    assert exports["keyPrefix"] == f"{PREFIX}/export/"
    assert ["starts-with", "$key", f"{PREFIX}/export/"] in policy(exports)["conditions"]
    assert record["keyPrefix"] == f"{PREFIX}/cutover/record.json"
    assert {"key": f"{PREFIX}/cutover/record.json"} in policy(record)["conditions"]
    for form in (exports, record):
        assert ["content-length-range", 0, MAX_POST_BYTES] in policy(form)["conditions"]
        assert {"bucket": BUCKET} in policy(form)["conditions"]
        assert "expiration" in policy(form)
    assert sorted(access["downloads"]) == [
        f"{PREFIX}/cutover/record.json",
        f"{PREFIX}/export/bulk/manifest.json",
    ]
    for key, url in access["downloads"].items():
        assert urlsplit(url).path.endswith(key)
    assert base64.b64decode(access["publicKey"]) == b"der"


def test_the_block_is_what_the_dag_librarys_conf_reads_and_uploads_through(
    aws: tuple[S3Client, KMSClient],
) -> None:
    s3, _ = aws
    access = export_access(s3, bucket=BUCKET, prefix=PREFIX, public_key=b"der", expires_in=600)

    conf = metadata.RunConf.from_conf(
        {
            "bucket": BUCKET,
            "prefix": PREFIX,
            "migrationId": "m-1",
            "kmsKeyId": "k",
            "phase": "bulk",
            "selfManaged": access,
        }
    )
    storage = conf.storage()
    storage.put(conf.export_key("manifest.json"), b"{}")
    storage.put(conf.record_key, b"[]")

    assert storage.get(conf.record_key) == b"[]"
    assert storage.exists(conf.export_key("manifest.json"))
    assert s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/export/bulk/manifest.json")["Body"].read() == b"{}"
    assert requests.get(access["downloads"][conf.record_key], timeout=5).content == b"[]"


def test_only_an_rsa_encryption_key_seals(aws: tuple[S3Client, KMSClient]) -> None:
    _, kms = aws
    sealing = kms.create_key(KeySpec="RSA_4096", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["Arn"]
    symmetric = kms.create_key()["KeyMetadata"]["Arn"]
    signing = kms.create_key(KeySpec="RSA_4096", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]

    assert sealing_public_key(kms, sealing) == kms.get_public_key(KeyId=sealing)["PublicKey"]
    for key_arn in (symmetric, signing):
        with pytest.raises(MigrationConflict, match=f"the sealing key {key_arn} must be an RSA key"):
            sealing_public_key(kms, key_arn)
