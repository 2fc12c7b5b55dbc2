"""What the pipeline hands a self-managed Airflow's export in place of AWS credentials (issue 16): the
export DAG's conf block `selfManaged` (the DAG library's SelfManagedAccess reads it).

- presigned POST forms: one for this migration's export prefix (`{prefix}/export/`), one for its
  cutover record (that key only); S3 checks each form's policy (key, size, deadline);
- presigned GET URLs for the two objects the export reads: the bulk's manifest (the delta starts at
  its watermark) and the cutover record (a retried pause reuses it);
- the public half of the stack's sealing key (RSA, ENCRYPT_DECRYPT): the export seals each data key
  with it, and only a role KMS lets decrypt with that key (the target's) opens it.

S3 takes a presigned request as the signer's: the function that signs needs s3:PutObject and
s3:GetObject on exactly these keys. A form or URL lasts `expires_in` seconds, or as long as the
signer's session if that ends first. They are signatures: kept out of logs, events and reports.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from mwaa_migrate.dags import mwaa_migrate_metadata as library
from mwaa_migrate.errors import MigrationConflict

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client

# S3's own limit on an object sent by POST.
MAX_POST_BYTES = 5 * 1024**3


def sealing_public_key(kms: KMSClient, key_arn: str) -> bytes:
    """The sealing key's public half (DER), once KMS confirms the key can do what the export needs
    (an encryption key that allows RSAES_OAEP_SHA_256 is an RSA key)."""
    answer = kms.get_public_key(KeyId=key_arn)
    if answer.get("KeyUsage") != "ENCRYPT_DECRYPT" or library.PUBLIC_KEY_SEALING not in answer.get(
        "EncryptionAlgorithms", []
    ):
        raise MigrationConflict(
            f"the sealing key {key_arn} must be an RSA key for ENCRYPT_DECRYPT that allows "
            f"{library.PUBLIC_KEY_SEALING}"
        )
    return answer["PublicKey"]


def _form(s3: S3Client, bucket: str, key_prefix: str, expires_in: int) -> dict[str, Any]:
    """A presigned POST form for key_prefix (a prefix ends in '/'; otherwise the one key)."""
    key_rule = ["starts-with", "$key", key_prefix] if key_prefix.endswith("/") else {"key": key_prefix}
    form = s3.generate_presigned_post(
        bucket,
        f"{key_prefix}${{filename}}" if key_prefix.endswith("/") else key_prefix,
        Conditions=[key_rule, ["content-length-range", 0, MAX_POST_BYTES]],
        ExpiresIn=expires_in,
    )
    return {"url": form["url"], "fields": form["fields"], "keyPrefix": key_prefix}


def export_access(
    s3: S3Client, *, bucket: str, prefix: str, public_key: bytes, expires_in: int
) -> dict[str, Any]:
    """The conf's selfManaged block for one run of the export DAG."""
    layout = library.RunConf(bucket=bucket, prefix=prefix.strip("/"), migration_id="")
    export_prefix = layout.key("export") + "/"
    read = (layout.export_key(library.MANIFEST_FILE, library.PHASE_BULK), layout.record_key)
    return {
        "publicKey": base64.b64encode(public_key).decode("ascii"),
        "uploads": [
            _form(s3, bucket, export_prefix, expires_in),
            _form(s3, bucket, layout.record_key, expires_in),
        ],
        "downloads": {
            key: s3.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
            )
            for key in read
        },
    }
