"""How the pipeline reaches an environment's Airflow, and which way the plan chooses.

Three transports do the same few things (list the DAGs and whether each is paused, list import errors,
pause or unpause a DAG, trigger a run with a conf, read a run's state and its task instances' states):

* ``cli``: the web server's CLI endpoint (airflow_cli.py), a CLI token from CreateCliToken, then an
  HTTPS POST to the web server itself. A ``PRIVATE_ONLY`` web server answers only inside its VPC, so
  the functions must run there (the stack's WebserverSubnetIds and WebserverSecurityGroupIds).
* ``rest_api``: Airflow's stable REST API through MWAA's ``InvokeRestApi`` (Airflow 2.4.3+), an
  IAM-authorised call to MWAA's own API (host ``env.``): no token, no route to the web server
  needed. Its limits shape the calls: ``Path`` at most 64 characters (a run's own path rarely fits,
  so runs and task instances are found through the list endpoints), a 10 s timeout, 6 MB answers
  (pages of 100). The call is mapped to the Airflow role of the caller's IAM policy's resource
  ``arn:aws:airflow:REGION:ACCOUNT:role/ENVIRONMENT/ROLE`` (REST_API_AIRFLOW_ROLE).
* ``airflow_api``: a self-managed Airflow's stable REST API, called directly over HTTPS with the
  credentials of a Secrets Manager secret (AirflowApiTransport); the functions need a route to its
  web server (the same VPC settings).

``rest_api`` and ``airflow_api`` share every operation (StableRestApi) and differ only in how a call
travels.

The plan chooses per environment (choose_route) and says why; every function that talks to Airflow
opens the transport the plan chose (open_transport).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import quote, urlencode

import urllib3
from botocore.exceptions import ClientError

from mwaa_migrate.environment.airflow_cli import AirflowCli
from mwaa_migrate.environment.versions import AirflowVersion
from mwaa_migrate.errors import (
    AwsAccessDenied,
    InvalidMigrationRequest,
    MigrationConflict,
    RunByHand,
    TransientAwsError,
    from_client_error,
)
from mwaa_migrate.models import AirflowApi, WebserverRoute, WebserverRoutes, WebserverTransportKind
from mwaa_migrate.redaction import redact_text

if TYPE_CHECKING:
    from mypy_boto3_mwaa import MWAAClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

# InvokeRestApi serves environments on Airflow 2.4.3 and later (MWAA user guide, "Using the Apache
# Airflow REST API"); older ones answer "Update your environment to use InvokeRestApi".
REST_API_MIN_VERSION = AirflowVersion(2, 4, 3)
# The Airflow role the functions' InvokeRestApi calls act as: the least of Airflow's default roles
# that may pause, unpause and trigger DAGs and read runs, task instances and import errors (Viewer
# may not change a DAG, Op and Admin may also change connections, pools and variables).
REST_API_AIRFLOW_ROLE = "User"
# botocore's RestApiPath: 1 to 64 characters.
MAX_PATH = 64
# Airflow's REST API answers at most 100 items a page (api.maximum_page_limit): well under 6 MB.
PAGE_LIMIT = 100
# A direct call to a self-managed Airflow's web server: as long as InvokeRestApi lets Airflow take.
DIRECT_TIMEOUT_SECONDS = 10.0
_TAIL = 500


# --------------------------------------------------------------------------------------------------
# The plan's choice


def choose_route(
    *,
    field: str,
    environment_name: str,
    access_mode: str,
    airflow_version: str,
    functions_in_vpc: bool | None,
) -> WebserverRoute:
    """How the functions reach one environment's Airflow, and why; InvalidMigrationRequest when
    neither way can (before anything changes), naming what to set.

    `functions_in_vpc`: whether the stack's functions that talk to Airflow run in a VPC (the stack's
    WebserverSubnetIds); None when the stack does not say (not deployed from template.yaml: the local
    emulation, whose web server answers on loopback like one in the functions' own network)."""
    if access_mode == "PUBLIC_ONLY":
        return WebserverRoute(
            transport="cli",
            reason=f"{environment_name}'s web server is PUBLIC_ONLY: its CLI endpoint answers from anywhere",
        )
    if functions_in_vpc:
        return WebserverRoute(
            transport="cli",
            reason=(
                f"{environment_name}'s web server is {access_mode} and the stack's functions run in a VPC "
                "(WebserverSubnetIds): they reach its CLI endpoint through the environment's VPC endpoint"
            ),
        )
    if functions_in_vpc is None:
        return WebserverRoute(
            transport="cli",
            reason=(
                f"{environment_name}'s web server is {access_mode}; the functions' network is not set "
                "(not a stack deployed from template.yaml): its CLI endpoint, as reachable here"
            ),
        )
    if AirflowVersion.parse(airflow_version) >= REST_API_MIN_VERSION:
        return WebserverRoute(
            transport="rest_api",
            reason=(
                f"{environment_name}'s web server is {access_mode} and the stack's functions run outside "
                f"any VPC: Airflow's REST API through MWAA's InvokeRestApi (Airflow {airflow_version} "
                f">= {REST_API_MIN_VERSION}), as Airflow role {REST_API_AIRFLOW_ROLE}"
            ),
        )
    raise InvalidMigrationRequest(
        f"{field}: {environment_name}'s web server is {access_mode}, the stack's functions run outside any "
        f"VPC, and InvokeRestApi needs Airflow {REST_API_MIN_VERSION} or later ({environment_name} runs "
        f"{airflow_version}): deploy the stack with WebserverSubnetIds and WebserverSecurityGroupIds "
        "(subnets that reach the environment's web server VPC endpoint; README, Private web servers), "
        f"or upgrade {environment_name} to Airflow {REST_API_MIN_VERSION} or later first"
    )


def choose_routes(
    source: dict[str, Any], create_request: dict[str, Any], *, functions_in_vpc: bool | None
) -> WebserverRoutes:
    """The plan's routes: the source as GetEnvironment describes it, the target as it will be
    created (MWAA's default access mode is PRIVATE_ONLY)."""

    def route(field: str, environment: dict[str, Any]) -> WebserverRoute:
        return choose_route(
            field=field,
            environment_name=str(environment["Name"]),
            access_mode=str(environment.get("WebserverAccessMode") or "PRIVATE_ONLY"),
            airflow_version=str(environment["AirflowVersion"]),
            functions_in_vpc=functions_in_vpc,
        )

    return WebserverRoutes(
        source=route("sourceEnvironmentName", source), target=route("targetEnvironmentName", create_request)
    )


# --------------------------------------------------------------------------------------------------
# The interface


@dataclass(frozen=True)
class DagImportError:
    filepath: str
    error: str


@runtime_checkable
class WebserverTransport(Protocol):
    """What the pipeline asks of an environment's Airflow. Errors are the project's (errors.py)."""

    environment_name: str
    kind: WebserverTransportKind

    def dags(self) -> dict[str, bool]:
        """Every active DAG the environment knows, and whether it is paused."""
        ...

    def import_errors(self) -> list[DagImportError]: ...

    def set_paused(self, dag_id: str, *, paused: bool) -> None: ...

    def trigger(self, dag_id: str, *, run_id: str, conf: dict[str, Any]) -> None:
        """Start a run with this id and conf; MigrationConflict if none started."""
        ...

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        """The run's state (queued, running, success, failed, ...), None if there is no such run."""
        ...

    def task_states(self, dag_id: str, run_id: str) -> list[tuple[str, str]]:
        """(task_id, state) of the run's task instances."""
        ...


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in {"true", "1", "yes"}


class CliTransport:
    """The web server's CLI endpoint (airflow_cli.AirflowCli)."""

    kind: WebserverTransportKind = "cli"

    def __init__(self, cli: AirflowCli) -> None:
        self.cli = cli
        self.environment_name = str(getattr(cli, "environment_name", ""))

    def __repr__(self) -> str:
        return f"CliTransport({self.environment_name!r})"

    def dags(self) -> dict[str, bool]:
        # `paused` up to Airflow 2.8, `is_paused` from 2.9 on.
        listed = self.cli.run_json("dags", "list", "-o", "json")
        return {
            str(dag["dag_id"]): _truthy(dag.get("is_paused", dag.get("paused")))
            for dag in (listed if isinstance(listed, list) else [])
            if isinstance(dag, dict) and dag.get("dag_id")
        }

    def import_errors(self) -> list[DagImportError]:
        listed = self.cli.run_json("dags", "list-import-errors", "-o", "json")
        return [
            DagImportError(str(error.get("filepath", "")), str(error.get("error", "")))
            for error in (listed if isinstance(listed, list) else [])
            if isinstance(error, dict)
        ]

    def set_paused(self, dag_id: str, *, paused: bool) -> None:
        self.cli.run("dags", "pause" if paused else "unpause", dag_id)

    def trigger(self, dag_id: str, *, run_id: str, conf: dict[str, Any]) -> None:
        # Values glued to their option, so none can be read as a flag of its own.
        output = self.cli.run("dags", "trigger", dag_id, f"--run-id={run_id}", f"--conf={json.dumps(conf)}")
        if self.run_state(dag_id, run_id) is None:
            raise MigrationConflict(
                f"triggering {dag_id} started no run: {redact_text(output.stderr.strip()[-_TAIL:])}"
            )

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        runs = self.cli.run_json("dags", "list-runs", "-d", dag_id, "-o", "json")
        for run in runs if isinstance(runs, list) else []:
            if isinstance(run, dict) and run.get("run_id") == run_id:
                return str(run.get("state"))
        return None

    def task_states(self, dag_id: str, run_id: str) -> list[tuple[str, str]]:
        tasks = self.cli.run_json("tasks", "states-for-dag-run", dag_id, run_id, "-o", "json")
        return [
            (str(task.get("task_id")), str(task.get("state")))
            for task in (tasks if isinstance(tasks, list) else [])
            if isinstance(task, dict)
        ]


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any


class StableRestApi:
    """The operations on Airflow's stable REST API, whichever way its calls travel (`_send`)."""

    environment_name: str
    # The longest path a call may carry (InvokeRestApi's 64; a direct call has no such limit).
    max_path = MAX_PATH
    # What the caller acts as, for a refusal's message.
    acting_as = ""

    def __init__(self) -> None:
        self._airflow3: bool | None = None

    def _send(
        self, method: str, path: str, where: str, query: dict[str, Any] | None, body: dict[str, Any] | None
    ) -> _Answer:
        """One call; raises TransientAwsError when the call itself failed in a way worth retrying."""
        raise NotImplementedError

    # ---- the operations

    def dags(self) -> dict[str, bool]:
        return {
            str(dag["dag_id"]): _truthy(dag.get("is_paused"))
            for dag in self._pages("/dags", "dags", "listing the DAGs")
            if isinstance(dag, dict) and dag.get("dag_id") and dag.get("is_active", True) is not False
        }

    def import_errors(self) -> list[DagImportError]:
        return [
            DagImportError(str(error.get("filename", "")), str(error.get("stack_trace", "")))
            for error in self._pages("/importErrors", "import_errors", "listing import errors")
            if isinstance(error, dict)
        ]

    def set_paused(self, dag_id: str, *, paused: bool) -> None:
        doing = f"{'pausing' if paused else 'unpausing'} {dag_id}"
        path = f"/dags/{dag_id}"
        body = {"is_paused": paused}
        if len(path) <= self.max_path:
            answer = self._call("PATCH", path, doing, query={"update_mask": ["is_paused"]}, body=body)
            if answer.status == 404:
                raise MigrationConflict(f"{doing} on {self.environment_name}: no such DAG")
            return
        # A DAG id too long for the path: PATCH /dags?dag_id_pattern= (Airflow 2.3+) matches every DAG
        # whose id contains the pattern, so it is used only when that is this DAG alone.
        known = self.dags()
        matches = [other for other in known if dag_id.lower() in other.lower()]
        if matches != [dag_id]:
            others = ", ".join(sorted(set(matches) - {dag_id})) or "none: the DAG is unknown"
            raise MigrationConflict(
                f"{doing} on {self.environment_name}: the DAG id is longer than InvokeRestApi's "
                f"{MAX_PATH}-character path allows and not the only DAG id that contains it (others: "
                f"{others}): change it in Airflow's UI, or run the stack's functions in the "
                "environment's VPC (the CLI endpoint)"
            )
        self._call(
            "PATCH",
            "/dags",
            doing,
            query={"dag_id_pattern": dag_id, "update_mask": ["is_paused"]},
            body=body,
        )

    def trigger(self, dag_id: str, *, run_id: str, conf: dict[str, Any]) -> None:
        body: dict[str, Any] = {"dag_run_id": run_id, "conf": conf}
        if self._is_airflow3():
            body["logical_date"] = None  # required (nullable) from Airflow 3's REST API on
        doing = f"triggering {dag_id}"
        answer = self._call("POST", f"/dags/{dag_id}/dagRuns", doing, body=body)
        if answer.status == 404:
            raise MigrationConflict(f"{doing} on {self.environment_name}: {_detail(answer.body)}")
        # 409: a run with this id exists already (a retried invocation): that run is the one.

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        path = f"/dags/{dag_id}/dagRuns/{run_id}"
        doing = f"reading run {run_id} of {dag_id}"
        if len(path) <= self.max_path:
            answer = self._call("GET", path, doing)
            if answer.status == 404:
                return None
            return str(answer.body.get("state")) if isinstance(answer.body, dict) else None
        # Too long for InvokeRestApi's path: the DAG's runs, page by page.
        for run in self._pages(f"/dags/{dag_id}/dagRuns", "dag_runs", doing):
            if isinstance(run, dict) and run.get("dag_run_id") == run_id:
                return str(run.get("state"))
        return None

    def task_states(self, dag_id: str, run_id: str) -> list[tuple[str, str]]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        doing = f"reading the task instances of run {run_id} of {dag_id}"
        if len(path) <= self.max_path:
            instances: Iterator[Any] = self._pages(path, "task_instances", doing)
        else:
            # The batch endpoint, filtered by DAG here and by run below.
            instances = self._batch_pages(
                "/dags/~/dagRuns/~/taskInstances/list", {"dag_ids": [dag_id]}, "task_instances", doing
            )
        return [
            (str(ti.get("task_id")), str(ti.get("state")))
            for ti in instances
            if isinstance(ti, dict) and ti.get("dag_run_id", run_id) == run_id
        ]

    # ---- the calls

    def _is_airflow3(self) -> bool:
        if self._airflow3 is None:
            answer = self._call("GET", "/version", "reading the Airflow version")
            version = str(answer.body.get("version", "")) if isinstance(answer.body, dict) else ""
            self._airflow3 = version.split(".", 1)[0].isdigit() and int(version.split(".", 1)[0]) >= 3
        return self._airflow3

    def _pages(self, path: str, key: str, doing: str) -> Iterator[Any]:
        offset = 0
        while True:
            answer = self._call("GET", path, doing, query={"limit": PAGE_LIMIT, "offset": offset})
            if answer.status == 404:
                raise MigrationConflict(f"{doing} on {self.environment_name}: {_detail(answer.body)}")
            items, total = _page(answer.body, key)
            yield from items
            offset += len(items)
            if not items or offset >= total:
                return

    def _batch_pages(self, path: str, body: dict[str, Any], key: str, doing: str) -> Iterator[Any]:
        offset = 0
        while True:
            page = {**body, "page_limit": PAGE_LIMIT, "page_offset": offset}
            answer = self._call("POST", path, doing, body=page)
            items, total = _page(answer.body, key)
            yield from items
            offset += len(items)
            if not items or offset >= total:
                return

    def _call(
        self,
        method: str,
        path: str,
        doing: str,
        *,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> _Answer:
        """One call. Answers 2xx, 404 and 409 (the caller decides what they mean); raises the
        project's error for every other answer."""
        if len(path) > self.max_path:
            raise ValueError(f"{path!r} is longer than the {self.max_path} characters a path may have")
        where = f"{doing} on {self.environment_name} ({self.route} {method} {path})"
        answer = self._send(method, path, where, query, body)
        status = answer.status
        if status == 429 or status >= 500:
            raise TransientAwsError(f"{where}: HTTP {status}: {_detail(answer.body)}")
        if status in {401, 403}:
            raise AwsAccessDenied(f"{where}: HTTP {status}: {_detail(answer.body)}{self.acting_as}")
        if status >= 400 and status not in {404, 409}:
            raise MigrationConflict(f"{where}: HTTP {status}: {_detail(answer.body)}")
        return answer

    route = ""


class RestApiTransport(StableRestApi):
    """Airflow's stable REST API through MWAA's InvokeRestApi (boto3's `mwaa` client, which retries
    throttling itself). No token: IAM authorises the call, so nothing secret is carried or logged."""

    kind: WebserverTransportKind = "rest_api"
    route = "InvokeRestApi"
    acting_as = f" (the functions' InvokeRestApi calls act as Airflow role {REST_API_AIRFLOW_ROLE})"

    def __init__(self, mwaa: MWAAClient, environment_name: str) -> None:
        super().__init__()
        self._mwaa = mwaa
        self.environment_name = environment_name

    def __repr__(self) -> str:
        return f"RestApiTransport({self.environment_name!r})"

    def _send(
        self, method: str, path: str, where: str, query: dict[str, Any] | None, body: dict[str, Any] | None
    ) -> _Answer:
        arguments: dict[str, Any] = {"Name": self.environment_name, "Path": path, "Method": method}
        if query:
            arguments["QueryParameters"] = query
        if body is not None:
            arguments["Body"] = body
        try:
            response = self._mwaa.invoke_rest_api(**arguments)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in {"RestApiClientException", "RestApiServerException"}:
                raise from_client_error(error, where) from None
            status = int(error.response.get("RestApiStatusCode") or 0)  # type: ignore[call-overload]
            answer = _Answer(status, error.response.get("RestApiResponse"))
            if code == "RestApiServerException":
                raise TransientAwsError(f"{where}: HTTP {status}: {_detail(answer.body)}") from None
            return answer
        return _Answer(int(response.get("RestApiStatusCode") or 200), response.get("RestApiResponse"))


class AirflowApiTransport(StableRestApi):
    """A self-managed Airflow's stable REST API, called directly over HTTPS (`base_url` ends with
    `/api/v1`), with the credentials of a Secrets Manager secret: `{"username", "password"}` (basic
    auth) or `{"token"}` (a bearer token). The credentials stay in this object: never in an event,
    a log line or a message (`__repr__` names only the URL)."""

    kind: WebserverTransportKind = "airflow_api"
    route = "REST API"
    max_path = 2000

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, Any],
        *,
        environment_name: str,
        timeout_seconds: float = DIRECT_TIMEOUT_SECONDS,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        super().__init__()
        if not base_url.startswith(("https://", "http://")):
            raise InvalidMigrationRequest(f"restApiUrl: {base_url!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.environment_name = environment_name
        self._headers = {"Accept": "application/json", **_authorization(credentials)}
        self._timeout = urllib3.Timeout(total=timeout_seconds)
        self._pool = pool or urllib3.PoolManager(retries=False)

    def __repr__(self) -> str:
        return f"AirflowApiTransport({self.base_url!r})"

    def _send(
        self, method: str, path: str, where: str, query: dict[str, Any] | None, body: dict[str, Any] | None
    ) -> _Answer:
        url = self.base_url + quote(path) + (f"?{urlencode(query, doseq=True)}" if query else "")
        headers = dict(self._headers)
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body).encode()
        try:
            response = self._pool.request(
                method, url, body=payload, headers=headers, timeout=self._timeout, redirect=False
            )
        except urllib3.exceptions.HTTPError as error:
            # Not reached, refused, timed out: the state's Retry tries again.
            raise TransientAwsError(
                f"{where}: {type(error).__name__}: {redact_text(str(error))[:_TAIL]}"
            ) from None
        try:
            answer_body = json.loads(response.data) if response.data else None
        except ValueError:
            answer_body = response.data.decode("utf-8", "replace")
        return _Answer(response.status, answer_body)


class HandsOnSource:
    """A self-managed Airflow run by hand (access mode hands_on): nothing reaches it. Every call is
    refused with the command its operator runs instead, so the way back after a failure records the
    exact steps left to a person rather than pretending it took them."""

    kind: WebserverTransportKind = "hands_on"

    def __init__(self, environment_name: str) -> None:
        self.environment_name = environment_name

    def __repr__(self) -> str:
        return f"HandsOnSource({self.environment_name!r})"

    def _by_hand(self, command: str) -> RunByHand:
        return RunByHand(
            f"{self.environment_name} is a self-managed Airflow run by hand (hands_on), which the pipeline "
            f"cannot reach: in it, run `{command}`"
        )

    def dags(self) -> dict[str, bool]:
        raise self._by_hand("airflow dags list")

    def import_errors(self) -> list[DagImportError]:
        raise self._by_hand("airflow dags list-import-errors")

    def set_paused(self, dag_id: str, *, paused: bool) -> None:
        raise self._by_hand(f"airflow dags {'pause' if paused else 'unpause'} {dag_id}")

    def trigger(self, dag_id: str, *, run_id: str, conf: dict[str, Any]) -> None:
        raise self._by_hand(f"airflow dags trigger {dag_id} --conf ... (mwaa-migrate hands-on)")

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        raise self._by_hand(f"airflow dags list-runs -d {dag_id}")

    def task_states(self, dag_id: str, run_id: str) -> list[tuple[str, str]]:
        raise self._by_hand(f"airflow tasks states-for-dag-run {dag_id} {run_id}")


def _authorization(credentials: Mapping[str, Any]) -> dict[str, str]:
    token = credentials.get("token")
    if isinstance(token, str) and token:
        return {"Authorization": f"Bearer {token}"}
    username, password = credentials.get("username"), credentials.get("password")
    if isinstance(username, str) and username and isinstance(password, str):
        return urllib3.make_headers(basic_auth=f"{username}:{password}")
    raise InvalidMigrationRequest(
        "credentialsSecretArn: the secret must be JSON with username and password, or with token"
    )


def read_credentials(secretsmanager: SecretsManagerClient, secret_arn: str) -> dict[str, Any]:
    """The self-managed Airflow's credentials from Secrets Manager (never returned to an event)."""
    try:
        text = secretsmanager.get_secret_value(SecretId=secret_arn).get("SecretString") or ""
    except ClientError as error:
        raise from_client_error(error, f"reading the Airflow credentials secret {secret_arn}") from None
    try:
        credentials = json.loads(text)
    except ValueError:
        credentials = None
    if not isinstance(credentials, dict):
        raise InvalidMigrationRequest(
            f"credentialsSecretArn: the secret {secret_arn} is not a JSON object "
            "(username and password, or token)"
        )
    return credentials


def _page(body: Any, key: str) -> tuple[list[Any], int]:
    if not isinstance(body, dict) or not isinstance(body.get(key), list):
        raise MigrationConflict(f"Airflow's REST API answered without {key!r}")
    items = list(body[key])
    total = body.get("total_entries")
    return items, int(total) if isinstance(total, int) else len(items)


def _detail(body: Any) -> str:
    """An Airflow REST API error (RFC 7807: title, detail, status), secret-looking values redacted."""
    if isinstance(body, dict):
        parts = [str(body[key]) for key in ("title", "detail") if body.get(key)]
        text = ": ".join(parts) if parts else json.dumps(body)
    else:
        text = str(body)
    return redact_text(text)[:_TAIL] or "(no detail)"


# --------------------------------------------------------------------------------------------------
# Opening one


class Route(Protocol):
    """Where a transport goes and how: a project DAG's deployment is one (the plan's route to its
    environment)."""

    @property
    def environment_name(self) -> str: ...

    @property
    def transport(self) -> WebserverTransportKind: ...

    @property
    def airflow_api(self) -> AirflowApi | None: ...


TransportFactory = Callable[[Route], WebserverTransport]
# Secrets Manager, asked for only when a transport needs a secret (a self-managed Airflow's).
SecretsClient = Callable[[], "SecretsManagerClient"]


def open_transport(
    route: Route,
    mwaa: MWAAClient,
    *,
    scheme: str = "https",
    secretsmanager: SecretsClient | None = None,
) -> WebserverTransport:
    """The transport the plan chose for the route's environment: MWAA's CLI endpoint or
    InvokeRestApi, or a self-managed Airflow's REST API with the credentials of its secret."""
    environment_name = route.environment_name
    if route.transport == "hands_on":
        return HandsOnSource(environment_name)
    if route.transport == "airflow_api":
        if route.airflow_api is None or secretsmanager is None:
            raise InvalidMigrationRequest(
                f"{environment_name}: the airflow_api transport needs the REST API's URL and its secret"
            )
        access = route.airflow_api
        credentials = read_credentials(secretsmanager(), access.credentials_secret_arn)
        # The secret names the REST API its credentials are for: an event that points them (and a
        # self-managed export's presigned forms) at another URL is refused before any request.
        if credentials.get("restApiUrl") != access.rest_api_url:
            raise InvalidMigrationRequest(
                f"{environment_name}: the secret {access.credentials_secret_arn} is not for "
                f"{access.rest_api_url} (its restApiUrl must name the REST API its credentials open)"
            )
        return AirflowApiTransport(access.rest_api_url, credentials, environment_name=environment_name)
    if route.transport == "rest_api":
        return RestApiTransport(mwaa, environment_name)
    return CliTransport(AirflowCli(mwaa, environment_name, scheme=scheme))


def transports(
    mwaa: MWAAClient, *, scheme: str = "https", secretsmanager: SecretsClient | None = None
) -> TransportFactory:
    """A factory of transports by route (a project DAG's deployment: the plan's route to its
    environment)."""
    return lambda route: open_transport(route, mwaa, scheme=scheme, secretsmanager=secretsmanager)


def as_transport(webserver: WebserverTransport | AirflowCli) -> WebserverTransport:
    """A transport as it is, an AirflowCli (or one of its test doubles) as a CliTransport."""
    if isinstance(webserver, WebserverTransport):
        return webserver
    return CliTransport(webserver)
