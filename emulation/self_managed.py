"""A self-managed Airflow's web server for the emulation: Airflow's stable REST API (``/api/v1``) over
plain HTTP on 127.0.0.1, behind basic auth, as a deployment outside MWAA serves it.

The Airflow behind it is one of the emulator's environments (its metadata, its DAG folder in S3,
its DAG runtime): the same REST API semantics InvokeRestApi reaches (emulation/mwaa/rest_api.py),
without MWAA's own limits (no 64-character path, no 10 s or 6 MB cap) and without IAM: the
credentials are Airflow's. Wrong or missing credentials answer 401 with Airflow's problem body.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from emulation.mwaa.rest_api import AirflowRestApi

if TYPE_CHECKING:
    from types import TracebackType

    from emulation.mwaa.control_api import MwaaEmulator

API_ROOT = "/api/v1"


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
