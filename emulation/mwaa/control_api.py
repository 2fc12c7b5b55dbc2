"""The MWAA control API (rest-json, botocore's `mwaa` 2020-07-01 model): environments, tags, CLI
tokens, InvokeRestApi, injected faults and delays; MwaaEmulator owns the emulated environments."""

from __future__ import annotations

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
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.exceptions import ClientError

from emulation.mwaa import rest_api
from emulation.mwaa.airflow_cli import EmulatedAirflowCli
from emulation.mwaa.environment import BUSY, READY, DagRunResult, DagRuntime, EmulatedEnvironment, PendingRun
from emulation.mwaa.responses import (
    DEFAULT_STATUS,
    ApiError,
    Response,
    error_response,
    json_body,
    json_response,
    validation_error,
)
from emulation.mwaa.server import EmulatorServer
from emulation.mwaa.service_model import (
    input_shape,
    model_problems,
    service_model,
    structure_of,
)
from mwaa_migrate.environment.versions import TARGET_VERSIONS, AirflowVersion, newest_target

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import InputLogEventTypeDef
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

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
_TOKEN_LIFETIME = 60.0
_MAX_LIST_RESULTS = 25
# Airflow CLI groups the MWAA CLI endpoint refuses.
_DISALLOWED_COMMANDS = frozenset({"db", "connections", "pools", "users"})


@dataclass
class _Fault:
    code: str
    status: int
    message: str
    remaining: int


def _not_found(name: str) -> ApiError:
    return ApiError("ResourceNotFoundException", f"Environment {name} not found.")


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value)


def _latest_version() -> str:
    return max(TARGET_VERSIONS, key=AirflowVersion.parse)


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
        # Self-managed Airflows (add_self_managed): the same Airflow emulation, not MWAA's to answer.
        self._self_managed: dict[str, EmulatedEnvironment] = {}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        # Seconds to answer late, per operation: the call is carried out, its answer comes late.
        self._delays: dict[str, deque[float]] = {}
        self._fail_create: dict[str, tuple[str, str]] = {}
        self._fail_update: dict[str, tuple[str, str]] = {}
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None
        # (operation, environment name) of every API call and CLI request, faulted ones included.
        self.calls: list[tuple[str, str | None]] = []
        # (environment name, argv) of every CLI command that reached Airflow.
        self.cli_commands: list[tuple[str, list[str]]] = []
        # InvokeRestApi (rest_api.py): its requests, timeout and response limit.
        self.rest_api = rest_api.RestApi(self)

    # ---- lifecycle

    def start(self) -> str:
        """Serve on a free port; return the endpoint URL (for AWS_ENDPOINT_URL_MWAA)."""
        if self._server is None:
            self._server = EmulatorServer(("127.0.0.1", 0), self)
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
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
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
        self,
        description: dict[str, Any],
        metadata: dict[str, list[dict[str, Any]]] | None = None,
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
            "ExecutionRoleArn",
            f"arn:aws:iam::{self.account_id}:role/service-role/AmazonMWAA-{name}",
        )
        seeded.setdefault("SourceBucketArn", f"arn:aws:s3:::airflow-{name.lower().replace('_', '-')}")
        seeded.setdefault("DagS3Path", "dags")
        seeded.setdefault(
            "NetworkConfiguration",
            {
                "SubnetIds": ["subnet-0a1b2c3d4e", "subnet-5f6a7b8c9d"],
                "SecurityGroupIds": ["sg-0a1b2c3d4e"],
            },
        )
        seeded.setdefault("AirflowVersion", _latest_version())
        status = str(seeded.get("Status", "AVAILABLE"))
        self._complete_description(seeded, status)
        problems = model_problems(structure_of(service_model().shape_for("Environment")), seeded)
        if problems:
            raise ValueError("the description does not fit the Environment shape: " + "; ".join(problems))
        environment = EmulatedEnvironment(name, seeded, copy.deepcopy(metadata) if metadata else {})
        if status in {"CREATING", "UPDATING", "DELETING"}:
            kind: Literal["create", "update", "delete"] = (
                "create" if status == "CREATING" else "update" if status == "UPDATING" else "delete"
            )
            polls = {
                "create": self.create_polls,
                "update": self.update_polls,
                "delete": self.delete_polls,
            }
            environment._pending = PendingRun(kind, polls[kind])
        with self._lock:
            if name in self._environments:
                raise ValueError(f"environment {name} already exists")
            self._environments[name] = environment
        return environment

    def add_self_managed(
        self,
        name: str,
        *,
        airflow_version: str,
        dags_bucket: str,
        dag_folder: str,
        metadata: dict[str, list[dict[str, Any]]] | None = None,
    ) -> EmulatedEnvironment:
        """Seed a self-managed Apache Airflow: its metadata and DAG runtime are the emulator's (its
        DAG folder read from s3://dags_bucket/dag_folder, as an S3-synced deployment reads it), but
        it is no MWAA environment: GetEnvironment, ListEnvironments and the CLI endpoint do not know
        it. emulation/self_managed.py serves its REST API."""
        description = {
            "Name": name,
            "AirflowVersion": airflow_version,
            "Status": "AVAILABLE",
            "SourceBucketArn": f"arn:aws:s3:::{dags_bucket}",
            "DagS3Path": dag_folder.strip("/"),
        }
        environment = EmulatedEnvironment(name, description, copy.deepcopy(metadata) if metadata else {})
        with self._lock:
            if name in self._environments or name in self._self_managed:
                raise ValueError(f"environment {name} already exists")
            self._self_managed[name] = environment
        return environment

    def environment(self, name: str) -> EmulatedEnvironment:
        with self._lock:
            found = self._environments.get(name) or self._self_managed.get(name)
            if found is None:
                raise KeyError(f"no emulated environment named {name}")
            return found

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
            status=status or DEFAULT_STATUS.get(error_code, 400),
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

    def _handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one HTTP request. `headers` keys are lower case."""
        split = urlsplit(target)
        if split.path in {"/aws_mwaa/cli", "/aws_mwaa/cli/"}:
            if method != "POST":
                return json_response({"message": "Method Not Allowed"}, 405)
            with self._lock:
                delay = self._take_delay("Cli")
            response = self._cli_request(split.path, headers, body)
        elif method == "POST" and split.path.startswith("/restapi/"):
            return self.rest_api.handle(unquote(split.path.removeprefix("/restapi/")), body)
        else:
            try:
                operation, name, call = self._route(method, split.path, split.query, body)
            except ApiError as error:
                return error_response(error)
            with self._lock:
                self.calls.append((operation, name))
                delay = self._take_delay(operation)
                try:
                    self._raise_fault(operation)
                    response = json_response(call())
                except ApiError as error:
                    response = error_response(error)
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
                return (
                    "CreateEnvironment",
                    name,
                    lambda: self._create_environment(name, json_body(body)),
                )
            case "PATCH", ["environments", name]:
                return (
                    "UpdateEnvironment",
                    name,
                    lambda: self._update_environment(name, json_body(body)),
                )
            case "DELETE", ["environments", name]:
                return "DeleteEnvironment", name, lambda: self._delete_environment(name)
            case "POST", ["clitoken", name]:
                return "CreateCliToken", name, lambda: self._create_cli_token(name)
            case "GET", ["tags", *rest]:
                arn = "/".join(rest)
                return (
                    "ListTagsForResource",
                    _name_in_arn(arn),
                    lambda: self._list_tags(arn),
                )
            case "POST", ["tags", *rest]:
                arn = "/".join(rest)
                return (
                    "TagResource",
                    _name_in_arn(arn),
                    lambda: self._tag(arn, json_body(body)),
                )
            case "DELETE", ["tags", *rest]:
                arn = "/".join(rest)
                return (
                    "UntagResource",
                    _name_in_arn(arn),
                    lambda: self._untag(arn, query.get("tagKeys", [])),
                )
        raise ApiError(
            "UnknownOperationException",
            f"{method} {path} is not an operation the emulator serves",
            404,
        )

    def _raise_fault(self, operation: str) -> None:
        faults = self._faults.get(operation)
        if not faults:
            return
        fault = faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            faults.popleft()
        raise ApiError(fault.code, fault.message, fault.status)

    def _validate(self, operation: str, request: dict[str, Any]) -> None:
        problems = model_problems(input_shape(operation), request)
        if problems:
            count = len(problems)
            raise validation_error(
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
            raise validation_error(
                f"Airflow version {version} is not supported. "
                f"Supported versions: {', '.join(TARGET_VERSIONS)}"
            )
        if len(request["NetworkConfiguration"].get("SubnetIds") or []) != 2:
            raise validation_error(
                "NetworkConfiguration.SubnetIds must name 2 subnets in different Availability Zones"
            )
        if not request["NetworkConfiguration"].get("SecurityGroupIds"):
            raise validation_error(
                "NetworkConfiguration.SecurityGroupIds must name at least one security group"
            )
        if name in self._environments:
            raise validation_error(f"Environment {name} already exists.")
        description = copy.deepcopy(request)
        self._complete_description(description, "CREATING")
        environment = EmulatedEnvironment(
            name,
            description,
            {
                "slot_pool": [
                    {
                        "id": 1,
                        "pool": "default_pool",
                        "slots": 128,
                        "description": "Default pool",
                    }
                ]
            },
        )
        environment._pending = PendingRun(
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
            "WebserverUrl",
            f"https://{uuid.uuid4()}.c2.{self.region}.airflow.amazonaws.com",
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
                    key,
                    f"com.amazonaws.vpce.{self.region}.vpce-svc-{secrets.token_hex(8)}",
                )
        last_update = description.setdefault(
            "LastUpdate",
            {"Status": "PENDING" if status in BUSY else "SUCCESS", "CreatedAt": now},
        )
        if "CreatedAt" in last_update:
            last_update["CreatedAt"] = _epoch(last_update["CreatedAt"])

    def _update_environment(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self._validate("UpdateEnvironment", {**body, "Name": name})
        environment = self._require(name)
        if environment.status not in READY:
            raise validation_error(
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
        environment._pending = PendingRun(
            "update",
            self.update_polls,
            copy.deepcopy(body),
            failure=self._fail_update.pop(name, None),
        )
        return {"Arn": environment.description["Arn"]}

    def _delete_environment(self, name: str) -> dict[str, Any]:
        self._validate("DeleteEnvironment", {"Name": name})
        environment = self._require(name)
        if environment.status in BUSY:
            raise validation_error(f"Environment {name} is {environment.status}: it cannot be deleted now.")
        environment.description["Status"] = "DELETING"
        environment._pending = PendingRun("delete", self.delete_polls)
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
            raise validation_error("MaxResults must be an integer") from None
        if not 1 <= max_results <= _MAX_LIST_RESULTS:
            raise validation_error(f"MaxResults must be between 1 and {_MAX_LIST_RESULTS}")
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
        raise ApiError("ResourceNotFoundException", f"Resource {arn} not found.")

    def _list_tags(self, arn: str) -> dict[str, Any]:
        environment = self._environment_by_arn("ListTagsForResource", arn, {})
        return {"Tags": dict(environment.description.get("Tags", {}))}

    def _tag(self, arn: str, body: dict[str, Any]) -> dict[str, Any]:
        environment = self._environment_by_arn("TagResource", arn, {"Tags": body.get("Tags")})
        tags = {**environment.description.get("Tags", {}), **body["Tags"]}
        if len(tags) > 50:
            raise validation_error("An environment can have at most 50 tags.")
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

    def _cli_request(self, path: str, headers: Mapping[str, str], body: bytes) -> Response:
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
                return Response(307, b"", {"Location": "/aws_mwaa/cli/"})
            self.calls.append(("Cli", environment.name if environment else None))
            try:
                self._raise_fault("Cli")
            except ApiError as error:
                return json_response({"message": error.message}, error.status)
            if environment is None:
                return json_response(
                    {"message": "Forbidden: the CLI token is missing, invalid or expired"},
                    403,
                )
            if environment.status not in READY:
                return json_response(
                    {"message": f"Environment {environment.name} is {environment.status}"},
                    503,
                )
        try:
            argv = shlex.split(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            return json_response({"message": f"Bad Request: the command cannot be parsed: {error}"}, 400)
        if not argv:
            return json_response({"message": "Bad Request: empty command"}, 400)
        if argv[0] in _DISALLOWED_COMMANDS:
            return json_response(
                {"message": f"Bad Request: airflow {argv[0]} is not supported on Amazon MWAA"},
                400,
            )
        with self._lock:
            self.cli_commands.append((environment.name, argv))
        with environment._cli_lock:
            stdout, stderr = EmulatedAirflowCli(self, environment).run(argv)
        return json_response(
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


def _name_in_arn(arn: str) -> str | None:
    match = re.search(r":environment/(.+)$", arn)
    return match.group(1) if match else None


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError):
        raise validation_error("The NextToken is not valid") from None
    if not isinstance(offset, int) or offset < 0:
        raise validation_error("The NextToken is not valid")
    return offset


def _check_version_change(current: str, new: str) -> None:
    """MWAA's in-place upgrade paths: within 2.x to a newer version, newest 2.11.x -> 3.x, within 3.x."""
    if new not in TARGET_VERSIONS:
        raise validation_error(
            f"Airflow version {new} is not supported. Supported versions: {', '.join(TARGET_VERSIONS)}"
        )
    source, target = AirflowVersion.parse(current), AirflowVersion.parse(new)
    if target == source:
        return
    if target < source:
        raise validation_error(f"Downgrading Apache Airflow from {current} to {new} is not supported.")
    if source.major == target.major == 2 or source.major == target.major == 3:
        return
    if source.major == 2 and target.major == 3 and current == newest_target(2, 11):
        return
    raise validation_error(
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
            description["NetworkConfiguration"] = {
                **description.get("NetworkConfiguration", {}),
                **value,
            }
        elif key == "LoggingConfiguration":
            for module, module_configuration in value.items():
                current = description["LoggingConfiguration"].get(module, {})
                description["LoggingConfiguration"][module] = {
                    **current,
                    **module_configuration,
                }
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
