"""Turn a source environment's description into the CreateEnvironment request for its clone.

The fields come from botocore's own model of CreateEnvironment, so a field MWAA adds is carried
over as soon as boto3 knows it, and read-only output fields (ARNs, status, URLs, log group ARNs,
Celery queue, VPC endpoint services ...) are dropped because the input shape does not have them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import Shape, StructureShape

from mwaa_migrate.environment.config_migration import migrate_configuration
from mwaa_migrate.redaction import CONFIGURATION_OPTIONS, shown_options

# Tag that marks an environment as the target of one migration, so a re-run can reuse it.
SOURCE_TAG = "mwaa-migrate:source-environment"
# Tag that says this pipeline created the environment (so it may delete it when it ends CREATE_FAILED).
CREATED_BY_TAG = "mwaa-migrate:created-by"
CREATED_BY = "mwaa-migrate"
# The target schedules nothing before the cutover: every DAG appears paused there, and the cutover
# unpauses exactly the DAGs that were active on the source.
PAUSED_AT_CREATION = "core.dags_are_paused_at_creation"


@lru_cache(maxsize=1)
def create_environment_input() -> StructureShape:
    model = botocore.session.get_session().get_service_model("mwaa")
    shape = model.operation_model("CreateEnvironment").input_shape
    assert shape is not None
    return shape


def _project(value: Any, shape: Shape) -> Any:
    """Keep what the input shape accepts, recursively (e.g. drops CloudWatchLogGroupArn)."""
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        return {
            name: _project(value[name], member)
            for name, member in shape.members.items()
            if name in value and value[name] is not None
        }
    return value


def create_request_fields(description: dict[str, Any]) -> dict[str, Any]:
    """What of an environment's description (GetEnvironment) a CreateEnvironment request carries,
    values as they are: option values included, so only for where secrets may go."""
    fields: dict[str, Any] = _project(description, create_environment_input())
    return fields


def source_settings(source: dict[str, Any]) -> dict[str, Any]:
    """The source's own settings as a CreateEnvironment request would carry them (read-only output
    fields dropped), to compare the clone's request with. Airflow configuration option values are
    redacted: the plan that carries these is kept in the execution's history."""
    settings = create_request_fields(source)
    if settings.get(CONFIGURATION_OPTIONS):
        settings[CONFIGURATION_OPTIONS] = shown_options(settings[CONFIGURATION_OPTIONS])
    return settings


def build_create_request(
    source: dict[str, Any],
    *,
    name: str,
    airflow_version: str,
    execution_role_arn: str,
    final_version: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The CreateEnvironment request for the clone (with the option values: for the configuration
    object, never for the plan), and warnings about settings that changed."""
    request: dict[str, Any] = _project(source, create_environment_input())
    request.update(Name=name, AirflowVersion=airflow_version, ExecutionRoleArn=execution_role_arn)

    # aws: tags are reserved: AWS sets them and refuses them in a request.
    tags = {key: value for key, value in source.get("Tags", {}).items() if not key.startswith("aws:")}
    tags[SOURCE_TAG] = source["Name"]
    tags[CREATED_BY_TAG] = CREATED_BY
    request["Tags"] = tags

    warnings: list[str] = []
    options: dict[str, str] = dict(request.get("AirflowConfigurationOptions") or {})
    if options:
        options, warnings = migrate_configuration(
            options,
            source_version=source["AirflowVersion"],
            target_version=airflow_version,
            final_version=final_version,
        )
    source_value = options.get(PAUSED_AT_CREATION)
    if source_value is not None and source_value.strip().lower() != "true":
        warnings.append(
            f"the source sets {PAUSED_AT_CREATION}={source_value}; the target is created with True so "
            "that it schedules no DAG before the cutover (the cutover unpauses exactly the DAGs active "
            "on the source): set it back on the target afterwards if new DAGs must start unpaused"
        )
    options[PAUSED_AT_CREATION] = "True"
    request["AirflowConfigurationOptions"] = options
    return request, warnings


def carried_fields(request: dict[str, Any]) -> list[str]:
    """Names of the request's top-level fields, for the plan and the report."""
    return sorted(request)
