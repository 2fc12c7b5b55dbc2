"""What a migration leaves behind in (emulated) AWS, in a form two runs can be compared by.

Left out are the values that differ between two correct runs by nature: timestamps, uuids in URLs
and queues, database-local ids, the migration's own DAG runs and their logs (named after the
execution), reports and locks (one per execution). Everything else must be equal: environments and
their settings, every metadata row, every role's inline policies, every task log event, every object.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from typing import Any

from emulation.dag_runtime import opened_table_file
from emulation.local_stack import LAMBDA_ROLE, LocalStack
from mwaa_migrate.dags.mwaa_migrate_metadata import LEDGER_TABLE, TABLE_FILE_SUFFIX

# GetEnvironment members that are fresh for every environment, or moments.
_VOLATILE_MEMBERS = frozenset(
    {
        "CreatedAt",
        "LastUpdate",
        "WebserverUrl",
        "CeleryExecutorQueue",
        # The versions of the target's own copies: S3 gives each write a fresh version id.
        "RequirementsS3ObjectVersion",
        "PluginsS3ObjectVersion",
        "StartupScriptS3ObjectVersion",
    }
)
# Columns local to one database or one moment of the run.
_VOLATILE_COLUMNS = frozenset({"id", "queued_at", "start_date", "end_date", "last_parsed_time", "updated_at"})
PROJECT_DAG_PREFIX = "mwaa_migrate_"
# Reports, locks and the log copy's work items are one per execution.
_PER_EXECUTION_KEYS = ("/reports/", "locks/", "/logs/")
# Files sealed with a data key made for each export (fresh key, fresh nonces): their bytes differ
# from run to run; their contents are compared where they land, in the target's tables.
_SEALED = ".sealed"
# Fields of the export's and import's JSON files that describe one run of them: a moment, the run,
# the digest of gzip bytes (whose header holds a moment), how many rows this run inserted or skipped
# (a second import skips what the first inserted).
_PER_RUN_FIELDS = frozenset(
    {
        "at",
        "run_id",
        "runId",
        "sha256",
        "inserted",
        "skipped",
        "updated",
        "unchanged",
        "identical",
        # the manifest's MAC, under each export's own data key
        "mac",
        # the configuration object's random nonce (its digest must confirm no guessed value)
        "nonce",
        "secrets",
        "watermark",
        "waited_seconds",
        # the cutover record's history: one entry per run that moved it
        "history",
    }
    # S3 gives each copy a fresh version id: the copy is compared by its content.
    | {"targetVersionId", "sourceVersionId", "copied", "dagFilesCopied", "dagFilesUnchanged"}
)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _row(row: dict[str, Any]) -> str:
    return _canonical({k: v for k, v in row.items() if k not in _VOLATILE_COLUMNS})


def _is_project_row(row: dict[str, Any]) -> bool:
    return str(row.get("dag_id", "")).startswith(PROJECT_DAG_PREFIX)


def environments(stack: LocalStack) -> dict[str, Any]:
    described = {}
    for environment in stack.mwaa_emulator.environments:
        description = {k: v for k, v in environment.description.items() if k not in _VOLATILE_MEMBERS}
        tables = {
            name: sorted(_row(row) for row in rows if not _is_project_row(row))
            for name, rows in environment.metadata.items()
            # The import's ledger: digests of row versions, volatile columns included.
            if name != LEDGER_TABLE
        }
        described[environment.name] = {"description": description, "tables": tables}
    return described


def role_policies(stack: LocalStack) -> dict[str, Any]:
    roles = stack.iam.list_roles()["Roles"]
    return {
        role["RoleName"]: {
            name: stack.iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
            for name in stack.iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
        }
        for role in roles
        if role["RoleName"] != LAMBDA_ROLE
    }


def log_events(stack: LocalStack, group: str) -> dict[str, list[tuple[int, str]]]:
    """Every event of every stream of `group` (all pages), as (timestamp, message), in order."""
    streams: dict[str, list[tuple[int, str]]] = {}
    for page in stack.logs.get_paginator("describe_log_streams").paginate(logGroupName=group):
        for stream in page["logStreams"]:
            name = stream["logStreamName"]
            if f"dag_id={PROJECT_DAG_PREFIX}" in name:
                continue
            request: dict[str, Any] = {"logGroupName": group, "logStreamName": name, "startFromHead": True}
            events: list[tuple[int, str]] = []
            while True:
                answer = stack.logs.get_log_events(**request)
                events.extend((event["timestamp"], event["message"]) for event in answer["events"])
                if answer["nextForwardToken"] == request.get("nextToken"):
                    break
                request["nextToken"] = answer["nextForwardToken"]
            # Scenarios write their logs relative to the moment they are seeded.
            start = events[0][0] if events else 0
            streams[name] = [(timestamp - start, message) for timestamp, message in events]
    return streams


def task_log_groups(stack: LocalStack) -> dict[str, Any]:
    groups = [g["logGroupName"] for g in stack.logs.describe_log_groups()["logGroups"]]
    return {group: log_events(stack, group) for group in groups if group.endswith("-Task")}


def objects(stack: LocalStack) -> dict[str, Any]:
    """Every object of every bucket but the per-execution ones: key -> digest of its content (of
    the decompressed content for gzip files, whose header carries a moment)."""
    found = {}
    for bucket in stack.s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        for page in stack.s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                key = item["Key"]
                if any(marker in key for marker in _PER_EXECUTION_KEYS):
                    continue
                if key.endswith(TABLE_FILE_SUFFIX):
                    # Sealed with a new data key by every export: compare what is inside.
                    body = opened_table_file(stack.s3, stack.kms, name, key)
                else:
                    body = stack.s3.get_object(Bucket=name, Key=key)["Body"].read()
                found[f"{name}/{key}"] = _digest(key, body)
    return found


def _digest(key: str, body: bytes) -> str:
    if key.endswith(_SEALED):
        return "sealed"
    if key.endswith(".gz"):
        body = gzip.decompress(body)
    if key.endswith(".json"):
        # Manifests and results carry moments and the execution's run id: compare their shape.
        return _canonical(_without_moments(json.loads(body)))
    return hashlib.sha256(body).hexdigest()


def _without_moments(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_moments(v)
            for k, v in value.items()
            if not (k.endswith(("_at", "At", "_date", "Date")) or k in _PER_RUN_FIELDS)
        }
    if isinstance(value, list):
        return [_without_moments(item) for item in value]
    return value


def snapshot(stack: LocalStack) -> dict[str, Any]:
    return {
        "environments": environments(stack),
        "role_policies": role_policies(stack),
        "task_logs": task_log_groups(stack),
        "objects": objects(stack),
    }


def duplicates(events: list[tuple[int, str]]) -> list[tuple[int, str]]:
    return [event for event, count in Counter(events).items() if count > 1]


def differences(expected: dict[str, Any], actual: dict[str, Any], path: str = "") -> list[str]:
    """Where two snapshots differ, as readable paths (empty when equal)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        for key in sorted(set(expected) | set(actual), key=str):
            where = f"{path}/{key}"
            if key not in actual:
                found.append(f"{where}: missing")
            elif key not in expected:
                found.append(f"{where}: unexpected {_short(actual[key])}")
            else:
                found.extend(differences(expected[key], actual[key], where))
        return found
    if expected != actual:
        if isinstance(expected, list) and isinstance(actual, list):
            extra = [item for item in actual if item not in expected]
            gone = [item for item in expected if item not in actual]
            return [
                f"{path}: {len(expected)} items expected, {len(actual)} found; "
                f"unexpected {_short(extra)}, missing {_short(gone)}"
            ]
        return [f"{path}: expected {_short(expected)}, found {_short(actual)}"]
    return []


def _short(value: Any) -> str:
    text = _canonical(value)
    return text if len(text) <= 300 else text[:300] + "..."
