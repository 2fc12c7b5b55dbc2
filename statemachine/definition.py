"""The state machine's definition, written once: this module generates statemachine/migration.asl.json.

The ASL is the product's spine and the execution history is what operators read, so the generated JSON
stays plain ASL with one named state per step. What this module writes once is what the JSON repeats:

* the Retry policy of a Lambda task (RETRY, and the shorter one of a task that waits for a token);
* the Catch that sends a failure to RecordFailure (the way back);
* "run a project DAG in an environment and follow it" (run_project_dag): trigger until the DAG is
  parsed, then poll the run until it ends, each loop bounded by the execution's settings. The export
  and the import run through it, in the bulk phase and in the cutover.

    python -m statemachine.definition --write    regenerate migration.asl.json (make docs)
    python -m statemachine.definition --check    exit 1 if migration.asl.json is not current

A test (tests/unit/test_state_machine_definition.py) keeps the committed JSON equal to this output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mwaa_migrate.models import MigrationPlan

ASL_PATH = Path(__file__).resolve().parent / "migration.asl.json"

State = dict[str, Any]
States = dict[str, State]

# Lambda's own transient faults, the project's TransientAwsError (an AWS call that outlasted botocore's
# retries), and a function that died without an answer (a timeout or a crash: every step is idempotent,
# so running it again is safe, but not forever).
_LAMBDA_SERVICE: State = {
    "ErrorEquals": [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ],
    "IntervalSeconds": 1,
    "MaxAttempts": 6,
    "BackoffRate": 2,
    "JitterStrategy": "FULL",
}
_TRANSIENT_AWS: State = {
    "ErrorEquals": ["TransientAwsError"],
    "IntervalSeconds": 2,
    "MaxAttempts": 5,
    "BackoffRate": 2,
    "MaxDelaySeconds": 60,
    "JitterStrategy": "FULL",
}
_NO_ANSWER: State = {
    "ErrorEquals": ["Sandbox.Timedout", "Lambda.Unknown", "Runtime.ExitError"],
    "IntervalSeconds": 10,
    "MaxAttempts": 2,
    "BackoffRate": 2,
    "JitterStrategy": "FULL",
}
RETRY = [_LAMBDA_SERVICE, _TRANSIENT_AWS, _NO_ANSWER]
# The log listing and copy save their progress as they go: a run cut short by the task's own timeout
# resumes where it stopped, so that is retried too, once more.
RETRY_RESUMABLE = [
    _LAMBDA_SERVICE,
    _TRANSIENT_AWS,
    {**_NO_ANSWER, "ErrorEquals": ["States.Timeout", *_NO_ANSWER["ErrorEquals"]], "MaxAttempts": 3},
]
# A task that waits for a token makes no AWS call of its own that could outlast botocore's retries.
RETRY_WAITING_FOR_TOKEN = [_LAMBDA_SERVICE, _NO_ANSWER]


def catch(next_state: str, result_path: str = "$.error") -> list[State]:
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": result_path, "Next": next_state}]


TO_RECORD_FAILURE = catch("RecordFailure")


def lambda_task(
    function: str,
    payload: dict[str, Any],
    *,
    timeout: int,
    result_path: str,
    next_state: str,
    result_selector: dict[str, str] | None = None,
    selected: tuple[str, ...] = (),
    comment: str | None = None,
    caught: list[State] | None = TO_RECORD_FAILURE,
    retry: list[State] = RETRY,
) -> State:
    """A Lambda invocation with the standard Retry. `selected` names fields of the function's answer
    kept as they are (`result_selector` for any other shape); `caught` None inside a Parallel branch
    or a Map, whose own Catch handles the failure."""
    selector = dict(result_selector or {})
    selector.update({f"{name}.$": f"$.Payload.{name}" for name in selected})
    state: State = {"Type": "Task"}
    if comment:
        state["Comment"] = comment
    state.update(
        {
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": f"${{{function}FunctionArn}}", "Payload": payload},
            "TimeoutSeconds": timeout,
        }
    )
    if selector:
        state["ResultSelector"] = selector
    state.update({"ResultPath": result_path, "Retry": retry})
    if caught is not None:
        state["Catch"] = caught
    state["Next"] = next_state
    return state


def function_of(state: State) -> str | None:
    """The template's name of the function a Task state invokes ("PlanMigration" for
    ${PlanMigrationFunctionArn}), through lambda:invoke or as the Resource itself; None otherwise."""
    if state.get("Type") != "Task":
        return None
    reference = str(state.get("Parameters", {}).get("FunctionName") or state.get("Resource", ""))
    if not (reference.startswith("${") and reference.endswith("FunctionArn}")):
        return None
    return reference.removeprefix("${").removesuffix("FunctionArn}")


def wait(seconds_path: str, next_state: str) -> State:
    return {"Type": "Wait", "SecondsPath": seconds_path, "Next": next_state}


def pass_result(result: Any, result_path: str, next_state: str, comment: str | None = None) -> State:
    state: State = {"Type": "Pass"}
    if comment:
        state["Comment"] = comment
    state.update({"Result": result, "ResultPath": result_path, "Next": next_state})
    return state


def timed_out(cause: str, *, in_branch: bool) -> State:
    """A loop that reached its deadline. Inside a Parallel branch a Fail (the Parallel's Catch
    records it); elsewhere the error goes to RecordFailure as a Catch would put it."""
    if in_branch:
        return {"Type": "Fail", "Error": "WaitTimedOut", "Cause": cause}
    return pass_result({"Error": "WaitTimedOut", "Cause": cause}, "$.error", "RecordFailure")


def done_or_poll(
    progress: str, *, done: str, done_next: str, limit_path: str, timed_out_next: str, poll_next: str
) -> State:
    """The Choice after a poll: done, out of attempts, or wait and poll again."""
    return {
        "Type": "Choice",
        "Choices": [
            {"Variable": f"$.{progress}.{done}", "BooleanEquals": True, "Next": done_next},
            {
                "Variable": f"$.{progress}.attempt",
                "NumericGreaterThanEqualsPath": limit_path,
                "Next": timed_out_next,
            },
        ],
        "Default": poll_next,
    }


# --------------------------------------------------------------------------------------------------
# Run a project DAG in an environment and follow it


def run_project_dag(
    name: str,
    *,
    deployment: str,
    kind: str,
    phase: str,
    conf: dict[str, Any],
    check: dict[str, Any],
    next_state: str,
    dag_label: str,
    run_label: str,
    in_branch: bool = False,
    start_comment: str | None = None,
) -> States:
    """Trigger the DAG of `deployment` (a plan field) until the environment has parsed it, then poll
    its run until it ends. The states are named after `name` (Export, Import, CutoverExport, ...):
    Trigger{name}, Check{name}Run and the rest. The run's result lands in `$.{camel name}Run`."""
    key = name[0].lower() + name[1:]
    trigger_key, run_key = f"{key}Trigger", f"{key}Run"
    # The history's names: the bulk phase's read "TriggerExportDag" and "StartExportRunPolls", the
    # cutover's "TriggerCutoverExport" and "StartCutoverExportPolls".
    dag = f"{name}Dag" if phase == "bulk" else name
    trigger, start_polls = f"Trigger{dag}", f"Start{name}RunPolls" if phase == "bulk" else f"Start{name}Polls"
    caught = None if in_branch else TO_RECORD_FAILURE
    return {
        f"Start{name}Trigger": pass_result(
            {"attempt": 0, "parsed": False}, f"$.{trigger_key}", trigger, comment=start_comment
        ),
        trigger: lambda_task(
            "TriggerDag",
            {
                "executionId.$": "$.executionId",
                "deployment.$": f"$.plan.{deployment}",
                "conf": {**_COMMON_CONF, "phase": phase, **conf},
                "attempt.$": f"$.{trigger_key}.attempt",
            },
            timeout=480,
            selected=("dagId", "runId", "parsed", "attempt"),
            result_path=f"$.{trigger_key}",
            next_state=f"Is{dag}Triggered",
            caught=caught,
        ),
        f"Is{dag}Triggered": done_or_poll(
            trigger_key,
            done="parsed",
            done_next=start_polls,
            limit_path="$.settings.dagMaxPolls",
            timed_out_next=f"{dag}NotParsed",
            poll_next=f"WaitFor{dag}Parse",
        ),
        f"WaitFor{dag}Parse": wait("$.settings.dagPollSeconds", trigger),
        f"{dag}NotParsed": timed_out(
            f"the {dag_label} DAG did not appear in the environment before the deadline (DagMaxPolls)",
            in_branch=in_branch,
        ),
        start_polls: pass_result({"attempt": 0, "done": False}, f"$.{run_key}", f"WaitFor{name}Run"),
        f"WaitFor{name}Run": wait("$.settings.dagPollSeconds", f"Check{name}Run"),
        f"Check{name}Run": lambda_task(
            "CheckDagRun",
            {
                "executionId.$": "$.executionId",
                "deployment.$": f"$.plan.{deployment}",
                "kind": kind,
                "runId.$": f"$.{trigger_key}.runId",
                "bucket.$": "$.plan.bucket",
                "prefix.$": "$.plan.prefix",
                "attempt.$": f"$.{run_key}.attempt",
                "phase": phase,
                **check,
            },
            timeout=480,
            selected=("state", "done", "attempt", "result"),
            result_path=f"$.{run_key}",
            next_state=f"Is{name}RunDone",
            caught=caught,
        ),
        f"Is{name}RunDone": done_or_poll(
            run_key,
            done="done",
            done_next=next_state,
            limit_path="$.settings.dagMaxPolls",
            timed_out_next=f"{name}RunTimedOut",
            poll_next=f"WaitFor{name}Run",
        ),
        f"{name}RunTimedOut": timed_out(
            f"the {run_label} DAG run did not finish before the deadline (DagMaxPolls)", in_branch=in_branch
        ),
    }


# What every run of the export and import DAGs is told: where the migration's objects are, and whose.
_COMMON_CONF = {
    "bucket.$": "$.plan.bucket",
    "prefix.$": "$.plan.prefix",
    "migrationId.$": "$.plan.migrationId",
    "kmsKeyId.$": "$.plan.kmsKeyArn",
    "sourceEnvironment.$": "$.plan.source.name",
    "targetEnvironment.$": "$.plan.target.name",
}
_CUTOVER_EXPORT_CONF = {
    "drainTimeoutMinutes.$": "$.plan.cutover.drainTimeoutMinutes",
    "onDrainTimeout.$": "$.plan.cutover.onDrainTimeout",
}
_IMPORT_CONF = {"onConflict.$": "$.plan.onConflict", "targetFinalVersion.$": "$.plan.target.finalVersion"}


def hand_over_export(
    name: str, *, phase: str, conf: dict[str, Any], next_state: str, in_branch: bool = False
) -> States:
    """A self-managed source run by hand (hands_on): instead of triggering and polling the export,
    write its conf and steps for the operator and wait, until ExportLanded answers with the export's
    result when its manifest lands (`$.{camel name}Run.result`, as Check{name}Run leaves it), or
    the plan's deadline passes."""
    key = name[0].lower() + name[1:]
    return {
        f"Is{name}ByHand": {
            "Type": "Choice",
            "Comment": "A self-managed source run by hand: its operator runs the export.",
            "Choices": [
                {
                    "Variable": "$.plan.exportDag.transport",
                    "StringEquals": "hands_on",
                    "Next": f"HandOver{name}",
                }
            ],
            "Default": f"Start{name}Trigger",
        },
        f"HandOver{name}": {
            "Type": "Task",
            "Comment": "Waits for the export its operator runs (mwaa-migrate hands-on prints the steps); "
            "S3's event for its manifest ends the wait (ExportLanded).",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {
                "FunctionName": "${HandOverExportFunctionArn}",
                "Payload": {
                    "executionId.$": "$.executionId",
                    "deployment.$": "$.plan.exportDag",
                    "conf": {**_COMMON_CONF, "phase": phase, **conf},
                    "deadlineSeconds.$": "$.plan.handsOnDeadlineSeconds",
                    "taskToken.$": "$$.Task.Token",
                },
            },
            "TimeoutSecondsPath": "$.plan.handsOnDeadlineSeconds",
            "ResultPath": f"$.{key}Run",
            # Its function writes to S3 and signs: a TransientAwsError is retried (a deadline is not).
            "Retry": RETRY,
            **({} if in_branch else {"Catch": TO_RECORD_FAILURE}),
            "Next": next_state,
        },
    }


def deploy_dag(deployment: str, result_path: str, next_state: str, *, in_branch: bool = False) -> State:
    return lambda_task(
        "DeployDag",
        {"executionId.$": "$.executionId", "deployment.$": f"$.plan.{deployment}"},
        timeout=240,
        selected=("uploaded", "unchanged"),
        result_path=result_path,
        next_state=next_state,
        caught=None if in_branch else TO_RECORD_FAILURE,
    )


def check_environment(attempt_path: str, expected_version: str, **extra: str) -> dict[str, Any]:
    """CheckEnvironment's payload: the target's status, polled until it runs `expected_version`."""
    return {
        "executionId.$": "$.executionId",
        "environmentName.$": "$.plan.target.name",
        "attempt.$": attempt_path,
        "expectedVersion.$": expected_version,
        **extra,
    }


_ENVIRONMENT_STATUS = ("status", "airflowVersion", "ready", "attempt")


# --------------------------------------------------------------------------------------------------
# The migration


def _read_input() -> States:
    settings = {
        f"{name}.$": f"States.StringToJson('${{{name[0].upper()}{name[1:]}}}')"
        for name in ("environmentPollSeconds", "environmentMaxPolls", "dagPollSeconds", "dagMaxPolls")
    }
    return {
        "ReadInput": {
            "Type": "Pass",
            "Comment": "Keep the request under its own key and fix the settings for the whole execution.",
            "Parameters": {
                "request.$": "$",
                "executionId.$": "$$.Execution.Id",
                "startedAt.$": "$$.Execution.StartTime",
                "settings": settings,
            },
            "Next": "PlanMigration",
        }
    }


# The plan's fields as the state machine carries them (their JSON names).
PLAN_FIELDS = tuple(str(field.alias or name) for name, field in MigrationPlan.model_fields.items())


def _plan_and_grant() -> States:
    return {
        # The plan passes whole: every field of the plan's model, so that a field added to the model
        # is carried without a list to keep in step (a test checks a real plan carries them all).
        "PlanMigration": lambda_task(
            "PlanMigration",
            {"executionId.$": "$.executionId", "request.$": "$.request"},
            timeout=240,
            selected=PLAN_FIELDS,
            result_path="$.plan",
            next_state="IsDryRun",
        ),
        "IsDryRun": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.plan.dryRun", "BooleanEquals": True, "Next": "DryRunPlanned"}],
            "Default": "GrantPermissions",
        },
        "DryRunPlanned": {
            "Type": "Succeed",
            "Comment": "dryRun: the plan is the output; nothing changed.",
            "OutputPath": "$.plan",
        },
        "GrantPermissions": lambda_task(
            "GrantPermissions",
            {"executionId.$": "$.executionId", "plan.$": "$.plan"},
            timeout=240,
            selected=("policies",),
            result_path="$.grants",
            next_state="IsTargetLiveAlready",
        ),
        "IsTargetLiveAlready": {
            "Type": "Choice",
            "Comment": "A run of this migration went live before it was stopped: finish it without "
            "copying anything again.",
            "Choices": [
                {
                    "Variable": "$.plan.cutover.resumeAfterLive",
                    "BooleanEquals": True,
                    "Next": "ResumeAfterLive",
                }
            ],
            "Default": "PrepareTargetAndExport",
        },
        "ResumeAfterLive": {
            "Type": "Pass",
            "Comment": "What the skipped steps would have left, empty: the report says the metadata moved "
            "in the earlier run.",
            "Parameters": {"target": {"clone": {"resumed": True}}, "export": {"exported": {}}},
            "ResultPath": "$.prepared",
            "Next": "ResumeAfterLiveRuns",
        },
        "ResumeAfterLiveRuns": pass_result({"result": {}}, "$.importRun", "ResumeAfterLiveCutoverExport"),
        "ResumeAfterLiveCutoverExport": pass_result(
            {"result": {}}, "$.cutoverExportRun", "ResumeAfterLiveCutoverImport"
        ),
        "ResumeAfterLiveCutoverImport": pass_result({"result": {}}, "$.cutoverImportRun", "StartTargetDags"),
    }


def _target_branch() -> States:
    return {
        "StartClone": pass_result({"attempt": 0}, "$.cloneAttempt", "CloneEnvironment"),
        "CloneEnvironment": lambda_task(
            "CloneEnvironment",
            {"executionId.$": "$.executionId", "plan.$": "$.plan"},
            timeout=960,
            selected=("name", "arn", "created", "airflowVersion", "replacing", "files", "filesRecord"),
            result_path="$.clone",
            next_state="IsTargetReplaced",
            caught=None,
        ),
        "IsTargetReplaced": {
            "Type": "Choice",
            "Comment": "A CREATE_FAILED target this pipeline made is deleted first; MWAA takes a while.",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.clone.replacing", "BooleanEquals": True},
                        {
                            "Variable": "$.cloneAttempt.attempt",
                            "NumericGreaterThanEqualsPath": "$.settings.environmentMaxPolls",
                        },
                    ],
                    "Next": "TargetNotReplaced",
                },
                {"Variable": "$.clone.replacing", "BooleanEquals": True, "Next": "WaitForTargetDeletion"},
            ],
            "Default": "StartTargetPolls",
        },
        "WaitForTargetDeletion": wait("$.settings.environmentPollSeconds", "CountClone"),
        "CountClone": {
            "Type": "Pass",
            "Parameters": {"attempt.$": "States.MathAdd($.cloneAttempt.attempt, 1)"},
            "ResultPath": "$.cloneAttempt",
            "Next": "CloneEnvironment",
        },
        "TargetNotReplaced": timed_out(
            "the failed target was not deleted before the deadline (EnvironmentMaxPolls)", in_branch=True
        ),
        "StartTargetPolls": pass_result({"attempt": 0, "ready": False}, "$.targetStatus", "WaitForTarget"),
        "WaitForTarget": wait("$.settings.environmentPollSeconds", "CheckTarget"),
        "CheckTarget": lambda_task(
            "CheckEnvironment",
            check_environment(
                "$.targetStatus.attempt",
                "$.plan.target.createVersion",
                **{"finalVersion.$": "$.plan.target.finalVersion"},
            ),
            timeout=240,
            selected=_ENVIRONMENT_STATUS,
            result_path="$.targetStatus",
            next_state="IsTargetReady",
            caught=None,
        ),
        "IsTargetReady": done_or_poll(
            "targetStatus",
            done="ready",
            done_next="TargetReady",
            limit_path="$.settings.environmentMaxPolls",
            timed_out_next="TargetTimedOut",
            poll_next="WaitForTarget",
        ),
        "TargetTimedOut": timed_out(
            "Target environment did not become AVAILABLE before the deadline (EnvironmentMaxPolls)",
            in_branch=True,
        ),
        "TargetReady": {
            "Type": "Pass",
            "Comment": "The branch's output: the target and how it was made.",
            "Parameters": {"clone.$": "$.clone", "status.$": "$.targetStatus"},
            "End": True,
        },
    }


def _export_branch() -> States:
    return {
        "DeployExportDag": deploy_dag("exportDag", "$.exportDeploy", "IsExportByHand", in_branch=True),
        **hand_over_export("Export", phase="bulk", conf={}, next_state="ExportDone", in_branch=True),
        **run_project_dag(
            "Export",
            deployment="exportDag",
            kind="export",
            phase="bulk",
            conf={},
            check={},
            next_state="ExportDone",
            dag_label="export",
            run_label="export",
            in_branch=True,
        ),
        "ExportDone": {
            "Type": "Pass",
            "Comment": "The branch's output: what the export wrote.",
            "Parameters": {"exported.$": "$.exportRun.result"},
            "End": True,
        },
    }


def _prepare() -> States:
    return {
        "PrepareTargetAndExport": {
            "Type": "Parallel",
            "Comment": "Production runs on: the target is created (~20-30 minutes) while the bulk export "
            "copies the history that is already final. Nothing on the source is paused.",
            "Branches": [
                {"StartAt": "StartClone", "States": _target_branch()},
                {"StartAt": "DeployExportDag", "States": _export_branch()},
            ],
            "ResultSelector": {
                "target.$": "States.ArrayGetItem($, 0)",
                "export.$": "States.ArrayGetItem($, 1)",
            },
            "ResultPath": "$.prepared",
            "Catch": TO_RECORD_FAILURE,
            "Next": "DeployImportDag",
        }
    }


def _bulk_import_and_cutover() -> States:
    return {
        "DeployImportDag": deploy_dag("importDag", "$.importDeploy", "StartImportTrigger"),
        **run_project_dag(
            "Import",
            deployment="importDag",
            kind="import",
            phase="bulk",
            conf=_IMPORT_CONF,
            check={
                "exported.$": "$.prepared.export.exported",
                "onIncompatibleDags.$": "$.plan.onIncompatibleDags",
                "targetVersion.$": "$.plan.target.createVersion",
            },
            next_state="IsApprovalNeeded",
            dag_label="import",
            run_label="import",
        ),
        "IsApprovalNeeded": {
            "Type": "Choice",
            "Comment": "cutover: approve waits here, production still running, until an operator answers.",
            "Choices": [
                {"Variable": "$.plan.cutover.mode", "StringEquals": "approve", "Next": "AwaitApproval"}
            ],
            "Default": "IsCutoverExportByHand",
        },
        "AwaitApproval": {
            "Type": "Task",
            "Comment": "The downtime window starts only when mwaa-migrate approve answers (reject, or the "
            "deadline, ends the migration with the source untouched).",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {
                "FunctionName": "${AwaitApprovalFunctionArn}",
                "Payload": {
                    "executionId.$": "$.executionId",
                    "plan.$": "$.plan",
                    "taskToken.$": "$$.Task.Token",
                },
            },
            "TimeoutSecondsPath": "$.plan.cutover.approvalTimeoutSeconds",
            "ResultPath": "$.approval",
            "Retry": RETRY_WAITING_FOR_TOKEN,
            "Catch": TO_RECORD_FAILURE,
            "Next": "IsCutoverExportByHand",
        },
        **hand_over_export(
            "CutoverExport",
            phase="cutover",
            conf=_CUTOVER_EXPORT_CONF,
            next_state="StartCutoverImportTrigger",
        ),
        **run_project_dag(
            "CutoverExport",
            deployment="exportDag",
            kind="export",
            phase="cutover",
            conf=_CUTOVER_EXPORT_CONF,
            check={},
            next_state="StartCutoverImportTrigger",
            dag_label="export",
            run_label="cutover export",
            start_comment="The downtime window opens: the export's first task records the source's active "
            "DAGs and pauses exactly those.",
        ),
        **run_project_dag(
            "CutoverImport",
            deployment="importDag",
            kind="import",
            phase="cutover",
            conf={"unpauseDags.$": "$.plan.cutover.unpauseInImport", **_IMPORT_CONF},
            check={"exported.$": "$.cutoverExportRun.result"},
            next_state="NeedsUpgrade",
            dag_label="import",
            run_label="cutover import",
        ),
    }


def _go_live() -> States:
    return {
        "StartTargetDags": lambda_task(
            "StartTargetDags",
            {"executionId.$": "$.executionId", "plan.$": "$.plan", "imported.$": "$.cutoverImportRun.result"},
            timeout=960,
            result_selector={"live.$": "$.Payload"},
            result_path="$.live",
            next_state="ShouldCopyTaskLogs",
            comment="The window closes: the recorded DAGs run on the target (unpaused here after an "
            "upgrade), and the record says the target is live.",
        ),
        "NeedsUpgrade": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.plan.target.upgradeTo", "IsPresent": True, "Next": "UpgradeEnvironment"}
            ],
            "Default": "StartTargetDags",
        },
        "UpgradeEnvironment": lambda_task(
            "UpgradeEnvironment",
            {
                "executionId.$": "$.executionId",
                "environmentName.$": "$.plan.target.name",
                "airflowVersion.$": "$.plan.target.upgradeTo",
            },
            timeout=240,
            selected=("airflowVersion", "started"),
            result_path="$.upgrade",
            next_state="StartUpgradePolls",
        ),
        "StartUpgradePolls": pass_result({"attempt": 0, "ready": False}, "$.upgradeStatus", "WaitForUpgrade"),
        "WaitForUpgrade": wait("$.settings.environmentPollSeconds", "CheckUpgrade"),
        "CheckUpgrade": lambda_task(
            "CheckEnvironment",
            check_environment("$.upgradeStatus.attempt", "$.plan.target.upgradeTo"),
            timeout=240,
            selected=_ENVIRONMENT_STATUS,
            result_path="$.upgradeStatus",
            next_state="IsUpgradeReady",
        ),
        "IsUpgradeReady": done_or_poll(
            "upgradeStatus",
            done="ready",
            done_next="StartTargetDags",
            limit_path="$.settings.environmentMaxPolls",
            timed_out_next="UpgradeTimedOut",
            poll_next="WaitForUpgrade",
        ),
        "UpgradeTimedOut": timed_out(
            "Upgrade environment did not become AVAILABLE before the deadline (EnvironmentMaxPolls)",
            in_branch=False,
        ),
    }


_PROGRESS = ("done", "calls", "progress")


def _stream_copy() -> States:
    return {
        "StartStreamCopy": pass_result(
            {"done": False, "calls": 0, "progress": None}, "$.copy", "CopyLogStreams"
        ),
        "CopyLogStreams": lambda_task(
            "CopyLogStreams",
            {
                "executionId.$": "$.executionId",
                **{
                    f"{name}.$": f"$.{name}"
                    for name in (
                        "sourceEnvironmentName",
                        "targetEnvironmentName",
                        "since",
                        "until",
                        "bucket",
                        "resultsPrefix",
                        "index",
                        "item",
                    )
                },
                "calls.$": "$.copy.calls",
                "progress.$": "$.copy.progress",
            },
            timeout=960,
            selected=_PROGRESS,
            retry=RETRY_RESUMABLE,
            result_path="$.copy",
            next_state="IsStreamCopyDone",
            caught=None,
        ),
        "IsStreamCopyDone": {
            "Type": "Choice",
            "Comment": "A stream too big for one call returns a continuation; every call moves forward.",
            "Choices": [
                {"Variable": "$.copy.done", "BooleanEquals": True, "Next": "StreamCopyDone"},
                {"Variable": "$.copy.calls", "NumericGreaterThanEquals": 100, "Next": "StreamCopyTimedOut"},
            ],
            "Default": "CopyLogStreams",
        },
        "StreamCopyTimedOut": timed_out(
            "the copy of a work item did not finish within 100 calls", in_branch=True
        ),
        "StreamCopyDone": {
            "Type": "Pass",
            "Comment": "A small output: the item's result is in the migration bucket.",
            "Parameters": {"index.$": "$.index", "eventsWritten.$": "$.copy.progress.eventsWritten"},
            "End": True,
        },
    }


def _log_copy() -> States:
    listing = "$.logCopy.listing.progress"
    return {
        "ShouldCopyTaskLogs": {
            "Type": "Choice",
            "Comment": "Copy the log groups the request names (Task by default); an empty logGroups copies "
            "none.",
            "Choices": [{"Variable": "$.plan.logGroups[0]", "IsPresent": True, "Next": "StartLogListing"}],
            "Default": "SkipLogCopy",
        },
        "SkipLogCopy": pass_result(
            {
                "report": {
                    "complete": True,
                    "groups": [],
                    "note": "no log groups to copy (logGroups is empty: as requested, or a "
                    "self-managed source, which has no MWAA log groups)",
                }
            },
            "$.logs",
            "FinishMigration",
            comment="logGroups is empty: no logs were requested.",
        ),
        "StartLogListing": {
            "Type": "Pass",
            "Comment": "The Distributed Map's settings, and the listing's loop counter.",
            "Parameters": {
                "settings": {
                    "maxConcurrency.$": "States.StringToJson('${LogCopyMaxConcurrency}')",
                    "toleratedFailurePercentage.$": (
                        "States.StringToJson('${LogCopyToleratedFailurePercentage}')"
                    ),
                },
                "listing": {"done": False, "calls": 0, "progress": None},
            },
            "ResultPath": "$.logCopy",
            "Next": "ListLogStreams",
        },
        "ListLogStreams": lambda_task(
            "ListLogStreams",
            {
                "executionId.$": "$.executionId",
                "sourceEnvironmentName.$": "$.plan.source.name",
                "targetEnvironmentName.$": "$.plan.target.name",
                "targetAirflowVersion.$": "$.plan.target.finalVersion",
                "logGroups.$": "$.plan.logGroups",
                "failedTasksOnly.$": "$.plan.failedTasksOnly",
                "logDays.$": "$.plan.logDays",
                "windowEnd.$": "$.startedAt",
                "bucket.$": "$.plan.bucket",
                "prefix.$": "$.plan.prefix",
                "migrationId.$": "$.plan.migrationId",
                "maxConcurrency.$": "$.logCopy.settings.maxConcurrency",
                "calls.$": "$.logCopy.listing.calls",
                "progress.$": listing,
            },
            timeout=960,
            selected=_PROGRESS,
            retry=RETRY_RESUMABLE,
            result_path="$.logCopy.listing",
            next_state="IsLogListingDone",
            comment="Every page of DescribeLogStreams of each group; writes the work items to the migration "
            "bucket.",
        ),
        "IsLogListingDone": {
            "Type": "Choice",
            "Comment": "A listing near Lambda's time limit returns where to go on; every call moves forward.",
            "Choices": [
                {"Variable": "$.logCopy.listing.done", "BooleanEquals": True, "Next": "HasLogStreamsToCopy"},
                {
                    "Variable": "$.logCopy.listing.calls",
                    "NumericGreaterThanEquals": 50,
                    "Next": "LogListingTimedOut",
                },
            ],
            "Default": "ListLogStreams",
        },
        "LogListingTimedOut": timed_out(
            "listing the log streams did not finish within 50 calls", in_branch=False
        ),
        "HasLogStreamsToCopy": {
            "Type": "Choice",
            "Choices": [
                {"Variable": f"{listing}.items", "NumericGreaterThan": 0, "Next": "CopyLogStreamsInParallel"}
            ],
            "Default": "SummarizeLogCopy",
        },
        "CopyLogStreamsInParallel": {
            "Type": "Map",
            "Comment": "One child execution per work item, at most maxConcurrency at once; a failed item "
            "fails the map unless the tolerated failure percentage allows it.",
            "Label": "LogCopy",
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSON"},
                "Parameters": {"Bucket.$": f"{listing}.bucket", "Key.$": f"{listing}.itemsKey"},
            },
            "ItemSelector": {
                "executionId.$": "$.executionId",
                "sourceEnvironmentName.$": "$.plan.source.name",
                "targetEnvironmentName.$": "$.plan.target.name",
                "since.$": f"{listing}.since",
                "until.$": f"{listing}.until",
                "bucket.$": f"{listing}.bucket",
                "resultsPrefix.$": f"{listing}.resultsPrefix",
                "index.$": "$$.Map.Item.Index",
                "item.$": "$$.Map.Item.Value",
            },
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "StartStreamCopy",
                "States": _stream_copy(),
            },
            "MaxConcurrencyPath": "$.logCopy.settings.maxConcurrency",
            "ToleratedFailurePercentagePath": "$.logCopy.settings.toleratedFailurePercentage",
            "ResultWriter": {
                "Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket.$": f"{listing}.bucket", "Prefix.$": f"{listing}.mapRunPrefix"},
            },
            "ResultPath": "$.logCopy.mapRun",
            "Catch": catch("ExplainLogCopyFailure"),
            "Next": "SummarizeLogCopy",
        },
        "ExplainLogCopyFailure": lambda_task(
            "SummarizeLogCopy",
            {"executionId.$": "$.executionId", "listing.$": listing, "mapRunError.$": "$.error"},
            timeout=360,
            result_selector={"Error.$": "$.Payload.error", "Cause.$": "$.Payload.cause"},
            result_path="$.error",
            next_state="RecordFailure",
            caught=catch("LogCopyFailed", "$.logCopy.explainError"),
            comment="The first failed work item's own error and cause (from the Map Run's FAILED_n.json "
            "results) become the migration's; without one, the Map's own.",
        ),
        "LogCopyFailed": {
            "Type": "Pass",
            "Comment": "Reading the failed items' own errors failed: the Map Run's own error "
            "(States.ExceedToleratedFailureThreshold, States.ItemReaderFailed ...) under the project's "
            "name, with its cause.",
            "Parameters": {
                "Error": "LogCopyFailed",
                "Cause.$": "States.Format('the log copy failed ({}): {}', $.error.Error, $.error.Cause)",
            },
            "ResultPath": "$.error",
            "Next": "RecordFailure",
        },
        "SummarizeLogCopy": lambda_task(
            "SummarizeLogCopy",
            {"executionId.$": "$.executionId", "listing.$": listing},
            timeout=360,
            result_selector={"report.$": "$.Payload"},
            result_path="$.logs",
            next_state="FinishMigration",
            comment="Streams and events read and written per group, and what was skipped and why.",
        ),
    }


def _finish() -> States:
    return {
        "FinishMigration": lambda_task(
            "FinishMigration",
            {
                "executionId.$": "$.executionId",
                "startedAt.$": "$.startedAt",
                "plan.$": "$.plan",
                "clone.$": "$.prepared.target.clone",
                "exported.$": "$.prepared.export.exported",
                "imported.$": "$.importRun.result",
                "logs.$": "$.logs.report",
                "cutoverExported.$": "$.cutoverExportRun.result",
                "cutoverImported.$": "$.cutoverImportRun.result",
                "live.$": "$.live.live",
            },
            timeout=300,
            selected=("status", "reportUri", "sourceEnvironmentName", "targetEnvironmentName"),
            result_path="$.outcome",
            next_state="MigrationSucceeded",
        ),
        "MigrationSucceeded": {"Type": "Succeed", "OutputPath": "$.outcome"},
        "RecordFailure": lambda_task(
            "RecordFailure",
            {"executionId.$": "$.executionId", "state.$": "$"},
            timeout=960,
            selected=("status", "reportUri", "error", "cause", "failedState"),
            result_path="$.outcome",
            next_state="MigrationFailed",
            caught=catch("MigrationFailedUnrecorded", "$.recordError"),
            comment="The way back: restores the source's recorded DAGs unless the target is live, removes "
            "the grants, writes the report.",
        ),
        "MigrationFailed": {"Type": "Fail", "ErrorPath": "$.outcome.error", "CausePath": "$.outcome.cause"},
        "MigrationFailedUnrecorded": {
            "Type": "Fail",
            "Comment": "Recording the failure failed too: keep the original error.",
            "ErrorPath": "$.error.Error",
            "CausePath": "$.error.Cause",
        },
    }


def definition() -> dict[str, Any]:
    return {
        "Comment": "mwaa-migrate: move an MWAA environment to a new environment on a newer Airflow version, "
        "with its metadata and recent task logs.",
        "StartAt": "ReadInput",
        "States": {
            **_read_input(),
            **_plan_and_grant(),
            **_prepare(),
            **_bulk_import_and_cutover(),
            **_go_live(),
            **_log_copy(),
            **_finish(),
        },
    }


def rendered() -> str:
    return json.dumps(definition(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help=f"write {ASL_PATH.name}")
    action.add_argument("--check", action="store_true", help=f"exit 1 if {ASL_PATH.name} is not current")
    arguments = parser.parse_args(argv)
    if arguments.write:
        ASL_PATH.write_text(rendered())
        return 0
    if arguments.check:
        if ASL_PATH.read_text() != rendered():
            print(f"{ASL_PATH} is not current: run make docs", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(rendered())
    return 0


if __name__ == "__main__":
    sys.exit(main())
