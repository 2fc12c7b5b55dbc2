"""An emulator of Amazon MWAA for tests and the local demo (moto has no MWAA).

It serves, over plain HTTP on 127.0.0.1:

* the MWAA control API (rest-json, botocore's ``mwaa`` 2020-07-01 model). Requests are validated
  against botocore's own model, as the service does; responses follow the model's shapes; errors
  carry the header ``x-amzn-ErrorType`` and the model's HTTP status, so botocore raises its modeled
  exceptions;
* the Airflow web server's ``/aws_mwaa/cli`` endpoint (Bearer token from CreateCliToken, body the
  Airflow command line, answer ``{"stdout": base64, "stderr": base64}``);
* ``InvokeRestApi``, Airflow's REST API through MWAA's API (emulation/rest_api.py).

boto3 reaches it with ``AWS_ENDPOINT_URL_MWAA=http://127.0.0.1:PORT`` and
``AWS_DISABLE_HOST_PREFIX_INJECTION=true``.

Everything slow on AWS is deterministic here: an environment answers CREATING (or UPDATING) to a set
number of GetEnvironment calls, then AVAILABLE; a DAG uploaded to the environment's DAG folder shows
up after a set number of ``dags list`` calls; a DAG run goes queued -> running -> success/failed as
its state is read. No wall clock is involved except through ``clock`` (token expiry, dates).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import json
import logging
import re
import secrets
import shlex
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NoReturn, Protocol, Self
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.session
from botocore.exceptions import ClientError
from botocore.model import ListShape, MapShape, ServiceModel, Shape, StringShape, StructureShape

from emulation import rest_api
from mwaa_migrate.versions import TARGET_VERSIONS, AirflowVersion, newest_target

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import InputLogEventTypeDef
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

# HTTP status of each error code when a fault is injected without one (the model's, or AWS's common ones).
_DEFAULT_STATUS = {
    "ThrottlingException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
    "AccessDeniedException": 403,
    "ValidationException": 400,
    "ResourceNotFoundException": 404,
}
# LoggingConfiguration member -> the module's suffix in its log group name (airflow-{env}-{suffix}).
_LOG_MODULES = {
    "DagProcessingLogs": "DAGProcessing",
    "SchedulerLogs": "Scheduler",
    "TaskLogs": "Task",
    "WebserverLogs": "WebServer",
    "WorkerLogs": "Worker",
}
# What MWAA fills in when CreateEnvironment leaves a member out.
_CREATE_DEFAULTS: dict[str, Any] = {
    "EnvironmentClass": "mw1.small",
    "MaxWorkers": 10,
    "MinWorkers": 1,
    "Schedulers": 2,
    "MinWebservers": 2,
    "MaxWebservers": 2,
    "WebserverAccessMode": "PRIVATE_ONLY",
    "EndpointManagement": "SERVICE",
    "AirflowConfigurationOptions": {},
}
# Statuses in which Airflow runs and an update is accepted (UPDATE_FAILED: MWAA restored the environment).
_READY = frozenset({"AVAILABLE", "UPDATE_FAILED"})
_BUSY = frozenset({"CREATING", "UPDATING", "DELETING", "ROLLING_BACK", "CREATING_SNAPSHOT"})
_TOKEN_LIFETIME = 60.0
_MAX_LIST_RESULTS = 25
# Airflow CLI groups the MWAA CLI endpoint refuses.
_DISALLOWED_COMMANDS = frozenset({"db", "connections", "pools", "users"})
_DAGS_FOLDER = "/usr/local/airflow/dags"
_TASK_ID = re.compile(r"""task_id\s*=\s*["']([\w.-]+)["']""")
_TASK_FUNCTION = re.compile(r"@task\b[^\n]*\n(?:\s*@[^\n]*\n)*\s*def\s+(\w+)")
_NOT_PAUSED_UPON_CREATION = re.compile(r"is_paused_upon_creation\s*=\s*False")
# A file defines a DAG when it builds one (`DAG(`, `with DAG(`, `@dag`): a helper module next to the
# DAGs is not one, as in Airflow.
_DEFINES_DAG = re.compile(r"\bDAG\(|@dag\b")


# --------------------------------------------------------------------------------------------------
# Public types


@dataclass
class DagRunResult:
    """How an emulated DAG run ended, and what its failing task printed on stderr."""

    state: Literal["success", "failed"]
    failed_task: str | None = None
    stderr: str = ""


class DagRuntime(Protocol):
    """Runs a DAG's work against an emulated environment when one of its runs completes."""

    def run(self, environment: EmulatedEnvironment, dag_id: str, conf: dict[str, Any]) -> DagRunResult: ...


@dataclass
class _Pending:
    """A long-running change, completed after `polls_left` more GetEnvironment calls."""

    kind: Literal["create", "update", "delete"]
    polls_left: int
    changes: dict[str, Any] = field(default_factory=dict)
    failure: tuple[str, str] | None = None


@dataclass
class EmulatedEnvironment:
    """One environment: its GetEnvironment description and its Airflow metadata database.

    ``metadata`` maps an Airflow table name ("variable", "slot_pool", "dag", "dag_run",
    "task_instance", "import_error", ...) to its rows. ``task_logs`` holds what a failing task
    printed on stderr, by (dag_id, run_id, task_id).
    """

    name: str
    description: dict[str, Any]
    metadata: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    task_logs: dict[tuple[str, str, str], str] = field(default_factory=dict)
    # DAG files seen in the DAG folder: S3 key -> (ETag, `dags list` calls that saw this ETag).
    _dag_files: dict[str, tuple[str, int]] = field(default_factory=dict, init=False, repr=False)
    # Task ids found in each DAG's file, in order.
    _dag_tasks: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False)
    # Runs triggered through the CLI that have not completed: (dag_id, run_id) -> state reads so far.
    _run_reads: dict[tuple[str, str], int] = field(default_factory=dict, init=False, repr=False)
    _pending: _Pending | None = field(default=None, init=False, repr=False)
    # MWAA serves one CLI command at a time per environment.
    _cli_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def status(self) -> str:
        return str(self.description["Status"])

    @property
    def airflow_version(self) -> str:
        return str(self.description["AirflowVersion"])

    def table(self, name: str) -> list[dict[str, Any]]:
        """The rows of one metadata table (created empty if missing)."""
        return self.metadata.setdefault(name, [])


# --------------------------------------------------------------------------------------------------
# botocore's model: the authority for shapes and constraints


@lru_cache(maxsize=1)
def service_model() -> ServiceModel:
    """botocore's MWAA model, loaded once."""
    return botocore.session.get_session().get_service_model("mwaa")


def _structure(shape: Shape | None) -> StructureShape:
    if not isinstance(shape, StructureShape):
        raise TypeError(f"expected a structure shape, got {shape!r}")
    return shape


def _input_shape(operation: str) -> StructureShape:
    return _structure(service_model().operation_model(operation).input_shape)


def model_problems(shape: Shape, value: Any, where: str = "") -> list[str]:
    """Every way `value` breaks `shape` (types, required members, lengths, ranges, enums, patterns),
    worded as AWS's ValidationException does."""
    meta = shape.metadata
    shown = "***" if meta.get("sensitive") else value

    def broken(rule: str) -> list[str]:
        return [f"Value '{shown}' at '{where}' failed to satisfy constraint: Member must {rule}"]

    kind = shape.type_name
    if kind == "structure":
        if meta.get("document"):
            return []
        if not isinstance(value, dict):
            return broken("be a structure")
        structure = _structure(shape)
        problems = [
            f"Value null at '{_join(where, name)}' failed to satisfy constraint: Member must not be null"
            for name in structure.required_members
            if value.get(name) is None
        ]
        for name, item in value.items():
            member = structure.members.get(name)
            if member is None:
                problems.append(f"'{_join(where, name)}' is not a member of {structure.name}")
            elif item is not None:
                problems.extend(model_problems(member, item, _join(where, name)))
        return problems
    if kind == "list":
        if not isinstance(value, list) or not isinstance(shape, ListShape):
            return broken("be a list")
        problems = _length_problems(value, meta, broken)
        for index, item in enumerate(value):
            problems.extend(model_problems(shape.member, item, f"{where}.{index + 1}"))
        return problems
    if kind == "map":
        if not isinstance(value, dict) or not isinstance(shape, MapShape):
            return broken("be a map")
        problems = _length_problems(value, meta, broken)
        for key, item in value.items():
            problems.extend(model_problems(shape.key, key, f"{where}.key"))
            problems.extend(model_problems(shape.value, item, f"{where}.{key}"))
        return problems
    if kind == "string":
        if not isinstance(value, str):
            return broken("be a string")
        problems = _length_problems(value, meta, broken)
        enum = shape.enum if isinstance(shape, StringShape) else []
        if enum and value not in enum:
            problems += broken(f"satisfy enum value set: [{', '.join(enum)}]")
        pattern = meta.get("pattern")
        if pattern and not _matches(pattern, value):
            problems += broken(f"satisfy regular expression pattern: {pattern}")
        return problems
    if kind in {"integer", "long"}:
        if not isinstance(value, int) or isinstance(value, bool):
            return broken("be an integer")
        if "min" in meta and value < meta["min"]:
            return broken(f"have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            return broken(f"have value less than or equal to {meta['max']}")
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else broken("be a boolean")
    if kind in {"double", "float", "timestamp"}:
        return [] if isinstance(value, int | float) and not isinstance(value, bool) else broken("be a number")
    return []


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _length_problems(value: Any, meta: Mapping[str, Any], broken: Callable[[str], list[str]]) -> list[str]:
    if "min" in meta and len(value) < meta["min"]:
        return broken(f"have length greater than or equal to {meta['min']}")
    if "max" in meta and len(value) > meta["max"]:
        return broken(f"have length less than or equal to {meta['max']}")
    return []


def _matches(pattern: str, value: str) -> bool:
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:  # \p{L} and friends: Python's re has no Unicode classes; the service checks them
        return True


# --------------------------------------------------------------------------------------------------
# HTTP plumbing


class _ApiError(Exception):
    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or _DEFAULT_STATUS.get(code, 400)


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Fault:
    code: str
    status: int
    message: str
    remaining: int


def _json_response(payload: Any, status: int = 200) -> _Response:
    return _Response(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


def _error_response(error: _ApiError) -> _Response:
    # The model names the member "Message" on AccessDeniedException and "message" elsewhere.
    key = "Message" if error.code == "AccessDeniedException" else "message"
    response = _json_response({key: error.message}, error.status)
    response.headers["x-amzn-ErrorType"] = error.code
    return response


def _validation(message: str) -> _ApiError:
    return _ApiError("ValidationException", message)


def _not_found(name: str) -> _ApiError:
    return _ApiError("ResourceNotFoundException", f"Environment {name} not found.")


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value)


def _latest_version() -> str:
    return max(TARGET_VERSIONS, key=AirflowVersion.parse)


# --------------------------------------------------------------------------------------------------
# The emulator


class MwaaEmulator:
    """The MWAA control API and CLI endpoint on a local port. Use as a context manager, or start/stop."""

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        s3_client: S3Client | None = None,
        dag_runtime: DagRuntime | None = None,
        create_polls: int = 2,
        update_polls: int = 2,
        delete_polls: int = 1,
        dag_parse_polls: int = 1,
        dag_run_polls: int = 2,
        clock: Callable[[], float] = time.time,
        logs_client: CloudWatchLogsClient | None = None,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.create_polls = create_polls
        self.update_polls = update_polls
        self.delete_polls = delete_polls
        self.dag_parse_polls = dag_parse_polls
        self.dag_run_polls = dag_run_polls
        self._s3 = s3_client
        self._logs = logs_client
        self._runtime = dag_runtime
        self._clock = clock
        self._lock = threading.Lock()
        self._environments: dict[str, EmulatedEnvironment] = {}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        # Seconds to answer late, per operation: the call is carried out, its answer comes late.
        self._delays: dict[str, deque[float]] = {}
        self._fail_create: dict[str, tuple[str, str]] = {}
        self._fail_update: dict[str, tuple[str, str]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # (operation, environment name) of every API call and CLI request, faulted ones included.
        self.calls: list[tuple[str, str | None]] = []
        # (environment name, argv) of every CLI command that reached Airflow.
        self.cli_commands: list[tuple[str, list[str]]] = []
        # InvokeRestApi (emulation/rest_api.py): its requests, timeout and response limit.
        self.rest_api = rest_api.RestApi(self)

    # ---- lifecycle

    def start(self) -> str:
        """Serve on a free port; return the endpoint URL (for AWS_ENDPOINT_URL_MWAA)."""
        if self._server is None:
            self._server = _Server(("127.0.0.1", 0), self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="mwaa-emulator",
                daemon=True,
            )
            self._thread.start()
        return self.endpoint_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the MWAA emulator is not started")
        return int(self._server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- seeding and scripting

    def add_environment(
        self, description: dict[str, Any], metadata: dict[str, list[dict[str, Any]]] | None = None
    ) -> EmulatedEnvironment:
        """Seed an existing environment from a GetEnvironment-style ``Environment`` dict.

        Members the service always fills (Arn, Status AVAILABLE, CreatedAt, WebserverUrl, ...) are
        filled when missing. The result must fit the model's Environment shape (ValueError if not).
        """
        seeded = copy.deepcopy(description)
        name = seeded.get("Name")
        if not isinstance(name, str):
            raise ValueError("the description needs a Name")
        seeded.setdefault(
            "ExecutionRoleArn", f"arn:aws:iam::{self.account_id}:role/service-role/AmazonMWAA-{name}"
        )
        seeded.setdefault("SourceBucketArn", f"arn:aws:s3:::airflow-{name.lower().replace('_', '-')}")
        seeded.setdefault("DagS3Path", "dags")
        seeded.setdefault(
            "NetworkConfiguration",
            {"SubnetIds": ["subnet-0a1b2c3d4e", "subnet-5f6a7b8c9d"], "SecurityGroupIds": ["sg-0a1b2c3d4e"]},
        )
        seeded.setdefault("AirflowVersion", _latest_version())
        status = str(seeded.get("Status", "AVAILABLE"))
        self._complete_description(seeded, status)
        problems = model_problems(_structure(service_model().shape_for("Environment")), seeded)
        if problems:
            raise ValueError("the description does not fit the Environment shape: " + "; ".join(problems))
        environment = EmulatedEnvironment(name, seeded, copy.deepcopy(metadata) if metadata else {})
        if status in {"CREATING", "UPDATING", "DELETING"}:
            kind: Literal["create", "update", "delete"] = (
                "create" if status == "CREATING" else "update" if status == "UPDATING" else "delete"
            )
            polls = {"create": self.create_polls, "update": self.update_polls, "delete": self.delete_polls}
            environment._pending = _Pending(kind, polls[kind])
        with self._lock:
            if name in self._environments:
                raise ValueError(f"environment {name} already exists")
            self._environments[name] = environment
        return environment

    def environment(self, name: str) -> EmulatedEnvironment:
        with self._lock:
            try:
                return self._environments[name]
            except KeyError:
                raise KeyError(f"no emulated environment named {name}") from None

    @property
    def environments(self) -> list[EmulatedEnvironment]:
        with self._lock:
            return list(self._environments.values())

    def fail_next_create(
        self,
        name: str,
        error_code: str = "INCORRECT_CONFIGURATION",
        error_message: str = "Check the execution role's permissions and the environment's network.",
    ) -> None:
        """The next CreateEnvironment of `name` ends CREATE_FAILED with this LastUpdate.Error."""
        with self._lock:
            self._fail_create[name] = (error_code, error_message)

    def fail_next_update(
        self,
        name: str,
        error_code: str = "INCORRECT_CONFIGURATION",
        error_message: str = "The update failed; the environment was restored to its previous state.",
    ) -> None:
        """The next UpdateEnvironment of `name` ends UPDATE_FAILED (changes not applied)."""
        with self._lock:
            self._fail_update[name] = (error_code, error_message)

    def inject_fault(
        self,
        operation: str,
        error_code: str = "ThrottlingException",
        *,
        times: int = 1,
        status: int | None = None,
        message: str | None = None,
    ) -> None:
        """The next `times` calls of `operation` (an API operation name, or "Cli") answer this error."""
        if operation != "Cli" and operation not in service_model().operation_names:
            raise ValueError(f"unknown operation {operation!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        fault = _Fault(
            code=error_code,
            status=status or _DEFAULT_STATUS.get(error_code, 400),
            message=message or f"{error_code} injected by the MWAA emulator",
            remaining=times,
        )
        with self._lock:
            self._faults.setdefault(operation, deque()).append(fault)

    def inject_delay(self, operation: str, seconds: float, *, times: int = 1) -> None:
        """The next `times` calls of `operation` (an API operation name, or "Cli") are carried out as
        usual and answered `seconds` late: a client with a shorter read timeout gives up on a call
        that took effect (a timeout whose answer was lost)."""
        if operation != "Cli" and operation not in service_model().operation_names:
            raise ValueError(f"unknown operation {operation!r}")
        if times < 1 or seconds <= 0:
            raise ValueError("times must be at least 1 and seconds positive")
        with self._lock:
            self._delays.setdefault(operation, deque()).extend([seconds] * times)

    def pending_faults(self) -> dict[str, int]:
        """Injected faults and delays no call has met yet, by operation."""
        with self._lock:
            pending = {op: sum(fault.remaining for fault in faults) for op, faults in self._faults.items()}
            for op, delays in self._delays.items():
                pending[op] = pending.get(op, 0) + len(delays)
        return {op: count for op, count in pending.items() if count}

    def task_log(self, environment: str, dag_id: str, run_id: str, task_id: str) -> str:
        """What a task of an emulated run printed on stderr ("" if nothing)."""
        return self.environment(environment).task_logs.get((dag_id, run_id, task_id), "")

    # ---- requests

    def _handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> _Response:
        """Answer one HTTP request. `headers` keys are lower case."""
        split = urlsplit(target)
        if split.path in {"/aws_mwaa/cli", "/aws_mwaa/cli/"}:
            if method != "POST":
                return _json_response({"message": "Method Not Allowed"}, 405)
            with self._lock:
                delay = self._take_delay("Cli")
            response = self._cli_request(split.path, headers, body)
        elif method == "POST" and split.path.startswith("/restapi/"):
            return self.rest_api.handle(unquote(split.path.removeprefix("/restapi/")), body)
        else:
            try:
                operation, name, call = self._route(method, split.path, split.query, body)
            except _ApiError as error:
                return _error_response(error)
            with self._lock:
                self.calls.append((operation, name))
                delay = self._take_delay(operation)
                try:
                    self._raise_fault(operation)
                    response = _json_response(call())
                except _ApiError as error:
                    response = _error_response(error)
        if delay:
            time.sleep(delay)
        return response

    def _take_delay(self, operation: str) -> float:
        delays = self._delays.get(operation)
        return delays.popleft() if delays else 0.0

    def _route(
        self, method: str, path: str, query_string: str, body: bytes
    ) -> tuple[str, str | None, Callable[[], dict[str, Any]]]:
        parts = [unquote(part) for part in path.strip("/").split("/")] if path.strip("/") else []
        query = parse_qs(query_string, keep_blank_values=True)
        match method, parts:
            case "GET", ["environments"]:
                return "ListEnvironments", None, lambda: self._list_environments(query)
            case "GET", ["environments", name]:
                return "GetEnvironment", name, lambda: self._get_environment(name)
            case "PUT", ["environments", name]:
                return "CreateEnvironment", name, lambda: self._create_environment(name, _json_body(body))
            case "PATCH", ["environments", name]:
                return "UpdateEnvironment", name, lambda: self._update_environment(name, _json_body(body))
            case "DELETE", ["environments", name]:
                return "DeleteEnvironment", name, lambda: self._delete_environment(name)
            case "POST", ["clitoken", name]:
                return "CreateCliToken", name, lambda: self._create_cli_token(name)
            case "GET", ["tags", *rest]:
                arn = "/".join(rest)
                return "ListTagsForResource", _name_in_arn(arn), lambda: self._list_tags(arn)
            case "POST", ["tags", *rest]:
                arn = "/".join(rest)
                return "TagResource", _name_in_arn(arn), lambda: self._tag(arn, _json_body(body))
            case "DELETE", ["tags", *rest]:
                arn = "/".join(rest)
                return "UntagResource", _name_in_arn(arn), lambda: self._untag(arn, query.get("tagKeys", []))
        raise _ApiError(
            "UnknownOperationException", f"{method} {path} is not an operation the emulator serves", 404
        )

    def _raise_fault(self, operation: str) -> None:
        faults = self._faults.get(operation)
        if not faults:
            return
        fault = faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            faults.popleft()
        raise _ApiError(fault.code, fault.message, fault.status)

    def _validate(self, operation: str, request: dict[str, Any]) -> None:
        problems = model_problems(_input_shape(operation), request)
        if problems:
            count = len(problems)
            raise _validation(
                f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(problems)
            )

    def _require(self, name: str) -> EmulatedEnvironment:
        environment = self._environments.get(name)
        if environment is None:
            raise _not_found(name)
        return environment

    # ---- control API operations (called with the lock held)

    def _get_environment(self, name: str) -> dict[str, Any]:
        self._validate("GetEnvironment", {"Name": name})
        environment = self._require(name)
        self._advance(environment)
        if name not in self._environments:
            raise _not_found(name)
        return {"Environment": copy.deepcopy(environment.description)}

    def _create_environment(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        request = {**body, "Name": name}
        self._validate("CreateEnvironment", request)
        version = request.setdefault("AirflowVersion", _latest_version())
        if version not in TARGET_VERSIONS:
            raise _validation(
                f"Airflow version {version} is not supported. "
                f"Supported versions: {', '.join(TARGET_VERSIONS)}"
            )
        if len(request["NetworkConfiguration"].get("SubnetIds") or []) != 2:
            raise _validation(
                "NetworkConfiguration.SubnetIds must name 2 subnets in different Availability Zones"
            )
        if not request["NetworkConfiguration"].get("SecurityGroupIds"):
            raise _validation("NetworkConfiguration.SecurityGroupIds must name at least one security group")
        if name in self._environments:
            raise _validation(f"Environment {name} already exists.")
        description = copy.deepcopy(request)
        self._complete_description(description, "CREATING")
        environment = EmulatedEnvironment(
            name,
            description,
            {"slot_pool": [{"id": 1, "pool": "default_pool", "slots": 128, "description": "Default pool"}]},
        )
        environment._pending = _Pending(
            "create", self.create_polls, failure=self._fail_create.pop(name, None)
        )
        self._environments[name] = environment
        self._create_log_groups(description)
        return {"Arn": description["Arn"]}

    def _create_log_groups(self, description: dict[str, Any]) -> None:
        """MWAA creates airflow-{env}-{Module} for each enabled logging module as it creates the
        environment (when logs_client is set)."""
        if self._logs is None:
            return
        for module, suffix in _LOG_MODULES.items():
            if description["LoggingConfiguration"].get(module, {}).get("Enabled"):
                with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
                    self._logs.create_log_group(logGroupName=f"airflow-{description['Name']}-{suffix}")

    def _complete_description(self, description: dict[str, Any], status: str) -> None:
        """Fill what the service fills: read-only members, defaults, log group ARNs."""
        name = description["Name"]
        now = self._clock()
        for key, default in _CREATE_DEFAULTS.items():
            description.setdefault(key, copy.deepcopy(default))
        description["Status"] = status
        description.setdefault("Arn", f"arn:aws:airflow:{self.region}:{self.account_id}:environment/{name}")
        description["CreatedAt"] = _epoch(description.get("CreatedAt", now))
        description.setdefault(
            "WebserverUrl", f"https://{uuid.uuid4()}.c2.{self.region}.airflow.amazonaws.com"
        )
        description.setdefault(
            "ServiceRoleArn",
            f"arn:aws:iam::{self.account_id}:role/aws-service-role/airflow.amazonaws.com/AWSServiceRoleForAmazonMWAA",
        )
        description.setdefault(
            "CeleryExecutorQueue",
            f"arn:aws:sqs:{self.region}:{self.account_id}:airflow-celery-{uuid.uuid4()}",
        )
        logging_configuration = description.setdefault("LoggingConfiguration", {})
        for module, suffix in _LOG_MODULES.items():
            module_configuration = logging_configuration.setdefault(
                module, {"Enabled": False, "LogLevel": "INFO"}
            )
            module_configuration.setdefault(
                "CloudWatchLogGroupArn",
                f"arn:aws:logs:{self.region}:{self.account_id}:log-group:airflow-{name}-{suffix}",
            )
        if description.get("EndpointManagement") == "CUSTOMER":
            for key in ("WebserverVpcEndpointService", "DatabaseVpcEndpointService"):
                description.setdefault(
                    key, f"com.amazonaws.vpce.{self.region}.vpce-svc-{secrets.token_hex(8)}"
                )
        last_update = description.setdefault(
            "LastUpdate", {"Status": "PENDING" if status in _BUSY else "SUCCESS", "CreatedAt": now}
        )
        if "CreatedAt" in last_update:
            last_update["CreatedAt"] = _epoch(last_update["CreatedAt"])

    def _update_environment(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self._validate("UpdateEnvironment", {**body, "Name": name})
        environment = self._require(name)
        if environment.status not in _READY:
            raise _validation(
                f"Environment {name} is {environment.status}: "
                "it can be updated only when AVAILABLE or UPDATE_FAILED."
            )
        if "AirflowVersion" in body:
            _check_version_change(environment.airflow_version, body["AirflowVersion"])
        last_update: dict[str, Any] = {"Status": "PENDING", "CreatedAt": self._clock()}
        if "WorkerReplacementStrategy" in body:
            last_update["WorkerReplacementStrategy"] = body["WorkerReplacementStrategy"]
        environment.description["Status"] = "UPDATING"
        environment.description["LastUpdate"] = last_update
        environment._pending = _Pending(
            "update", self.update_polls, copy.deepcopy(body), failure=self._fail_update.pop(name, None)
        )
        return {"Arn": environment.description["Arn"]}

    def _delete_environment(self, name: str) -> dict[str, Any]:
        self._validate("DeleteEnvironment", {"Name": name})
        environment = self._require(name)
        if environment.status in _BUSY:
            raise _validation(f"Environment {name} is {environment.status}: it cannot be deleted now.")
        environment.description["Status"] = "DELETING"
        environment._pending = _Pending("delete", self.delete_polls)
        return {}

    def _advance(self, environment: EmulatedEnvironment) -> None:
        """One GetEnvironment poll: complete the pending change once its polls are used up."""
        pending = environment._pending
        if pending is None:
            return
        if pending.polls_left > 0:
            pending.polls_left -= 1
            return
        environment._pending = None
        description = environment.description
        last_update = {k: v for k, v in description.get("LastUpdate", {}).items() if k != "Error"}
        if pending.kind == "delete":
            del self._environments[environment.name]
            self._tokens = {t: v for t, v in self._tokens.items() if v[0] != environment.name}
            return
        if pending.failure is not None:
            code, message = pending.failure
            description["Status"] = "CREATE_FAILED" if pending.kind == "create" else "UPDATE_FAILED"
            description["LastUpdate"] = {
                **last_update,
                "Status": "FAILED",
                "Error": {"ErrorCode": code, "ErrorMessage": message},
            }
            return
        if pending.kind == "update":
            _apply_update(environment, pending.changes)
        description["Status"] = "AVAILABLE"
        description["LastUpdate"] = {**last_update, "Status": "SUCCESS"}

    def _list_environments(self, query: dict[str, list[str]]) -> dict[str, Any]:
        try:
            max_results = int(query["MaxResults"][0]) if "MaxResults" in query else _MAX_LIST_RESULTS
        except ValueError:
            raise _validation("MaxResults must be an integer") from None
        if not 1 <= max_results <= _MAX_LIST_RESULTS:
            raise _validation(f"MaxResults must be between 1 and {_MAX_LIST_RESULTS}")
        offset = 0
        if query.get("NextToken", [""])[0]:
            offset = _decode_token(query["NextToken"][0])
        names = list(self._environments)
        page: dict[str, Any] = {"Environments": names[offset : offset + max_results]}
        if offset + max_results < len(names):
            page["NextToken"] = _encode_token(offset + max_results)
        return page

    def _environment_by_arn(self, operation: str, arn: str, extra: dict[str, Any]) -> EmulatedEnvironment:
        self._validate(operation, {"ResourceArn": arn, **extra})
        for environment in self._environments.values():
            if environment.description["Arn"] == arn:
                return environment
        raise _ApiError("ResourceNotFoundException", f"Resource {arn} not found.")

    def _list_tags(self, arn: str) -> dict[str, Any]:
        environment = self._environment_by_arn("ListTagsForResource", arn, {})
        return {"Tags": dict(environment.description.get("Tags", {}))}

    def _tag(self, arn: str, body: dict[str, Any]) -> dict[str, Any]:
        environment = self._environment_by_arn("TagResource", arn, {"Tags": body.get("Tags")})
        tags = {**environment.description.get("Tags", {}), **body["Tags"]}
        if len(tags) > 50:
            raise _validation("An environment can have at most 50 tags.")
        environment.description["Tags"] = tags
        return {}

    def _untag(self, arn: str, keys: list[str]) -> dict[str, Any]:
        environment = self._environment_by_arn("UntagResource", arn, {"tagKeys": keys})
        tags = {
            key: value for key, value in environment.description.get("Tags", {}).items() if key not in keys
        }
        if tags:
            environment.description["Tags"] = tags
        else:
            environment.description.pop("Tags", None)
        return {}

    def _create_cli_token(self, name: str) -> dict[str, Any]:
        self._validate("CreateCliToken", {"Name": name})
        self._require(name)
        now = self._clock()
        self._tokens = {token: value for token, value in self._tokens.items() if value[1] > now}
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (name, now + _TOKEN_LIFETIME)
        return {"CliToken": token, "WebServerHostname": f"127.0.0.1:{self.port}"}

    # ---- the CLI endpoint

    def _cli_request(self, path: str, headers: Mapping[str, str], body: bytes) -> _Response:
        authorization = headers.get("authorization", "")
        token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
        with self._lock:
            environment = None
            if token in self._tokens:
                name, expires_at = self._tokens[token]
                if self._clock() < expires_at:
                    environment = self._environments.get(name)
            if (
                environment is not None
                and path == "/aws_mwaa/cli"
                and AirflowVersion.parse(environment.airflow_version).major >= 3
            ):
                return _Response(307, b"", {"Location": "/aws_mwaa/cli/"})
            self.calls.append(("Cli", environment.name if environment else None))
            try:
                self._raise_fault("Cli")
            except _ApiError as error:
                return _json_response({"message": error.message}, error.status)
            if environment is None:
                return _json_response(
                    {"message": "Forbidden: the CLI token is missing, invalid or expired"}, 403
                )
            if environment.status not in _READY:
                return _json_response(
                    {"message": f"Environment {environment.name} is {environment.status}"}, 503
                )
        try:
            argv = shlex.split(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            return _json_response({"message": f"Bad Request: the command cannot be parsed: {error}"}, 400)
        if not argv:
            return _json_response({"message": "Bad Request: empty command"}, 400)
        if argv[0] in _DISALLOWED_COMMANDS:
            return _json_response(
                {"message": f"Bad Request: airflow {argv[0]} is not supported on Amazon MWAA"}, 400
            )
        with self._lock:
            self.cli_commands.append((environment.name, argv))
        with environment._cli_lock:
            stdout, stderr = _Airflow(self, environment).run(argv)
        return _json_response(
            {
                "stdout": base64.b64encode(stdout.encode()).decode(),
                "stderr": base64.b64encode(stderr.encode()).decode(),
            }
        )

    # ---- what the Airflow side needs from the emulator

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _dag_folder(self, environment: EmulatedEnvironment) -> tuple[str, str, dict[str, str]]:
        """(bucket, prefix, {key: ETag}) of the .py files in the environment's DAG folder."""
        bucket = str(environment.description.get("SourceBucketArn", "")).split(":::", 1)[-1]
        folder = str(environment.description.get("DagS3Path", "")).strip("/")
        prefix = f"{folder}/" if folder else ""
        files: dict[str, str] = {}
        if self._s3 is None or not bucket:
            return bucket, prefix, files
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if item["Key"].endswith(".py"):
                        files[item["Key"]] = item.get("ETag", "")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchBucket":
                raise
        return bucket, prefix, files

    def _read_dag_file(self, bucket: str, key: str) -> str:
        if self._s3 is None:
            return ""
        return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", errors="replace")

    def _run_dag(self, environment: EmulatedEnvironment, dag_id: str, conf: dict[str, Any]) -> DagRunResult:
        if self._runtime is None:
            return DagRunResult("success")
        try:
            return self._runtime.run(environment, dag_id, conf)
        except (
            Exception
        ) as error:  # a task that raises fails its run, as in Airflow; the traceback is its log
            logger.exception("the emulated run of %s raised", dag_id)
            return DagRunResult("failed", stderr="".join(traceback.format_exception(error)))

    def _write_task_log(
        self,
        *,
        environment: EmulatedEnvironment,
        dag_id: str,
        run_id: str,
        task_id: str,
        logical_date: str,
        text: str,
    ) -> None:
        """Put a task's log where MWAA does: CloudWatch group airflow-{env}-Task (when logs_client is set)."""
        if self._logs is None or not text:
            return
        group = f"airflow-{environment.name}-Task"
        if AirflowVersion.parse(environment.airflow_version) >= AirflowVersion(2, 4, 0):
            stream = f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/attempt=1.log"
        else:
            stream = f"{dag_id}/{task_id}/{logical_date}/1.log"
        # MWAA writes `:` as `_`: CloudWatch Logs refuses `:` in stream names.
        stream = stream.replace(":", "_")
        with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
            self._logs.create_log_group(logGroupName=group)
        with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
            self._logs.create_log_stream(logGroupName=group, logStreamName=stream)
        timestamp = int(self._clock() * 1000)
        events: list[InputLogEventTypeDef] = [
            {"timestamp": timestamp, "message": line} for line in text.splitlines() if line.strip()
        ]
        if events:
            self._logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def _json_body(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        raise _ApiError("SerializationException", "The request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise _ApiError("SerializationException", "The request body must be a JSON object")
    return parsed


def _name_in_arn(arn: str) -> str | None:
    match = re.search(r":environment/(.+)$", arn)
    return match.group(1) if match else None


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError):
        raise _validation("The NextToken is not valid") from None
    if not isinstance(offset, int) or offset < 0:
        raise _validation("The NextToken is not valid")
    return offset


def _check_version_change(current: str, new: str) -> None:
    """MWAA's in-place upgrade paths: within 2.x to a newer version, newest 2.11.x -> 3.x, within 3.x."""
    if new not in TARGET_VERSIONS:
        raise _validation(
            f"Airflow version {new} is not supported. Supported versions: {', '.join(TARGET_VERSIONS)}"
        )
    source, target = AirflowVersion.parse(current), AirflowVersion.parse(new)
    if target == source:
        return
    if target < source:
        raise _validation(f"Downgrading Apache Airflow from {current} to {new} is not supported.")
    if source.major == target.major == 2 or source.major == target.major == 3:
        return
    if source.major == 2 and target.major == 3 and current == newest_target(2, 11):
        return
    raise _validation(
        f"Upgrading Apache Airflow from {current} to {new} in place is not supported; "
        f"upgrade to {newest_target(2, 11)} first, or create a new environment."
        if source.major == 2
        else f"Upgrading Apache Airflow from {current} to {new} in place is not supported."
    )


def _apply_update(environment: EmulatedEnvironment, changes: dict[str, Any]) -> None:
    description = environment.description
    old_major = AirflowVersion.parse(environment.airflow_version).major
    for key, value in changes.items():
        if key == "WorkerReplacementStrategy":
            continue  # recorded in LastUpdate
        if key == "NetworkConfiguration":
            description["NetworkConfiguration"] = {**description.get("NetworkConfiguration", {}), **value}
        elif key == "LoggingConfiguration":
            for module, module_configuration in value.items():
                current = description["LoggingConfiguration"].get(module, {})
                description["LoggingConfiguration"][module] = {**current, **module_configuration}
        elif key == "Teams":
            teams = {**description.get("Teams", {}), **value.get("AddOrUpdate", {})}
            for team in value.get("Remove", []):
                teams.pop(team, None)
            if teams:
                description["Teams"] = teams
            else:
                description.pop("Teams", None)
        else:
            description[key] = value
    if old_major == 2 and AirflowVersion.parse(environment.airflow_version).major >= 3:
        upgrade_metadata_to_airflow3(environment.metadata)


def upgrade_metadata_to_airflow3(metadata: dict[str, list[dict[str, Any]]]) -> None:
    """What Airflow's own 2 -> 3 database migration does to the rows the emulator keeps."""
    for run in metadata.get("dag_run", []):
        if "execution_date" in run:
            run["logical_date"] = run.pop("execution_date")
        run.setdefault("run_after", run.get("logical_date"))
        run.setdefault("triggered_by", None)
        run.pop("external_trigger", None)
    for instance in metadata.get("task_instance", []):
        instance.setdefault("id", str(uuid.uuid4()))
        instance.pop("execution_date", None)


# --------------------------------------------------------------------------------------------------
# The Airflow CLI behind /aws_mwaa/cli


# An argparse argument: (flags, add_argument's keyword arguments).
type _Argument = tuple[tuple[str, ...], dict[str, Any]]
_OUTPUT: _Argument = (("-o", "--output"), {"choices": ["table", "json", "yaml", "plain"], "default": "table"})
_FLAG: dict[str, Any] = {"action": "store_true"}


class _CommandError(Exception):
    """An Airflow command failed: its text is what the CLI prints on stderr."""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _CommandError(f"{self.format_usage()}\nairflow command error: {message}, see help above.\n")


def _raised(exception: str, message: str) -> _CommandError:
    """The stderr of an Airflow command that raised `exception`."""
    return _CommandError(
        "Traceback (most recent call last):\n"
        '  File "/usr/local/airflow/.local/bin/airflow", line 8, in <module>\n'
        "    sys.exit(main())\n"
        f"{exception}: {message}\n"
    )


def _date(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid parse value: {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _row_date(row: Mapping[str, Any], *keys: str) -> datetime | None:
    for key in keys:
        value = row.get(key)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, str) and value:
            return _date(value)
    return None


def _iso_or_empty(row: Mapping[str, Any], key: str) -> str:
    date = _row_date(row, key)
    return date.isoformat() if date else ""


def _normalize(value: Any) -> Any:
    """Airflow's AirflowConsole: everything but lists, dicts and None printed through str()."""
    if isinstance(value, list | tuple):
        return [_normalize(item) for item in value]
    if isinstance(value, dict):
        return {key: _normalize(item) for key, item in value.items()}
    return None if value is None else str(value)


def _render(rows: list[dict[str, Any]], output: str) -> str:
    data = [_normalize(row) for row in rows]
    if output == "json":
        return json.dumps(data, indent=2) + "\n"
    if output == "yaml":
        lines = []
        for row in data:
            for index, (key, value) in enumerate(row.items()):
                lines.append(f"{'- ' if index == 0 else '  '}{key}: {'null' if value is None else value}")
        return "\n".join(lines) + "\n" if lines else "[]\n"
    if not data:
        return "No data found\n"
    columns = list(data[0])
    lines = [" | ".join(columns)]
    lines += [" | ".join("None" if row.get(c) is None else str(row.get(c)) for c in columns) for row in data]
    return "\n".join(lines) + "\n"


class _Airflow:
    """The Airflow CLI of one environment, on its emulated metadata (called with its CLI lock held)."""

    def __init__(self, emulator: MwaaEmulator, environment: EmulatedEnvironment) -> None:
        self.emulator = emulator
        self.environment = environment
        self.version = AirflowVersion.parse(environment.airflow_version)
        self.airflow3 = self.version.major >= 3
        # Column holding a run's logical date in this version's dag_run table.
        self.date_column = "logical_date" if self.airflow3 else "execution_date"

    def run(self, argv: list[str]) -> tuple[str, str]:
        """(stdout, stderr) of `airflow {argv}`."""
        if self.version.major < 2 and argv != ["version"]:
            return "", (
                "usage: airflow [-h] GROUP_OR_COMMAND ...\n"
                f"airflow: error: argument subcommand: invalid choice: {argv[0]!r}\n"
            )
        try:
            args = self._parser().parse_args(argv)
            handler: Callable[[argparse.Namespace], str] = args.handler
            return handler(args), ""
        except _CommandError as error:
            return "", str(error)

    def _parser(self) -> argparse.ArgumentParser:
        root = _ArgumentParser(prog="airflow", add_help=False, allow_abbrev=False)
        groups = root.add_subparsers(dest="group", required=True, metavar="GROUP_OR_COMMAND")
        commands: dict[str, Any] = {}
        for group, name, handler, arguments in self._commands():
            if group is None:
                parent = groups
            elif group in commands:
                parent = commands[group]
            else:
                parent = groups.add_parser(group, add_help=False).add_subparsers(
                    dest="command", required=True
                )
                commands[group] = parent
            parser = parent.add_parser(name, add_help=False, allow_abbrev=False)
            parser.set_defaults(handler=handler)
            for flags, options in arguments:
                parser.add_argument(*flags, **options)
        return root

    def _commands(self) -> list[tuple[str | None, str, Callable[[argparse.Namespace], str], list[_Argument]]]:
        """(group, command, handler, arguments) of every command the emulated CLI knows."""
        subdir: _Argument = (("-S", "--subdir"), {})
        trigger_date: _Argument = (
            (("-l", "--logical-date"), {"dest": "logical_date", "type": _date})
            if self.airflow3
            else (("-e", "--exec-date"), {"dest": "logical_date", "type": _date})
        )
        trigger_output = [_OUTPUT] if self.version >= AirflowVersion(2, 6, 0) else []
        return [
            ("dags", "list", self.dags_list, [_OUTPUT, subdir, (("-v", "--verbose"), _FLAG)]),
            ("dags", "list-import-errors", self.dags_list_import_errors, [_OUTPUT, subdir]),
            ("dags", "pause", self.dags_pause, [(("dag_id",), {}), subdir, (("-y", "--yes"), _FLAG)]),
            ("dags", "unpause", self.dags_unpause, [(("dag_id",), {}), subdir, (("-y", "--yes"), _FLAG)]),
            (
                "dags",
                "trigger",
                self.dags_trigger,
                [
                    (("dag_id",), {}),
                    (("-r", "--run-id"), {}),
                    (("-c", "--conf"), {}),
                    trigger_date,
                    (("--replace-microseconds",), {"default": "true"}),
                    subdir,
                    *trigger_output,
                ],
            ),
            (
                "dags",
                "list-runs",
                self.dags_list_runs,
                [
                    (("dag_id",), {"nargs": "?"}),  # Airflow 3 takes it positional, 2.x as -d
                    (("-d", "--dag-id"), {"dest": "dag_id_flag"}),
                    (("--state",), {}),
                    (("--no-backfill",), _FLAG),
                    (("-s", "--start-date"), {"type": _date}),
                    (("-e", "--end-date"), {"type": _date}),
                    _OUTPUT,
                ],
            ),
            (
                "dags",
                "state",
                self.dags_state,
                [(("dag_id",), {}), (("logical_date",), {"type": _date}), subdir],
            ),
            (
                "tasks",
                "states-for-dag-run",
                self.tasks_states_for_dag_run,
                [(("dag_id",), {}), (("run",), {}), _OUTPUT],
            ),
            ("variables", "list", self.variables_list, [_OUTPUT]),
            (
                "variables",
                "get",
                self.variables_get,
                [(("key",), {}), (("-j", "--json"), _FLAG), (("-d", "--default"), {})],
            ),
            (
                "variables",
                "set",
                self.variables_set,
                [(("key",), {}), (("value",), {}), (("-j", "--json"), _FLAG), (("--description",), {})],
            ),
            ("variables", "delete", self.variables_delete, [(("key",), {})]),
            (None, "version", self.version_command, []),
        ]

    # ---- DAGs and the DAG folder

    def _dag(self, dag_id: str) -> dict[str, Any] | None:
        for row in self.environment.metadata.get("dag", []):
            if row.get("dag_id") == dag_id and row.get("is_active", True):
                return row
        return None

    def _parse_dag_folder(self) -> None:
        """One `dags list`: a file's DAG appears once this many calls have seen its current version."""
        environment = self.environment
        bucket, prefix, files = self.emulator._dag_folder(environment)
        for key, etag in files.items():
            seen_etag, count = environment._dag_files.get(key, (etag, 0))
            count = count + 1 if seen_etag == etag else 1
            environment._dag_files[key] = (etag, count)
            if count == self.emulator.dag_parse_polls + 1:
                self._load_dag_file(bucket, key, key[len(prefix) :])

    def _load_dag_file(self, bucket: str, key: str, relative: str) -> None:
        environment = self.environment
        source = self.emulator._read_dag_file(bucket, key)
        fileloc = f"{_DAGS_FOLDER}/{relative}"
        dag_id = PurePosixPath(key).stem
        errors = [
            row for row in environment.metadata.get("import_error", []) if row.get("filename") != fileloc
        ]
        try:
            compile(source, fileloc, "exec")
        except SyntaxError as error:
            if not {"airflow", "dag"} <= set(re.findall(r"airflow|dag", source.lower())):
                return  # Airflow's safe mode does not even import a file that mentions no DAG
            errors.append(
                {
                    "id": max((int(row.get("id", 0)) for row in errors), default=0) + 1,
                    "filename": fileloc,
                    "timestamp": self.emulator._now().isoformat(),
                    "stack_trace": (
                        "Traceback (most recent call last):\n"
                        f'  File "{fileloc}", line {error.lineno}\n'
                        f"    {(error.text or '').strip()}\n"
                        f"SyntaxError: {error.msg}\n"
                    ),
                }
            )
            environment.metadata["import_error"] = errors
            return
        if "import_error" in environment.metadata:
            environment.metadata["import_error"] = errors
        if not _DEFINES_DAG.search(source):
            return
        tasks = list(dict.fromkeys(_TASK_ID.findall(source) + _TASK_FUNCTION.findall(source)))
        environment._dag_tasks[dag_id] = tasks
        row = self._dag(dag_id)
        if row is None:
            options = environment.description.get("AirflowConfigurationOptions", {})
            default = options.get("core.dags_are_paused_at_creation", "True").strip().lower() not in {
                "false",
                "0",
            }
            paused = default and not _NOT_PAUSED_UPON_CREATION.search(source)
            environment.table("dag").append(
                {
                    "dag_id": dag_id,
                    "is_paused": paused,
                    "is_active": True,
                    "fileloc": fileloc,
                    "owners": "airflow",
                }
            )
        else:
            row["fileloc"] = fileloc

    def dags_list(self, args: argparse.Namespace) -> str:
        self._parse_dag_folder()
        rows: list[dict[str, Any]] = []
        dags = [row for row in self.environment.metadata.get("dag", []) if row.get("is_active", True)]
        for dag in sorted(dags, key=lambda row: str(row["dag_id"])):
            dag_id = str(dag["dag_id"])
            fileloc = str(dag.get("fileloc") or f"{_DAGS_FOLDER}/{dag_id}.py")
            paused = bool(dag.get("is_paused", False))
            owners = str(dag.get("owners") or "airflow")
            if self.version < AirflowVersion(2, 7, 0):
                relative = fileloc.removeprefix(f"{_DAGS_FOLDER}/")
                rows.append({"dag_id": dag_id, "filepath": relative, "owner": owners, "paused": paused})
                continue
            row = {"dag_id": dag_id, "fileloc": fileloc, "owners": owners.split(","), "is_paused": paused}
            if self.airflow3:
                row |= {"bundle_name": "dags-folder", "bundle_version": None}
            rows.append(row)
        return _render(rows, args.output)

    def dags_list_import_errors(self, args: argparse.Namespace) -> str:
        errors = self.environment.metadata.get("import_error", [])
        return _render(
            [{"filepath": row.get("filename"), "error": row.get("stack_trace")} for row in errors],
            args.output,
        )

    def dags_pause(self, args: argparse.Namespace) -> str:
        return self._set_paused(args, paused=True)

    def dags_unpause(self, args: argparse.Namespace) -> str:
        return self._set_paused(args, paused=False)

    def version_command(self, args: argparse.Namespace) -> str:
        return f"{self.environment.airflow_version}\n"

    def _set_paused(self, args: argparse.Namespace, *, paused: bool) -> str:
        dag = self._dag(args.dag_id)
        if dag is None:
            raise _CommandError(f"DAG: {args.dag_id} does not exist in 'dag' table\n")
        dag["is_paused"] = paused
        return f"Dag: {args.dag_id}, paused: {paused}\n"

    # ---- DAG runs

    def _runs(self, dag_id: str) -> list[dict[str, Any]]:
        return [run for run in self.environment.metadata.get("dag_run", []) if run.get("dag_id") == dag_id]

    def dags_trigger(self, args: argparse.Namespace) -> str:
        dag_id: str = args.dag_id
        if self._dag(dag_id) is None:
            raise _raised("airflow.exceptions.DagNotFound", f"Dag id {dag_id} not found in DagModel")
        conf: Any = {}
        if args.conf:
            try:
                conf = json.loads(args.conf)
            except json.JSONDecodeError as error:
                raise _raised("json.decoder.JSONDecodeError", str(error)) from None
            if not isinstance(conf, dict):
                raise _raised("ValueError", "conf must be a JSON object")
        now = self.emulator._now()
        logical_date: datetime = args.logical_date or now
        run_id: str = args.run_id or f"manual__{logical_date.isoformat()}"
        for existing in self._runs(dag_id):
            if (
                existing.get("run_id") == run_id
                or _row_date(existing, "logical_date", "execution_date") == logical_date
            ):
                raise _raised(
                    "airflow.exceptions.DagRunAlreadyExists",
                    f"A Dag Run already exists for dag id {dag_id} at {logical_date} with run id {run_id}",
                )
        runs = self.environment.table("dag_run")
        run: dict[str, Any] = {
            "id": max((int(row.get("id") or 0) for row in runs), default=0) + 1,
            "dag_id": dag_id,
            "run_id": run_id,
            self.date_column: logical_date.isoformat(),
            "state": "queued",
            "run_type": "manual",
            "conf": conf,
            "queued_at": now.isoformat(),
            "start_date": None,
            "end_date": None,
            "data_interval_start": logical_date.isoformat(),
            "data_interval_end": logical_date.isoformat(),
            "last_scheduling_decision": None,
        }
        if self.airflow3:
            run |= {"run_after": logical_date.isoformat(), "triggered_by": "cli"}
        else:
            run["external_trigger"] = True
        runs.append(run)
        self.environment._run_reads[(dag_id, run_id)] = 0
        if self.version < AirflowVersion(2, 6, 0):
            return (
                f"Created <DagRun {dag_id} @ {logical_date}: {run_id}, state:queued, "
                f"queued_at: {now}. externally triggered: True>\n"
            )
        printed: dict[str, Any] = {
            "conf": conf,
            "dag_id": dag_id,
            "dag_run_id": run_id,
            "data_interval_start": logical_date,
            "data_interval_end": logical_date,
            "end_date": None,
            "last_scheduling_decision": None,
            "logical_date": logical_date,
            "run_type": "manual",
            "start_date": None,
            "state": "queued",
        }
        if self.airflow3:
            printed |= {"run_after": logical_date, "triggered_by": "cli"}
        else:
            printed["external_trigger"] = True
        return _render([printed], args.output)

    def _read_state(self, run: dict[str, Any]) -> None:
        """Reading a run's state moves it on: queued -> running -> (after dag_run_polls reads) done."""
        environment = self.environment
        key = (str(run.get("dag_id")), str(run.get("run_id")))
        if key not in environment._run_reads:
            return
        if run.get("state") == "queued":
            dag = self._dag(key[0])
            if dag is None or dag.get("is_paused"):
                return  # the scheduler does not start runs of a paused DAG
            run["state"] = "running"
            run["start_date"] = self.emulator._now().isoformat()
        environment._run_reads[key] += 1
        if environment._run_reads[key] > self.emulator.dag_run_polls:
            del environment._run_reads[key]
            self._complete(run)

    def _complete(self, run: dict[str, Any]) -> None:
        environment = self.environment
        dag_id, run_id = str(run["dag_id"]), str(run["run_id"])
        conf = run.get("conf")
        result = self.emulator._run_dag(environment, dag_id, dict(conf) if isinstance(conf, dict) else {})
        now = self.emulator._now().isoformat()
        run["state"] = result.state
        run["end_date"] = now
        runs = environment.table("dag_run")
        if not any(row is run or (row.get("dag_id"), row.get("run_id")) == (dag_id, run_id) for row in runs):
            runs.append(run)  # the DAG's work replaced the table: its own run is still there in Airflow
        tasks = list(environment._dag_tasks.get(dag_id, []))
        failed = None
        if result.state == "failed":
            failed = result.failed_task or (tasks[0] if tasks else "unknown_task")
            if failed not in tasks:
                tasks.append(failed)
        instances = [
            row
            for row in environment.table("task_instance")
            if (row.get("dag_id"), row.get("run_id")) != (dag_id, run_id)
        ]
        for index, task_id in enumerate(tasks):
            if failed is None or index < tasks.index(failed):
                state = "success"
            else:
                state = "failed" if task_id == failed else "upstream_failed"
            instance: dict[str, Any] = {
                "dag_id": dag_id,
                "task_id": task_id,
                "run_id": run_id,
                "map_index": -1,
                "try_number": 0 if state == "upstream_failed" else 1,
                "state": state,
                "start_date": None if state == "upstream_failed" else run.get("start_date"),
                "end_date": now,
                "pool": "default_pool",
                "queue": "default",
            }
            if self.airflow3:
                instance["id"] = str(uuid.uuid4())
            instances.append(instance)
        environment.metadata["task_instance"] = instances
        if failed is not None:
            environment.task_logs[(dag_id, run_id, failed)] = result.stderr
            logical_date = str(run.get(self.date_column) or "")
            self.emulator._write_task_log(
                environment=environment,
                dag_id=dag_id,
                run_id=run_id,
                task_id=failed,
                logical_date=logical_date,
                text=result.stderr,
            )

    def _date_of(self, run: Mapping[str, Any]) -> str:
        date = _row_date(run, "logical_date", "execution_date")
        return date.isoformat() if date else ""

    def dags_list_runs(self, args: argparse.Namespace) -> str:
        dag_id = args.dag_id_flag or args.dag_id
        if not dag_id:
            _ArgumentParser(prog="airflow dags list-runs", add_help=False).error(
                "the following arguments are required: -d/--dag-id"
            )
        if self._dag(dag_id) is None:
            raise _raised("airflow.exceptions.AirflowException", f"Dag id {dag_id} not found")
        runs = self._runs(dag_id)
        for run in runs:
            self._read_state(run)
        if args.state:
            runs = [run for run in runs if run.get("state") == args.state]
        if args.start_date:
            runs = [run for run in runs if self._date_of(run) >= args.start_date.isoformat()]
        if args.end_date:
            runs = [run for run in runs if self._date_of(run) <= args.end_date.isoformat()]
        runs.sort(key=self._date_of, reverse=True)
        rows = [
            {
                "dag_id": run.get("dag_id"),
                "run_id": run.get("run_id"),
                "state": run.get("state"),
                self.date_column: self._date_of(run),
                "start_date": _iso_or_empty(run, "start_date"),
                "end_date": _iso_or_empty(run, "end_date"),
            }
            for run in runs
        ]
        return _render(rows, args.output)

    def dags_state(self, args: argparse.Namespace) -> str:
        if self._dag(args.dag_id) is None:
            raise _raised(
                "airflow.exceptions.AirflowException",
                f"Dag {args.dag_id!r} could not be found; either it does not exist or it failed to parse.",
            )
        for run in self._runs(args.dag_id):
            if _row_date(run, "logical_date", "execution_date") == args.logical_date:
                self._read_state(run)
                conf = run.get("conf")
                return f"{run.get('state')}, {conf}\n" if conf else f"{run.get('state')}\n"
        return "None\n"

    def tasks_states_for_dag_run(self, args: argparse.Namespace) -> str:
        dag_id: str = args.dag_id
        if self._dag(dag_id) is None:
            raise _raised(
                "airflow.exceptions.AirflowException",
                f"Dag {dag_id!r} could not be found; either it does not exist or it failed to parse.",
            )
        wanted: datetime | None
        try:
            wanted = _date(args.run)
        except argparse.ArgumentTypeError:
            wanted = None
        for run in self._runs(dag_id):
            if run.get("run_id") == args.run or (
                wanted is not None and _row_date(run, "logical_date", "execution_date") == wanted
            ):
                self._read_state(run)
                rows = [
                    {
                        "dag_id": dag_id,
                        self.date_column: self._date_of(run),
                        "task_id": instance.get("task_id"),
                        "state": instance.get("state"),
                        "start_date": instance.get("start_date") or "",
                        "end_date": instance.get("end_date") or "",
                    }
                    for instance in self.environment.metadata.get("task_instance", [])
                    if (instance.get("dag_id"), instance.get("run_id")) == (dag_id, run.get("run_id"))
                ]
                return _render(rows, args.output)
        raise _raised(
            "airflow.exceptions.DagRunNotFound",
            f"DagRun for {dag_id} with run_id or {self.date_column} of {args.run!r} not found",
        )

    # ---- variables

    def _variable(self, key: str) -> dict[str, Any] | None:
        for row in self.environment.metadata.get("variable", []):
            if row.get("key") == key:
                return row
        return None

    def variables_list(self, args: argparse.Namespace) -> str:
        return _render(
            [{"key": row.get("key")} for row in self.environment.metadata.get("variable", [])], args.output
        )

    def variables_get(self, args: argparse.Namespace) -> str:
        row = self._variable(args.key)
        if row is None:
            if args.default is not None:
                return f"{args.default}\n"
            raise _CommandError(f"Variable {args.key} does not exist\n")
        value = str(row.get("val", ""))
        if args.json:
            try:
                value = json.dumps(json.loads(value), indent=2)
            except json.JSONDecodeError as error:
                raise _raised("json.decoder.JSONDecodeError", str(error)) from None
        return f"{value}\n"

    def variables_set(self, args: argparse.Namespace) -> str:
        value: str = args.value
        if args.json:
            try:
                json.loads(value)
            except json.JSONDecodeError as error:
                raise _raised("json.decoder.JSONDecodeError", str(error)) from None
        row = self._variable(args.key)
        if row is None:
            table = self.environment.table("variable")
            row = {"id": max((int(r.get("id") or 0) for r in table), default=0) + 1, "key": args.key}
            table.append(row)
        row |= {"val": value, "description": args.description, "is_encrypted": True}
        return f"Variable {args.key} created\n"

    def variables_delete(self, args: argparse.Namespace) -> str:
        variables = self.environment.metadata.get("variable", [])
        self.environment.metadata["variable"] = [row for row in variables if row.get("key") != args.key]
        return ""


# --------------------------------------------------------------------------------------------------
# The HTTP server


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: MwaaEmulator) -> None:
        super().__init__(address, _Handler)
        self.emulator = emulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # seconds an idle keep-alive connection holds its thread
    server: _Server

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            response = self.server.emulator._handle(method, self.path, headers, body)
        except Exception as error:  # a bug in the emulator: answer 500 with its text, so the test shows it
            logger.exception("the MWAA emulator failed on %s %s", method, urlsplit(self.path).path)
            response = _error_response(_ApiError("InternalServerException", f"emulator error: {error!r}"))
        # A client that gave up waiting (a timeout) no longer reads the answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(response.status)
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `calls`, not access logs."""
