"""A migration plan for people: the version path, the exact CreateEnvironment request as a diff
against the source, the temporary policies, the DAGs, the warnings. Values of sensitive settings
(passwords, secrets, tokens, keys ...) are never shown."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mwaa_migrate.redaction import REDACTED
from mwaa_migrate.run.settings_diff import flatten, redact_request, settings_diff

_MARKS = {"changed": "~", "added": "+", "removed": "-"}


def _value(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def request_diff(source: Mapping[str, Any], request: Mapping[str, Any]) -> list[str]:
    """Every setting of the request, one a line: '  ' carried unchanged, '~' changed (with the
    source's value), '+' added by the migration, '-' the source has and the request drops."""
    summary = settings_diff(source, request)
    changes = {change.setting: change for change in summary.changed}
    shown = redact_request(request)
    flat_request = flatten(shown)
    width = min(max((len(path) for path in flat_request.keys() | changes.keys()), default=0), 60)
    lines = []
    for path in sorted(flat_request.keys() | changes.keys()):
        change = changes.get(path)
        if change is None:
            lines.append(f"    {path:<{width}}  {_value(flat_request[path])}")
        elif change.change == "changed":
            lines.append(f"  ~ {path:<{width}}  {_value(change.target)}   (source: {_value(change.source)})")
        elif change.change == "added":
            lines.append(f"  + {path:<{width}}  {_value(change.target)}")
        else:
            lines.append(f"  - {path:<{width}}  {_value(change.source)}   (not carried)")
    return lines


def _version_path(plan: Mapping[str, Any]) -> list[str]:
    source, target = plan["source"], plan["target"]
    steps = []
    if target.get("alreadyExists"):
        steps.append(
            f"reuse {target['name']} (on Airflow {target['createVersion']}), left by an earlier run of "
            "this migration"
        )
    else:
        steps.append(f"create {target['name']} on Airflow {target['createVersion']} (CreateEnvironment)")
    self_managed = source.get("kind") == "self_managed"
    source_route = (plan.get("exportDag") or {}).get("transport")
    steps.append(
        f"export the metadata of {source['name']} (Airflow {source['airflowVersion']}) and import it into "
        f"{target['name']}"
        + (
            (
                " through its REST API (a self-managed source: no AWS credentials on it)"
                if source_route == "airflow_api"
                else " (a self-managed source run by hand: you run the export with the conf the execution "
                "hands you, once for the bulk and once for the cutover: mwaa-migrate hands-on)"
            )
            if self_managed
            else ""
        )
    )
    if target.get("upgradeTo"):
        steps.append(
            f"upgrade {target['name']} in place to Airflow {target['upgradeTo']} (UpdateEnvironment: "
            "MWAA's supported 2.11 -> 3 path)"
        )
    if self_managed:
        steps.append(
            f"no task logs to copy: {source['name']} is self-managed (no MWAA CloudWatch log groups)"
        )
    elif source.get("taskLogsEnabled", True):
        steps.append(
            f"copy the task logs of the last {plan.get('logDays')} days from airflow-{source['name']}-Task "
            f"to airflow-{target['name']}-Task"
        )
    else:
        steps.append(f"no task logs to copy: {source['name']} sends none to CloudWatch Logs")
    steps.append("remove the temporary policies and write the report")
    return [f"  {number}. {step}" for number, step in enumerate(steps, start=1)]


def _policies(plan: Mapping[str, Any]) -> list[str]:
    lines = []
    for policy in plan.get("policies") or []:
        lines.append(f"  role {policy['roleName']}, inline policy {policy['policyName']}")
        for statement in policy.get("document", {}).get("Statement", []):
            actions = statement.get("Action")
            actions = ", ".join(actions) if isinstance(actions, list) else str(actions)
            resources = statement.get("Resource")
            resources = ", ".join(resources) if isinstance(resources, list) else str(resources)
            condition = f" when {json.dumps(statement['Condition'])}" if statement.get("Condition") else ""
            sid = statement.get("Sid", "")
            lines.append(f"    {sid}: {statement.get('Effect')} {actions} on {resources}{condition}")
    return lines


def _dags(plan: Mapping[str, Any]) -> list[str]:
    lines = []
    for key in ("exportDag", "importDag"):
        dag = plan.get(key)
        if not dag:
            continue
        folder = f"s3://{dag['bucket']}/{dag['folder'] + '/' if dag.get('folder') else ''}"
        lines.append(f"  {dag['dagId']} on {dag['environmentName']}: {folder} {', '.join(dag['files'])}")
    return lines


_TRANSPORTS = {
    "cli": "its web server's CLI endpoint",
    "rest_api": "MWAA's InvokeRestApi (Airflow's REST API)",
}


def _routes(plan: Mapping[str, Any]) -> list[str]:
    routes = plan.get("webserver") or {}
    lines = []
    for side in ("source", "target"):
        route = routes.get(side) or {}
        name = plan[side]["name"]
        transport = _TRANSPORTS.get(str(route.get("transport", "cli")), str(route.get("transport")))
        reason = f": {route['reason']}" if route.get("reason") else ""
        lines.append(f"  {name} through {transport}{reason}")
    return lines


def _compatibility(plan: Mapping[str, Any]) -> list[str]:
    found = plan.get("dagCompatibility") or {}
    if not found:
        return ["  not checked (a plan made before the preflight)"]
    if found.get("checked") == "none":
        return [f"  {found.get('note')}"]
    policy = plan.get("onIncompatibleDags", "warn")
    return [
        f"  {found.get('filesScanned', 0)} files scanned for Airflow {found.get('targetVersion')}: "
        f"{found.get('breakingCount', 0)} finding(s) that stop a DAG, {found.get('deprecatedCount', 0)} "
        f"deprecation(s) (onIncompatibleDags {policy}; the findings are under Warnings)"
    ]


def render_plan(plan: Mapping[str, Any], *, execution_name: str | None = None) -> list[str]:
    source, target = plan["source"], plan["target"]
    lines = [
        f"Plan: {source['name']} (Airflow {source['airflowVersion']}) -> {target['name']} "
        f"(Airflow {target['finalVersion']})",
    ]
    if execution_name:
        lines.append(f"Dry run {execution_name}: nothing was changed.")
    lines += ["", "Version path", *_version_path(plan), ""]

    lines.append(f"CreateEnvironment request for {target['name']}, compared with {source['name']}")
    lines.append(f"  (~ changed, + added, - not carried; sensitive values shown as {REDACTED})")
    if source.get("settings"):
        lines += request_diff(source["settings"], target["createRequest"])
    else:
        lines.append("  (this pipeline's plan carries no source settings to compare with: the request as is)")
        lines += [
            f"    {line}"
            for line in json.dumps(redact_request(target["createRequest"]), indent=2).splitlines()
        ]
    configuration = target.get("configuration")
    where = (
        f"s3://{configuration['bucket']}/{configuration['key']}"
        if configuration
        else f"s3://{plan['bucket']}/{plan['prefix']}/secrets/ once it runs (a dry run writes none)"
    )
    lines.append(f"  Airflow configuration option values: not in the plan; encrypted (SSE-KMS) in {where}")
    lines += ["", "Temporary IAM policies (put before the export, removed when the migration ends)"]
    lines += _policies(plan) or ["  none"]
    lines += ["", "DAGs put into the environments' DAG folders", *(_dags(plan) or ["  none"])]
    lines += ["", "How the pipeline reaches each environment's Airflow", *_routes(plan)]
    lines += ["", "DAG files on the target's Airflow", *_compatibility(plan)]
    lines += ["", f"Exports, import results and reports: s3://{plan['bucket']}/{plan['prefix']}/", ""]
    lines += ["Warnings", *([f"  - {warning}" for warning in plan.get("warnings") or []] or ["  none"])]
    return lines


def redact_plan(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The plan with sensitive values of both requests replaced, for --json."""
    shown: dict[str, Any] = json.loads(json.dumps(plan))
    if isinstance(shown.get("target", {}).get("createRequest"), dict):
        shown["target"]["createRequest"] = redact_request(shown["target"]["createRequest"])
    if isinstance(shown.get("source", {}).get("settings"), dict):
        shown["source"]["settings"] = redact_request(shown["source"]["settings"])
    return shown
