"""A scenario: the source environment, its metadata and task logs, the input, and injected faults.
Any case can be written as one JSON file under scenarios/ and replayed with `make demo SCENARIO=...`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from moto.logs.models import logs_backends
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from emulation.accounts import ACCOUNT_ID, MWAA_SERVICES, create_service_role

if TYPE_CHECKING:
    from mypy_boto3_logs.type_defs import InputLogEventTypeDef

    from emulation.local_stack import LocalStack

LOG_MODULES = ("Task", "Worker", "Scheduler", "DAGProcessing", "WebServer")
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

    def seed(self, stack: LocalStack) -> None:
        """Create in the emulated AWS what exists before the migration starts."""
        source = self.source
        stack.s3.create_bucket(Bucket=self.migration_bucket)
        # As the template's MigrationBucket: versioned (the plan references its configuration object
        # by version, so a second plan of the same migration cannot replace what the first wrote).
        stack.s3.put_bucket_versioning(
            Bucket=self.migration_bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        dag_bucket = source["SourceBucketArn"].split(":::", 1)[-1]
        stack.s3.create_bucket(Bucket=dag_bucket)
        # MWAA requires versioning: it reads plugins, requirements and startup script by version.
        stack.s3.put_bucket_versioning(Bucket=dag_bucket, VersioningConfiguration={"Status": "Enabled"})
        folder = source["DagS3Path"].strip("/")
        for file_name, text in self.dag_files.items():
            stack.s3.put_object(Bucket=dag_bucket, Key=f"{folder}/{file_name}", Body=text.encode())
        for path_field in ("PluginsS3Path", "RequirementsS3Path", "StartupScriptS3Path"):
            if source.get(path_field):  # the file the source names (its latest version, none named)
                stack.s3.put_object(
                    Bucket=dag_bucket, Key=source[path_field], Body=b"# " + path_field.encode()
                )
        for role_arn in {source["ExecutionRoleArn"], self.input.get("targetExecutionRoleArn")} - {None}:
            create_service_role(stack.iam, str(role_arn), MWAA_SERVICES)
        stack.mwaa_emulator.add_environment(source, metadata=json.loads(json.dumps(self.source_metadata)))
        for module in LOG_MODULES:
            stack.logs.create_log_group(logGroupName=f"airflow-{source['Name']}-{module}")
        self._write_task_logs(stack, f"airflow-{source['Name']}-Task")

        for fault in self.faults:
            stack.mwaa_emulator.inject_fault(fault.operation, fault.error_code, times=fault.times)
        target = str(self.input.get("targetEnvironmentName", ""))
        if self.create_failure:
            stack.mwaa_emulator.fail_next_create(
                target, self.create_failure.error_code, self.create_failure.error_message
            )
        if self.update_failure:
            stack.mwaa_emulator.fail_next_update(
                target, self.update_failure.error_code, self.update_failure.error_message
            )
        for where, message in self.dag_failures.items():
            # "dag_id", "dag_id@phase" or "dag_id@phase/task_id"
            dag_id, _, rest = where.partition("@")
            phase, _, task_id = rest.partition("/")
            stack.dag_runtime.fail_dag(dag_id, message, phase=phase or None, task_id=task_id or None)

    def _write_task_logs(self, stack: LocalStack, group: str) -> None:
        now_ms = int(time.time() * 1000)
        for log in self.task_logs:
            stack.logs.create_log_stream(logGroupName=group, logStreamName=log.stream)
            first = now_ms - log.minutes_ago * 60_000
            events: list[InputLogEventTypeDef] = [
                {
                    "timestamp": first + index * log.seconds_between_events * 1000,
                    "message": f"[{log.stream}] line {index}",
                }
                for index in range(log.events)
            ]
            for start in range(0, len(events), 10_000):
                stack.logs.put_log_events(
                    logGroupName=group, logStreamName=log.stream, logEvents=events[start : start + 10_000]
                )
            last = events[-1]["timestamp"] if events else first
            _as_if_written_then(stack, group, log.stream, created_ms=first, ingested_ms=last)


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


def _as_if_written_then(
    stack: LocalStack, group: str, stream: str, *, created_ms: int, ingested_ms: int
) -> None:
    """Give a seeded stream the times DescribeLogStreams would show had its task written it as it ran:
    created at its first event, last ingested at its last. moto stamps both with the moment of the
    seeding, which would make every stream look active now and the listing select streams whose
    events are all days older than the window (AWS would count them outside it)."""
    seeded = logs_backends[ACCOUNT_ID][stack.region].groups[group].streams[stream]
    seeded.creation_time = datetime.fromtimestamp(created_ms / 1000, UTC).replace(tzinfo=None)
    seeded.last_ingestion_time = datetime.fromtimestamp(ingested_ms / 1000, UTC).replace(tzinfo=None)
    for event in seeded.events:
        event.ingestion_time = event.timestamp


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        else:
            result[key] = value
    return result
