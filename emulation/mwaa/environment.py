"""The emulated environments: what an environment holds (its description, metadata tables and DAG
runs), and how a DAG run is carried out (DagRuntime)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

# Statuses in which Airflow runs and an update is accepted (UPDATE_FAILED: MWAA restored the environment).
READY = frozenset({"AVAILABLE", "UPDATE_FAILED"})
BUSY = frozenset({"CREATING", "UPDATING", "DELETING", "ROLLING_BACK", "CREATING_SNAPSHOT"})


@dataclass
class DagRunResult:
    """How an emulated DAG run ended, and what its failing task printed on stderr."""

    state: Literal["success", "failed"]
    failed_task: str | None = None
    stderr: str = ""


class DagRuntime(Protocol):
    """Runs a DAG's work against an emulated environment when one of its runs completes."""

    def run(self, environment: EmulatedEnvironment, dag_id: str, conf: dict[str, Any]) -> DagRunResult: ...


@dataclass
class PendingRun:
    """A long-running change, completed after `polls_left` more GetEnvironment calls."""

    kind: Literal["create", "update", "delete"]
    polls_left: int
    changes: dict[str, Any] = field(default_factory=dict)
    failure: tuple[str, str] | None = None


@dataclass
class EmulatedEnvironment:
    """One environment: its GetEnvironment description and its Airflow metadata database.

    ``metadata`` maps an Airflow table name ("variable", "slot_pool", "dag", "dag_run",
    "task_instance", "import_error", ...) to its rows. ``task_logs`` holds what a failing task
    printed on stderr, by (dag_id, run_id, task_id).
    """

    name: str
    description: dict[str, Any]
    metadata: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    task_logs: dict[tuple[str, str, str], str] = field(default_factory=dict)
    # DAG files seen in the DAG folder: S3 key -> (ETag, `dags list` calls that saw this ETag).
    _dag_files: dict[str, tuple[str, int]] = field(default_factory=dict, init=False, repr=False)
    # Task ids found in each DAG's file, in order.
    _dag_tasks: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False)
    # Runs triggered through the CLI that have not completed: (dag_id, run_id) -> state reads so far.
    _run_reads: dict[tuple[str, str], int] = field(default_factory=dict, init=False, repr=False)
    _pending: PendingRun | None = field(default=None, init=False, repr=False)
    # MWAA serves one CLI command at a time per environment.
    _cli_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def status(self) -> str:
        return str(self.description["Status"])

    @property
    def airflow_version(self) -> str:
        return str(self.description["AirflowVersion"])

    def table(self, name: str) -> list[dict[str, Any]]:
        """The rows of one metadata table (created empty if missing)."""
        return self.metadata.setdefault(name, [])
