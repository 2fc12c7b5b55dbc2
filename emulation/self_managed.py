"""A self-managed Airflow's web server for the emulation: Airflow's stable REST API (``/api/v1``) over
plain HTTP on 127.0.0.1, behind basic auth, as a deployment outside MWAA serves it.

The Airflow behind it is one of the emulator's environments (its metadata, its DAG folder in S3,
its DAG runtime): the same REST API semantics InvokeRestApi reaches (emulation/mwaa/rest_api.py),
without MWAA's own limits (no 64-character path, no 10 s or 6 MB cap) and without IAM: the
credentials are Airflow's. Wrong or missing credentials answer 401 with Airflow's problem body.

A self-managed Airflow may also be served outside the emulation (ServedSelfManaged: the real tier's
real Airflow behind its own web server, emulation.real_airflow.ServedAirflow): the emulation then
only seeds what its migration finds in AWS (seed_served_self_managed).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from emulation.accounts import ACCOUNT_ID, MWAA_SERVICES, create_service_role
from emulation.mwaa.rest_api import AirflowRestApi
from mwaa_migrate.models import AIRFLOW_SECRET_PREFIX

if TYPE_CHECKING:
    from types import TracebackType

    from mypy_boto3_iam import IAMClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from emulation.mwaa.control_api import MwaaEmulator

API_ROOT = "/api/v1"
# Who a self-managed Airflow's DAGs act as: no AWS principal at all. The role does not exist, so any
# AWS call its export made would be denied (the IAM tier records it): it must need none.
NO_AWS_CREDENTIALS = f"arn:aws:iam::{ACCOUNT_ID}:role/self-managed-airflow-holds-no-aws-credentials"
# The Airflow user the pipeline signs in as (its password is random for each emulation).
USERNAME = "mwaa-migrate"


class SelfManagedWebserver(ThreadingHTTPServer):
    """Serves one emulated Airflow's REST API; a context manager that runs it on its own thread on
    an ephemeral port (so that runs side by side never share one)."""

    daemon_threads = True

    def __init__(
        self, emulator: MwaaEmulator, environment_name: str, *, username: str, password: str
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.emulator = emulator
        self.environment_name = environment_name
        self._expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        # (method, path) of every call that reached Airflow, for tests.
        self.requests: list[tuple[str, str]] = []
        self._thread: threading.Thread | None = None

    @property
    def api_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}{API_ROOT}"

    def __enter__(self) -> SelfManagedWebserver:
        self._thread = threading.Thread(target=self.serve_forever, name="self-managed-airflow", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.shutdown()
        self.server_close()

    def answer(self, method: str, target: str, authorization: str, body: bytes) -> tuple[int, Any]:
        if authorization != self._expected:
            return 401, {"title": "Unauthorized", "status": 401, "detail": "Invalid credentials"}
        parts = urlsplit(target)
        if not parts.path.startswith(API_ROOT + "/"):
            return 404, {"title": "Not Found", "status": 404, "detail": f"{parts.path} is not an API path"}
        path = unquote(parts.path[len(API_ROOT) :])
        query: dict[str, Any] = {
            key: values if key == "update_mask" else values[0]
            for key, values in parse_qs(parts.query).items()
        }
        payload = json.loads(body) if body else None
        self.requests.append((method, path))
        environment = self.emulator.environment(self.environment_name)
        with environment._cli_lock:  # one Airflow: its API serves a call at a time, as the CLI does
            return AirflowRestApi(self.emulator, environment).answer(method, path, query, payload)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: without this the body waits for a delayed ACK (40 ms).
    disable_nagle_algorithm = True
    server: SelfManagedWebserver

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload = self.server.answer(method, self.path, self.headers.get("Authorization") or "", body)
        data = json.dumps(payload).encode()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `requests`."""


@dataclass(frozen=True)
class SeededSource:
    """A self-managed Airflow seeded for a scenario: its running web server, and the request with
    its REST API's URL and credentials secret filled in."""

    webserver: SelfManagedWebserver
    secret_arn: str
    password: str
    execution_input: dict[str, Any]


def seed_self_managed(
    emulator: MwaaEmulator,
    *,
    source: dict[str, Any],
    metadata: dict[str, list[dict[str, Any]]],
    execution_input: dict[str, Any],
    s3: S3Client,
    iam: IAMClient,
    secretsmanager: SecretsManagerClient,
) -> SeededSource:
    """What a self-managed source's migration finds before it starts: the Airflow (its metadata, its
    DAG folder in S3, already seeded by the caller), its REST API's credentials in Secrets Manager,
    the target's own role and versioned bucket (targetSettings). Returns the web server, not yet
    started (the caller runs it for the stack's life), and the request reaching it (access mode
    reached: restApiUrl and credentialsSecretArn, unless the scenario gives its own)."""
    name = str(source["Name"])
    bucket = str(source["SourceBucketArn"]).split(":::", 1)[-1]
    emulator.add_self_managed(
        name,
        airflow_version=str(source["AirflowVersion"]),
        dags_bucket=bucket,
        dag_folder=str(source.get("DagS3Path", "dags")),
        metadata=copy.deepcopy(metadata),
    )
    password = secrets.token_urlsafe(18)
    webserver = SelfManagedWebserver(emulator, name, username=USERNAME, password=password)
    secret_arn, filled = _seed_reachable(
        name,
        rest_api_url=webserver.api_url,
        username=USERNAME,
        password=password,
        execution_input=execution_input,
        s3=s3,
        iam=iam,
        secretsmanager=secretsmanager,
    )
    return SeededSource(webserver, secret_arn, password, filled)


def _seed_reachable(
    name: str,
    *,
    rest_api_url: str,
    username: str,
    password: str,
    execution_input: dict[str, Any],
    s3: S3Client,
    iam: IAMClient,
    secretsmanager: SecretsManagerClient,
) -> tuple[str, dict[str, Any]]:
    """The credentials secret of a self-managed Airflow's REST API (`mwaa-migrate/<name>`, naming the
    URL they open), the target's own role and versioned bucket (targetSettings), and the request
    reaching it (access mode reached: restApiUrl and credentialsSecretArn, unless it gives its own)."""
    secret = secretsmanager.create_secret(
        Name=f"{AIRFLOW_SECRET_PREFIX}{name}",
        SecretString=json.dumps({"restApiUrl": rest_api_url, "username": username, "password": password}),
    )
    settings = execution_input.get("targetSettings") or {}
    create_service_role(iam, str(settings["ExecutionRoleArn"]), MWAA_SERVICES)
    target_bucket = str(settings["SourceBucketArn"]).split(":::", 1)[-1]
    s3.create_bucket(Bucket=target_bucket)
    s3.put_bucket_versioning(Bucket=target_bucket, VersioningConfiguration={"Status": "Enabled"})
    filled = copy.deepcopy(execution_input)
    access = filled["source"]["access"]
    if access.get("mode") == "reached":
        access.setdefault("restApiUrl", rest_api_url)
        access.setdefault("credentialsSecretArn", secret["ARN"])
    return secret["ARN"], filled


@dataclass(frozen=True)
class ServedSelfManaged:
    """A self-managed Airflow served outside the emulation (a real Airflow's own web server): its
    REST API's URL and the Airflow user the pipeline signs in as, and the S3 endpoint its processes
    reach (a moto server sharing the emulation's state), which the presigned URLs the functions hand
    its export must name."""

    rest_api_url: str
    username: str
    password: str = field(repr=False)
    s3_endpoint: str


@dataclass(frozen=True)
class SeededServedSource:
    """The credentials secret of a served self-managed Airflow, and the request reaching it."""

    secret_arn: str
    execution_input: dict[str, Any]


def seed_served_self_managed(
    served: ServedSelfManaged,
    *,
    source: dict[str, Any],
    execution_input: dict[str, Any],
    s3: S3Client,
    iam: IAMClient,
    secretsmanager: SecretsManagerClient,
) -> SeededServedSource:
    """What the migration of a self-managed Airflow served outside the emulation finds before it
    starts: its REST API's credentials in Secrets Manager (`mwaa-migrate/<name>`, naming the URL they
    open), the target's own role and versioned bucket (targetSettings), and the request reaching it
    (access mode reached: restApiUrl and credentialsSecretArn, unless the scenario gives its own). Its
    Airflow is no environment of the emulator's: MWAA never hears of it."""
    secret_arn, filled = _seed_reachable(
        str(source["Name"]),
        rest_api_url=served.rest_api_url,
        username=served.username,
        password=served.password,
        execution_input=execution_input,
        s3=s3,
        iam=iam,
        secretsmanager=secretsmanager,
    )
    return SeededServedSource(secret_arn, filled)
