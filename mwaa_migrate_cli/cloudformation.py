"""An MWAA environment as CloudFormation: the `AWS::MWAA::Environment` resource that describes it as
GetEnvironment does, to keep it (the target, once a migration has made it) in one's own stack, by
importing it (the resource has DeletionPolicy Retain, as an import requires). A self-managed
source's request describes its target before it exists (request_template): from targetSettings and
the paths of the target's own copy of the files, as the plan makes them.

Airflow configuration options whose names say they hold a secret (password, token, kwargs, ...)
become NoEcho parameters without a default: the template never holds their values.
"""

from __future__ import annotations

import re
from typing import Any

from mwaa_migrate.environment.environment_request import create_request_fields
from mwaa_migrate.environment.target_files import VERSIONED_FILES, target_prefix
from mwaa_migrate.models import MigrationRequest
from mwaa_migrate.redaction import CONFIGURATION_OPTIONS, SECRET_NAME

RESOURCE_TYPE = "AWS::MWAA::Environment"
# CreateEnvironment members CloudFormation's resource does not have (its registry schema, checked by
# tests/cli/test_cloudformation.py): set them after the import, with the API.
NOT_IN_CLOUDFORMATION = frozenset({"IdentityCenterConfiguration", "Teams"})


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text) if part)


def environment_template(
    description: dict[str, Any], *, described_by: str = "GetEnvironment described it"
) -> tuple[dict[str, Any], list[str]]:
    """The template, and what it leaves out (with why), from a GetEnvironment description."""
    properties = create_request_fields(description)
    left_out = [
        f"{name}: CloudFormation's {RESOURCE_TYPE} has no such property; set it with the MWAA API"
        for name in sorted(set(properties) & NOT_IN_CLOUDFORMATION)
    ]
    for name in NOT_IN_CLOUDFORMATION:
        properties.pop(name, None)
    # Tags AWS sets itself are refused in a request.
    tags = {key: value for key, value in (properties.get("Tags") or {}).items() if not key.startswith("aws:")}
    if tags:
        properties["Tags"] = tags
    parameters: dict[str, Any] = {}
    options = dict(properties.get(CONFIGURATION_OPTIONS) or {})
    for option in sorted(options):
        if SECRET_NAME.search(option):
            parameter = f"Option{_camel(option)}"
            parameters[parameter] = {
                "Type": "String",
                "NoEcho": True,
                "Description": f"Airflow configuration option {option} (its value is not written here)",
            }
            options[option] = {"Ref": parameter}
    if options:
        properties[CONFIGURATION_OPTIONS] = options
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"MWAA environment {description['Name']} as {described_by}",
    }
    if parameters:
        template["Parameters"] = parameters
    template["Resources"] = {
        _camel(str(description["Name"])) or "Environment": {
            "Type": RESOURCE_TYPE,
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": properties,
        }
    }
    return template, left_out


def request_template(request: MigrationRequest) -> tuple[dict[str, Any], list[str]]:
    """A self-managed source's target as CloudFormation, before it exists: targetSettings, with the
    name, the Airflow version it ends on and the paths of its own copy of the source's files (as the
    plan makes them). The copies' object versions exist only once they are copied: left out."""
    if request.source is None:
        raise ValueError(
            "the request names an MWAA source: its target is the source's clone; once the migration "
            "has made it, `template TARGET` describes it"
        )
    prefix = target_prefix(request.target_environment_name)
    description: dict[str, Any] = {
        **(request.target_settings or {}),
        "Name": request.target_environment_name,
        "AirflowVersion": request.target_airflow_version,
        "DagS3Path": f"{prefix}/dags",
    }
    uris = {
        "plugins": request.source.plugins_uri,
        "requirements": request.source.requirements_uri,
        "startup_script": request.source.startup_script_uri,
    }
    left_out = []
    for kind, path_field, version_field, name in VERSIONED_FILES:
        if uris.get(kind):
            description[path_field] = f"{prefix}/{name}"
            left_out.append(
                f"{version_field}: the version of the target's copy of {name}, known once the migration "
                f"has copied it (`template {request.target_environment_name}` then reads it)"
            )
    template, not_in_cloudformation = environment_template(
        description, described_by="the migration request's targetSettings describe it"
    )
    return template, not_in_cloudformation + left_out
