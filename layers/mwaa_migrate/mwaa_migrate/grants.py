"""The temporary inline policies that let the execution roles do the migration.

Named per migration, so putting them again replaces them (never duplicates) and the last step
finds and removes exactly them.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mwaa_migrate.errors import from_client_error
from mwaa_migrate.models import RolePolicy

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

_POLICY_NAME_LIMIT = 128
_POLICY_NAME = re.compile(r"[\w+=,.@-]+", re.ASCII)
# The encryption context key the export DAG binds its data key with (mwaa_migrate_metadata).
ENCRYPTION_CONTEXT_KEY = "mwaa-migrate-migration"


def role_name(role_arn: str) -> str:
    """arn:aws:iam::123456789012:role/service-role/Name -> Name (the path is not part of it)."""
    return role_arn.rsplit("/", 1)[-1]


def policy_name(prefix: str, migration_id: str, purpose: str) -> str:
    """{prefix}-{source}.{target}-{purpose}; IAM allows [\\w+=,.@-] and 128 characters, so two
    80-character environment names give way to a digest of the (unambiguous) migration id."""
    name = f"{prefix}-{migration_id}-{purpose}"
    if len(name) > _POLICY_NAME_LIMIT:
        digest = hashlib.sha256(migration_id.encode()).hexdigest()[:16]
        name = f"{prefix}-{digest}-{purpose}"
    if len(name) > _POLICY_NAME_LIMIT or not _POLICY_NAME.fullmatch(name):
        raise ValueError(f"policy name {name!r} breaks IAM's rule: [\\w+=,.@-], at most {_POLICY_NAME_LIMIT}")
    return name


def migration_policies(
    *,
    prefix: str,
    migration_id: str,
    partition: str,
    region: str,
    account_id: str,
    bucket: str,
    object_prefix: str,
    source_environment: str,
    source_role_arn: str,
    target_role_arn: str,
    kms_key_arn: str,
) -> list[RolePolicy]:
    objects = f"arn:{partition}:s3:::{bucket}/{object_prefix}"
    # The export's data key is bound to this migration by its encryption context: the source's role
    # may only make data keys for it, the target's role only decrypt them, for this migration only.
    this_migration = {"StringEquals": {f"kms:EncryptionContext:{ENCRYPTION_CONTEXT_KEY}": migration_id}}
    export_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteMigrationExport",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                "Resource": f"{objects}/export/*",
            },
            # The cutover export reads the bulk's watermark, and records the source's active DAGs
            # before it pauses them (a retry reads the record back).
            {
                "Sid": "ReadBulkWatermark",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": f"{objects}/export/bulk/manifest.json",
            },
            {
                "Sid": "RecordActiveDags",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"{objects}/cutover/record.json",
            },
            {
                "Sid": "TellMissingRecordFromDenied",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": f"arn:{partition}:s3:::{bucket}",
                "Condition": {"StringLike": {"s3:prefix": [f"{object_prefix}/*"]}},
            },
            {
                "Sid": "SealMigrationExport",
                "Effect": "Allow",
                "Action": "kms:GenerateDataKey",
                "Resource": kms_key_arn,
                "Condition": this_migration,
            },
        ],
    }
    import_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadMigrationExport",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": f"{objects}/export/*",
            },
            {
                "Sid": "OpenMigrationExport",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": kms_key_arn,
                "Condition": this_migration,
            },
            {
                "Sid": "WriteImportResult",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": f"{objects}/import/*",
            },
            {
                "Sid": "ListMigrationPrefix",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": f"arn:{partition}:s3:::{bucket}",
                "Condition": {"StringLike": {"s3:prefix": [f"{object_prefix}/*"]}},
            },
        ],
    }
    return [
        RolePolicy(
            role_name=role_name(source_role_arn),
            policy_name=policy_name(prefix, migration_id, "export"),
            document=export_policy,
        ),
        RolePolicy(
            role_name=role_name(target_role_arn),
            policy_name=policy_name(prefix, migration_id, "import"),
            document=import_policy,
        ),
    ]


def put_policies(iam: IAMClient, policies: list[RolePolicy]) -> list[str]:
    """Put (or replace) each policy; returns role/policy names."""
    done = []
    for policy in policies:
        try:
            iam.put_role_policy(
                RoleName=policy.role_name,
                PolicyName=policy.policy_name,
                PolicyDocument=json.dumps(policy.document),
            )
        except ClientError as error:
            raise from_client_error(
                error, f"putting policy {policy.policy_name} on {policy.role_name}"
            ) from None
        done.append(f"{policy.role_name}/{policy.policy_name}")
    return done


def delete_policies(iam: IAMClient, policies: list[RolePolicy]) -> list[str]:
    """Remove each policy; one already gone counts as removed (a re-run, or a failure before grant)."""
    removed = []
    for policy in policies:
        try:
            iam.delete_role_policy(RoleName=policy.role_name, PolicyName=policy.policy_name)
        except iam.exceptions.NoSuchEntityException:
            pass
        except ClientError as error:
            raise from_client_error(
                error, f"removing policy {policy.policy_name} from {policy.role_name}"
            ) from None
        removed.append(f"{policy.role_name}/{policy.policy_name}")
    return removed


def policy_documents(policies: list[RolePolicy]) -> dict[str, Any]:
    return {f"{p.role_name}/{p.policy_name}": p.document for p in policies}
