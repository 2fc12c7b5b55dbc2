"""A scenario: the source environment, its metadata and task logs, the input, and injected faults.
Any case can be written as one JSON file under scenarios/ and replayed with `make demo SCENARIO=...`.
This module only reads and validates scenarios; the local stack (emulation.local_stack) creates the
world one describes in the emulated AWS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "scenarios"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class TaskLogStream(_Model):
    """A log stream of the source's Task log group, filled with `events` lines."""

    stream: str
    events: int = Field(default=20, ge=0)
    # When its first event was written, and how far apart its events are.
    minutes_ago: int = Field(default=60, ge=0)
    seconds_between_events: int = Field(default=1, ge=0)


class Fault(_Model):
    operation: str
    error_code: str = "ThrottlingException"
    times: int = 1


class EnvironmentFailure(_Model):
    error_code: str
    error_message: str


class Expectation(_Model):
    status: str = "SUCCEEDED"
    error: str | None = None


class Scenario(_Model):
    name: str
    description: str = ""
    region: str = "us-east-1"
    migration_bucket: str = "mwaa-migrate-local"
    # GetEnvironment's Environment for the source; the emulator fills what MWAA would.
    source: dict[str, Any]
    source_metadata: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    # The user's DAG files in the source's DAG folder (name -> Python source).
    dag_files: dict[str, str] = Field(default_factory=dict)
    task_logs: list[TaskLogStream] = Field(default_factory=list)
    input: dict[str, Any]
    faults: list[Fault] = Field(default_factory=list)
    # The stack's WebserverSubnetIds given (True) or left empty (False): how the plan reaches a
    # PRIVATE_ONLY web server (webserver_transport.choose_route); None as outside a deployed stack.
    functions_in_vpc: bool | None = None
    create_failure: EnvironmentFailure | None = None
    update_failure: EnvironmentFailure | None = None
    # Runs of the project's DAGs that fail: "dag_id", "dag_id@phase" or "dag_id@phase/task_id"
    # -> the error the task prints.
    dag_failures: dict[str, str] = Field(default_factory=dict)
    # cutover "approve": how the operator answers the wait (make demo answers for them).
    approval: Literal["approve", "reject"] | None = None
    # A self-managed source run by hand (access mode hands_on): the export phases its operator runs
    # when handed over (make demo runs both; one left out waits until its deadline).
    hands_on_phases: list[Literal["bulk", "cutover"]] = Field(default_factory=lambda: [*HANDS_ON_PHASES])
    expect: Expectation = Field(default_factory=Expectation)
    # Start the same input again once the first run has ended, expecting this (e.g. a re-run that
    # replaces a target that ended CREATE_FAILED).
    rerun: Expectation | None = None

    @classmethod
    def load(cls, path: Path) -> Scenario:
        """Read a scenario; one with `"extends": "other"` starts from the scenario `other` and
        overrides it (objects merged key by key, everything else replaced). `other` is a name under
        scenarios/ (`default`) or a path, relative to the extending file's folder
        (`../scenarios/default.json`, `base.json`); a base may extend another in turn."""
        return cls.model_validate(_read(path, seen=()))


HANDS_ON_PHASES: tuple[Literal["bulk", "cutover"], ...] = ("bulk", "cutover")


class UnknownScenario(ValueError):
    """A scenario name or path that names no scenario file; the message lists the valid names."""


def available() -> list[str]:
    """The names of the scenarios under scenarios/."""
    return sorted(path.stem for path in SCENARIOS_DIR.glob("*.json"))


def find(name: str, *, extended_by: Path | None = None) -> Path:
    """The file of a scenario. A bare name (`default`: no folder, no `.json`) is a file under
    scenarios/; anything else is a path, relative to the folder of the scenario that extends it
    (`extended_by`) or else to the working directory."""
    bare = "/" not in name and not name.endswith(".json")
    if bare:
        candidate = SCENARIOS_DIR / f"{name}.json"
    else:
        path = Path(name)
        candidate = path if extended_by is None or path.is_absolute() else extended_by.parent / path
    if candidate.is_file():
        return candidate
    where = f" (extended by {extended_by})" if extended_by else ""
    raise UnknownScenario(
        f"no scenario {name!r}{where}: name one of {', '.join(available())} (the files in scenarios/), "
        "or give the path of a scenario file" + ("" if bare else f" ({candidate} does not exist)")
    )


def _read(path: Path, *, seen: tuple[Path, ...]) -> dict[str, Any]:
    """A scenario file's data, with the scenario it extends merged under it."""
    resolved = path.resolve()
    if resolved in seen:
        chain = " -> ".join(str(p) for p in (*seen, resolved))
        raise UnknownScenario(f"scenarios extend each other in a loop: {chain}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UnknownScenario(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise UnknownScenario(f"{path} holds no JSON object")
    base_name = data.pop("extends", None)
    if not base_name:
        return data
    base = _read(find(str(base_name), extended_by=path), seen=(*seen, resolved))
    return _merged(base, data)


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        else:
            result[key] = value
    return result
