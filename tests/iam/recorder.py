"""Records every AWS call the pipeline makes in the emulation, as the principal that makes it.

Installed once (`install()`, from tests/conftest.py) as a botocore built-in handler, as moto's own
stubber is, so every client made afterwards carries it:
- `before-parameter-build` keeps the call's API parameters (what IAM's condition keys come from);
- `before-call` attributes the call and maps it to IAM requests (tests/iam/actions.py);
- `after-call` adds, for an S3 read answered 404, the s3:ListBucket that S3 needs to answer 404
  rather than 403 (what the code relies on to tell a missing object from a denied one).

Attribution: a call belongs to `emulation.lambdas.current_principal()` - the function whose handler
runs (InProcessLambdas.invoke, and the handlers a LocalStack holds when a test calls one itself),
or an environment's execution role while the export/import DAG runs (local_stack._AsExecutionRole)
- or, for the clients moto's Step Functions makes with its fixed
credentials ("ak"), to the state machine's role (its Lambda invocations, the Distributed Map's
ItemReader and ResultWriter). Thread pools pass the principal on to their workers (the layer's own
pools, s3transfer's). Calls with no principal (a test's own, the emulator's) are not recorded.

For an execution role the policies are those in force at the time of the call: the role's inline
policies in moto that carry the pipeline's prefix (the temporary grants GrantPermissions puts).
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from botocore.handlers import BUILTIN_HANDLERS
from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends
from moto.s3.exceptions import MissingBucket, MissingKey
from moto.s3.models import s3_backends

from emulation.lambdas import current_principal
from emulation.mwaa import MwaaEmulator
from tests.iam.actions import UnmappedCall, Where, iam_requests
from tests.iam.evaluator import Request
from tests.iam.template import STATE_MACHINE, StackValues, template_parameter_variables

_PARAMS = "mwaa_migrate_iam_params"
_CALL = "mwaa_migrate_iam_call"
# The access key of the clients moto's Step Functions makes (moto.stepfunctions...boto_client_for).
_STATE_MACHINE_ACCESS_KEY = "ak"
_DEFAULT_ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Call:
    principal: str
    operation: str  # service.Operation, as botocore names it
    requests: tuple[Request, ...]
    stack: StackValues
    # An execution role's temporary inline policies in force at the call: (name, document).
    role_policies: tuple[tuple[str, Mapping[str, Any]], ...] | None = None
    # The ones a function had removed from the role before the call: a call they alone allow is a
    # DAG run that outlived its migration's clean-up (IAM refuses it, as it should).
    revoked_policies: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    # Why the call could not be mapped to IAM requests (the tier fails on it).
    problem: str | None = None


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: list[Call] = field(default_factory=list)
    sinks: list[list[Call]] = field(default_factory=list)
    # The running MWAA emulators by endpoint (the tags of their environments).
    emulators: weakref.WeakValueDictionary[str, MwaaEmulator] = field(
        default_factory=weakref.WeakValueDictionary
    )
    # Per emulated IAM (moto's backend): the temporary policies functions put, and those they removed.
    granted: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Mapping[str, Any]]] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    revoked: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Mapping[str, Any]]] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    installed: bool = False


_state = _State()


# ---------------------------------------------------------------- what a request needs from AWS's state
class _MotoWorld:
    def __init__(self, account_id: str, partition: str, mwaa_endpoint: str | None) -> None:
        self.account_id = account_id
        self.partition = partition
        self.mwaa_endpoint = mwaa_endpoint

    def role_arn(self, role_name: str) -> str:
        try:
            return str(iam_backends[self.account_id][self.partition].get_role(role_name).arn)
        except NotFoundException:  # the call fails on its own; IAM authorises it first
            return f"arn:{self.partition}:iam::{self.account_id}:role/{role_name}"

    def environment_tags(self, name: str) -> Mapping[str, str] | None:
        emulator = _state.emulators.get(self.mwaa_endpoint or "")
        if emulator is None:
            return None
        try:
            environment = emulator.environment(name)
        except KeyError:
            return None
        return dict(environment.description.get("Tags", {}))

    def _s3(self) -> Any:
        return s3_backends[self.account_id][self.partition]

    def object_kms_key(self, bucket: str, key: str, version_id: str | None) -> tuple[str, bool] | None:
        try:
            found = self._s3().get_object(bucket, key, version_id)
        except (MissingBucket, MissingKey):  # the call fails on its own
            return None
        if found is None or getattr(found, "encryption", None) != "aws:kms" or not found.kms_key_id:
            return None
        # moto keeps the request's header value ("true"/"false") or the bucket's default.
        return str(found.kms_key_id), str(found.bucket_key_enabled).lower() == "true"

    def bucket_encryption(self, bucket: str) -> tuple[str | None, bool]:
        try:
            encryption = self._s3().get_bucket(bucket).encryption
        except MissingBucket:  # the call fails on its own
            return None, False
        rule = (encryption or {}).get("Rule", {})
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        bucket_key = str(rule.get("BucketKeyEnabled", "")).lower() == "true"
        if default.get("SSEAlgorithm") != "aws:kms" or not default.get("KMSMasterKeyID"):
            return None, bucket_key
        return str(default["KMSMasterKeyID"]), bucket_key


def _stack_values(region: str) -> StackValues:
    environment = os.environ
    state_machine = environment.get("STATE_MACHINE_ARN", "")
    name = state_machine.rsplit(":", 1)[-1].removesuffix("-migration") if state_machine else "mwaa-migrate"
    variables = template_parameter_variables()
    parameters = tuple(
        sorted(
            (parameter, environment[variable])
            for variable, parameter in variables.items()
            if variable in environment
        )
    )
    return StackValues(
        region=region,
        account_id=environment.get("MOTO_ACCOUNT_ID", _DEFAULT_ACCOUNT),
        stack_name=name,
        bucket=environment.get("MIGRATION_BUCKET", ""),
        key_arn=environment.get("MIGRATION_KEY_ARN", ""),
        parameters=parameters,
        sealing_key_arn=environment.get("SEALING_KEY_ARN", ""),
    )


def _role_policies(
    role_arn: str, account_id: str, partition: str
) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    prefix = os.environ.get("POLICY_NAME_PREFIX", "mwaa-migrate") + "-"
    try:
        role = iam_backends[account_id][partition].get_role(role_arn.rsplit("/", 1)[-1])
    except NotFoundException:  # a role that does not exist holds no policy
        return ()
    return tuple(
        (name, json.loads(document) if isinstance(document, str) else document)
        for name, document in sorted(role.policies.items())
        if name.startswith(prefix)
    )


# ---------------------------------------------------------------- botocore handlers
def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context[_PARAMS] = dict(params)


def _principal(request_signer: Any) -> str | None:
    principal = current_principal()
    if principal is not None:
        return principal
    credentials = getattr(request_signer, "_credentials", None)
    if credentials is not None and getattr(credentials, "access_key", None) == _STATE_MACHINE_ACCESS_KEY:
        return STATE_MACHINE
    return None


def _record(
    model: Any, params: dict[str, Any], request_signer: Any, context: dict[str, Any], **_: Any
) -> None:
    principal = _principal(request_signer)
    if principal is None:
        return
    operation = f"{model.service_model.service_name}.{model.name}"
    try:
        call = _call(principal, operation, model, params, context)
    except Exception as error:  # inside botocore's call: recorded as a failure of the tier, never raised
        region = str(context.get("client_region") or "")
        stack = StackValues(region, "", "", "", "")
        call = Call(principal, operation, (), stack, problem=f"{operation}: {error!r}")
    context[_CALL] = call
    _append(call)


def _call(
    principal: str, operation: str, model: Any, params: dict[str, Any], context: dict[str, Any]
) -> Call:
    region = str(context.get("client_region") or os.environ.get("AWS_REGION", "us-east-1"))
    stack = _stack_values(region)
    where = Where(stack.partition, region, stack.account_id)
    url = urlsplit(str(params.get("url", "")))
    world = _MotoWorld(stack.account_id, stack.partition, f"{url.scheme}://{url.netloc}")
    problem = None
    requests: tuple[Request, ...] = ()
    try:
        requests = tuple(
            iam_requests(
                str(model.service_model.signing_name), model.name, context.get(_PARAMS, {}), where, world
            )
        )
    except (UnmappedCall, KeyError) as error:
        problem = f"no IAM mapping for {operation}: {error} (tests/iam/actions.py)"
    backend = iam_backends[stack.account_id][stack.partition]
    if principal.startswith("arn:"):
        role = principal.rsplit("/", 1)[-1]
        revoked = tuple(
            (name, document)
            for (holder, name), document in sorted(_state.revoked.get(backend, {}).items())
            if holder == role
        )
        policies = _role_policies(principal, stack.account_id, stack.partition)
        return Call(
            principal, operation, requests, stack, policies, revoked_policies=revoked, problem=problem
        )
    _follow_grants(backend, operation, context.get(_PARAMS, {}))
    return Call(principal, operation, requests, stack, problem=problem)


def _follow_grants(backend: Any, operation: str, params: Mapping[str, Any]) -> None:
    """Remember the policies functions put on and remove from roles, in this emulated IAM."""
    if operation not in {"iam.PutRolePolicy", "iam.DeleteRolePolicy"}:
        return
    key = (str(params["RoleName"]), str(params["PolicyName"]))
    with _state.lock:
        granted = _state.granted.setdefault(backend, {})
        revoked = _state.revoked.setdefault(backend, {})
        if operation == "iam.PutRolePolicy":
            granted[key] = json.loads(str(params["PolicyDocument"]))
            revoked.pop(key, None)
        elif key in granted:
            revoked[key] = granted.pop(key)


def _append(call: Call) -> None:
    with _state.lock:
        _state.pending.append(call)
        for sink in _state.sinks:
            sink.append(call)


def _missing_object(http_response: Any, context: dict[str, Any], **_: Any) -> None:
    """S3 answers a read of a missing object with 404 only to a caller allowed s3:ListBucket on the
    bucket, with 403 to any other (S3 user guide, GetObject/HeadObject "Permissions"): the 404 the
    code saw in the emulation needs that permission too."""
    call = context.get(_CALL)
    if call is None or http_response is None or http_response.status_code != 404:
        return
    if call.operation not in {"s3.GetObject", "s3.HeadObject"} or not call.requests:
        return
    missing = call.requests[0].resource
    listing = Request("s3:ListBucket", missing.split("/", 1)[0])
    _append(replace(call, operation=f"{call.operation} of missing {missing}", requests=(listing,)))


# ------------------------------------------------------- the principal follows work into thread pools
_original_submit = ThreadPoolExecutor.submit


def _submit(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
    if current_principal() is None:
        return _original_submit(self, fn, *args, **kwargs)
    context = contextvars.copy_context()
    return _original_submit(self, context.run, fn, *args, **kwargs)


_original_start = MwaaEmulator.start


def _start(self: MwaaEmulator) -> str:
    endpoint = _original_start(self)
    with _state.lock:
        _state.emulators[endpoint] = self
    return endpoint


def install() -> None:
    """Record from now on (idempotent). Sessions made afterwards carry the handlers."""
    if _state.installed:
        return
    BUILTIN_HANDLERS.append(("before-parameter-build", _keep_params))
    BUILTIN_HANDLERS.append(("before-call", _record))
    BUILTIN_HANDLERS.append(("after-call.s3", _missing_object))
    ThreadPoolExecutor.submit = _submit  # type: ignore[method-assign,assignment]
    MwaaEmulator.start = _start  # type: ignore[method-assign]
    _state.installed = True


def drain() -> list[Call]:
    """The calls recorded since the last drain."""
    with _state.lock:
        calls, _state.pending = _state.pending, []
    return calls


@contextmanager
def recording() -> Iterator[list[Call]]:
    """The calls made while inside (they are drained as usual too)."""
    sink: list[Call] = []
    with _state.lock:
        _state.sinks.append(sink)
    try:
        yield sink
    finally:
        with _state.lock:
            _state.sinks.remove(sink)
