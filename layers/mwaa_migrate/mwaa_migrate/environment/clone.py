"""Give the target its own copy of the source's files and create it from the plan, or find
it from an earlier run; a CREATE_FAILED target of this migration is deleted and created again."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import Field

from mwaa_migrate.environment.environment_request import SOURCE_TAG
from mwaa_migrate.environment.environment_status import get_environment
from mwaa_migrate.environment.requirements_file import requirements_rewrite
from mwaa_migrate.environment.secret_options import load_configuration
from mwaa_migrate.environment.target_files import (
    CopiedFile,
    FilesCopy,
    bucket_name,
    complete_create_request,
    copy_target_files,
)
from mwaa_migrate.errors import MigrationConflict, from_client_error
from mwaa_migrate.migration_bucket import files_record_key, write_json
from mwaa_migrate.models import MigrationPlan, Model

if TYPE_CHECKING:
    from mypy_boto3_mwaa import MWAAClient
    from mypy_boto3_s3 import S3Client

# Statuses of a failed target that the plan allowed CloneEnvironment to replace.
_REPLACEABLE = frozenset({"CREATE_FAILED", "DELETING"})
# How long one invocation waits for a deletion (within its Lambda timeout), and its polls' interval.
DELETE_WAIT_SECONDS = 30.0
_FIRST_POLL_SECONDS = 1.0
_MAX_POLL_SECONDS = 8.0


class CloneResult(Model):
    name: str
    arn: str
    created: bool
    airflow_version: str
    # True: the failed target is still being deleted; invoke CloneEnvironment again after a wait.
    replacing: bool = False
    # A CREATE_FAILED target of this migration was deleted before this creation.
    replaced_failed: bool = False
    # The copy's versioned files (plugins, requirements, startup script) with their version ids.
    files: list[CopiedFile] = Field(default_factory=list)
    dag_folder: str = ""
    dag_files_copied: int = 0
    dag_files_unchanged: int = 0
    # Where every copied file is recorded with its versions (s3://migration-bucket/.../files.json).
    files_record: str | None = None


def _ours(environment: dict[str, Any], plan: MigrationPlan) -> bool:
    return bool(environment.get("Tags", {}).get(SOURCE_TAG) == plan.source.name)


def _delete_until_gone(
    mwaa: MWAAClient,
    plan: MigrationPlan,
    environment: dict[str, Any],
    *,
    wait_seconds: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> bool:
    """Delete the failed target (unless its deletion is under way) and poll until it is gone or the
    wait is spent. True: it is gone."""
    name = plan.target.name
    if environment["Status"] == "CREATE_FAILED":
        try:
            mwaa.delete_environment(Name=name)
        except mwaa.exceptions.ResourceNotFoundException:
            return True
        except ClientError as error:
            # A DeleteEnvironment whose answer was lost and that botocore sent again meets the deletion.
            again = get_environment(mwaa, name)
            if again is None:
                return True
            if again["Status"] != "DELETING":
                raise from_client_error(error, f"deleting the failed environment {name}") from None
    deadline = clock() + wait_seconds
    interval = _FIRST_POLL_SECONDS
    while True:
        current = get_environment(mwaa, name)
        if current is None:
            return True
        if current["Status"] not in _REPLACEABLE:
            raise MigrationConflict(
                f"environment {name} was being replaced but is {current['Status']}: run the migration again"
            )
        if clock() + interval > deadline:
            return False
        sleep(interval)
        interval = min(interval * 2, _MAX_POLL_SECONDS)


def _record_files(s3: S3Client, plan: MigrationPlan, copy: FilesCopy) -> str:
    return write_json(
        s3, plan.bucket, files_record_key(plan.prefix), copy.to_event(), what="the copied files"
    )


def _copy_files(s3: S3Client, plan: MigrationPlan) -> tuple[FilesCopy, str | None]:
    if not plan.target.files:  # a plan made before targets had their own copy
        empty = FilesCopy(
            source_bucket=bucket_name(plan.source.source_bucket_arn),
            target_bucket=bucket_name(plan.target.source_bucket_arn),
        )
        return empty, None
    copy = copy_target_files(
        s3,
        source_bucket=bucket_name(plan.source.source_bucket_arn),
        target_bucket=bucket_name(plan.target.source_bucket_arn),
        files=plan.target.files,
        rewrites={
            "requirements": requirements_rewrite(plan.target.create_version, plan.target.final_version)
        },
    )
    return copy, _record_files(s3, plan, copy)


def _configuration_options(s3: S3Client, plan: MigrationPlan) -> dict[str, str]:
    """The values of the options the plan names (with their values redacted), from the configuration
    object the plan references."""
    names = set(plan.target.create_request.get("AirflowConfigurationOptions") or {})
    if plan.target.configuration is None:
        if names:
            raise MigrationConflict(
                f"the plan names {len(names)} Airflow configuration options but no object with their "
                "values (a dry run's plan): run the migration again"
            )
        return {}
    return load_configuration(s3, plan.target.configuration, migration_id=plan.migration_id, names=names)


def clone_environment(
    mwaa: MWAAClient,
    s3: S3Client,
    plan: MigrationPlan,
    *,
    delete_wait_seconds: float = DELETE_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> CloneResult:
    """Copy the target's files, then create the target unless it already exists from this migration
    (a re-run, or a retried invocation whose first CreateEnvironment went through). Every step is
    safe to repeat: a copy already there is not made again."""
    target = plan.target
    existing = get_environment(mwaa, target.name)
    replaced = False
    if existing is not None:
        if not _ours(existing, plan):
            raise MigrationConflict(
                f"environment {target.name} exists and was not created by a migration from {plan.source.name}"
            )
        if existing["Status"] in _REPLACEABLE:
            if not target.replace_failed:
                raise MigrationConflict(
                    f"environment {target.name} is {existing['Status']} and the plan does not replace it: "
                    "run the migration again (replaceFailedTarget) or delete it"
                )
            if not _delete_until_gone(
                mwaa, plan, existing, wait_seconds=delete_wait_seconds, sleep=sleep, clock=clock
            ):
                return CloneResult(
                    name=target.name,
                    arn=existing["Arn"],
                    created=False,
                    airflow_version=existing.get("AirflowVersion", target.create_version),
                    replacing=True,
                )
            replaced, existing = True, None

    # The option values, proved to be those the plan wrote, before anything is copied or created.
    options = _configuration_options(s3, plan) if existing is None else {}
    copy, record = _copy_files(s3, plan)
    copied = {
        "replaced_failed": replaced,
        "files": copy.files,
        "dag_folder": copy.dag_folder,
        "dag_files_copied": copy.dag_files_copied,
        "dag_files_unchanged": copy.dag_files_unchanged,
        "files_record": record,
    }
    if existing is not None:
        return CloneResult(
            name=target.name,
            arn=existing["Arn"],
            created=False,
            airflow_version=existing["AirflowVersion"],
            **copied,
        )
    request = (
        complete_create_request(target.create_request, copy) if target.files else dict(target.create_request)
    )
    request.pop("AirflowConfigurationOptions", None)
    if options:
        request["AirflowConfigurationOptions"] = options
    try:
        arn = mwaa.create_environment(**request)["Arn"]
    except ClientError as error:
        # botocore sends a CreateEnvironment whose answer was lost (a timeout) again, and the second
        # one meets the environment the first created: if it is this migration's, it was created.
        created = get_environment(mwaa, target.name)
        if created is not None and _ours(created, plan):
            return CloneResult(
                name=target.name,
                arn=created["Arn"],
                created=True,
                airflow_version=created["AirflowVersion"],
                **copied,
            )
        raise from_client_error(error, f"creating environment {target.name}") from None
    return CloneResult(
        name=target.name, arn=arn, created=True, airflow_version=target.create_version, **copied
    )


class UpgradeResult(Model):
    name: str
    airflow_version: str
    started: bool


def upgrade_environment(mwaa: MWAAClient, name: str, airflow_version: str) -> UpgradeResult:
    """Start MWAA's in-place upgrade; nothing to do if it is there already or under way."""
    environment = get_environment(mwaa, name)
    if environment is None:
        raise MigrationConflict(f"environment {name} does not exist")
    if environment.get("AirflowVersion") == airflow_version or environment["Status"] == "UPDATING":
        return UpgradeResult(name=name, airflow_version=airflow_version, started=False)
    try:
        mwaa.update_environment(Name=name, AirflowVersion=airflow_version)
    except ClientError as error:
        # An UpdateEnvironment whose answer was lost and that botocore sent again meets the update
        # the first one started.
        again = get_environment(mwaa, name)
        if again is not None and (
            again["Status"] == "UPDATING" or again.get("AirflowVersion") == airflow_version
        ):
            return UpgradeResult(name=name, airflow_version=airflow_version, started=True)
        raise from_client_error(error, f"upgrading environment {name} to Airflow {airflow_version}") from None
    return UpgradeResult(name=name, airflow_version=airflow_version, started=True)
