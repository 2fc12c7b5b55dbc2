"""Write events/<function>.json from a real local run, so every sample event is one the state
machine really sends (`make events`). The execution is named `sample`; tests replay the events
against a world where that execution has run."""

from __future__ import annotations

import json
import sys

from emulation.lambdas import REPO_ROOT, function_folders, logical_id
from emulation.local_stack import LocalStack, scenario_path
from emulation.scenario import Scenario

SAMPLE_EXECUTION = "sample"
EVENTS_DIR = REPO_ROOT / "events"


def record(scenario_name: str = "default") -> list[str]:
    scenario = Scenario.load(scenario_path(scenario_name))
    written = []
    with LocalStack(scenario) as stack:
        execution_arn = stack.start(SAMPLE_EXECUTION)
        described = stack.wait(execution_arn)
        if described["status"] != "SUCCEEDED":
            raise RuntimeError(f"the sample run ended {described['status']}: {described.get('cause')}")
        first: dict[str, dict[str, object]] = {}
        for invocation in stack.lambdas.invocations:
            if invocation.error_type is None:
                first.setdefault(invocation.function, invocation.event)
        for folder in function_folders():
            name = logical_id(folder)
            event = first.get(name)
            if event is None:
                continue  # not on this scenario's path (e.g. the upgrade, the failure path)
            path = EVENTS_DIR / f"{folder}.json"
            path.write_text(json.dumps(event, indent=2, sort_keys=True) + "\n")
            written.append(str(path.relative_to(REPO_ROOT)))
    return written


if __name__ == "__main__":
    for path in record(*sys.argv[1:]):
        print(path)
