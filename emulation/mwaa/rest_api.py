"""MWAA's ``InvokeRestApi`` for the emulator: Airflow's stable REST API through MWAA's own API.

``POST /restapi/{Name}`` with ``{"Path", "Method", "QueryParameters", "Body"}`` (botocore's
``InvokeRestApiRequest``, validated against the model: ``Path`` 1 to 64 characters, ``Method`` one of
GET/PUT/POST/PATCH/DELETE) answers ``{"RestApiStatusCode", "RestApiResponse"}``. Airflow's answers
of 4xx come back as ``RestApiClientException``, 5xx as ``RestApiServerException`` (both HTTP 400 in
the model), with the same two members. What MWAA adds:

* environments older than Airflow 2.4.3 answer ``ValidationException`` "Update your environment to
  use InvokeRestApi";
* a call Airflow takes longer than ``timeout`` (10 s) to answer ends with ``RestApiServerException``
  504 (the call may have taken effect); ``MwaaEmulator.inject_delay("InvokeRestApi", s)`` makes
  Airflow take ``s`` seconds;
* an answer over 6 MB is refused (``RestApiServerException``), whatever Airflow sent.

Which MWAA error a timeout and an oversized answer are is not documented: the emulator's choice
(RestApiServerException, 504 and 500) is marked as such in the messages' wording only.

The REST API side serves what the pipeline uses, in Airflow's shapes (``/api/v1`` on 2.x, the
``/api/v2`` shapes on 3.x): ``GET /version``, ``GET /dags``, ``GET|PATCH /dags/{dag_id}``,
``PATCH /dags?dag_id_pattern=``, ``GET /importErrors``, ``GET|POST /dags/{dag_id}/dagRuns``,
``GET /dags/{dag_id}/dagRuns/{dag_run_id}``,
``GET /dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances`` and
``POST /dags/~/dagRuns/~/taskInstances/list``, on the same emulated metadata as the CLI endpoint
(reading a run moves it on, as ``dags list-runs`` does).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from emulation.mwaa.airflow_cli import CommandError, EmulatedAirflowCli
from emulation.mwaa.environment import READY
from emulation.mwaa.responses import (
    ApiError,
    Response,
    error_response,
    json_body,
    json_response,
    validation_error,
)
from mwaa_migrate.environment.versions import AirflowVersion

if TYPE_CHECKING:
    from emulation.mwaa.control_api import MwaaEmulator
    from emulation.mwaa.environment import EmulatedEnvironment

OPERATION = "InvokeRestApi"
MIN_VERSION = AirflowVersion(2, 4, 3)
TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
# Airflow's api.maximum_page_limit default: a larger limit is cut to it.
MAX_PAGE = 100
_DAGS_FOLDER = "/usr/local/airflow/dags"


class RestApi:
    """The InvokeRestApi operation of one emulator."""

    def __init__(self, emulator: MwaaEmulator) -> None:
        self._emulator = emulator
        self.timeout = TIMEOUT_SECONDS
        self.max_response_bytes = MAX_RESPONSE_BYTES
        # (environment, method, path) of every call that reached Airflow.
        self.requests: list[tuple[str, str, str]] = []

    def handle(self, name: str, body: bytes) -> Response:
        emulator = self._emulator
        with emulator._lock:
            emulator.calls.append((OPERATION, name))
            try:
                request = {**json_body(body), "Name": name}
                emulator._validate(OPERATION, request)
                delay = emulator._take_delay(OPERATION)
                emulator._raise_fault(OPERATION)
                environment = emulator._require(name)
                if AirflowVersion.parse(environment.airflow_version) < MIN_VERSION:
                    raise validation_error("Update your environment to use InvokeRestApi")
                if environment.status not in READY:
                    raise ApiError("RestApiServerException", f"Environment {name} is {environment.status}")
                self.requests.append((name, request["Method"], request["Path"]))
            except ApiError as error:
                return error_response(error)
        with environment._cli_lock:
            status, payload = AirflowRestApi(emulator, environment).answer(
                request["Method"], request["Path"], request.get("QueryParameters") or {}, request.get("Body")
            )
        if delay > self.timeout:
            time.sleep(self.timeout)
            return _rest_error(
                "RestApiServerException",
                504,
                {"detail": f"The Apache Airflow REST API call timed out after {self.timeout:g} seconds"},
            )
        if delay:
            time.sleep(delay)
        if len(json.dumps(payload).encode()) > self.max_response_bytes:
            return _rest_error(
                "RestApiServerException",
                500,
                {"detail": "The response payload exceeds the InvokeRestApi limit of 6 MB"},
            )
        if status >= 500:
            return _rest_error("RestApiServerException", status, payload)
        if status >= 400:
            return _rest_error("RestApiClientException", status, payload)
        return json_response({"RestApiStatusCode": status, "RestApiResponse": payload})


def _rest_error(code: str, status: int, payload: Any) -> Response:
    """RestApiClientException / RestApiServerException: HTTP 400 (the model's), Airflow's answer inside."""
    detail = payload.get("detail") if isinstance(payload, dict) else None
    response = json_response(
        {
            "message": str(detail or f"The Apache Airflow REST API answered {status}"),
            "RestApiStatusCode": status,
            "RestApiResponse": payload,
        },
        400,
    )
    response.headers["x-amzn-ErrorType"] = code
    return response


class _HttpError(Exception):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


def _not_found(detail: str) -> _HttpError:
    return _HttpError(404, "Not Found", detail)


def _bad_request(detail: str) -> _HttpError:
    return _HttpError(400, "Bad Request", detail)


class AirflowRestApi:
    """Airflow's REST API of one environment (called with its CLI lock held: one Airflow process)."""

    def __init__(self, emulator: MwaaEmulator, environment: EmulatedEnvironment) -> None:
        self.cli = EmulatedAirflowCli(emulator, environment)
        self.environment = environment
        self.version = AirflowVersion.parse(environment.airflow_version)
        self.airflow3 = self.version.major >= 3

    def answer(self, method: str, path: str, query: dict[str, Any], body: Any) -> tuple[int, Any]:
        parts = [part for part in path.split("?", 1)[0].strip("/").split("/") if part]
        try:
            return 200, self._route(method, parts, query, body if isinstance(body, dict) else {})
        except _HttpError as error:
            return error.status, self._problem(error)

    def _problem(self, error: _HttpError) -> dict[str, Any]:
        if self.airflow3:  # FastAPI's answer
            return {"detail": error.detail}
        return {
            "detail": error.detail,
            "status": error.status,
            "title": error.title,
            "type": (
                f"https://airflow.apache.org/docs/apache-airflow/{self.version}/stable-rest-api-ref.html"
                f"#section/Errors/{error.title.replace(' ', '')}"
            ),
        }

    def _route(self, method: str, parts: list[str], query: dict[str, Any], body: dict[str, Any]) -> Any:
        match method, parts:
            case "GET", ["version"]:
                return {"version": str(self.version), "git_version": None}
            case "GET", ["dags"]:
                return self._page("dags", [self._dag_json(dag) for dag in self._dags(query)], query)
            case "PATCH", ["dags"]:
                return self._patch_dags(query, body)
            case "GET", ["dags", dag_id]:
                return self._dag_json(self._require_dag(dag_id))
            case "PATCH", ["dags", dag_id]:
                dag = self._require_dag(dag_id)
                self._set_paused([dag], query, body)
                return self._dag_json(dag)
            case "GET", ["importErrors"]:
                errors = self.environment.metadata.get("import_error", [])
                rows = [
                    {
                        "import_error_id": index + 1,
                        "filename": row.get("filename"),
                        "stack_trace": row.get("stack_trace"),
                        "timestamp": row.get("timestamp"),
                    }
                    for index, row in enumerate(errors)
                ]
                return self._page("import_errors", rows, query)
            case "POST", ["dags", dag_id, "dagRuns"]:
                return self._trigger(dag_id, body)
            case "GET", ["dags", dag_id, "dagRuns"]:
                self._require_dag(dag_id)
                runs = self.cli._runs(dag_id)
                for run in runs:
                    self.cli._read_state(run)
                return self._page("dag_runs", [self._run_json(run) for run in runs], query)
            case "GET", ["dags", dag_id, "dagRuns", run_id]:
                run = self._require_run(dag_id, run_id)
                self.cli._read_state(run)
                return self._run_json(run)
            case "GET", ["dags", dag_id, "dagRuns", run_id, "taskInstances"]:
                run = self._require_run(dag_id, run_id)
                self.cli._read_state(run)
                rows = [self._ti_json(ti) for ti in self._task_instances([dag_id], run_id)]
                return self._page("task_instances", rows, query)
            case "POST", ["dags", "~", "dagRuns", "~", "taskInstances", "list"]:
                dag_ids = body.get("dag_ids")
                instances = self._task_instances(dag_ids if isinstance(dag_ids, list) else None, None)
                states = body.get("state")
                if isinstance(states, list):
                    instances = [ti for ti in instances if ti.get("state") in states]
                page = {"limit": body.get("page_limit", MAX_PAGE), "offset": body.get("page_offset", 0)}
                return self._page("task_instances", [self._ti_json(ti) for ti in instances], page)
        if parts and parts[0] in {"dags", "importErrors", "version"}:
            raise _HttpError(405, "Method Not Allowed", f"{method} is not allowed on /{'/'.join(parts)}")
        raise _not_found(f"/{'/'.join(parts)} is not an endpoint of the Airflow REST API")

    # ---- DAGs

    def _dags(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        self.cli._parse_dag_folder()  # the scheduler parses the DAG folder as time goes by
        dags = sorted(
            (row for row in self.environment.metadata.get("dag", []) if row.get("is_active", True)),
            key=lambda row: str(row["dag_id"]),
        )
        pattern = query.get("dag_id_pattern")
        if pattern:
            dags = [row for row in dags if str(pattern).lower() in str(row["dag_id"]).lower()]
        return dags

    def _require_dag(self, dag_id: str) -> dict[str, Any]:
        dag = self.cli._dag(dag_id)
        if dag is None:
            raise _not_found(f"DAG with dag_id: '{dag_id}' not found")
        return dag

    def _set_paused(self, dags: list[dict[str, Any]], query: dict[str, Any], body: dict[str, Any]) -> None:
        mask = query.get("update_mask")
        fields = mask if isinstance(mask, list) else [mask] if mask else list(body)
        if any(field != "is_paused" for field in fields):
            raise _bad_request(f"Only `is_paused` field can be updated through the REST API, not {fields}")
        if not isinstance(body.get("is_paused"), bool):
            raise _bad_request("{'is_paused': ['Not a valid boolean.']}")
        for dag in dags:
            dag["is_paused"] = body["is_paused"]

    def _patch_dags(self, query: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if not query.get("dag_id_pattern") and not self.airflow3:
            raise _bad_request("dag_id_pattern is required")
        dags = self._dags(query)
        self._set_paused(dags, query, body)
        return self._page("dags", [self._dag_json(dag) for dag in dags], {"limit": MAX_PAGE})

    def _dag_json(self, dag: dict[str, Any]) -> dict[str, Any]:
        dag_id = str(dag["dag_id"])
        row: dict[str, Any] = {
            "dag_id": dag_id,
            "dag_display_name": dag_id,
            "is_paused": bool(dag.get("is_paused", False)),
            "is_active": bool(dag.get("is_active", True)),
            "fileloc": str(dag.get("fileloc") or f"{_DAGS_FOLDER}/{dag_id}.py"),
            "owners": str(dag.get("owners") or "airflow").split(","),
            "description": dag.get("description"),
            "tags": [],
        }
        if not self.airflow3:
            row |= {"root_dag_id": None, "is_subdag": False, "file_token": dag_id}
        return row

    # ---- DAG runs

    def _require_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        self._require_dag(dag_id)
        for run in self.cli._runs(dag_id):
            if run.get("run_id") == run_id:
                return run
        raise _not_found(f"DAGRun with DAG ID: '{dag_id}' and DagRun ID: '{run_id}' not found")

    def _trigger(self, dag_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self._require_dag(dag_id)
        if self.airflow3 and "logical_date" not in body:
            raise _HttpError(422, "Unprocessable Entity", "logical_date: Field required")
        conf = body.get("conf", {})
        if not isinstance(conf, dict):
            raise _bad_request("{'conf': ['Not a valid mapping type.']}")
        run_id = body.get("dag_run_id")
        if run_id is not None and any(run.get("run_id") == run_id for run in self.cli._runs(dag_id)):
            raise _HttpError(
                409, "Conflict", f"DAGRun with DAG ID: '{dag_id}' and DAGRun ID: '{run_id}' already exists"
            )
        arguments = argparse.Namespace(
            dag_id=dag_id, run_id=run_id, conf=json.dumps(conf), logical_date=None, output="json"
        )
        try:
            self.cli.dags_trigger(arguments)
        except CommandError as error:
            raise _bad_request(str(error).strip()) from None
        run = self.cli._runs(dag_id)[-1]
        if self.airflow3:
            run["triggered_by"] = "rest_api"
        return self._run_json(run)

    def _run_json(self, run: dict[str, Any]) -> dict[str, Any]:
        date = self.cli._date_of(run) or None
        row: dict[str, Any] = {
            "dag_id": run.get("dag_id"),
            "dag_run_id": run.get("run_id"),
            "logical_date": date,
            "start_date": run.get("start_date"),
            "end_date": run.get("end_date"),
            "data_interval_start": run.get("data_interval_start"),
            "data_interval_end": run.get("data_interval_end"),
            "last_scheduling_decision": run.get("last_scheduling_decision"),
            "run_type": run.get("run_type"),
            "state": run.get("state"),
            "conf": run.get("conf") or {},
            "note": None,
        }
        if self.airflow3:
            row |= {"run_after": run.get("run_after") or date, "triggered_by": run.get("triggered_by")}
        else:
            row |= {"execution_date": date, "external_trigger": bool(run.get("external_trigger", True))}
        return row

    # ---- task instances

    def _task_instances(self, dag_ids: list[Any] | None, run_id: str | None) -> list[dict[str, Any]]:
        return [
            ti
            for ti in self.environment.metadata.get("task_instance", [])
            if (dag_ids is None or ti.get("dag_id") in dag_ids)
            and (run_id is None or ti.get("run_id") == run_id)
        ]

    def _ti_json(self, ti: dict[str, Any]) -> dict[str, Any]:
        return {
            "task_id": ti.get("task_id"),
            "dag_id": ti.get("dag_id"),
            "dag_run_id": ti.get("run_id"),
            "map_index": ti.get("map_index", -1),
            "state": ti.get("state"),
            "try_number": ti.get("try_number"),
            "start_date": ti.get("start_date"),
            "end_date": ti.get("end_date"),
            "pool": ti.get("pool"),
            "queue": ti.get("queue"),
        }

    # ---- pages

    @staticmethod
    def _page(key: str, rows: list[dict[str, Any]], query: dict[str, Any]) -> dict[str, Any]:
        try:
            limit = min(int(query.get("limit", MAX_PAGE)), MAX_PAGE)
            offset = int(query.get("offset", 0))
        except (TypeError, ValueError):
            raise _bad_request("limit and offset must be integers") from None
        if limit < 0 or offset < 0:
            raise _bad_request("limit and offset must not be negative")
        return {key: rows[offset : offset + limit], "total_entries": len(rows)}
