"""The Airflow CLI behind the web server's /aws_mwaa/cli endpoint: the commands MWAA allows, on an
emulated environment's metadata."""

from __future__ import annotations

import argparse
import functools
import json
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, NoReturn

from mwaa_migrate.dags import mwaa_migrate_metadata as metadata
from mwaa_migrate.environment.versions import AirflowVersion

if TYPE_CHECKING:
    from emulation.mwaa.control_api import MwaaEmulator
    from emulation.mwaa.environment import EmulatedEnvironment


DAGS_FOLDER = "/usr/local/airflow/dags"
_TASK_ID = re.compile(r"""task_id\s*=\s*["']([\w.-]+)["']""")
_TASK_FUNCTION = re.compile(r"@task\b[^\n]*\n(?:\s*@[^\n]*\n)*\s*def\s+(\w+)")
_NOT_PAUSED_UPON_CREATION = re.compile(r"is_paused_upon_creation\s*=\s*False")
# A file defines a DAG when it builds one (`DAG(`, `with DAG(`, `@dag`, or the project's DAG
# library's `project_dag(`, which declares the DAG and its tasks): a helper module next to the DAGs
# is not one, as in Airflow.
_DEFINES_DAG = re.compile(r"\bDAG\(|@dag\b|\bproject_dag\(")


# An argparse argument: (flags, add_argument's keyword arguments).
type _Argument = tuple[tuple[str, ...], dict[str, Any]]
_OUTPUT: _Argument = (
    ("-o", "--output"),
    {"choices": ["table", "json", "yaml", "plain"], "default": "table"},
)
_FLAG: dict[str, Any] = {"action": "store_true"}


class CommandError(Exception):
    """An Airflow command failed: its text is what the CLI prints on stderr."""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{self.format_usage()}\nairflow command error: {message}, see help above.\n")


def _raised(exception: str, message: str) -> CommandError:
    """The stderr of an Airflow command that raised `exception`."""
    return CommandError(
        "Traceback (most recent call last):\n"
        '  File "/usr/local/airflow/.local/bin/airflow", line 8, in <module>\n'
        "    sys.exit(main())\n"
        f"{exception}: {message}\n"
    )


def _date(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid parse value: {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _row_date(row: Mapping[str, Any], *keys: str) -> datetime | None:
    for key in keys:
        value = row.get(key)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, str) and value:
            return _date(value)
    return None


def _iso_or_empty(row: Mapping[str, Any], key: str) -> str:
    date = _row_date(row, key)
    return date.isoformat() if date else ""


def _normalize(value: Any) -> Any:
    """Airflow's AirflowConsole: everything but lists, dicts and None printed through str()."""
    if isinstance(value, list | tuple):
        return [_normalize(item) for item in value]
    if isinstance(value, dict):
        return {key: _normalize(item) for key, item in value.items()}
    return None if value is None else str(value)


@functools.lru_cache(maxsize=32)
def _syntax_error(source: str, fileloc: str) -> SyntaxError | None:
    """What compiling a DAG file raises, if anything. Each run parses the same few files again
    (the project's metadata DAG is 150 kB, a tenth of a second to compile): once a content."""
    try:
        compile(source, fileloc, "exec")
    except SyntaxError as error:
        return error.with_traceback(None)  # kept: no frames held with it
    return None


def _render(rows: list[dict[str, Any]], output: str) -> str:
    data = [_normalize(row) for row in rows]
    if output == "json":
        return json.dumps(data, indent=2) + "\n"
    if output == "yaml":
        lines = []
        for row in data:
            for index, (key, value) in enumerate(row.items()):
                lines.append(f"{'- ' if index == 0 else '  '}{key}: {'null' if value is None else value}")
        return "\n".join(lines) + "\n" if lines else "[]\n"
    if not data:
        return "No data found\n"
    columns = list(data[0])
    lines = [" | ".join(columns)]
    lines += [" | ".join("None" if row.get(c) is None else str(row.get(c)) for c in columns) for row in data]
    return "\n".join(lines) + "\n"


class EmulatedAirflowCli:
    """The Airflow CLI of one environment, on its emulated metadata (called with its CLI lock held)."""

    def __init__(self, emulator: MwaaEmulator, environment: EmulatedEnvironment) -> None:
        self.emulator = emulator
        self.environment = environment
        self.version = AirflowVersion.parse(environment.airflow_version)
        self.airflow3 = self.version.major >= 3
        # Column holding a run's logical date in this version's dag_run table.
        self.date_column = "logical_date" if self.airflow3 else "execution_date"

    def run(self, argv: list[str]) -> tuple[str, str]:
        """(stdout, stderr) of `airflow {argv}`."""
        if self.version.major < 2 and argv != ["version"]:
            return "", (
                "usage: airflow [-h] GROUP_OR_COMMAND ...\n"
                f"airflow: error: argument subcommand: invalid choice: {argv[0]!r}\n"
            )
        try:
            args = self._parser().parse_args(argv)
            handler: Callable[[argparse.Namespace], str] = args.handler
            return handler(args), ""
        except CommandError as error:
            return "", str(error)

    def _parser(self) -> argparse.ArgumentParser:
        root = _ArgumentParser(prog="airflow", add_help=False, allow_abbrev=False)
        groups = root.add_subparsers(dest="group", required=True, metavar="GROUP_OR_COMMAND")
        commands: dict[str, Any] = {}
        for group, name, handler, arguments in self._commands():
            if group is None:
                parent = groups
            elif group in commands:
                parent = commands[group]
            else:
                parent = groups.add_parser(group, add_help=False).add_subparsers(
                    dest="command", required=True
                )
                commands[group] = parent
            parser = parent.add_parser(name, add_help=False, allow_abbrev=False)
            parser.set_defaults(handler=handler)
            for flags, options in arguments:
                parser.add_argument(*flags, **options)
        return root

    def _commands(
        self,
    ) -> list[tuple[str | None, str, Callable[[argparse.Namespace], str], list[_Argument]]]:
        """(group, command, handler, arguments) of every command the emulated CLI knows."""
        subdir: _Argument = (("-S", "--subdir"), {})
        trigger_date: _Argument = (
            (("-l", "--logical-date"), {"dest": "logical_date", "type": _date})
            if self.airflow3
            else (("-e", "--exec-date"), {"dest": "logical_date", "type": _date})
        )
        trigger_output = [_OUTPUT] if self.version >= AirflowVersion(2, 6, 0) else []
        return [
            (
                "dags",
                "list",
                self.dags_list,
                [_OUTPUT, subdir, (("-v", "--verbose"), _FLAG)],
            ),
            (
                "dags",
                "list-import-errors",
                self.dags_list_import_errors,
                [_OUTPUT, subdir],
            ),
            (
                "dags",
                "pause",
                self.dags_pause,
                [(("dag_id",), {}), subdir, (("-y", "--yes"), _FLAG)],
            ),
            (
                "dags",
                "unpause",
                self.dags_unpause,
                [(("dag_id",), {}), subdir, (("-y", "--yes"), _FLAG)],
            ),
            (
                "dags",
                "trigger",
                self.dags_trigger,
                [
                    (("dag_id",), {}),
                    (("-r", "--run-id"), {}),
                    (("-c", "--conf"), {}),
                    trigger_date,
                    (("--replace-microseconds",), {"default": "true"}),
                    subdir,
                    *trigger_output,
                ],
            ),
            (
                "dags",
                "list-runs",
                self.dags_list_runs,
                [
                    (
                        ("dag_id",),
                        {"nargs": "?"},
                    ),  # Airflow 3 takes it positional, 2.x as -d
                    (("-d", "--dag-id"), {"dest": "dag_id_flag"}),
                    (("--state",), {}),
                    (("--no-backfill",), _FLAG),
                    (("-s", "--start-date"), {"type": _date}),
                    (("-e", "--end-date"), {"type": _date}),
                    _OUTPUT,
                ],
            ),
            (
                "dags",
                "state",
                self.dags_state,
                [(("dag_id",), {}), (("logical_date",), {"type": _date}), subdir],
            ),
            (
                "tasks",
                "states-for-dag-run",
                self.tasks_states_for_dag_run,
                [(("dag_id",), {}), (("run",), {}), _OUTPUT],
            ),
            ("variables", "list", self.variables_list, [_OUTPUT]),
            (
                "variables",
                "get",
                self.variables_get,
                [(("key",), {}), (("-j", "--json"), _FLAG), (("-d", "--default"), {})],
            ),
            (
                "variables",
                "set",
                self.variables_set,
                [
                    (("key",), {}),
                    (("value",), {}),
                    (("-j", "--json"), _FLAG),
                    (("--description",), {}),
                ],
            ),
            ("variables", "delete", self.variables_delete, [(("key",), {})]),
            (None, "version", self.version_command, []),
        ]

    # ---- DAGs and the DAG folder

    def _dag(self, dag_id: str) -> dict[str, Any] | None:
        for row in self.environment.metadata.get("dag", []):
            if row.get("dag_id") == dag_id and row.get("is_active", True):
                return row
        return None

    def _parse_dag_folder(self) -> None:
        """One `dags list`: a file's DAG appears once this many calls have seen its current version."""
        environment = self.environment
        bucket, prefix, files = self.emulator._dag_folder(environment)
        for key, etag in files.items():
            seen_etag, count = environment._dag_files.get(key, (etag, 0))
            count = count + 1 if seen_etag == etag else 1
            environment._dag_files[key] = (etag, count)
            if count == self.emulator.dag_parse_polls + 1:
                self._load_dag_file(bucket, key, key[len(prefix) :])

    def _load_dag_file(self, bucket: str, key: str, relative: str) -> None:
        environment = self.environment
        source = self.emulator._read_dag_file(bucket, key)
        fileloc = f"{DAGS_FOLDER}/{relative}"
        dag_id = PurePosixPath(key).stem
        errors = [
            row for row in environment.metadata.get("import_error", []) if row.get("filename") != fileloc
        ]
        error = _syntax_error(source, fileloc)
        if error is not None:
            if not {"airflow", "dag"} <= set(re.findall(r"airflow|dag", source.lower())):
                return  # Airflow's safe mode does not even import a file that mentions no DAG
            errors.append(
                {
                    "id": max((int(row.get("id", 0)) for row in errors), default=0) + 1,
                    "filename": fileloc,
                    "timestamp": self.emulator._now().isoformat(),
                    "stack_trace": (
                        "Traceback (most recent call last):\n"
                        f'  File "{fileloc}", line {error.lineno}\n'
                        f"    {(error.text or '').strip()}\n"
                        f"SyntaxError: {error.msg}\n"
                    ),
                }
            )
            environment.metadata["import_error"] = errors
            return
        if "import_error" in environment.metadata:
            environment.metadata["import_error"] = errors
        if not _DEFINES_DAG.search(source):
            return
        if dag_id in metadata.DAG_TASKS:  # the library's DAG: its tasks are the library's steps
            tasks = list(metadata.task_ids(dag_id))
        else:
            tasks = list(dict.fromkeys(_TASK_ID.findall(source) + _TASK_FUNCTION.findall(source)))
        environment._dag_tasks[dag_id] = tasks
        row = self._dag(dag_id)
        if row is None:
            options = environment.description.get("AirflowConfigurationOptions", {})
            default = options.get("core.dags_are_paused_at_creation", "True").strip().lower() not in {
                "false",
                "0",
            }
            paused = default and not _NOT_PAUSED_UPON_CREATION.search(source)
            environment.table("dag").append(
                {
                    "dag_id": dag_id,
                    "is_paused": paused,
                    "is_active": True,
                    "fileloc": fileloc,
                    "owners": "airflow",
                }
            )
        else:
            row["fileloc"] = fileloc

    def dags_list(self, args: argparse.Namespace) -> str:
        self._parse_dag_folder()
        rows: list[dict[str, Any]] = []
        dags = [row for row in self.environment.metadata.get("dag", []) if row.get("is_active", True)]
        for dag in sorted(dags, key=lambda row: str(row["dag_id"])):
            dag_id = str(dag["dag_id"])
            fileloc = str(dag.get("fileloc") or f"{DAGS_FOLDER}/{dag_id}.py")
            paused = bool(dag.get("is_paused", False))
            owners = str(dag.get("owners") or "airflow")
            if self.version < AirflowVersion(2, 7, 0):
                relative = fileloc.removeprefix(f"{DAGS_FOLDER}/")
                rows.append(
                    {
                        "dag_id": dag_id,
                        "filepath": relative,
                        "owner": owners,
                        "paused": paused,
                    }
                )
                continue
            row = {
                "dag_id": dag_id,
                "fileloc": fileloc,
                "owners": owners.split(","),
                "is_paused": paused,
            }
            if self.airflow3:
                row |= {"bundle_name": "dags-folder", "bundle_version": None}
            rows.append(row)
        return _render(rows, args.output)

    def dags_list_import_errors(self, args: argparse.Namespace) -> str:
        errors = self.environment.metadata.get("import_error", [])
        return _render(
            [{"filepath": row.get("filename"), "error": row.get("stack_trace")} for row in errors],
            args.output,
        )

    def dags_pause(self, args: argparse.Namespace) -> str:
        return self._set_paused(args, paused=True)

    def dags_unpause(self, args: argparse.Namespace) -> str:
        return self._set_paused(args, paused=False)

    def version_command(self, args: argparse.Namespace) -> str:
        return f"{self.environment.airflow_version}\n"

    def _set_paused(self, args: argparse.Namespace, *, paused: bool) -> str:
        dag = self._dag(args.dag_id)
        if dag is None:
            raise CommandError(f"DAG: {args.dag_id} does not exist in 'dag' table\n")
        dag["is_paused"] = paused
        return f"Dag: {args.dag_id}, paused: {paused}\n"

    # ---- DAG runs

    def _runs(self, dag_id: str) -> list[dict[str, Any]]:
        return [run for run in self.environment.metadata.get("dag_run", []) if run.get("dag_id") == dag_id]

    def dags_trigger(self, args: argparse.Namespace) -> str:
        dag_id: str = args.dag_id
        if self._dag(dag_id) is None:
            raise _raised(
                "airflow.exceptions.DagNotFound",
                f"Dag id {dag_id} not found in DagModel",
            )
        conf: Any = {}
        if args.conf:
            try:
                conf = json.loads(args.conf)
            except json.JSONDecodeError as error:
                raise _raised("json.decoder.JSONDecodeError", str(error)) from None
            if not isinstance(conf, dict):
                raise _raised("ValueError", "conf must be a JSON object")
        now = self.emulator._now()
        logical_date: datetime = args.logical_date or now
        run_id: str = args.run_id or f"manual__{logical_date.isoformat()}"
        for existing in self._runs(dag_id):
            if (
                existing.get("run_id") == run_id
                or _row_date(existing, "logical_date", "execution_date") == logical_date
            ):
                raise _raised(
                    "airflow.exceptions.DagRunAlreadyExists",
                    f"A Dag Run already exists for dag id {dag_id} at {logical_date} with run id {run_id}",
                )
        runs = self.environment.table("dag_run")
        run: dict[str, Any] = {
            "id": max((int(row.get("id") or 0) for row in runs), default=0) + 1,
            "dag_id": dag_id,
            "run_id": run_id,
            self.date_column: logical_date.isoformat(),
            "state": "queued",
            "run_type": "manual",
            "conf": conf,
            "queued_at": now.isoformat(),
            "start_date": None,
            "end_date": None,
            "data_interval_start": logical_date.isoformat(),
            "data_interval_end": logical_date.isoformat(),
            "last_scheduling_decision": None,
        }
        if self.airflow3:
            run |= {"run_after": logical_date.isoformat(), "triggered_by": "cli"}
        else:
            run["external_trigger"] = True
        runs.append(run)
        self.environment._run_reads[(dag_id, run_id)] = 0
        if self.version < AirflowVersion(2, 6, 0):
            return (
                f"Created <DagRun {dag_id} @ {logical_date}: {run_id}, state:queued, "
                f"queued_at: {now}. externally triggered: True>\n"
            )
        printed: dict[str, Any] = {
            "conf": conf,
            "dag_id": dag_id,
            "dag_run_id": run_id,
            "data_interval_start": logical_date,
            "data_interval_end": logical_date,
            "end_date": None,
            "last_scheduling_decision": None,
            "logical_date": logical_date,
            "run_type": "manual",
            "start_date": None,
            "state": "queued",
        }
        if self.airflow3:
            printed |= {"run_after": logical_date, "triggered_by": "cli"}
        else:
            printed["external_trigger"] = True
        return _render([printed], args.output)

    def _read_state(self, run: dict[str, Any]) -> None:
        """Reading a run's state moves it on: queued -> running -> (after dag_run_polls reads) done."""
        environment = self.environment
        key = (str(run.get("dag_id")), str(run.get("run_id")))
        if key not in environment._run_reads:
            return
        if run.get("state") == "queued":
            dag = self._dag(key[0])
            if dag is None or dag.get("is_paused"):
                return  # the scheduler does not start runs of a paused DAG
            run["state"] = "running"
            run["start_date"] = self.emulator._now().isoformat()
        environment._run_reads[key] += 1
        if environment._run_reads[key] > self.emulator.dag_run_polls:
            del environment._run_reads[key]
            self._complete(run)

    def _complete(self, run: dict[str, Any]) -> None:
        environment = self.environment
        dag_id, run_id = str(run["dag_id"]), str(run["run_id"])
        conf = run.get("conf")
        result = self.emulator._run_dag(environment, dag_id, dict(conf) if isinstance(conf, dict) else {})
        now = self.emulator._now().isoformat()
        run["state"] = result.state
        run["end_date"] = now
        runs = environment.table("dag_run")
        if not any(row is run or (row.get("dag_id"), row.get("run_id")) == (dag_id, run_id) for row in runs):
            runs.append(run)  # the DAG's work replaced the table: its own run is still there in Airflow
        tasks = list(environment._dag_tasks.get(dag_id, []))
        failed = None
        if result.state == "failed":
            failed = result.failed_task or (tasks[0] if tasks else "unknown_task")
            if failed not in tasks:
                tasks.append(failed)
        instances = [
            row
            for row in environment.table("task_instance")
            if (row.get("dag_id"), row.get("run_id")) != (dag_id, run_id)
        ]
        for index, task_id in enumerate(tasks):
            if failed is None or index < tasks.index(failed):
                state = "success"
            else:
                state = "failed" if task_id == failed else "upstream_failed"
            instance: dict[str, Any] = {
                "dag_id": dag_id,
                "task_id": task_id,
                "run_id": run_id,
                "map_index": -1,
                "try_number": 0 if state == "upstream_failed" else 1,
                "state": state,
                "start_date": None if state == "upstream_failed" else run.get("start_date"),
                "end_date": now,
                "pool": "default_pool",
                "queue": "default",
            }
            if self.airflow3:
                instance["id"] = str(uuid.uuid4())
            instances.append(instance)
        environment.metadata["task_instance"] = instances
        if failed is not None:
            environment.task_logs[(dag_id, run_id, failed)] = result.stderr
            logical_date = str(run.get(self.date_column) or "")
            self.emulator._write_task_log(
                environment=environment,
                dag_id=dag_id,
                run_id=run_id,
                task_id=failed,
                logical_date=logical_date,
                text=result.stderr,
            )

    def _date_of(self, run: Mapping[str, Any]) -> str:
        date = _row_date(run, "logical_date", "execution_date")
        return date.isoformat() if date else ""

    def dags_list_runs(self, args: argparse.Namespace) -> str:
        dag_id = args.dag_id_flag or args.dag_id
        if not dag_id:
            _ArgumentParser(prog="airflow dags list-runs", add_help=False).error(
                "the following arguments are required: -d/--dag-id"
            )
        if self._dag(dag_id) is None:
            raise _raised("airflow.exceptions.AirflowException", f"Dag id {dag_id} not found")
        runs = self._runs(dag_id)
        for run in runs:
            self._read_state(run)
        if args.state:
            runs = [run for run in runs if run.get("state") == args.state]
        if args.start_date:
            runs = [run for run in runs if self._date_of(run) >= args.start_date.isoformat()]
        if args.end_date:
            runs = [run for run in runs if self._date_of(run) <= args.end_date.isoformat()]
        runs.sort(key=self._date_of, reverse=True)
        rows = [
            {
                "dag_id": run.get("dag_id"),
                "run_id": run.get("run_id"),
                "state": run.get("state"),
                self.date_column: self._date_of(run),
                "start_date": _iso_or_empty(run, "start_date"),
                "end_date": _iso_or_empty(run, "end_date"),
            }
            for run in runs
        ]
        return _render(rows, args.output)

    def dags_state(self, args: argparse.Namespace) -> str:
        if self._dag(args.dag_id) is None:
            raise _raised(
                "airflow.exceptions.AirflowException",
                f"Dag {args.dag_id!r} could not be found; either it does not exist or it failed to parse.",
            )
        for run in self._runs(args.dag_id):
            if _row_date(run, "logical_date", "execution_date") == args.logical_date:
                self._read_state(run)
                conf = run.get("conf")
                return f"{run.get('state')}, {conf}\n" if conf else f"{run.get('state')}\n"
        return "None\n"

    def tasks_states_for_dag_run(self, args: argparse.Namespace) -> str:
        dag_id: str = args.dag_id
        if self._dag(dag_id) is None:
            raise _raised(
                "airflow.exceptions.AirflowException",
                f"Dag {dag_id!r} could not be found; either it does not exist or it failed to parse.",
            )
        wanted: datetime | None
        try:
            wanted = _date(args.run)
        except argparse.ArgumentTypeError:
            wanted = None
        for run in self._runs(dag_id):
            if run.get("run_id") == args.run or (
                wanted is not None and _row_date(run, "logical_date", "execution_date") == wanted
            ):
                self._read_state(run)
                rows = [
                    {
                        "dag_id": dag_id,
                        self.date_column: self._date_of(run),
                        "task_id": instance.get("task_id"),
                        "state": instance.get("state"),
                        "start_date": instance.get("start_date") or "",
                        "end_date": instance.get("end_date") or "",
                    }
                    for instance in self.environment.metadata.get("task_instance", [])
                    if (instance.get("dag_id"), instance.get("run_id")) == (dag_id, run.get("run_id"))
                ]
                return _render(rows, args.output)
        raise _raised(
            "airflow.exceptions.DagRunNotFound",
            f"DagRun for {dag_id} with run_id or {self.date_column} of {args.run!r} not found",
        )

    # ---- variables

    def _variable(self, key: str) -> dict[str, Any] | None:
        for row in self.environment.metadata.get("variable", []):
            if row.get("key") == key:
                return row
        return None

    def variables_list(self, args: argparse.Namespace) -> str:
        return _render(
            [{"key": row.get("key")} for row in self.environment.metadata.get("variable", [])],
            args.output,
        )

    def variables_get(self, args: argparse.Namespace) -> str:
        row = self._variable(args.key)
        if row is None:
            if args.default is not None:
                return f"{args.default}\n"
            raise CommandError(f"Variable {args.key} does not exist\n")
        value = str(row.get("val", ""))
        if args.json:
            try:
                value = json.dumps(json.loads(value), indent=2)
            except json.JSONDecodeError as error:
                raise _raised("json.decoder.JSONDecodeError", str(error)) from None
        return f"{value}\n"

    def variables_set(self, args: argparse.Namespace) -> str:
        value: str = args.value
        if args.json:
            try:
                json.loads(value)
            except json.JSONDecodeError as error:
                raise _raised("json.decoder.JSONDecodeError", str(error)) from None
        row = self._variable(args.key)
        if row is None:
            table = self.environment.table("variable")
            row = {
                "id": max((int(r.get("id") or 0) for r in table), default=0) + 1,
                "key": args.key,
            }
            table.append(row)
        row |= {"val": value, "description": args.description, "is_encrypted": True}
        return f"Variable {args.key} created\n"

    def variables_delete(self, args: argparse.Namespace) -> str:
        variables = self.environment.metadata.get("variable", [])
        self.environment.metadata["variable"] = [row for row in variables if row.get("key") != args.key]
        return ""
