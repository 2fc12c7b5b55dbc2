"""An MWAA environment as CloudFormation: the `AWS::MWAA::Environment` resource that describes it as
GetEnvironment does, to keep it (the target, once a migration has made it) in one's own stack, by
importing it (the resource has DeletionPolicy Retain, as an import requires).

Airflow configuration options whose names say they hold a secret (password, token, kwargs, ...)
become NoEcho parameters without a default: the template never holds their values.
"""

from __future__ import annotations

import re
from typing import Any

from mwaa_migrate.environment.environment_request import create_request_fields
from mwaa_migrate.redaction import CONFIGURATION_OPTIONS, SECRET_NAME

RESOURCE_TYPE = "AWS::MWAA::Environment"
# CreateEnvironment members CloudFormation's resource does not have (its registry schema, checked by
# tests/cli/test_cloudformation.py): set them after the import, with the API.
NOT_IN_CLOUDFORMATION = frozenset({"IdentityCenterConfiguration", "Teams"})


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text) if part)


def environment_template(description: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
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
        "Description": f"MWAA environment {description['Name']} as GetEnvironment described it",
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
