"""Real Apache Airflow on this machine: installations (one virtualenv per version, made by
`scripts/airflow_venvs.sh`), environments (an installation + AIRFLOW_HOME + a PostgreSQL database +
a Fernet key + a DAG folder), and a DagRuntime that lets the MWAA emulator run the project's DAGs
in them for real.

Everything runs as subprocesses of the installation's own Python, with Airflow's own CLI
(`airflow db migrate`, `dags reserialize`, `dags test`, `variables set`, ...). Nothing here imports
Airflow into this process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulation.lambdas import REPO_ROOT, as_the_service
from emulation.mwaa import DagRunResult, EmulatedEnvironment

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

TIER_HOME = Path(os.environ.get("AIRFLOW_TIER_HOME", REPO_ROOT / ".airflow"))
POSTGRES_PORT = int(os.environ.get("PGPORT", "55432"))
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


def postgres(database: str = "postgres") -> list[str]:
    """psql's arguments for the tier's server."""
    return [
        "psql",
        "-h",
        "127.0.0.1",
        "-p",
        str(POSTGRES_PORT),
        "-U",
        "postgres",
        "-d",
        database,
        "-v",
        "ON_ERROR_STOP=1",
    ]


def create_database(name: str) -> str:
    """A new, empty database on the tier's server; returns its SQLAlchemy URL."""
    for statement in (f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'):
        subprocess.run([*postgres(), "-qc", statement], check=True, capture_output=True, text=True)  # noqa: S603
    return f"postgresql+psycopg2://postgres@127.0.0.1:{POSTGRES_PORT}/{name}"


def copy_database(template: str, name: str) -> str:
    """A new database on the tier's server holding a copy of `template` (which nothing may be
    connected to); returns its SQLAlchemy URL."""
    for statement in (
        f'DROP DATABASE IF EXISTS "{name}"',
        f'CREATE DATABASE "{name}" TEMPLATE "{template}"',
    ):
        subprocess.run([*postgres(), "-qc", statement], check=True, capture_output=True, text=True)  # noqa: S603
    return f"postgresql+psycopg2://postgres@127.0.0.1:{POSTGRES_PORT}/{name}"


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
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log_file.close()

    def drop(self) -> None:
        subprocess.run(  # noqa: S603
            [*postgres(), "-qc", f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'],
            check=False,
            capture_output=True,
        )
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
