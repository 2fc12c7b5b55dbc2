"""Run the project's Lambda handlers in this process, in place of moto's Docker runner.

moto's Step Functions invokes each Task's function through moto's Lambda; there, the function's
code is this repository's handler, imported and called the way the Lambda runtime calls it:
an exception becomes a FunctionError payload with errorType, errorMessage and stackTrace,
which is what Step Functions' Retry and Catch match on.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

from moto.awslambda.models import LambdaFunction

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"

Handler = Callable[[dict[str, Any], Any], Any]

# Who makes the AWS calls of this thread: the function being invoked (its logical id), or an
# environment's execution role while a DAG runs (local_stack). The IAM evaluation tier (tests/iam)
# attributes each call to it and evaluates the call against that principal's policy.
_principal: ContextVar[str | None] = ContextVar("mwaa_migrate_principal", default=None)


def current_principal() -> str | None:
    return _principal.get()


@contextmanager
def acting_as(principal: str) -> Iterator[None]:
    token = _principal.set(principal)
    try:
        yield
    finally:
        _principal.reset(token)


@contextmanager
def as_the_service() -> Iterator[None]:
    """Calls MWAA makes for itself (syncing an environment's DAG folder): their rights are the
    environment's own policies, neither a function's nor the migration's grants."""
    token = _principal.set(None)
    try:
        yield
    finally:
        _principal.reset(token)


def as_function(function_name: str, handler: Handler) -> Handler:
    """The handler, making its AWS calls as `function_name` however a test calls it."""

    def handle(event: dict[str, Any], context: Any) -> Any:
        with acting_as(function_name):
            return handler(event, context)

    return handle


def function_folders() -> list[str]:
    """functions/<folder>/app.py, in a stable order."""
    return sorted(path.parent.name for path in FUNCTIONS_DIR.glob("*/app.py"))


def logical_id(folder: str) -> str:
    """clone_environment -> CloneEnvironmentFunction (the template's name for it)."""
    return "".join(part.capitalize() for part in folder.split("_")) + "Function"


def load_handler(folder: str) -> ModuleType:
    """functions/<folder>/app.py as module functions.<folder>.app, found by its path so the
    repository root need not be on sys.path."""
    name = f"functions.{folder}.app"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FUNCTIONS_DIR / folder / "app.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"no handler module at functions/{folder}/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class FakeLambdaContext:
    """The parts of the runtime's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    function_version: str = "$LATEST"
    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class InvocationRecord:
    function: str
    event: dict[str, Any]
    error_type: str | None


class InProcessLambdas:
    """Handlers by function name, and a record of every invocation (tests read it)."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self.handlers = handlers
        self.invocations: list[InvocationRecord] = []

    def invoke(self, function_name: str, event: dict[str, Any]) -> tuple[str, bool, str]:
        handler = self.handlers[function_name]
        context = FakeLambdaContext(function_name=function_name)
        try:
            with acting_as(function_name):
                result = handler(event, context)
        except Exception as error:  # the Lambda runtime's own contract: any exception is a FunctionError
            self.invocations.append(InvocationRecord(function_name, event, type(error).__name__))
            payload = {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "requestId": context.aws_request_id,
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            return json.dumps(payload), True, ""
        self.invocations.append(InvocationRecord(function_name, event, None))
        return json.dumps(result), False, ""

    def count(self, function_name: str) -> int:
        return sum(1 for record in self.invocations if record.function == function_name)


def placeholder_zip() -> bytes:
    """moto stores a deployment package; the code that runs is the repository's."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "app.py", "def lambda_handler(event, context):\n    raise RuntimeError('runs in process')\n"
        )
    return buffer.getvalue()


@contextmanager
def run_lambdas_in_process(lambdas: InProcessLambdas) -> Iterator[InProcessLambdas]:
    def invoke(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        body = event if isinstance(event, dict) else json.loads(event or "{}")
        return lambdas.invoke(function.function_name, body)

    with mock.patch.object(LambdaFunction, "_invoke_lambda", invoke):
        yield lambdas
