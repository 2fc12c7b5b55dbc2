"""Write events/<function>.json from real local runs, so every sample event is one the state
machine really sends (`make events`). Each execution is named `sample`; tests replay the events
against a world where that execution has run the same scenario."""

from __future__ import annotations

import json
import sys
from typing import Any

from emulation.lambdas import REPO_ROOT, function_folders, logical_id
from emulation.local_stack import LocalStack, scenario_path
from emulation.scenario import Scenario

SAMPLE_EXECUTION = "sample"
EVENTS_DIR = REPO_ROOT / "events"
# Functions off the default scenario's path get their event from a scenario that takes them.
EVENT_SCENARIOS = {
    "upgrade_environment": "airflow3",
    "record_failure": "create_failed",
    "await_approval": "approve",
    "hand_over_export": "self_managed_hands_on",
    "export_landed": "self_managed_hands_on",
}


# Functions the state machine does not invoke: their events are written by hand, in the shape of
# the event that calls them (SettleStoppedExecution: EventBridge's execution status change).
HAND_WRITTEN = frozenset({"settle_stopped_execution"})


def scenario_for(folder: str) -> str:
    return EVENT_SCENARIOS.get(folder, "default")


def first_events(scenario_name: str) -> dict[str, dict[str, Any]]:
    """Each function's first successful event in a run of the scenario."""
    scenario = Scenario.load(scenario_path(scenario_name))
    with LocalStack(scenario) as stack:
        described = stack.wait(stack.start(SAMPLE_EXECUTION))
        if described["status"] != scenario.expect.status:
            raise RuntimeError(f"{scenario_name} ended {described['status']}: {described.get('cause')}")
        first: dict[str, dict[str, Any]] = {}
        for invocation in stack.lambdas.invocations:
            if invocation.error_type is None:
                first.setdefault(invocation.function, invocation.event)
        return first


def record() -> list[str]:
    written = []
    events_by_scenario = {name: first_events(name) for name in {scenario_for(f) for f in function_folders()}}
    for folder in (folder for folder in function_folders() if folder not in HAND_WRITTEN):
        event = events_by_scenario[scenario_for(folder)].get(logical_id(folder))
        if event is None:
            raise RuntimeError(f"{logical_id(folder)} did not run in scenario {scenario_for(folder)}")
        path = EVENTS_DIR / f"{folder}.json"
        path.write_text(json.dumps(event, indent=2, sort_keys=True) + "\n")
        written.append(str(path.relative_to(REPO_ROOT)))
    return written


if __name__ == "__main__":
    for path in record():
        print(path)
    sys.exit(0)
