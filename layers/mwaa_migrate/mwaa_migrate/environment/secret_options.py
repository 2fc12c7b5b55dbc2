"""The target's Airflow configuration options travel by reference, never by value.

botocore's MWAA model marks every option value `sensitive` (`smtp.smtp_password`,
`secrets.backend_kwargs` ...), and whatever a state returns is kept in the execution's history. So
PlanMigration writes the values to one object of the migration bucket, encrypted with the stack's
migration key (SSE-KMS), and the plan carries only the object's bucket, key, version id and digest;
CloneEnvironment reads the object back, checks the digest and sends the values in CreateEnvironment.

SSE-KMS without the bucket key: S3 then asks KMS under the encryption context
`aws:s3:arn = arn:aws:s3:::{bucket}/{key}`, which the template's conditions name (with
`kms:ViaService` S3), so the key opens this object for PlanMigration (GenerateDataKey) and
CloneEnvironment (Decrypt) only. The object holds a random nonce: its digest, which the history
shows, confirms no guess of a value. A re-run writes a new version and references it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from mwaa_migrate.errors import MigrationConflict, from_client_error
from mwaa_migrate.migration_bucket import configuration_key
from mwaa_migrate.models import ConfigurationObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_FORMAT = 1


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def store_configuration(
    s3: S3Client,
    *,
    bucket: str,
    prefix: str,
    migration_id: str,
    options: dict[str, str],
    kms_key_arn: str,
) -> ConfigurationObject:
    """Write the option values (SSE-KMS with the migration key) and return the plan's reference."""
    key = configuration_key(prefix)
    document = {
        "format": _FORMAT,
        "migrationId": migration_id,
        "nonce": secrets.token_hex(16),
        "options": options,
    }
    body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    try:
        response = s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=kms_key_arn,
            # The object's own data key, under the object's ARN as encryption context: the IAM
            # conditions name the object (a bucket key's context is only the bucket).
            BucketKeyEnabled=False,
        )
    except ClientError as error:
        raise from_client_error(error, f"writing the configuration options to s3://{bucket}/{key}") from None
    return ConfigurationObject(
        bucket=bucket, key=key, version_id=response.get("VersionId"), digest=_digest(body)
    )


def load_configuration(
    s3: S3Client, reference: ConfigurationObject, *, migration_id: str, names: set[str]
) -> dict[str, str]:
    """The option values of the plan's reference, once the object is proved to be the one the plan
    wrote: same digest, same migration, the option names the plan shows."""
    where = f"s3://{reference.bucket}/{reference.key}" + (
        f" (version {reference.version_id})" if reference.version_id else ""
    )
    try:
        if reference.version_id:
            found = s3.get_object(Bucket=reference.bucket, Key=reference.key, VersionId=reference.version_id)
        else:
            found = s3.get_object(Bucket=reference.bucket, Key=reference.key)
        body = found["Body"].read()
    except ClientError as error:
        raise from_client_error(error, f"reading the configuration options at {where}") from None
    if _digest(body) != reference.digest:
        raise MigrationConflict(
            f"the configuration options at {where} are not those the plan wrote (digest "
            f"{_digest(body)}, planned {reference.digest}): nothing was created; run the migration again"
        )
    try:
        document = json.loads(body)
        options = document["options"]
        owner = document["migrationId"]
    except (ValueError, KeyError, TypeError):
        raise MigrationConflict(f"the configuration options at {where} are not readable") from None
    if owner != migration_id or not isinstance(options, dict) or set(options) != names:
        raise MigrationConflict(f"the configuration options at {where} belong to another plan")
    return {str(name): str(value) for name, value in options.items()}
