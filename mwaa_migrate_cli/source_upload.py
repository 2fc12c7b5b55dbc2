"""A self-managed source's files from local paths: a request may name its DAG folder, plugins.zip,
requirements.txt or startup script as a local path; the CLI puts them in the target's bucket (the
one targetSettings.SourceBucketArn names, an `airflow-*` bucket the pipeline may read) under
`mwaa-migrate/sources/NAME/`, and the request names them there.

The request is validated with the S3 URIs it will carry before anything is uploaded, so a request
the pipeline would refuse uploads nothing. Uploading again is safe: a file whose copy is already
there (same MD5) is left alone, and the folder's copy loses the files the local folder no longer has,
so that the plan copies exactly the folder's DAGs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mwaa_migrate_cli.aws import aws_errors
from mwaa_migrate_cli.errors import CliError, ExitCode

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# The request's fields that may name a local path, and whether each is a folder.
LOCAL_FIELDS = {"dagsUri": True, "pluginsUri": False, "requirementsUri": False, "startupScriptUri": False}
# What a DAG folder holds that is not the user's: never uploaded.
_SKIPPED_PARTS = {"__pycache__", ".git", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


@dataclass(frozen=True)
class Upload:
    """One local file or folder and where its copy goes."""

    field: str
    path: Path
    bucket: str
    key: str  # a folder's prefix ends with "/"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass
class UploadResult:
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def source_prefix(source_name: str) -> str:
    return f"mwaa-migrate/sources/{source_name}/"


def stage_local_sources(request: dict[str, Any]) -> tuple[dict[str, Any], list[Upload]]:
    """The request with each local path replaced by the S3 URI its upload will have, and the uploads.
    A request without a self-managed source, or naming S3 URIs only, comes back as it is."""
    source = request.get("source")
    if not isinstance(source, dict):
        return request, []
    local = {
        name: value
        for name, value in source.items()
        if name in LOCAL_FIELDS and isinstance(value, str) and not value.startswith("s3://")
    }
    if not local:
        return request, []
    bucket = _target_bucket(request)
    name = source.get("name")
    if not isinstance(name, str) or not name:
        raise CliError(
            "source.name: required to upload local files (it names their prefix)", ExitCode.REFUSED
        )
    uploads: list[Upload] = []
    staged = dict(source)
    for field_name, value in local.items():
        path = Path(value).expanduser()
        is_folder = LOCAL_FIELDS[field_name]
        if is_folder and not path.is_dir():
            raise CliError(f"source.{field_name}: {value} is not a folder (nor an s3:// URI)", ExitCode.USAGE)
        if not is_folder and not path.is_file():
            raise CliError(f"source.{field_name}: {value} is not a file (nor an s3:// URI)", ExitCode.USAGE)
        key = source_prefix(name) + ("dags/" if is_folder else path.name)
        upload = Upload(field_name, path, bucket, key)
        uploads.append(upload)
        staged[field_name] = upload.uri
    return {**request, "source": staged}, uploads


def _target_bucket(request: dict[str, Any]) -> str:
    settings = request.get("targetSettings")
    arn = settings.get("SourceBucketArn") if isinstance(settings, dict) else None
    if not isinstance(arn, str) or not arn.startswith("arn:") or ":::" not in arn:
        raise CliError(
            "targetSettings.SourceBucketArn: required to upload local files (they go to the target's bucket)",
            ExitCode.REFUSED,
        )
    return arn.split(":::", 1)[1]


def upload_sources(s3: S3Client, uploads: list[Upload]) -> UploadResult:
    result = UploadResult()
    for upload in uploads:
        if upload.key.endswith("/"):
            _sync_folder(s3, upload, result)
        else:
            _put_if_changed(s3, upload.path, upload.bucket, upload.key, result)
    return result


def _folder_files(folder: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not _SKIPPED_PARTS.intersection(relative.parts) and path.suffix != ".pyc":
            yield relative.as_posix(), path


def _sync_folder(s3: S3Client, upload: Upload, result: UploadResult) -> None:
    wanted = {upload.key + relative: path for relative, path in _folder_files(upload.path)}
    if not wanted:
        raise CliError(f"source.{upload.field}: {upload.path} holds no files", ExitCode.USAGE)
    existing = _etags(s3, upload.bucket, upload.key)
    for key, path in wanted.items():
        _put_if_changed(s3, path, upload.bucket, key, result, etag=existing.get(key, ""))
    for key in sorted(set(existing) - set(wanted)):
        with aws_errors(f"removing s3://{upload.bucket}/{key}"):
            s3.delete_object(Bucket=upload.bucket, Key=key)
        result.removed.append(f"s3://{upload.bucket}/{key}")


def _etags(s3: S3Client, bucket: str, prefix: str) -> dict[str, str]:
    found: dict[str, str] = {}
    with aws_errors(f"listing s3://{bucket}/{prefix}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.update({item["Key"]: item.get("ETag", "").strip('"') for item in page.get("Contents", [])})
    return found


def _put_if_changed(
    s3: S3Client, path: Path, bucket: str, key: str, result: UploadResult, *, etag: str | None = None
) -> None:
    """Put one file unless its copy is there; `etag`: the listed copy's ("" for none), None to read it."""
    uri = f"s3://{bucket}/{key}"
    body = path.read_bytes()
    if etag is None:
        etag = _etag_of(s3, bucket, key)
    # A single-part upload's ETag is its MD5 (no SSE-KMS on these buckets: MWAA reads them).
    if etag == hashlib.md5(body, usedforsecurity=False).hexdigest():
        result.unchanged.append(uri)
        return
    with aws_errors(f"uploading {path} to {uri}"):
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    result.uploaded.append(uri)


def _etag_of(s3: S3Client, bucket: str, key: str) -> str | None:
    with aws_errors(f"reading s3://{bucket}/{key}"):
        try:
            return str(s3.head_object(Bucket=bucket, Key=key).get("ETag", "")).strip('"')
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
