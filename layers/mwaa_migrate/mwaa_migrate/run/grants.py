"""The temporary inline policies that let the execution roles do the migration.

Named per migration, so putting them again replaces them (never duplicates) and the last step
finds and removes exactly them. Their names and documents come from the migration's validated
names and the stack's configuration (`StackGrants`), never from an event: the policies an event
carries are only compared with them, so a forged event can neither put nor remove anything else.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mwaa_migrate.dags.mwaa_migrate_metadata import PUBLIC_KEY_SEALING
from mwaa_migrate.environment.execution_roles import (
    arn_pattern,
    require_allowed_role,
    require_execution_role,
    role_resource,
)
from mwaa_migrate.errors import InvalidMigrationRequest, from_client_error
from mwaa_migrate.migration_bucket import cutover_record_key, export_manifest_key, migration_prefix
from mwaa_migrate.models import MigrationPlan, Model, RolePolicy
from mwaa_migrate.run.migration_names import migration_id

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

    from mwaa_migrate.settings import Settings

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
    source_role_arn: str | None,
    target_role_arn: str,
    kms_key_arn: str,
    sealing_key_arn: str | None = None,
) -> list[RolePolicy]:
    """The export's policy on the source's role (none for a self-managed source: no role of its own)
    and the import's on the target's. `sealing_key_arn`: the export is a self-managed Airflow's,
    its data keys sealed with that RSA key's public half."""
    objects = f"arn:{partition}:s3:::{bucket}/{object_prefix}"
    # The export's data key is bound to this migration by its encryption context: the source's role
    # may only make data keys for it, the target's role only decrypt them, for this migration only.
    this_migration = {"StringEquals": {f"kms:EncryptionContext:{ENCRYPTION_CONTEXT_KEY}": migration_id}}
    # An RSA key takes no encryption context: the sealed message names the migration (the import
    # checks it), and the role reads only this migration's export to find one.
    open_export = (
        {"Resource": kms_key_arn, "Condition": this_migration}
        if sealing_key_arn is None
        else {
            "Resource": sealing_key_arn,
            "Condition": {"StringEquals": {"kms:EncryptionAlgorithm": PUBLIC_KEY_SEALING}},
        }
    )
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
                "Resource": f"arn:{partition}:s3:::{bucket}/{export_manifest_key(object_prefix, 'bulk')}",
            },
            {
                "Sid": "RecordActiveDags",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"arn:{partition}:s3:::{bucket}/{cutover_record_key(object_prefix)}",
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
            {"Sid": "OpenMigrationExport", "Effect": "Allow", "Action": "kms:Decrypt", **open_export},
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
    exporting = (
        [
            RolePolicy(
                role_name=role_name(source_role_arn),
                policy_name=policy_name(prefix, migration_id, "export"),
                document=export_policy,
            )
        ]
        if source_role_arn
        else []
    )
    return [
        *exporting,
        RolePolicy(
            role_name=role_name(target_role_arn),
            policy_name=policy_name(prefix, migration_id, "import"),
            document=import_policy,
        ),
    ]


class StackGrants(Model):
    """What the stack allows the grants to be: its settings, not an event's."""

    policy_prefix: str
    role_pattern: str
    bucket: str
    kms_key_arn: str
    # The key that seals a self-managed Airflow's export keys (None: a stack without one).
    sealing_key_arn: str | None = None

    @classmethod
    def of(cls, config: Settings) -> StackGrants:
        return cls(
            policy_prefix=config.policy_name_prefix,
            role_pattern=config.execution_role_arn_pattern,
            bucket=config.migration_bucket,
            kms_key_arn=config.migration_key_arn,
            sealing_key_arn=config.sealing_key_arn,
        )


def _arn_parts(arn: str) -> tuple[str, str, str]:
    parts = arn.split(":")
    return parts[1], parts[3], parts[4]


def derive_policies(
    plan: MigrationPlan,
    *,
    source_environment: dict[str, Any] | None,
    requested_target_role: str | None,
    iam: IAMClient,
    stack: StackGrants,
) -> list[RolePolicy]:
    """The policies of this migration, derived from the plan's validated names, the source as
    GetEnvironment describes it now (None: a self-managed source, which the execution's request
    describes) and the stack's settings, with the roles checked again (execution_roles.py). Refused
    if the plan's policies are not exactly these."""
    target_role = plan.target.execution_role_arn
    if source_environment is None:
        source_role = None
        partition, region, account_id = _arn_parts(stack.sealing_key_arn or stack.kms_key_arn)
        if plan.source.kind != "self_managed" or plan.source.execution_role_arn is not None:
            raise InvalidMigrationRequest(f"plan.source: {plan.source.name} is not a self-managed source")
        if stack.sealing_key_arn is None:
            raise InvalidMigrationRequest("this stack has no sealing key for a self-managed source's export")
        if target_role != requested_target_role:
            raise InvalidMigrationRequest(
                f"plan.target.executionRoleArn: {target_role} is not the role the execution's request "
                f"names in targetSettings.ExecutionRoleArn ({requested_target_role})"
            )
    else:
        partition, region, account_id = _arn_parts(str(source_environment["Arn"]))
        source_role = str(source_environment["ExecutionRoleArn"])
        if plan.source.execution_role_arn != source_role:
            raise InvalidMigrationRequest(
                f"plan.source.executionRoleArn: {plan.source.execution_role_arn} is not the execution "
                f"role of {plan.source.name} ({source_role})"
            )
        if target_role != (requested_target_role or source_role):
            raise InvalidMigrationRequest(
                f"plan.target.executionRoleArn: {target_role} is not the role the execution's request "
                f"names ({requested_target_role or 'none: the source role ' + source_role})"
            )
        require_allowed_role(
            source_role,
            pattern=stack.role_pattern,
            account_id=account_id,
            field="plan.source.executionRoleArn",
        )
    require_execution_role(
        iam,
        target_role,
        pattern=stack.role_pattern,
        account_id=account_id,
        field="plan.target.executionRoleArn",
    )
    if plan.bucket != stack.bucket:
        raise InvalidMigrationRequest(f"plan.bucket: {plan.bucket} is not this stack's bucket {stack.bucket}")
    derived = migration_policies(
        prefix=stack.policy_prefix,
        migration_id=migration_id(plan.source.name, plan.target.name),
        partition=partition,
        region=region,
        account_id=account_id,
        bucket=stack.bucket,
        object_prefix=migration_prefix(plan.source.name, plan.target.name),
        source_role_arn=source_role,
        target_role_arn=target_role,
        kms_key_arn=stack.kms_key_arn,
        sealing_key_arn=stack.sealing_key_arn if source_environment is None else None,
    )
    if [policy.to_event() for policy in plan.policies] != [policy.to_event() for policy in derived]:
        raise InvalidMigrationRequest(
            "plan.policies: not the policies this migration needs (derived from its environments' "
            "names and the stack's settings): the event was changed after the plan"
        )
    return derived


def policies_to_remove(plan: MigrationPlan, *, stack: StackGrants) -> list[RolePolicy]:
    """The names of this migration's policies on the plan's roles, derived from its environments'
    names, so removing them can remove nothing else. A role outside the stack's pattern is left
    alone (nothing was put on it)."""
    allowed = arn_pattern(stack.role_pattern)
    names = migration_id(plan.source.name, plan.target.name)
    pairs = (
        (plan.source.execution_role_arn, policy_name(stack.policy_prefix, names, "export")),
        (plan.target.execution_role_arn, policy_name(stack.policy_prefix, names, "import")),
    )
    return [
        RolePolicy(role_name=role_name(role_arn), policy_name=name, document={})
        for role_arn, name in pairs
        if role_arn and allowed.fullmatch(role_resource(role_arn))
    ]


def _qualified_name(policy: RolePolicy) -> str:
    """role/policy: how the grants name a policy in their results."""
    return f"{policy.role_name}/{policy.policy_name}"


def _each_policy(policies: list[RolePolicy], call: Callable[[RolePolicy], object], doing: str) -> list[str]:
    """Make one IAM call per policy, in order; returns their role/policy names. An IAM error stops
    the rest and names the policy (`doing`, with {policy_name} and {role_name} in it)."""
    done = []
    for policy in policies:
        try:
            call(policy)
        except ClientError as error:
            where = doing.format(policy_name=policy.policy_name, role_name=policy.role_name)
            raise from_client_error(error, where) from None
        done.append(_qualified_name(policy))
    return done


def put_policies(iam: IAMClient, policies: list[RolePolicy]) -> list[str]:
    """Put (or replace) each policy; returns role/policy names."""

    def put(policy: RolePolicy) -> None:
        iam.put_role_policy(
            RoleName=policy.role_name,
            PolicyName=policy.policy_name,
            PolicyDocument=json.dumps(policy.document),
        )

    return _each_policy(policies, put, "putting policy {policy_name} on {role_name}")


def delete_policies(iam: IAMClient, policies: list[RolePolicy]) -> list[str]:
    """Remove each policy; one already gone counts as removed (a re-run, or a failure before grant)."""

    def delete(policy: RolePolicy) -> None:
        with suppress(iam.exceptions.NoSuchEntityException):
            iam.delete_role_policy(RoleName=policy.role_name, PolicyName=policy.policy_name)

    return _each_policy(policies, delete, "removing policy {policy_name} from {role_name}")


def policy_documents(policies: list[RolePolicy]) -> dict[str, Any]:
    return {_qualified_name(p): p.document for p in policies}
