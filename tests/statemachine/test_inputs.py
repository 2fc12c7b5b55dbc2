"""The state machine's sample inputs in events/: the console's JSON and EventBridge's event."""

from __future__ import annotations

import json

from cfnlint.decode import decode_str

from emulation.lambdas import REPO_ROOT
from tests.statemachine.conftest import run


def _event_rule() -> dict:
    template, _ = decode_str((REPO_ROOT / "template.yaml").read_text())
    return template["Resources"]["MigrationStateMachine"]["Properties"]["Events"]["MigrationRequested"][
        "Properties"
    ]


def test_the_console_input_runs_a_migration(scenario, local_stack):
    stack = local_stack(scenario)
    request = json.loads((REPO_ROOT / "events" / "migration_request.json").read_text())
    assert run(stack, execution_input=request)["status"] == "SUCCEEDED"


def test_the_eventbridge_event_matches_the_rule_and_its_detail_runs_a_migration(scenario, local_stack):
    event = json.loads((REPO_ROOT / "events" / "eventbridge_migration_requested.json").read_text())
    rule = _event_rule()
    assert event["source"] in rule["Pattern"]["source"]
    assert event["detail-type"] in rule["Pattern"]["detail-type"]
    assert rule["InputPath"] == "$.detail"
    stack = local_stack(scenario)
    assert run(stack, execution_input=event["detail"])["status"] == "SUCCEEDED"


def test_the_dry_run_input_plans_without_changing_anything(scenario, local_stack):
    stack = local_stack(scenario)
    request = json.loads((REPO_ROOT / "events" / "migration_request_dry_run.json").read_text())
    described = run(stack, execution_input=request)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["dryRun"] is True
    assert not any(call[0] == "CreateEnvironment" for call in stack.mwaa_emulator.calls)
