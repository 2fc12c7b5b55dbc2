"""The target's own copy of what the source runs: its DAG folder, plugins, requirements and startup
script. The source's files are read, never written: production stays untouched while the target is
prepared, and the target never parses a file that the source's users may change under it.

Planned before anything changes (where each file goes, the exact object versions the source runs),
copied by CloneEnvironment. A copy is marked with the source object it was made from (user metadata),
so a re-run or a retried invocation copies nothing again that is already there as the source has it.
"""

from __future__ import annotations

import fnmatch
import io
import re
import zipfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import Field

from mwaa_migrate.errors import InvalidMigrationRequest, MigrationConflict, error_code, from_client_error
from mwaa_migrate.models import Model, TargetFile

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# The project's own DAG files (mwaa_migrate_export.py, mwaa_migrate_metadata.py ...): deployed to each
# side by DeployDag and removed at the end, never copied from the source to the target.
PROJECT_FILES = "mwaa_migrate_*.py"
# The versioned files MWAA reads by path and object version: (kind, path field, version field, name).
VERSIONED_FILES: tuple[tuple[str, str, str, str], ...] = (
    ("plugins", "PluginsS3Path", "PluginsS3ObjectVersion", "plugins.zip"),
    ("requirements", "RequirementsS3Path", "RequirementsS3ObjectVersion", "requirements.txt"),
    ("startup_script", "StartupScriptS3Path", "StartupScriptS3ObjectVersion", "startup.sh"),
)
# User metadata on each copy: which source object it is a copy of.
_MARK_SOURCE = "mwaa-migrate-source"
_MARK_VERSION = "mwaa-migrate-source-version"
_MARK_ETAG = "mwaa-migrate-source-etag"
# A copy whose text was rewritten for the target (requirements_file.py) names what it was made for.
_MARK_REWRITE = "mwaa-migrate-rewritten-for"
# A DAG that opts out of core.dags_are_paused_at_creation starts unpaused on the target.
_NOT_PAUSED_UPON_CREATION = re.compile(r"is_paused_upon_creation\s*=\s*False")
# DAG files read at once while planning (S3 serves parallel GETs; the plan has a Lambda timeout).
_SCAN_THREADS = 8
# Files larger than this are no DAG file anyone writes by hand: not read by the scan.
_SCAN_MAX_BYTES = 1024 * 1024
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NotFound"})


def bucket_name(bucket_arn: str) -> str:
    """arn:aws:s3:::airflow-x -> airflow-x"""
    return bucket_arn.split(":::", 1)[-1]


def target_prefix(target_name: str) -> str:
    """Where the target's copy goes in the bucket: a prefix of its own."""
    return f"mwaa-migrate/{target_name}"


def _folder(path: str) -> str:
    """A DagS3Path as a key prefix: "dags" and "dags/" -> "dags/"; "" -> "" (the bucket's root)."""
    folder = path.strip("/")
    return f"{folder}/" if folder else ""


def is_project_file(key: str) -> bool:
    return fnmatch.fnmatchcase(key.rsplit("/", 1)[-1], PROJECT_FILES)


# ------------------------------------------------------------------------------------ plan time


@dataclass(frozen=True)
class FilesPlan:
    bucket: str
    dag_folder: str
    files: list[TargetFile]
    warnings: list[str] = field(default_factory=list)


def _require_versioned_bucket(s3: S3Client, bucket: str, field_name: str) -> None:
    try:
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    except ClientError as error:
        if error_code(error) in {"404", "NoSuchBucket", "NotFound"}:
            raise InvalidMigrationRequest(f"{field_name}: bucket {bucket} does not exist") from None
        raise from_client_error(error, f"reading the versioning of bucket {bucket}") from None
    if status != "Enabled":
        raise InvalidMigrationRequest(
            f"{field_name}: bucket {bucket} must have versioning enabled: MWAA reads plugins, "
            "requirements and the startup script by object version"
        )


def _source_version(
    s3: S3Client, bucket: str, key: str, version_id: str | None, field_name: str
) -> str | None:
    """The version the source runs: the one it names, or the current one if it names none."""
    try:
        head = s3.head_object(**_object_arguments(bucket, key, version_id))
    except ClientError as error:
        if (
            error_code(error) in _NOT_FOUND
            or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404
        ):
            named = f" version {version_id}" if version_id else ""
            raise MigrationConflict(
                f"the source's {field_name} s3://{bucket}/{key}{named} does not exist: "
                "fix the source environment's file, then run again"
            ) from None
        raise from_client_error(error, f"reading s3://{bucket}/{key}") from None
    found = head.get("VersionId")
    return found if found and found != "null" else version_id


def plan_target_files(
    s3: S3Client,
    source: dict[str, Any],
    *,
    target_name: str,
    target_bucket: str | None,
    target_bucket_field: str = "targetBucket",
    file_fields: Mapping[str, str] | None = None,
) -> FilesPlan:
    """Where each of the source's files goes, and the exact versions to copy. Changes nothing.
    `source` is in GetEnvironment's shape (a self-managed source's request in it); refusals name
    `target_bucket_field` for the target's bucket and `file_fields` (by path field) for the files."""
    source_bucket = bucket_name(source["SourceBucketArn"])
    bucket = target_bucket or source_bucket
    _require_versioned_bucket(s3, bucket, target_bucket_field if target_bucket else "sourceEnvironmentName")
    prefix = target_prefix(target_name)
    dag_folder = f"{prefix}/dags"
    source_folder = _folder(source["DagS3Path"])
    if bucket == source_bucket and (f"{dag_folder}/".startswith(source_folder) or not source_folder):
        # The source would parse the target's copy (and the import DAG) as its own DAGs.
        raise InvalidMigrationRequest(
            f"{target_bucket_field}: the target's DAG folder s3://{bucket}/{dag_folder}/ would be inside "
            f"the source's DAG folder s3://{bucket}/{source_folder}: name another bucket in "
            f"{target_bucket_field}"
        )
    files = [TargetFile(kind="dags", source_key=source_folder, target_key=f"{dag_folder}/")]
    for kind, path_field, version_field, name in VERSIONED_FILES:
        key = source.get(path_field)
        if not key:
            continue
        field_name = (file_fields or {}).get(path_field, path_field)
        version = _source_version(s3, source_bucket, key, source.get(version_field), field_name)
        files.append(
            TargetFile(kind=kind, source_key=key, source_version_id=version, target_key=f"{prefix}/{name}")
        )
    return FilesPlan(bucket=bucket, dag_folder=dag_folder, files=files)


def _dag_keys(s3: S3Client, bucket: str, folder: str) -> list[dict[str, Any]]:
    """The objects of a DAG folder (listed with the paginator: a folder may hold thousands)."""
    objects: list[dict[str, Any]] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
            objects.extend(dict(item) for item in page.get("Contents", []))
    except ClientError as error:
        if error_code(error) == "NoSuchBucket":
            raise MigrationConflict(f"the source's bucket {bucket} does not exist") from None
        raise from_client_error(error, f"listing s3://{bucket}/{folder}") from None
    return objects


def read_dag_sources(s3: S3Client, bucket: str, folder: str) -> dict[str, str]:
    """The source's DAG files' text (Python files up to 1 MB, not the project's own), by their path
    in the DAG folder: what the plan's checks read, read once."""
    prefix = _folder(folder)
    candidates = [
        item["Key"]
        for item in _dag_keys(s3, bucket, prefix)
        if item["Key"].endswith(".py")
        and not is_project_file(item["Key"])
        and int(item.get("Size", 0)) <= _SCAN_MAX_BYTES
    ]

    def read(key: str) -> str:
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            raise from_client_error(error, f"reading s3://{bucket}/{key}") from None
        return body.decode("utf-8", errors="replace")

    with ThreadPoolExecutor(max_workers=_SCAN_THREADS) as pool:
        texts = list(pool.map(read, candidates))
    return {key[len(prefix) :]: text for key, text in zip(candidates, texts, strict=True)}


def read_source_file(s3: S3Client, bucket: str, item: TargetFile) -> bytes:
    """One of the source's versioned files (requirements.txt, plugins.zip ...) at the planned version."""
    try:
        return s3.get_object(**_object_arguments(bucket, item.source_key, item.source_version_id))[
            "Body"
        ].read()
    except ClientError as error:
        raise from_client_error(error, f"reading s3://{bucket}/{item.source_key}") from None


def plugin_sources(archive: bytes) -> dict[str, str]:
    """The Python files of a plugins.zip (up to 1 MB each), by their path in it."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as plugins:
            return {
                info.filename: plugins.read(info).decode("utf-8", errors="replace")
                for info in plugins.infolist()
                if info.filename.endswith(".py") and not info.is_dir() and info.file_size <= _SCAN_MAX_BYTES
            }
    except zipfile.BadZipFile:
        return {}


def unpaused_upon_creation(files: Mapping[str, str], folder: str) -> list[str]:
    """The source's DAG files (from read_dag_sources) that set is_paused_upon_creation=False: they
    would start unpaused on the target whatever core.dags_are_paused_at_creation says."""
    prefix = _folder(folder)
    return [prefix + name for name, text in files.items() if _NOT_PAUSED_UPON_CREATION.search(text)]


def point_request_at_copy(request: dict[str, Any], bucket: str, files: list[TargetFile]) -> None:
    """The CreateEnvironment request reads the copy. The versioned files' ObjectVersion fields are
    left out: the copy's version ids exist only once CloneEnvironment has copied them."""
    partition = str(request["SourceBucketArn"]).split(":")[1]
    request["SourceBucketArn"] = f"arn:{partition}:s3:::{bucket}"
    fields = {kind: (path_field, version_field) for kind, path_field, version_field, _ in VERSIONED_FILES}
    for item in files:
        if item.kind == "dags":
            request["DagS3Path"] = item.target_key.rstrip("/")
            continue
        path_field, version_field = fields[item.kind]
        request[path_field] = item.target_key
        request.pop(version_field, None)


# ------------------------------------------------------------------------------------ copy time


class CopiedFile(Model):
    kind: str
    source_key: str
    source_version_id: str | None = None
    target_key: str
    target_version_id: str | None = None
    # False: the copy was already there (an earlier run or a retried invocation made it).
    copied: bool


class FilesCopy(Model):
    """What CloneEnvironment copied: the versioned files one by one, the DAG folder as counts."""

    source_bucket: str
    target_bucket: str
    files: list[CopiedFile] = Field(default_factory=list)
    dag_folder: str = ""
    dag_files_copied: int = 0
    dag_files_unchanged: int = 0
    # Every DAG file with its versions: written to the migration bucket, not carried by the state
    # machine (a folder of thousands of files would outgrow the 256 KB state).
    dag_files: list[CopiedFile] = Field(default_factory=list)

    def version_of(self, kind: str) -> str | None:
        return next((item.target_version_id for item in self.files if item.kind == kind), None)


def _copy_of(s3: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except ClientError as error:
        if (
            error_code(error) in _NOT_FOUND
            or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404
        ):
            return None
        raise from_client_error(error, f"reading s3://{bucket}/{key}") from None


def _is_copy_of(
    copy: dict[str, Any] | None, source: str, version: str | None, etag: str, rewritten_for: str = ""
) -> bool:
    if copy is None:
        return False
    marks = copy.get("Metadata", {})
    if marks.get(_MARK_SOURCE) != source or marks.get(_MARK_REWRITE, "") != rewritten_for:
        return False
    if version:
        return bool(marks.get(_MARK_VERSION) == version)
    return bool(marks.get(_MARK_ETAG) == etag)


def _version(response: dict[str, Any]) -> str | None:
    version = response.get("VersionId")
    return str(version) if version and version != "null" else None


def copy_object(
    s3: S3Client,
    *,
    kind: str,
    source_bucket: str,
    source_key: str,
    source_version_id: str | None,
    target_bucket: str,
    target_key: str,
    listed_etag: str | None = None,
    rewrite: TextRewrite | None = None,
) -> CopiedFile:
    """Copy one object (at the given version) unless its copy is already there; with `rewrite`, the
    copy holds the rewritten text instead of the source's bytes."""
    rewritten_for = rewrite.made_for if rewrite else ""
    source = f"s3://{source_bucket}/{source_key}"

    def copied(version: str | None, target: dict[str, Any], *, now: bool) -> CopiedFile:
        return CopiedFile(
            kind=kind,
            source_key=source_key,
            source_version_id=version,
            target_key=target_key,
            target_version_id=_version(target),
            copied=now,
        )

    existing = _copy_of(s3, target_bucket, target_key)
    # A DAG file's listing gives its ETag: a copy of that ETag needs no read of the source.
    if listed_etag and not source_version_id and _is_copy_of(existing, source, None, listed_etag):
        assert existing is not None
        return copied(existing.get("Metadata", {}).get(_MARK_VERSION) or None, existing, now=False)
    try:
        head: dict[str, Any] = dict(
            s3.head_object(**_object_arguments(source_bucket, source_key, source_version_id))
        )
    except ClientError as error:
        raise from_client_error(error, f"reading {source}") from None
    version = _version(head) or source_version_id
    etag = str(head.get("ETag", ""))
    if _is_copy_of(existing, source, version, etag, rewritten_for):
        assert existing is not None
        return copied(version, existing, now=False)
    marks = {**head.get("Metadata", {}), _MARK_SOURCE: source, _MARK_VERSION: version or "", _MARK_ETAG: etag}
    placement = _Placement(
        source=_object_arguments(source_bucket, source_key, version),
        target_bucket=target_bucket,
        target_key=target_key,
        head=head,
    )
    if rewrite is not None:
        response = _put_rewritten(s3, placement, {**marks, _MARK_REWRITE: rewritten_for}, rewrite)
    else:
        response = _copy(s3, placement, marks)
    return copied(version, response, now=True)


def _object_arguments(bucket: str, key: str, version: str | None) -> dict[str, Any]:
    """An object's Bucket, Key and (when there is one) VersionId, as S3's calls take them."""
    return {"Bucket": bucket, "Key": key, **({"VersionId": version} if version else {})}


@dataclass(frozen=True)
class _Placement:
    """One source object (its head already read) and where its copy goes."""

    source: dict[str, Any]
    target_bucket: str
    target_key: str
    head: dict[str, Any]

    @property
    def source_uri(self) -> str:
        return f"s3://{self.source['Bucket']}/{self.source['Key']}"

    @property
    def target_uri(self) -> str:
        return f"s3://{self.target_bucket}/{self.target_key}"


def _copy(s3: S3Client, placement: _Placement, marks: dict[str, str]) -> dict[str, Any]:
    request: dict[str, Any] = {
        "Bucket": placement.target_bucket,
        "Key": placement.target_key,
        "CopySource": placement.source,
        # The source's own metadata and content headers, plus the mark of what this is a copy of.
        "MetadataDirective": "REPLACE",
        "Metadata": marks,
    }
    for header in ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage", "CacheControl"):
        if placement.head.get(header):
            request[header] = placement.head[header]
    try:
        # CopyObject copies up to 5 GB in one call: DAG files, plugins.zip and requirements are far smaller.
        return dict(s3.copy_object(**request))
    except ClientError as error:
        raise from_client_error(error, f"copying {placement.source_uri} to {placement.target_uri}") from None


@dataclass(frozen=True)
class TextRewrite:
    """A change of a text file for the target (its requirements' constraint), and what it is for:
    a copy made for something else is made again."""

    made_for: str
    apply: Callable[[str], str]


def _put_rewritten(
    s3: S3Client, placement: _Placement, marks: dict[str, str], rewrite: TextRewrite
) -> dict[str, Any]:
    try:
        text = s3.get_object(**placement.source)["Body"].read().decode("utf-8")
    except ClientError as error:
        raise from_client_error(error, f"reading {placement.source_uri}") from None
    request: dict[str, Any] = {
        "Bucket": placement.target_bucket,
        "Key": placement.target_key,
        "Body": rewrite.apply(text).encode("utf-8"),
        "Metadata": marks,
        "ContentType": placement.head.get("ContentType") or "text/plain; charset=utf-8",
    }
    try:
        return dict(s3.put_object(**request))
    except ClientError as error:
        raise from_client_error(error, f"writing {placement.target_uri}") from None


def copy_target_files(
    s3: S3Client,
    *,
    source_bucket: str,
    target_bucket: str,
    files: list[TargetFile],
    rewrites: Mapping[str, TextRewrite] | None = None,
) -> FilesCopy:
    """Copy the DAG folder (every object but the project's own DAG files) and the versioned files."""
    result = FilesCopy(source_bucket=source_bucket, target_bucket=target_bucket)
    copied: list[CopiedFile] = []
    dag_files: list[CopiedFile] = []
    dag_folder = ""
    for item in files:
        if item.kind != "dags":
            copied.append(
                copy_object(
                    s3,
                    kind=item.kind,
                    source_bucket=source_bucket,
                    source_key=item.source_key,
                    source_version_id=item.source_version_id,
                    target_bucket=target_bucket,
                    target_key=item.target_key,
                    rewrite=(rewrites or {}).get(item.kind),
                )
            )
            continue
        dag_folder = item.target_key
        for listed in _dag_keys(s3, source_bucket, item.source_key):
            key = listed["Key"]
            if is_project_file(key) or key.endswith("/"):
                continue
            dag_files.append(
                copy_object(
                    s3,
                    kind="dags",
                    source_bucket=source_bucket,
                    source_key=key,
                    source_version_id=None,
                    target_bucket=target_bucket,
                    target_key=item.target_key + key[len(item.source_key) :],
                    listed_etag=str(listed.get("ETag", "")),
                )
            )
    return result.model_copy(
        update={
            "files": copied,
            "dag_folder": dag_folder,
            "dag_files": dag_files,
            "dag_files_copied": sum(1 for item in dag_files if item.copied),
            "dag_files_unchanged": sum(1 for item in dag_files if not item.copied),
        }
    )


def complete_create_request(request: dict[str, Any], copy: FilesCopy) -> dict[str, Any]:
    """The planned CreateEnvironment request with the copy's object versions."""
    completed = dict(request)
    for kind, path_field, version_field, _ in VERSIONED_FILES:
        if path_field not in completed:
            continue
        version = copy.version_of(kind)
        if version is None:
            raise MigrationConflict(
                f"the copy of {completed[path_field]} in s3://{copy.target_bucket} has no version id: "
                "enable versioning on the bucket"
            )
        completed[version_field] = version
    return completed
