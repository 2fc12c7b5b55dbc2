"""`mwaa-migrate hands-on`: the steps of a self-managed source's export run by hand (access mode
hands_on), as HandOverExport wrote them to the migration bucket, and with `--to DIR` the files
they name (the export DAG's two files and this phase's conf). The conf holds presigned upload URLs:
it is written to DIR only, never printed."""

from __future__ import annotations

from pathlib import Path

from botocore.exceptions import ClientError

from mwaa_migrate.errors import error_code
from mwaa_migrate.metadata.hands_on_export import CONF_FILE, STEPS_FILE
from mwaa_migrate.migration_bucket import hands_on_dags_folder, hands_on_key
from mwaa_migrate_cli.aws import Pipeline, aws_errors
from mwaa_migrate_cli.cutover import Migration
from mwaa_migrate_cli.errors import CliError, ExitCode

PHASES = ("cutover", "bulk")


def current_phase(pipeline: Pipeline, migration: Migration) -> str:
    """The phase whose steps were handed over last (the cutover's once it was)."""
    for phase in PHASES:
        key = hands_on_key(migration.prefix, phase, STEPS_FILE)
        with aws_errors(f"reading s3://{migration.bucket}/{key}"):
            try:
                pipeline.s3.head_object(Bucket=migration.bucket, Key=key)
            except ClientError as error:
                if error_code(error) in {"404", "NoSuchKey", "NotFound"}:
                    continue
                raise
        return phase
    raise CliError(
        f"{migration.source} -> {migration.target}: no export was handed over yet (access mode hands_on: "
        "the execution hands the bulk over once the plan and the grants are done)",
        ExitCode.NOT_FOUND,
    )


def steps(pipeline: Pipeline, migration: Migration, phase: str) -> str:
    with aws_errors("reading the steps"):
        body = pipeline.s3.get_object(
            Bucket=migration.bucket, Key=hands_on_key(migration.prefix, phase, STEPS_FILE)
        )
    return body["Body"].read().decode()


def download(pipeline: Pipeline, migration: Migration, phase: str, folder: Path) -> list[Path]:
    """The export DAG's files and the phase's conf, into `folder` (the conf readable by its owner only)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    keys = [f"{hands_on_dags_folder(migration.prefix)}/{name}" for name in _dag_files(pipeline, migration)]
    keys.append(hands_on_key(migration.prefix, phase, CONF_FILE))
    for key in keys:
        path = folder / key.rsplit("/", 1)[-1]
        with aws_errors(f"downloading s3://{migration.bucket}/{key}"):
            body = pipeline.s3.get_object(Bucket=migration.bucket, Key=key)["Body"].read()
        path.touch(mode=0o600, exist_ok=True)
        path.write_bytes(body)
        written.append(path)
    return written


def _dag_files(pipeline: Pipeline, migration: Migration) -> list[str]:
    prefix = hands_on_dags_folder(migration.prefix) + "/"
    with aws_errors(f"listing s3://{migration.bucket}/{prefix}"):
        listed = pipeline.s3.list_objects_v2(Bucket=migration.bucket, Prefix=prefix)
    return sorted(item["Key"][len(prefix) :] for item in listed.get("Contents", []))
