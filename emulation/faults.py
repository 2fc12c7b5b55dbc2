"""Fault injection for every AWS service the pipeline calls, where a real fault would enter.

- moto's services (S3, IAM, CloudWatch Logs, Step Functions, Lambda, and whatever else the handlers
  call through moto): botocore hands each signed request to moto at its ``before-send`` event. The
  injector sits there, in front of moto, and answers with the service's own error in the service's
  own wire format (query XML, rest-xml, JSON with ``__type``, rest-json with ``x-amzn-ErrorType``),
  so botocore parses it and its retry logic (``mode: standard``) sees exactly what AWS would send.
  A timeout lets moto carry the request out and then raises the ``ReadTimeoutError`` botocore's HTTP
  session raises when an answer does not come: the call took effect, its answer was lost.
- MWAA: the faults are the emulator's own (``MwaaEmulator.inject_fault`` and ``inject_delay``),
  answered over real HTTP. A timeout is a real one: the emulator carries the call out and answers
  later than the client's read timeout (``short_client_timeouts``).
- The MWAA CLI endpoint (urllib3, not botocore): the emulator's faults on ``"Cli"``.
- Step Functions invoking a Lambda function: the Invoke call answers Lambda's throttling or service
  error, which Step Functions reports as ``Lambda.TooManyRequestsException`` or
  ``Lambda.ServiceException``. A lost Invoke answer is reported by Step Functions as
  ``Lambda.SdkClientException``; moto would turn any client exception into ``States.Runtime``, so
  after running the function the injector answers with that error instead of raising.

Only the pipeline's calls are touched: those a handler makes while Step Functions runs it, and the
Invoke calls themselves. The emulated Airflow's own calls and a test's set-up and checks are not.

    with FaultInjector(stack.mwaa_emulator) as faults:
        faults.every_step(FaultKind.THROTTLING)      # the first call of each operation in each step
        faults.inject("s3", "PutObject", FaultKind.ACCESS_DENIED)
        ... run ...
        faults.injected                               # what was injected, where
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self
from unittest import mock
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

import botocore.endpoint
import botocore.retries.bucket
import botocore.session
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError
from moto.core.botocore_stubber import BotocoreStubber

from mwaa_migrate import clients
from mwaa_migrate.environment import airflow_cli

if TYPE_CHECKING:
    from types import TracebackType

    from botocore.model import ServiceModel

    from emulation.mwaa import MwaaEmulator

# The MWAA CLI endpoint, as an "operation" of the "mwaa" service.
CLI = "Cli"


class FaultKind(StrEnum):
    THROTTLING = "throttling"
    SERVER_ERROR = "server-error"
    TIMEOUT = "timeout"
    ACCESS_DENIED = "access-denied"
    VALIDATION = "validation"

    @property
    def transient(self) -> bool:
        return self in TRANSIENT


TRANSIENT = (FaultKind.THROTTLING, FaultKind.SERVER_ERROR, FaultKind.TIMEOUT)
PERMANENT = (FaultKind.ACCESS_DENIED, FaultKind.VALIDATION)

# Each service's own error for each kind of fault: (error code, HTTP status), as the services'
# API references document them. Keyed by botocore's service id (the name in its event names).
_ERRORS: dict[str, dict[FaultKind, tuple[str, int]]] = {
    "s3": {
        FaultKind.THROTTLING: ("SlowDown", 503),
        FaultKind.SERVER_ERROR: ("InternalError", 500),
        FaultKind.ACCESS_DENIED: ("AccessDenied", 403),
        FaultKind.VALIDATION: ("InvalidArgument", 400),
    },
    "iam": {
        FaultKind.THROTTLING: ("Throttling", 400),
        FaultKind.SERVER_ERROR: ("ServiceFailure", 500),
        FaultKind.ACCESS_DENIED: ("AccessDenied", 403),
        FaultKind.VALIDATION: ("InvalidInput", 400),
    },
    "cloudwatch-logs": {
        FaultKind.THROTTLING: ("ThrottlingException", 400),
        FaultKind.SERVER_ERROR: ("ServiceUnavailableException", 500),
        FaultKind.ACCESS_DENIED: ("AccessDeniedException", 400),
        FaultKind.VALIDATION: ("InvalidParameterException", 400),
    },
    "sfn": {
        FaultKind.THROTTLING: ("ThrottlingException", 400),
        FaultKind.SERVER_ERROR: ("InternalFailure", 500),
        FaultKind.ACCESS_DENIED: ("AccessDeniedException", 400),
        FaultKind.VALIDATION: ("ValidationException", 400),
    },
    "lambda": {
        FaultKind.THROTTLING: ("TooManyRequestsException", 429),
        FaultKind.SERVER_ERROR: ("ServiceException", 500),
        FaultKind.ACCESS_DENIED: ("AccessDeniedException", 403),
        FaultKind.VALIDATION: ("InvalidRequestContentException", 400),
    },
    "mwaa": {
        FaultKind.THROTTLING: ("ThrottlingException", 429),
        FaultKind.SERVER_ERROR: ("InternalServerException", 500),
        FaultKind.ACCESS_DENIED: ("AccessDeniedException", 403),
        FaultKind.VALIDATION: ("ValidationException", 400),
    },
    "kms": {
        FaultKind.THROTTLING: ("ThrottlingException", 400),
        FaultKind.SERVER_ERROR: ("KMSInternalException", 500),
        FaultKind.ACCESS_DENIED: ("AccessDeniedException", 400),
        FaultKind.VALIDATION: ("ValidationException", 400),
    },
    "eventbridge": {
        FaultKind.THROTTLING: ("ThrottlingException", 400),
        FaultKind.SERVER_ERROR: ("InternalException", 500),
        FaultKind.ACCESS_DENIED: ("AccessDeniedException", 400),
        FaultKind.VALIDATION: ("ValidationException", 400),
    },
    "sns": {
        FaultKind.THROTTLING: ("Throttling", 400),
        FaultKind.SERVER_ERROR: ("InternalError", 500),
        FaultKind.ACCESS_DENIED: ("AuthorizationError", 403),
        FaultKind.VALIDATION: ("InvalidParameter", 400),
    },
}
# Any other service: the common codes of its protocol family.
_COMMON_ERRORS: dict[FaultKind, tuple[str, int]] = {
    FaultKind.THROTTLING: ("ThrottlingException", 400),
    FaultKind.SERVER_ERROR: ("InternalFailure", 500),
    FaultKind.ACCESS_DENIED: ("AccessDeniedException", 403),
    FaultKind.VALIDATION: ("ValidationException", 400),
}
# What Step Functions reports when its call to Lambda gets no answer (see the module's docstring).
_LOST_INVOKE = ("SdkClientException", 500)
# botocore service ids -> the names boto3 knows the services by (for their models).
_SERVICE_NAMES = {"cloudwatch-logs": "logs", "sfn": "stepfunctions", "eventbridge": "events"}


def error_for(service: str, kind: FaultKind) -> tuple[str, int]:
    """The error code and HTTP status `service` answers a fault of `kind` with."""
    if kind is FaultKind.TIMEOUT:
        raise ValueError("a timeout is no error answer")
    return _ERRORS.get(service, _COMMON_ERRORS)[kind]


@functools.cache
def _service_model(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(_SERVICE_NAMES.get(service, service))


def error_response(
    service: str, request: AWSPreparedRequest, *, code: str, status: int, message: str
) -> AWSResponse:
    """The HTTP answer `service` gives for an error, in its protocol's wire format."""
    request_id = str(uuid.uuid4())
    protocol = _service_model(service).protocol
    headers: dict[str, str] = {"x-amzn-RequestId": request_id}
    body: bytes
    if protocol == "rest-xml":
        headers["Content-Type"] = "application/xml"
        headers["x-amz-request-id"] = request_id
        body = (
            b""
            if request.method == "HEAD"
            else (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
                f"<RequestId>{request_id}</RequestId></Error>"
            ).encode()
        )
    elif protocol == "query":
        headers["Content-Type"] = "text/xml"
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
    elif protocol == "json":
        version = _service_model(service).metadata.get("jsonVersion", "1.0")
        headers["Content-Type"] = f"application/x-amz-json-{version}"
        body = json.dumps({"__type": code, "message": message}).encode()
    elif protocol == "rest-json":
        headers["Content-Type"] = "application/json"
        headers["x-amzn-ErrorType"] = code
        body = json.dumps({"message": message, "Message": message}).encode()
    else:
        raise NotImplementedError(f"no error answers for the {protocol} protocol of {service}")
    # botocore reads headers by name, case-insensitively: a plain mapping is what moto passes too.
    return AWSResponse(request.url, status, headers, _RawBody(body))  # type: ignore[arg-type]


class _RawBody(io.BytesIO):
    """What botocore reads an answer's body from (urllib3's response: ``stream()``)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        contents = self.read()
        while contents:
            yield contents
            contents = self.read()


@dataclass(frozen=True)
class Call:
    """One call of the pipeline: `step` is the Lambda function that made it (for an Invoke, the one
    invoked), `execution` the name of the execution it ran for."""

    service: str
    operation: str
    step: str
    execution: str = field(default="", compare=False)


@dataclass(frozen=True)
class Injected:
    call: Call
    kind: FaultKind
    # The error answered, and its HTTP status (empty and 0 for a timeout).
    code: str
    status: int = 0


@dataclass
class _Targeted:
    service: str
    operation: str
    kind: FaultKind
    remaining: int
    step: str | None
    execution: str | None


@dataclass
class _StepContext:
    """The Lambda invocation a thread is running: the step's function, and the operations already
    faulted in this step (shared by every invocation of the same payload, so a retry of the step
    meets the faults its first invocation did not get to)."""

    function: str
    execution: str
    faulted: set[tuple[str, str]] = field(default_factory=set)


class FaultInjector:
    """Installs itself in front of moto for the pipeline's calls; see the module's docstring."""

    def __init__(self, mwaa_emulator: MwaaEmulator | None = None, *, timeout_seconds: float = 1.0) -> None:
        self.mwaa_emulator = mwaa_emulator
        # How late the emulator answers a timed-out MWAA call: later than the client waits.
        self.mwaa_delay_seconds = timeout_seconds + 1.0
        self.calls: list[Call] = []
        self.injected: list[Injected] = []
        self._targeted: list[_Targeted] = []
        self._every_step: FaultKind | None = None
        self._every_step_services: frozenset[str] | None = None
        self._steps: dict[str, _StepContext] = {}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._exit = ExitStack()

    # ---- what to inject

    def inject(
        self,
        service: str,
        operation: str,
        kind: FaultKind,
        *,
        times: int = 1,
        step: str | None = None,
        execution: str | None = None,
    ) -> None:
        """The next `times` pipeline calls of `operation` (made by `step` for the execution named
        `execution`, if given) get `kind`. `service` is botocore's service id (s3, iam,
        cloudwatch-logs, sfn, lambda, mwaa); the MWAA CLI endpoint is service "mwaa", operation "Cli"."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._targeted.append(_Targeted(service, operation, kind, times, step, execution))

    def every_step(self, kind: FaultKind, *, services: frozenset[str] | None = None) -> None:
        """A transient fault everywhere, once per step: in each step (a distinct payload Step Functions
        invokes a function with) the Invoke and the first call of each operation fail once (the CLI:
        the first request after a CLI token). A retry of the step meets only the faults its earlier
        invocations did not get to, so each step ends; `services` limits the faults to those."""
        if not kind.transient:
            raise ValueError("every_step injects transient faults only: a permanent one ends the run")
        self._every_step = kind
        self._every_step_services = services

    @contextmanager
    def as_step(self, function: str, execution: str = "") -> Iterator[None]:
        """The calls this thread makes inside the block count as the pipeline's, made by `function`
        (for a handler a test calls directly rather than through Step Functions)."""
        previous = getattr(self._local, "step", None)
        self._local.step = _StepContext(function, execution)
        try:
            yield
        finally:
            self._local.step = previous

    # ---- reading what happened

    def injected_by_call(self) -> Counter[tuple[str, str]]:
        return Counter((item.call.service, item.call.operation) for item in self.injected)

    def distinct_calls(self) -> set[tuple[str, str]]:
        return {(call.service, call.operation) for call in self.calls}

    # ---- installation

    def __enter__(self) -> Self:
        injector = self
        original = BotocoreStubber.__call__

        def intercept(
            stubber: BotocoreStubber, event_name: str, request: AWSPreparedRequest, **kwargs: Any
        ) -> AWSResponse | None:
            return injector._before_send(original, stubber, event_name, request, **kwargs)

        self._exit.enter_context(mock.patch.object(BotocoreStubber, "__call__", intercept))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._exit.close()

    # ---- the hook

    def _before_send(
        self,
        original: Any,
        stubber: BotocoreStubber,
        event_name: str,
        request: AWSPreparedRequest,
        **kwargs: Any,
    ) -> AWSResponse | None:
        _, service, operation = event_name.split(".", 2)
        if (service, operation) == ("lambda", "Invoke"):
            return self._invoke(original, stubber, event_name, request, **kwargs)
        context: _StepContext | None = getattr(self._local, "step", None)
        if context is None:  # not the pipeline's call
            result: AWSResponse | None = original(stubber, event_name, request, **kwargs)
            return result
        call = Call(service, operation, context.function, context.execution)
        with self._lock:
            self.calls.append(call)
        kind = self._fault_for(call, context)
        if service == "mwaa":
            # The emulator answers; a CLI token is taken right before the step's first CLI request.
            if kind is not None:
                self._arm_emulator(call, kind)
            if operation == "CreateCliToken":
                cli_call = Call("mwaa", CLI, context.function, context.execution)
                with self._lock:
                    self.calls.append(cli_call)
                cli_kind = self._fault_for(cli_call, context)
                if cli_kind is not None:
                    self._arm_emulator(cli_call, cli_kind)
            result = original(stubber, event_name, request, **kwargs)
            return result
        if kind is None:
            result = original(stubber, event_name, request, **kwargs)
            return result
        if kind is FaultKind.TIMEOUT:
            original(stubber, event_name, request, **kwargs)
            self._record(call, kind, "")
            raise ReadTimeoutError(endpoint_url=request.url, error="injected: the answer was lost")
        code, status = error_for(service, kind)
        self._record(call, kind, code, status)
        return error_response(
            service, request, code=code, status=status, message=f"{code} injected by the test"
        )

    def _invoke(
        self,
        original: Any,
        stubber: BotocoreStubber,
        event_name: str,
        request: AWSPreparedRequest,
        **kwargs: Any,
    ) -> AWSResponse | None:
        """Step Functions invoking a function: the step's context is set while the handler runs."""
        function = _function_name(request.url)
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        digest = hashlib.sha256(function.encode() + b"\0" + body).hexdigest()
        execution = _execution_name(body)
        call = Call("lambda", "Invoke", function, execution)
        with self._lock:
            step = self._steps.setdefault(digest, _StepContext(function, execution))
            self.calls.append(call)
        kind = self._fault_for(call, step)
        if kind is not None and kind is not FaultKind.TIMEOUT:
            code, status = error_for("lambda", kind)
            self._record(call, kind, code, status)
            return error_response(
                "lambda", request, code=code, status=status, message=f"{code} injected by the test"
            )
        previous = getattr(self._local, "step", None)
        self._local.step = step
        try:
            result: AWSResponse | None = original(stubber, event_name, request, **kwargs)
        finally:
            self._local.step = previous
        if kind is FaultKind.TIMEOUT:
            code, status = _LOST_INVOKE
            self._record(call, kind, code, status)
            return error_response(
                "lambda", request, code=code, status=status, message="the Invoke answer was lost"
            )
        return result

    def _fault_for(self, call: Call, step: _StepContext) -> FaultKind | None:
        with self._lock:
            for target in self._targeted:
                if (
                    target.remaining > 0
                    and (target.service, target.operation) == (call.service, call.operation)
                    and target.step in {None, call.step}
                    and target.execution in {None, call.execution}
                ):
                    target.remaining -= 1
                    return target.kind
            kind = self._every_step
            if kind is None:
                return None
            if self._every_step_services is not None and call.service not in self._every_step_services:
                return None
            key = (call.service, call.operation)
            if key in step.faulted:
                return None
            step.faulted.add(key)
            return kind

    def _arm_emulator(self, call: Call, kind: FaultKind) -> None:
        if self.mwaa_emulator is None:
            raise RuntimeError("an MWAA fault needs the MWAA emulator")
        if kind is FaultKind.TIMEOUT:
            self.mwaa_emulator.inject_delay(call.operation, self.mwaa_delay_seconds)
            self._record(call, kind, "")
            return
        code, status = error_for("mwaa", kind)
        self.mwaa_emulator.inject_fault(call.operation, code, status=status)
        self._record(call, kind, code, status)

    def _record(self, call: Call, kind: FaultKind, code: str, status: int = 0) -> None:
        with self._lock:
            self.injected.append(Injected(call, kind, code, status))


def _execution_name(payload: bytes) -> str:
    """The name of the execution a step payload is for (its executionId's last part)."""
    try:
        execution_id = json.loads(payload).get("executionId", "")
    except (ValueError, AttributeError):
        return ""
    return str(execution_id).rsplit(":", 1)[-1]


def _function_name(url: str) -> str:
    """/2015-03-31/functions/{name or ARN}/invocations -> the function's name."""
    path = unquote(urlsplit(url).path)
    name = path.split("/functions/", 1)[-1].rsplit("/invocations", 1)[0]
    return name.rsplit(":function:", 1)[-1].split(":", 1)[0]


@contextmanager
def short_client_timeouts(read_seconds: float) -> Iterator[None]:
    """The pipeline's clients (botocore's, each of its configurations, and the CLI's urllib3 pool)
    wait `read_seconds` for an answer instead of their production timeouts, so an emulator that
    answers late times them out quickly. Clients are made anew inside the block."""
    short = Config(read_timeout=read_seconds, connect_timeout=read_seconds)
    short_http = functools.partial(
        airflow_cli.default_http, read_timeout=read_seconds, connect_timeout=read_seconds
    )
    with ExitStack() as patches:
        for name, value in vars(clients).items():
            if isinstance(value, Config):
                patches.enter_context(mock.patch.object(clients, name, value.merge(short)))
        patches.enter_context(mock.patch.object(airflow_cli, "default_http", short_http))
        clients.reset()
        try:
            yield
        finally:
            clients.reset()


class _InstantSleep:
    """Stands in for the time module in botocore's endpoint: records each retry delay, sleeps none."""

    def __init__(self, sleeps: list[float]) -> None:
        self.sleeps = sleeps

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@contextmanager
def instant_botocore_retries(sleeps: list[float] | None = None) -> Iterator[list[float]]:
    """botocore's retry backoff recorded instead of slept (its retries still happen), and the client
    side rate limiter of its adaptive mode never waiting."""
    recorded = sleeps if sleeps is not None else []
    with (
        mock.patch.object(botocore.endpoint, "time", _InstantSleep(recorded)),
        mock.patch.object(botocore.retries.bucket.TokenBucket, "_sleep_amount", return_value=0),
    ):
        yield recorded
