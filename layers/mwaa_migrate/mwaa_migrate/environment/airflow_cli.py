"""The Airflow CLI of an MWAA environment: a CLI token from CreateCliToken, then a POST of the command
line to the web server's ``/aws_mwaa/cli/``, which answers ``{"stdout": base64, "stderr": base64}``.

The command line is built with ``shlex.join``, so each argument reaches Airflow as exactly one
argument: a value cannot add a command, a shell operator or another argument. (Airflow's argparse
still reads a *separate* argument that starts with "-" as an option: pass such values glued to
their option, ``--conf=...``, ``--run-id=...``.)

The token is a secret: it is kept in memory only, and no message or repr carries it.
"""

from __future__ import annotations

import base64
import binascii
import json
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import urllib3
from botocore.exceptions import ClientError
from urllib3.exceptions import HTTPError
from urllib3.util import Retry, Timeout

from mwaa_migrate.errors import AwsAccessDenied, MigrationConflict, TransientAwsError, from_client_error
from mwaa_migrate.redaction import redact_text

if TYPE_CHECKING:
    from mypy_boto3_mwaa import MWAAClient

# MWAA's CLI tokens live 60 s: take a new one before that.
TOKEN_MAX_AGE = 50.0
# Answers that mean the command was not run (throttled, environment unavailable): safe to send again.
# A 500/502/504 may come after the command ran, so it is not resent here (the state machine decides).
RETRY_STATUSES = (429, 503)
_TAIL = 2000


# How long one POST to the CLI endpoint may wait: 3 s to connect, 60 s for the answer (the web server
# starts an Airflow CLI process, which imports Airflow and may parse the DAG's file, before it answers).
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 60.0
# At most this long before resending a throttled command, whatever Retry-After asks: a longer wait is
# the state machine's Retry's to make, not one Lambda invocation's.
RETRY_AFTER_CAP = 10.0


class _BoundedRetry(Retry):
    """urllib3's Retry with Retry-After capped at RETRY_AFTER_CAP (urllib3's own cap is 6 hours)."""

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, RETRY_AFTER_CAP)


def default_http(
    *,
    backoff_factor: float = 0.5,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
) -> urllib3.PoolManager:
    """The connection pool AirflowCli uses unless given one: urllib3 retries connection errors and
    RETRY_STATUSES with backoff, follows redirects (MWAA's Airflow 3 answers 307), never resends a
    command whose answer was lost (read=0). At most 4 retries in all, so one POST ends within
    worst_post_seconds()."""
    retries = _BoundedRetry(
        total=4,
        connect=3,
        read=0,
        status=3,
        other=0,
        redirect=3,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"POST"}),
        backoff_factor=backoff_factor,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=True,
    )
    return urllib3.PoolManager(retries=retries, timeout=Timeout(connect=connect_timeout, read=read_timeout))


def worst_post_seconds(http: urllib3.PoolManager) -> float:
    """The longest one POST through `http` can take before it answers or raises: every request (the
    first and each retry) waiting out the connect and read timeouts, and before each retry the longer
    of its backoff and a capped Retry-After. (The read timeout bounds each wait for the next bytes:
    an endpoint that trickles bytes is not bounded, nor counted.)"""
    retries = http.connection_pool_kw.get("retries")
    timeout = http.connection_pool_kw.get("timeout")
    if not isinstance(retries, _BoundedRetry) or not isinstance(retries.total, int):
        raise ValueError("only a bounded Retry with a total has a worst case")
    if not isinstance(timeout, Timeout):
        raise ValueError("only a pool with connect and read timeouts has a worst case")
    retry_after = RETRY_AFTER_CAP if retries.respect_retry_after_header else 0.0
    jitter = retries.backoff_jitter
    waits = sum(
        max(min(retries.backoff_factor * 2 ** (n - 1) + jitter, retries.backoff_max), retry_after)
        for n in range(1, retries.total + 1)
    )
    connect, read = timeout.connect_timeout, timeout.read_timeout
    if not isinstance(connect, (int, float)) or not isinstance(read, (int, float)):
        raise ValueError("only a pool with connect and read timeouts has a worst case")
    return float((retries.total + 1) * (connect + read) + waits)


@dataclass(frozen=True)
class CliOutput:
    stdout: str
    stderr: str


class AirflowCli:
    """Runs Airflow CLI commands on one MWAA environment, one at a time."""

    CLI_PATH = "/aws_mwaa/cli/"

    def __init__(
        self,
        mwaa: MWAAClient,
        environment_name: str,
        *,
        scheme: str = "https",
        http: urllib3.PoolManager | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.environment_name = environment_name
        self._mwaa = mwaa
        self._scheme = scheme
        self._http = http or default_http()
        self._clock = clock
        self._token: str | None = None
        self._hostname = ""
        self._token_time = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AirflowCli({self.environment_name!r})"

    def run(self, *argv: str) -> CliOutput:
        """`airflow {argv}` on the environment; stdout and stderr decoded.

        Raises TransientAwsError (throttled, 5xx, no answer), AwsAccessDenied (403 with a fresh
        token), MigrationConflict (400 and other refusals) or what from_client_error maps
        CreateCliToken's errors to.
        """
        if not argv:
            raise ValueError("an Airflow command is needed")
        command = shlex.join(argv)
        doing = f"airflow {' '.join(argv[:2])} on {self.environment_name}"
        with self._lock:
            response = self._post(command, doing, fresh_token=False)
            if response.status in {401, 403}:
                response = self._post(command, doing, fresh_token=True)
        return _output(response, doing)

    def run_json(self, *argv: str) -> Any:
        """run(), then the JSON value the command printed (warnings before it on stdout are skipped)."""
        output = self.run(*argv)
        try:
            return extract_json(output.stdout)
        except ValueError:
            raise MigrationConflict(
                f"airflow {' '.join(argv[:2])} on {self.environment_name} printed no JSON; "
                f"stderr: {redact_text(output.stderr)[-_TAIL:].strip() or '(empty)'}"
            ) from None

    def _post(self, command: str, doing: str, *, fresh_token: bool) -> urllib3.BaseHTTPResponse:
        token, hostname = self._credentials(fresh=fresh_token)
        try:
            return self._http.request(
                "POST",
                f"{self._scheme}://{hostname}{self.CLI_PATH}",
                body=command.encode("utf-8"),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
            )
        except HTTPError as error:
            raise TransientAwsError(
                f"{doing}: the web server did not answer: {type(error).__name__}"
            ) from error

    def _credentials(self, *, fresh: bool) -> tuple[str, str]:
        now = self._clock()
        if fresh or self._token is None or now - self._token_time > TOKEN_MAX_AGE:
            try:
                answer = self._mwaa.create_cli_token(Name=self.environment_name)
            except ClientError as error:
                raise from_client_error(error, f"creating a CLI token for {self.environment_name}") from error
            self._token = answer["CliToken"]
            self._hostname = answer["WebServerHostname"]
            self._token_time = now
        return self._token, self._hostname


def _output(response: urllib3.BaseHTTPResponse, doing: str) -> CliOutput:
    status = response.status
    if status == 200:
        try:
            payload = json.loads(response.data)
            return CliOutput(stdout=_decode(payload.get("stdout")), stderr=_decode(payload.get("stderr")))
        except (ValueError, AttributeError, TypeError, binascii.Error) as error:
            raise MigrationConflict(f"{doing}: the web server's answer is not the CLI's JSON") from error
    message = _message(response.data)
    if status in {401, 403}:
        raise AwsAccessDenied(f"{doing}: refused with a fresh CLI token (HTTP {status}): {message}")
    if status == 429 or status >= 500:
        raise TransientAwsError(f"{doing}: HTTP {status}: {message}")
    raise MigrationConflict(f"{doing}: HTTP {status}: {message}")


def _decode(value: Any) -> str:
    if value is None:
        return ""
    return base64.b64decode(value, validate=True).decode("utf-8", errors="replace")


def _message(body: bytes) -> str:
    """The web server's error message, secret-looking values redacted: it becomes a cause."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        return redact_text(text)[:_TAIL] or "(no message)"
    if isinstance(payload, dict):
        for key in ("message", "Message", "error", "detail"):
            if payload.get(key):
                return redact_text(str(payload[key]))[:_TAIL]
    return redact_text(text)[:_TAIL]


_NOTHING: Any = object()


def extract_json(text: str) -> Any:
    """The JSON value in a command's stdout. Airflow may print warnings or log lines before it (and,
    rarely, after it): the value is the first one that starts a line and runs to the end, else the
    first one that starts a line."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    first: Any = _NOTHING
    offset = 0
    for line in text.splitlines(keepends=True):
        start = offset + len(line) - len(line.lstrip())
        offset += len(line)
        if text[start : start + 1] not in {"[", "{"}:
            continue
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if not text[end:].strip():
            return value
        if first is _NOTHING:
            first = value
    if first is _NOTHING:
        raise ValueError("no JSON value in the output")
    return first
