"""The export on a self-managed Airflow (issue 16), which holds no AWS credentials: it writes through
presigned POST forms limited to this migration's keys, reads through presigned GET URLs, and seals
each data key with the public half of an asymmetric KMS key that only the target's role may use.

The export runs against `EmulatedDatabase` through moto's S3 (its presigned forms and URLs taken by
HTTP, as an Airflow outside AWS sends them); the target's import opens the data key with KMS.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from moto import mock_aws
from mypy_boto3_kms import KMSClient
from mypy_boto3_s3 import S3Client

from emulation.dag_runtime import EmulatedDatabase
from emulation.moto_kms import rsa_decryption
from mwaa_migrate.dags import mwaa_migrate_metadata as metadata
from mwaa_migrate.metadata.self_managed_access import export_access
from tests.unit.test_metadata_format import (  # the format tests' environments and helpers
    NOW,
    PASSWORD,
    WATERMARK,
    environment,
    import_,
    paused,
    run_export_task,
    source_metadata,
    target_environment,
)

BUCKET = "mwaa-migrate-migrations"
PREFIX = "runs/m-1"
RECORD_KEY = f"{PREFIX}/cutover/record.json"
BULK_MANIFEST = f"{PREFIX}/export/bulk/manifest.json"


@dataclass
class World:
    s3: S3Client
    kms: KMSClient
    key_arn: str
    public_key: bytes


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws(), rsa_decryption():
        s3 = boto3.client("s3", region_name="us-east-1")
        kms = boto3.client("kms", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        key_arn = kms.create_key(KeySpec="RSA_4096", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["Arn"]
        yield World(s3, kms, key_arn, kms.get_public_key(KeyId=key_arn)["PublicKey"])


def presigned_conf(world: World, phase: str = "bulk", **extra: Any) -> dict[str, Any]:
    """The conf the pipeline hands the self-managed export: no credentials, only signatures."""
    access = export_access(
        world.s3, bucket=BUCKET, prefix=PREFIX, public_key=world.public_key, expires_in=600
    )
    conf = {
        "bucket": BUCKET,
        "prefix": PREFIX,
        "migrationId": "m-1",
        "kmsKeyId": world.key_arn,
        "phase": phase,
    }
    return {**conf, "selfManaged": access, **extra}


def on_source(conf: dict[str, Any]) -> tuple[metadata.RunConf, metadata.Storage, metadata.KeyService]:
    """What the export's task builds from its conf (airflow_task and TaskContext.key_service)."""
    run_conf = metadata.RunConf.from_conf(conf)
    assert run_conf.self_managed is not None
    task = metadata.TaskContext(db=None, storage=run_conf.storage(), conf=run_conf, upstream={})  # type: ignore[arg-type]
    return run_conf, task.storage, task.key_service()


def export(world: World, source: Any, conf: dict[str, Any]) -> dict[str, Any]:
    """The bulk export's task, on the source, with WATERMARK as its start; the manifest it wrote."""
    run_conf, storage, keys = on_source(conf)
    db = EmulatedDatabase(source, now=NOW)
    metadata.export_bulk(db, storage, run_conf, keys, watermark=WATERMARK)
    db.commit()
    return manifest_in(world, "bulk")


def export_cutover(world: World, source: Any, conf: dict[str, Any]) -> dict[str, Any]:
    """The cutover export's tasks in order (pause, drain, export_tables); the manifest they wrote."""
    run_conf, storage, keys = on_source(conf)
    upstream: dict[str, Any] = {}
    for task_id in metadata.task_ids(metadata.EXPORT_DAG_ID):
        run_export_task(source, storage, run_conf, keys, task_id, upstream=upstream)  # type: ignore[arg-type]
    return manifest_in(world, "cutover")


def manifest_in(world: World, phase: str) -> dict[str, Any]:
    body = world.s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/export/{phase}/manifest.json")["Body"].read()
    loaded: dict[str, Any] = json.loads(body)
    return loaded


def on_target(world: World, phase: str) -> tuple[metadata.Storage, metadata.RunConf, metadata.KmsKeys]:
    """The import's side (import_'s arguments): the target's role reads the bucket and may decrypt
    with the key."""
    conf = metadata.RunConf(BUCKET, PREFIX, "m-1", world.key_arn, phase=phase)
    return metadata.S3Storage(world.s3, BUCKET), conf, metadata.KmsKeys(world.kms)


def test_an_export_without_aws_credentials_lands_and_only_the_target_opens_it(world: World) -> None:
    source = environment("2.7.2", source_metadata())
    _, storage, keys = on_source(presigned_conf(world))

    manifest = export(world, source, presigned_conf(world))

    assert isinstance(storage, metadata.PresignedStorage)
    assert isinstance(keys, metadata.PublicKeySealing)
    assert manifest["secrets"]["data_key_sealing"] == "RSAES_OAEP_SHA_256"
    assert manifest["secrets"]["kms_key_id"] == world.key_arn
    sealed = base64.b64decode(manifest["secrets"]["encrypted_data_key"])
    with pytest.raises(metadata.SecretError, match="never opens"):
        keys.open_sealed(world.key_arn, sealed)
    for item in world.s3.list_objects_v2(Bucket=BUCKET)["Contents"]:
        body = world.s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        assert PASSWORD.encode() not in body
        if item["Key"].endswith(".gz.sealed"):
            with pytest.raises(gzip.BadGzipFile):
                gzip.decompress(body)

    target = target_environment()
    result = import_(target, *on_target(world, "bulk"))  # type: ignore[arg-type]

    assert result["tables"]["variable"]["inserted"] == 3
    assert result["tables"]["connection"]["inserted"] == 1
    assert result["unpaused_dags"] == []


def test_the_cutover_records_pauses_and_exports_the_delta_through_presigned_urls(world: World) -> None:
    source = environment("2.7.2", source_metadata())
    target = target_environment()
    export(world, source, presigned_conf(world))
    import_(target, *on_target(world, "bulk"))  # type: ignore[arg-type]

    manifest = export_cutover(world, source, presigned_conf(world, "cutover"))
    result = import_(target, *on_target(world, "cutover"))  # type: ignore[arg-type]

    record = json.loads(world.s3.get_object(Bucket=BUCKET, Key=RECORD_KEY)["Body"].read())
    assert record["active_dags"] == manifest["active_dags"] == ["daily_sales", "hourly_events"]
    assert all(paused(source)[dag] for dag in record["active_dags"])
    assert result["unpaused_dags"] == ["daily_sales", "hourly_events"]
    assert all(not paused(target)[dag] for dag in result["unpaused_dags"])


def test_a_retried_pause_reads_the_record_through_its_presigned_url(world: World) -> None:
    source = environment("2.7.2", source_metadata())
    export(world, source, presigned_conf(world))
    first = export_cutover(world, source, presigned_conf(world, "cutover"))

    # The pipeline retries the cutover with new presigned URLs; every DAG is paused by now.
    conf, storage, keys = on_source(presigned_conf(world, "cutover"))
    paused_again = run_export_task(source, storage, conf, keys, "pause", upstream={})  # type: ignore[arg-type]

    assert paused_again["reused_record"] is True
    assert paused_again["active_dags"] == first["active_dags"] == ["daily_sales", "hourly_events"]


def test_a_key_no_form_covers_is_refused_before_any_request() -> None:
    class NoNetwork:
        def post(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("no request may leave for a key the conf does not cover")

        get = post

    access = metadata.SelfManagedAccess(
        public_key=b"",
        uploads=(metadata.PresignedUpload("https://b.s3.amazonaws.com/", {}, f"{PREFIX}/export/"),),
        downloads={},
    )
    storage = metadata.PresignedStorage(access, session=NoNetwork())

    with pytest.raises(
        metadata.ExportError, match="no presigned upload of the conf covers runs/m-1/import/x"
    ):
        storage.put(f"{PREFIX}/import/x", b"{}")
    with pytest.raises(
        metadata.ExportError, match="no presigned upload of the conf covers runs/m-1/cutover/"
    ):
        storage.put(f"{PREFIX}/cutover/record.json", b"{}")
    with pytest.raises(metadata.ExportError, match="no presigned download of the conf covers"):
        storage.get(BULK_MANIFEST)


def test_s3s_refusal_names_the_key_and_code_never_the_signed_url() -> None:
    signed = "https://b.s3.amazonaws.com/runs/m-1/export/bulk/manifest.json?X-Amz-Signature=abc123"

    class Refusing:
        def post(self, *args: Any, **kwargs: Any) -> Any:
            kwargs["data"].read()
            return type(
                "Response", (), {"status_code": 403, "text": "<Error><Code>AccessDenied</Code></Error>"}
            )()

        def get(self, *args: Any, **kwargs: Any) -> Any:
            return type(
                "Response",
                (),
                {
                    "status_code": 403,
                    "text": "<Error><Code>ExpiredToken</Code></Error>",
                    "close": lambda self: None,
                },
            )()

    access = metadata.SelfManagedAccess(
        public_key=b"",
        uploads=(metadata.PresignedUpload(signed, {"signature": "abc123"}, f"{PREFIX}/export/"),),
        downloads={BULK_MANIFEST: signed},
    )
    storage = metadata.PresignedStorage(access, session=Refusing())

    with pytest.raises(metadata.ExportError) as refused_upload:
        storage.put(BULK_MANIFEST, b"{}")
    with pytest.raises(metadata.ExportError) as refused_download:
        storage.exists(BULK_MANIFEST)

    assert str(refused_upload.value) == f"S3 refused the upload of {BULK_MANIFEST}: HTTP 403 (AccessDenied)"
    assert (
        str(refused_download.value) == f"S3 refused the download of {BULK_MANIFEST}: HTTP 403 (ExpiredToken)"
    )
    assert "abc123" not in repr(access) + repr(metadata.RunConf("b", "p", "m", self_managed=access))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"publicKey": "not base64!"}, "selfManaged.publicKey must be base64"),
        ({"uploads": []}, "selfManaged.uploads must hold at least one presigned POST"),
        (
            {"uploads": [{"url": "https://b/", "fields": {}, "keyPrefix": "runs/m-2/"}]},
            r"uploads\[0\].keyPrefix",
        ),
        ({"uploads": [{"url": "https://b/", "fields": {}, "keyPrefix": "runs/m-1/../m-2/"}]}, "keyPrefix"),
        (
            {"uploads": [{"url": "http://s3.example.com/", "fields": {}, "keyPrefix": "runs/m-1/"}]},
            "https://",
        ),
        ({"downloads": {"other/manifest.json": "https://b/x"}}, "downloads key must be a key under"),
    ],
)
def test_a_conf_that_reaches_beyond_the_migration_is_refused(change: dict[str, Any], message: str) -> None:
    self_managed = {
        "publicKey": base64.b64encode(b"der").decode(),
        "uploads": [{"url": "https://b.s3.amazonaws.com/", "fields": {}, "keyPrefix": "runs/m-1/export/"}],
        "downloads": {},
        **change,
    }
    conf = {"bucket": "b", "prefix": PREFIX, "migrationId": "m-1", "kmsKeyId": "k", "phase": "bulk"}

    with pytest.raises(metadata.ConfError, match=message):
        metadata.RunConf.from_conf({**conf, "selfManaged": self_managed})


def test_only_an_rsa_key_of_3072_bits_or_more_seals() -> None:
    def der(key: Any) -> bytes:
        return bytes(key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))

    with pytest.raises(metadata.ConfError, match="3072 bits or more"):
        metadata.PublicKeySealing(der(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    with pytest.raises(metadata.ConfError, match="RSA key"):
        metadata.PublicKeySealing(der(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(metadata.ConfError, match="not a DER public key"):
        metadata.PublicKeySealing(b"der")


def test_a_data_key_sealed_for_another_migration_does_not_open(world: World) -> None:
    sealing = metadata.PublicKeySealing(world.public_key)
    _, other = metadata.new_secret_box(sealing, world.key_arn, "m-2")
    forged = metadata.SecretsEnvelope(
        world.key_arn, other.encrypted_data_key, metadata.migration_context("m-1"), sealing=other.sealing
    )

    with pytest.raises(metadata.VerificationError, match="sealed data key belongs to another migration"):
        metadata.open_secret_box(metadata.KmsKeys(world.kms), forged, "m-1")
    opened = metadata.open_secret_box(metadata.KmsKeys(world.kms), other, "m-2")
    assert opened.mac(b"x")


def test_a_manifest_of_an_mwaa_export_keeps_its_form() -> None:
    envelope = metadata.SecretsEnvelope("k", "Y2lwaGVy", metadata.migration_context("m-1"))

    assert "data_key_sealing" not in envelope.to_json()
    assert metadata.SecretsEnvelope.from_json(envelope.to_json()) == envelope
    with pytest.raises(metadata.VerificationError, match="cannot open: 'ROT13'"):
        metadata.SecretsEnvelope.from_json({**envelope.to_json(), "data_key_sealing": "ROT13"})
