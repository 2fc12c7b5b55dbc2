"""The migration request's JSON Schema, generated from the model the pipeline validates its input
with (mwaa_migrate.models.MigrationRequest), with the Airflow versions MWAA accepts and the sample
inputs of events/ as examples. docs/migration-request.schema.json holds it; a test keeps that file
identical to what this module generates.

    python -m scripts.request_schema            print the schema
    python -m scripts.request_schema --write    write docs/migration-request.schema.json (make docs)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mwaa_migrate.environment.versions import TARGET_VERSIONS
from mwaa_migrate.models import MigrationRequest

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "docs" / "migration-request.schema.json"
EXAMPLES = ("events/migration_request.json", "events/migration_request_dry_run.json")
# PlanMigration's events carry the request under "request".
EVENT_EXAMPLES = ("events/plan_migration_self_managed.json",)
# Exactly one source: an MWAA environment's name, or a self-managed Apache Airflow.
ONE_SOURCE = [
    {"required": ["sourceEnvironmentName"], "properties": {"sourceEnvironmentName": {"type": "string"}}},
    {"required": ["source"], "properties": {"source": {"type": "object"}}},
]


def request_schema() -> dict[str, Any]:
    schema = MigrationRequest.model_json_schema(by_alias=True, mode="validation")
    for field in schema["properties"].values():
        field.pop("title", None)
    schema["properties"]["targetAirflowVersion"]["enum"] = list(TARGET_VERSIONS)
    examples = [json.loads((REPO_ROOT / example).read_text()) for example in EXAMPLES] + [
        json.loads((REPO_ROOT / example).read_text())["request"] for example in EVENT_EXAMPLES
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "mwaa-migrate migration request",
        "description": (
            "The input of the migration state machine: from the Step Functions console, StartExecution, "
            "the detail of a 'Migration Requested' event (source mwaa.migration), or mwaa-migrate start. "
            "Besides these rules the pipeline checks, before anything changes, that the source exists "
            "and is AVAILABLE (an MWAA source), that the target version is not older than the source's, "
            "and that the target is new or from an earlier run of the same migration."
        ),
        **{key: value for key, value in schema.items() if key not in {"title", "description"}},
        "oneOf": ONE_SOURCE,
        "examples": examples,
    }


def rendered() -> str:
    return json.dumps(request_schema(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help=f"write {SCHEMA_PATH.relative_to(REPO_ROOT)}")
    args = parser.parse_args(argv)
    if args.write:
        SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
        SCHEMA_PATH.write_text(rendered())
        print(f"{SCHEMA_PATH.relative_to(REPO_ROOT)} written")
    else:
        sys.stdout.write(rendered())
    return 0


if __name__ == "__main__":
    sys.exit(main())
