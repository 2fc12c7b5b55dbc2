"""The target's own settings (the request's `targetSettings`): CreateEnvironment members that replace
the source's in the clone's request, for a move to a new network, class, size or access mode.

They are checked twice before anything changes: their shapes when the request is read (unknown
members, members the pipeline or another request field sets, types and lengths, by botocore's own
validator and model), and the whole CreateEnvironment request once the plan has merged them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.validate import ParamValidator

from mwaa_migrate.redaction import CONFIGURATION_OPTIONS, SECRET_NAME

# Members the pipeline sets itself, or another request field does: where to say it instead.
RESERVED = {
    "Name": "targetEnvironmentName",
    "AirflowVersion": "targetAirflowVersion",
    "ExecutionRoleArn": "targetExecutionRoleArn",
    "SourceBucketArn": "targetBucket",
    "DagS3Path": None,
    "PluginsS3Path": None,
    "PluginsS3ObjectVersion": None,
    "RequirementsS3Path": None,
    "RequirementsS3ObjectVersion": None,
    "StartupScriptS3Path": None,
    "StartupScriptS3ObjectVersion": None,
}
# A self-managed source (no environment to clone) has its target's own settings in targetSettings:
# these RESERVED members are the request's to set there, and CreateEnvironment requires them (with
# NetworkConfiguration; Name, AirflowVersion and DagS3Path the pipeline sets).
SELF_MANAGED_SETTINGS = ("ExecutionRoleArn", "SourceBucketArn")
_BUCKET_ARN = re.compile(r"^arn:aws(-[a-z]+)*:s3:::airflow-[a-z0-9.-]*[a-z0-9]$")
_VALUE = re.compile(r", value: .*?(, (?:type|valid) )")
# Members merged key by key into the source's (the others replace the source's member whole).
MERGED = ("AirflowConfigurationOptions", "Tags")
# Tags the pipeline writes: they say which migration made the target.
RESERVED_TAG_PREFIX = "mwaa-migrate:"


@lru_cache(maxsize=1)
def _create_environment_input() -> StructureShape:
    shape = (
        botocore.session.get_session()
        .get_service_model("mwaa")
        .operation_model("CreateEnvironment")
        .input_shape
    )
    assert shape is not None
    return shape


def required_members(*, self_managed: bool) -> list[str]:
    """The members targetSettings must carry: CreateEnvironment's required ones that neither the
    pipeline nor another request field sets (none when the source environment gives them)."""
    if not self_managed:
        return []
    shape = _create_environment_input()
    return [name for name in shape.required_members if name not in RESERVED or name in SELF_MANAGED_SETTINGS]


def settings_problems(settings: dict[str, Any], *, self_managed: bool = False) -> list[str]:
    """What is wrong with targetSettings on its own (no AWS call): each problem names its member
    (the request's validation puts `targetSettings` before them). A self-managed source's settings
    are the target's whole: ExecutionRoleArn and SourceBucketArn are theirs, the required members
    must be there."""
    shape = _create_environment_input()
    reserved = {
        name: instead
        for name, instead in RESERVED.items()
        if not (self_managed and name in SELF_MANAGED_SETTINGS)
    }
    problems: list[str] = [
        f"{name}: missing: a self-managed source's target needs it (CreateEnvironment requires it, and "
        "there is no source environment to take it from)"
        for name in required_members(self_managed=self_managed)
        if name not in settings
    ]
    bucket = settings.get("SourceBucketArn")
    if self_managed and isinstance(bucket, str) and not _BUCKET_ARN.fullmatch(bucket):
        problems.append(
            "SourceBucketArn: must be an S3 bucket ARN, arn:aws:s3:::airflow-NAME (MWAA reads buckets named "
            "airflow-*, and the stack's functions may write the target's copy only there)"
        )
    for name in settings:
        if name in reserved:
            instead = reserved[name]
            problems.append(
                f"{name}: set by "
                + (
                    f"{instead}, not here"
                    if instead
                    else "the pipeline (the target gets its own copy of the files)"
                )
            )
        elif name not in shape.members:
            settable = ", ".join(member for member in shape.members if member not in reserved)
            problems.append(f"{name}: not a CreateEnvironment member (one of {settable})")
    # The request is the execution's input, kept in its history for anyone who may read it: an option
    # whose name says it holds a secret is not taken here (the plan carries no option value either).
    options = settings.get(CONFIGURATION_OPTIONS)
    if isinstance(options, dict):
        problems += [
            f"{CONFIGURATION_OPTIONS}.{option}: names a secret, and a request is kept in the execution's "
            "history: set it on the source before the migration, or on the target after it (or keep it in "
            "a secrets backend)"
            for option in options
            if SECRET_NAME.search(str(option))
        ]
    tags = settings.get("Tags")
    if isinstance(tags, dict):
        problems += [
            f"Tags.{key}: tags starting with {RESERVED_TAG_PREFIX} or aws: are not the request's to set"
            for key in tags
            if str(key).startswith(RESERVED_TAG_PREFIX) or str(key).startswith("aws:")
        ]
    known = {
        name: value for name, value in settings.items() if name in shape.members and name not in reserved
    }
    return problems + [problem for problem in request_problems(known) if "Missing required" not in problem]


def request_problems(request: dict[str, Any]) -> list[str]:
    """A CreateEnvironment request against botocore's model: the validator's report (types, lengths,
    required and unknown members) and the model's enumerations, one line each."""
    shape = _create_environment_input()
    report = ParamValidator().validate(request, shape)
    lines = report.generate_report().splitlines() if report.has_errors() else []
    # botocore quotes the value; an Airflow configuration option's may be a secret.
    return [_VALUE.sub(r"\1", line.strip()) for line in lines if line.strip()] + _enum_problems(
        request, shape, ""
    )


def _enum_problems(value: Any, shape: Shape, where: str) -> list[str]:
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        return [
            problem
            for name, member in shape.members.items()
            if name in value
            for problem in _enum_problems(value[name], member, f"{where}.{name}" if where else name)
        ]
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [problem for item in value for problem in _enum_problems(item, shape.member, f"{where}[]")]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return [problem for item in value.values() for problem in _enum_problems(item, shape.value, where)]
    allowed = getattr(shape, "enum", None)
    if allowed and isinstance(value, str) and value not in allowed:
        return [f"{where}: {value!r} is not one of {', '.join(allowed)}"]
    return []


def apply_target_settings(request: dict[str, Any], settings: dict[str, Any] | None) -> list[str]:
    """Put targetSettings into the clone's CreateEnvironment request (in place): members replace the
    source's whole, AirflowConfigurationOptions and Tags key by key. Returns the members it set."""
    if not settings:
        return []
    for name, value in settings.items():
        if name in MERGED and isinstance(value, dict):
            request[name] = {**(request.get(name) or {}), **value}
        else:
            request[name] = value
    return sorted(settings)
