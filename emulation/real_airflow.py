"""Real Apache Airflow on this machine: installations (one virtualenv per version, made by
`scripts/airflow_venvs.sh`), environments (an installation + AIRFLOW_HOME + a PostgreSQL database +
a Fernet key + a DAG folder), a DagRuntime that lets the MWAA emulator run the project's DAGs
in them for real, and an environment served as a self-managed deployment serves it (its own web
server and scheduler: ServedAirflow; its DAG folder kept in step with an S3 folder: S3DagFolderSync).

Everything runs as subprocesses of the installation's own Python, with Airflow's own CLI
(`airflow db migrate`, `dags reserialize`, `dags test`, `variables set`, ...). Nothing here imports
Airflow into this process.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulation.lambdas import REPO_ROOT, as_the_service
from emulation.mwaa import DagRunResult, EmulatedEnvironment

if TYPE_CHECKING:
    from types import TracebackType

    from mypy_boto3_s3 import S3Client

TIER_HOME = Path(os.environ.get("AIRFLOW_TIER_HOME", REPO_ROOT / ".airflow"))
DAGS_PACKAGE = REPO_ROOT / "layers" / "mwaa_migrate" / "mwaa_migrate" / "dags"
PROJECT_DAG_FILES = ("mwaa_migrate_metadata.py", "mwaa_migrate_export.py", "mwaa_migrate_import.py")
_COMMAND_TIMEOUT = 900


class AirflowCommandError(RuntimeError):
    def __init__(self, command: list[str], result: subprocess.CompletedProcess[str]) -> None:
        self.command = command
        self.stdout = result.stdout
        self.stderr = result.stderr
        self.returncode = result.returncode
        tail = "\n".join(result.stderr.strip().splitlines()[-30:])
        super().__init__(f"`{' '.join(command)}` exited {result.returncode}:\n{tail}")


@dataclass(frozen=True)
class AirflowInstallation:
    """One Airflow version installed in its own virtualenv."""

    version: str
    venv: Path

    @classmethod
    def find(cls, version: str, root: Path = TIER_HOME) -> AirflowInstallation:
        venv = root / "venvs" / version
        if not (venv / ".installed").exists():
            raise FileNotFoundError(
                f"Airflow {version} is not installed in {venv}: run scripts/airflow_venvs.sh {version}"
            )
        return cls(version, venv)

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def airflow(self) -> Path:
        return self.venv / "bin" / "airflow"


def recorded_postgres_server(home: Path = TIER_HOME) -> dict[str, str]:
    """What `scripts/postgres_server.sh start` recorded of a checkout's server: SERVER_PORT,
    SERVER_DATA (its data folder) and SERVER_DATA_OWNED."""
    state = home / "postgres.env"
    try:
        return dict(line.split("=", 1) for line in state.read_text().splitlines() if "=" in line)
    except FileNotFoundError:
        message = f"no PostgreSQL server recorded in {state}: run scripts/postgres_server.sh start"
        raise FileNotFoundError(message) from None


def postgres_port() -> int:
    """The port of this checkout's server."""
    return int(recorded_postgres_server()["SERVER_PORT"])


def postgres(database: str = "postgres") -> list[str]:
    """psql's arguments for the tier's server."""
    return [
        "psql",
        "-h",
        "127.0.0.1",
        "-p",
        str(postgres_port()),
        "-U",
        "postgres",
        "-d",
        database,
        "-v",
        "ON_ERROR_STOP=1",
    ]


def _server_statement(statement: str) -> str:
    """Run one statement on the server's `postgres` database; its stdout, or an error with psql's."""
    result = subprocess.run([*postgres(), "-qtAc", statement], capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise RuntimeError(f"psql exited {result.returncode} on {statement!r}: {result.stderr.strip()}")
    return result.stdout


def drop_database(name: str) -> None:
    """Drop a database of the tier's server if it exists, ending whatever is still connected to it."""
    _server_statement(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_database(name: str) -> str:
    """A new, empty database on the tier's server; returns its SQLAlchemy URL."""
    drop_database(name)
    _server_statement(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg2://postgres@127.0.0.1:{postgres_port()}/{name}"


def copy_database(template: str, name: str) -> str:
    """A new database on the tier's server holding a copy of `template`; returns its SQLAlchemy URL.
    Nothing may be connected to the template: PostgreSQL refuses the copy otherwise, and the error
    then names the connections (the process that holds one is the bug)."""
    drop_database(name)
    try:
        _server_statement(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    except RuntimeError as refused:
        # Not the query: a client-side interpolated one may carry a value the test must not print.
        described = "format('pid %s (%s, %s since %s)', pid, application_name, state, backend_start)"
        activity = f"SELECT string_agg({described}, '; ') FROM pg_stat_activity WHERE datname = '{template}'"  # noqa: S608
        connected = _server_statement(activity).strip()
        raise RuntimeError(f"{refused}; connected to {template}: {connected or 'nothing now'}") from None
    return f"postgresql+psycopg2://postgres@127.0.0.1:{postgres_port()}/{name}"


def new_fernet_key() -> str:
    from cryptography.fernet import Fernet  # noqa: PLC0415  (moto's dependency, in the dev virtualenv)

    return Fernet.generate_key().decode("ascii")


@dataclass
class AirflowEnvironment:
    """One Airflow 'environment' on this machine, like an MWAA environment's Airflow."""

    installation: AirflowInstallation
    home: Path
    database_url: str
    fernet_key: str
    # Variables for the tasks' boto3 (the local S3/KMS endpoint, region, credentials).
    aws_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls, installation: AirflowInstallation, home: Path, *, aws_env: dict[str, str] | None = None
    ) -> AirflowEnvironment:
        database = f"airflow_{installation.version.replace('.', '_')}_{uuid.uuid4().hex[:8]}"
        environment = cls(
            installation, home, create_database(database), new_fernet_key(), dict(aws_env or {})
        )
        environment.dags_folder.mkdir(parents=True, exist_ok=True)
        environment.cli("db", "migrate")
        return environment

    def upgraded_copy(self, installation: AirflowInstallation, home: Path) -> AirflowEnvironment:
        """A copy of this environment's database upgraded in place by a newer Airflow's own
        `airflow db migrate`, with the same Fernet key: what MWAA's in-place upgrade of the
        environment does (2.11 -> 3.0.6). This environment is left as it was."""
        database = f"airflow_{installation.version.replace('.', '_')}_{uuid.uuid4().hex[:8]}"
        upgraded = AirflowEnvironment(
            installation, home, copy_database(self.database, database), self.fernet_key, dict(self.aws_env)
        )
        upgraded.dags_folder.mkdir(parents=True, exist_ok=True)
        try:
            upgraded.cli("db", "migrate")
        except BaseException:
            upgraded.drop()
            raise
        return upgraded

    @property
    def version(self) -> str:
        return self.installation.version

    @property
    def database(self) -> str:
        return self.database_url.rsplit("/", 1)[-1]

    @property
    def dags_folder(self) -> Path:
        return self.home / "dags"

    def env(self) -> dict[str, str]:
        keep = {
            name: value for name, value in os.environ.items() if name in {"PATH", "LANG", "LC_ALL", "TMPDIR"}
        }
        return (
            keep
            | self.aws_env
            | {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url,
                "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "0",
                "PYTHONWARNINGS": "ignore",
            }
        )

    def run(
        self, argv: list[str], *, check: bool = True, timeout: float = _COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(  # noqa: S603  (argv built here, no shell)
            argv, env=self.env(), capture_output=True, text=True, timeout=timeout, cwd=self.home, check=False
        )
        if check and result.returncode != 0:
            raise AirflowCommandError(argv, result)
        return result

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run([str(self.installation.airflow), *args], check=check)

    def python(self, script: Path, *args: str) -> str:
        return self.run([str(self.installation.python), str(script.resolve()), *args]).stdout

    def put_dag_files(self, files: dict[str, bytes]) -> None:
        for name, body in files.items():
            (self.dags_folder / name).write_bytes(body)
        self.cli("dags", "reserialize")

    def install_project_dags(self) -> None:
        self.put_dag_files({name: (DAGS_PACKAGE / name).read_bytes() for name in PROJECT_DAG_FILES})

    def dags_test(
        self, dag_id: str, logical_date: str, conf: dict[str, Any] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run one DAG run in this process tree with Airflow's own runner (`airflow dags test`)."""
        args = ["dags", "test", dag_id, logical_date]
        if conf is not None:
            args[2:2] = ["-c", json.dumps(conf)]
        return self.cli(*args, check=False)

    def sql(self, query: str) -> list[list[str]]:
        """Rows of a query on this environment's database (psql, unaligned)."""
        result = subprocess.run(  # noqa: S603
            [*postgres(self.database), "-tA", "-F", "\x1f", "-c", query],
            capture_output=True,
            text=True,
            check=True,
        )
        return [line.split("\x1f") for line in result.stdout.splitlines() if line]

    def table_rows(self) -> dict[str, int]:
        """Every table of the database with its row count."""
        rows = self.sql(
            "SELECT table_name, (xpath('/row/c/text()', query_to_xml("
            "format('SELECT count(*) AS c FROM %I', table_name), false, true, '')))[1]::text "
            "FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        return {name: int(count) for name, count in rows}

    def schedule_until_done(self, *, runs: int, deadline_seconds: float = 600) -> None:
        """Run Airflow's scheduler (LocalExecutor) until `runs` DAG runs exist and none is queued or
        running, then stop it. Real scheduling: try numbers, retries, task_fail and log rows are
        what a real environment records."""
        log_file = (self.home / "scheduler.out").open("ab")
        process = subprocess.Popen(  # noqa: S603
            [str(self.installation.airflow), "scheduler"],
            env=self.env(),
            cwd=self.home,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + deadline_seconds
            while True:
                [[total, unfinished]] = self.sql(
                    "SELECT count(*), count(*) FILTER (WHERE state IN ('queued', 'running')) FROM dag_run"
                )
                if int(total) >= runs and int(unfinished) == 0:
                    return
                if process.poll() is not None:
                    raise RuntimeError(
                        f"the scheduler exited {process.returncode}; see {self.home / 'scheduler.out'}"
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{total} runs, {unfinished} unfinished after {deadline_seconds} s")
                time.sleep(1)
        finally:
            # The whole session: the DAG processor manager and each task's raw process move to groups
            # of their own, and one left running holds a connection to the database (which then
            # cannot be a template for copies).
            _stop_session(process)
            log_file.close()

    def drop(self) -> None:
        with contextlib.suppress(RuntimeError, FileNotFoundError):  # a server already stopped
            drop_database(self.database)
        shutil.rmtree(self.home, ignore_errors=True)


class RealAirflowDagRuntime:
    """The MWAA emulator's DagRuntime backed by real Airflow: each emulated environment gets a real
    Airflow environment (the ones given, or a new one on its Airflow version's installation the
    first time one of its DAGs runs). A DAG run copies the emulated DAG folder's files (from S3)
    into the real DAG folder and runs the DAG with `airflow dags test` and the run's conf; it fails
    as the real one does, with Airflow's output as the failing task's log.

    The DAGs' own boto3 calls go to `endpoint` (a moto server sharing the emulation's state)."""

    def __init__(
        self,
        s3: S3Client,
        *,
        installations: dict[str, AirflowInstallation],
        home: Path,
        endpoint: str,
        region: str,
        environments: dict[str, AirflowEnvironment] | None = None,
    ) -> None:
        self.s3 = s3
        self.installations = installations
        self.home = home
        self.aws_env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
        }
        self.environments = dict(environments or {})
        for real in self.environments.values():
            real.aws_env.update(self.aws_env)
        self._runs = 0

    def real_environment(self, environment: EmulatedEnvironment) -> AirflowEnvironment | None:
        if environment.name not in self.environments:
            installation = self.installations.get(environment.airflow_version)
            if installation is None:
                return None
            self.environments[environment.name] = AirflowEnvironment.create(
                installation, self.home / environment.name, aws_env=self.aws_env
            )
        return self.environments[environment.name]

    def _sync_dag_folder(self, environment: EmulatedEnvironment, real: AirflowEnvironment) -> None:
        bucket = str(environment.description.get("SourceBucketArn", "")).split(":::", 1)[-1]
        folder = str(environment.description.get("DagS3Path", "")).strip("/")
        files: dict[str, bytes] = {}
        with as_the_service():
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{folder}/")
            for page in pages:
                for item in page.get("Contents", []):
                    if item["Key"].endswith(".py"):
                        body = self.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                        files[item["Key"][len(folder) + 1 :]] = body
        changed = {
            name: body
            for name, body in files.items()
            if not (real.dags_folder / name).exists() or (real.dags_folder / name).read_bytes() != body
        }
        if changed:
            real.put_dag_files(changed)

    def run(self, environment: EmulatedEnvironment, dag_id: str, conf: dict[str, Any]) -> DagRunResult:
        real = self.real_environment(environment)
        if real is None:
            return DagRunResult(
                "failed",
                stderr=f"no Airflow {environment.airflow_version} installation for {environment.name}",
            )
        self._sync_dag_folder(environment, real)
        self._runs += 1
        # Every run gets its own logical date, as triggered runs do.
        logical_date = f"2030-01-01T00:{self._runs // 60:02d}:{self._runs % 60:02d}+00:00"
        result = real.dags_test(dag_id, logical_date, conf)
        output = result.stdout + result.stderr
        failed = _failed_tasks(output)
        if result.returncode != 0 or failed:
            return DagRunResult("failed", failed_task=failed[0] if failed else None, stderr=output[-8000:])
        return DagRunResult("success")


def _failed_tasks(output: str) -> list[str]:
    found = []
    for line in output.splitlines():
        if "Marking task as FAILED" in line and "task_id=" in line:
            found.append(line.split("task_id=", 1)[1].split(",", 1)[0].strip())
    return found


# --------------------------------------------------------------------------------------------------
# An environment served as a self-managed deployment serves it

# What a served environment's processes add to its configuration: the stable REST API behind basic
# auth (Airflow 2's default backend, session, takes only the UI's cookie); one gunicorn worker, never
# refreshed (the default restarts a worker every 30 s, which a call may meet starting up); the DAG
# folder listed every 2 s (the default, 5 minutes, would leave a file synced into it unseen that
# long), each file parsed again at most every 5 s, by one process (two cores are shared).
SERVED_CONFIG = {
    "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth",
    "AIRFLOW__WEBSERVER__WORKERS": "1",
    "AIRFLOW__WEBSERVER__WORKER_REFRESH_BATCH_SIZE": "0",
    "AIRFLOW__WEBSERVER__EXPOSE_CONFIG": "False",
    "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "2",
    "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
    "AIRFLOW__SCHEDULER__PARSING_PROCESSES": "1",
}
# gunicorn's access log: the basic auth user (gunicorn reads it from the Authorization header, never
# the password), the request line, the status.
ACCESS_LOG_FORMAT = '%(u)s "%(r)s" %(s)s'
_ACCESS_LINE = re.compile(r'^(?P<user>\S+) "(?P<method>[A-Z]+) (?P<target>\S+)[^"]*" (?P<status>\d{3})$')
_STARTUP_SECONDS = 240
_STOP_SECONDS = 30
# Tries at an ephemeral port: another process may take the one picked before gunicorn binds it.
_PORT_TRIES = 3


@dataclass(frozen=True)
class ApiCall:
    """One request the web server answered, from its access log."""

    user: str
    method: str
    target: str  # the path and the query
    status: int

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


class ServedAirflow:
    """An environment run as a self-managed deployment runs it: its own `airflow webserver` (the UI
    and the stable REST API, basic auth, a user made with `airflow users create`) on 127.0.0.1 and an
    ephemeral port (runs side by side never share one), and its own `airflow scheduler` (the
    environment's LocalExecutor on its PostgreSQL database), which runs every triggered DAG run.

    A context manager: entering starts both and waits until the web server answers and reports the
    scheduler healthy; leaving (or a failed start) stops each process's whole session, SIGTERM then
    SIGKILL (the scheduler's task runners move to process groups of their own, never to another
    session). The web server's gunicorn access log is `access_log` (api_calls() reads it)."""

    def __init__(
        self,
        environment: AirflowEnvironment,
        *,
        username: str,
        password: str,
        role: str = "User",
        config: Mapping[str, str] | None = None,
        startup_seconds: float = _STARTUP_SECONDS,
    ) -> None:
        self.environment = environment
        self.username = username
        self._password = password
        self.role = role
        self.config = {
            **SERVED_CONFIG,
            "AIRFLOW__WEBSERVER__SECRET_KEY": secrets.token_hex(24),
            **(config or {}),
        }
        self.startup_seconds = startup_seconds
        self.port: int | None = None
        self.access_log = environment.home / "webserver-access.log"
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    def __repr__(self) -> str:
        return f"ServedAirflow({self.environment.home!s}, port={self.port})"

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the web server is not running")
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v1"

    def env(self) -> dict[str, str]:
        return self.environment.env() | self.config

    def __enter__(self) -> ServedAirflow:
        try:
            self._add_user()
            # The task logs are files the web server reads itself: no log server, so no fixed port
            # (8793) that another environment's scheduler may hold.
            self._processes["scheduler"] = self._spawn("scheduler", ["scheduler", "--skip-serve-logs"])
            self._start_webserver()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def api_calls(self) -> list[ApiCall]:
        """The calls to the REST API (/api/...) the web server answered, in order."""
        if not self.access_log.exists():
            return []
        calls = []
        for line in self.access_log.read_text(errors="replace").splitlines():
            match = _ACCESS_LINE.match(line.strip())
            if match and match["target"].startswith("/api/"):
                calls.append(ApiCall(match["user"], match["method"], match["target"], int(match["status"])))
        return calls

    def stop(self) -> None:
        """Stop the web server, then the scheduler: every process of each one's session."""
        for name in ("webserver", "scheduler"):
            process = self._processes.pop(name, None)
            if process is not None:
                _stop_session(process)

    # ---- starting

    def _add_user(self) -> None:
        """The web server's user, as an operator adds one: Airflow's default roles first (`airflow
        sync-perm`; `db migrate` makes only Admin and Public), then `airflow users create`."""
        self.environment.cli("sync-perm")
        argv = [
            # `--name=value`: a value that begins with "-" (token_urlsafe makes them) is no option
            *("users", "create", f"--username={self.username}", f"--password={self._password}"),
            *("--role", self.role, "--firstname", "mwaa", "--lastname", "migrate"),
            *("--email", f"{self.username}@example.com"),
        ]
        result = self.environment.cli(*argv, check=False)
        if result.returncode != 0:  # its argv holds the password: only its output is told
            raise RuntimeError(f"`airflow users create` exited {result.returncode}: {result.stderr[-2000:]}")

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with (self.environment.home / f"{name}.out").open("ab") as output:
            return subprocess.Popen(  # noqa: S603  (argv built here, no shell)
                [str(self.environment.installation.airflow), *args],
                env=self.env(),
                cwd=self.environment.home,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _start_webserver(self) -> None:
        for attempt in range(1, _PORT_TRIES + 1):
            self.port = _free_port()
            self._processes["webserver"] = self._spawn(
                "webserver",
                [
                    "webserver",
                    "--hostname",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--access-logfile",
                    str(self.access_log),
                    "--access-logformat",
                    ACCESS_LOG_FORMAT,
                ],
            )
            if self._wait_until_healthy():
                return
            _stop_session(self._processes.pop("webserver"))
            if attempt == _PORT_TRIES:
                output = self.environment.home / "webserver.out"
                raise RuntimeError(f"the web server on port {self.port} exited; see {output}")

    def _wait_until_healthy(self) -> bool:
        """True once /health says the database and the scheduler are healthy; False if the web server
        exited first (its port taken: the caller tries another)."""
        deadline = time.monotonic() + self.startup_seconds
        while time.monotonic() < deadline:
            if self._processes["webserver"].poll() is not None:
                return False
            if self._processes["scheduler"].poll() is not None:
                raise RuntimeError(
                    f"the scheduler exited {self._processes['scheduler'].returncode}; see "
                    f"{self.environment.home / 'scheduler.out'}"
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/health", timeout=5) as answer:  # noqa: S310
                    health = json.loads(answer.read())
            except (OSError, ValueError):
                health = {}
            if all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler")):
                return True
            time.sleep(1)
        raise TimeoutError(
            f"{self!r} was not healthy after {self.startup_seconds} s; see {self.environment.home}/*.out"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _session_members(session: int) -> list[int]:
    """The live processes of a session (Linux's /proc; zombies left out): a process started with
    start_new_session leads one, and its children stay in it whatever process group they move to."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # pid (comm) state ppid pgrp session ...: comm may hold spaces and parentheses.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session and fields[0] != "Z":
                members.append(int(stat.parent.name))
    return members


def _signal_session(session: int, sent: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(session, sent)
    for pid in _session_members(session):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sent)


def _stop_session(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's session (its group and every group its children made), then, after
    _STOP_SECONDS, SIGKILL to whatever is left."""
    _signal_session(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_SECONDS
    while time.monotonic() < deadline and (process.poll() is None or _session_members(process.pid)):
        time.sleep(0.2)
    if process.poll() is None or _session_members(process.pid):
        _signal_session(process.pid, signal.SIGKILL)
    process.wait()


class S3DagFolderSync:
    """Keeps an environment's DAG folder in step with an S3 folder, as a self-managed deployment's
    `aws s3 sync --delete s3://BUCKET/FOLDER DAGS_FOLDER` on a timer (or a git-sync sidecar) does:
    every `interval` seconds, objects new or changed in S3 are written into the folder (each one
    whole, then renamed into place, so the scheduler never parses half a file) and files whose object
    is gone are removed (Python's own __pycache__ is left alone). `s3` is the deployment's S3 client
    (its own credentials to read the DAG bucket, which the Airflow processes never hold).

    A context manager running the loop on its own thread; a sync that fails stops the loop and is
    raised when the context ends."""

    def __init__(
        self, s3: S3Client, *, bucket: str, folder: str, dags_folder: Path, interval: float = 1.0
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = folder.strip("/") + "/"
        self.dags_folder = dags_folder
        self.interval = interval
        self.synced: list[tuple[str, str]] = []  # ("put" | "delete", name), in order
        self._etags: dict[str, str] = {}
        self._stopping = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> S3DagFolderSync:
        self.sync_once()
        self._thread = threading.Thread(target=self._loop, name="s3-dag-folder-sync", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._failure is not None and error is None:
            raise RuntimeError(f"syncing s3://{self.bucket}/{self.prefix} failed") from self._failure

    def _loop(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.sync_once()
            except Exception as failure:  # kept, and raised by __exit__
                self._failure = failure
                return

    def sync_once(self) -> None:
        listed: dict[str, str] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix) :]
                if name and not name.endswith("/"):
                    listed[name] = item["ETag"]
        for name, etag in listed.items():
            path = self.dags_folder / name
            if self._etags.get(name) == etag and path.exists():
                continue
            body = self.s3.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
            if not path.exists() or path.read_bytes() != body:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_name(f".{path.name}.partial")
                partial.write_bytes(body)
                partial.replace(path)
                self.synced.append(("put", name))
            self._etags[name] = etag
        for path in sorted(self.dags_folder.rglob("*")):
            name = path.relative_to(self.dags_folder).as_posix()
            if path.is_file() and "__pycache__" not in path.parts and name not in listed:
                path.unlink()
                self._etags.pop(name, None)
                self.synced.append(("delete", name))
