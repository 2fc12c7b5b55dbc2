"""The emulator's InvokeRestApi: botocore's request and response shapes, Airflow's REST API paths and
bodies, and MWAA's limits (10 s, 6 MB, 64-character paths, Airflow 2.4.3 and later)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulation.mwaa import MwaaEmulator

DAG = "export_metadata"


@pytest.fixture
def source(emulator: MwaaEmulator) -> str:
    emulator.add_environment(
        {"Name": "source", "AirflowVersion": "2.10.3"},
        {
            "dag": [{"dag_id": DAG, "is_paused": True}, {"dag_id": "daily_sales", "is_paused": False}],
            "import_error": [{"filename": "/usr/local/airflow/dags/broken.py", "stack_trace": "SyntaxError"}],
        },
    )
    return "source"


def _invoke(mwaa: Any, path: str, method: str = "GET", **arguments: Any) -> Any:
    return mwaa.invoke_rest_api(Name="source", Path=path, Method=method, **arguments)


def _error(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, Any]:
    response: Any = raised.value.response
    return response["Error"]["Code"], response.get("RestApiStatusCode"), response.get("RestApiResponse")


def test_triggering_a_run_answers_airflows_dag_run(mwaa, source):
    answer = _invoke(
        mwaa, f"/dags/{DAG}/dagRuns", "POST", Body={"dag_run_id": "r1", "conf": {"phase": "bulk"}}
    )

    assert answer["RestApiStatusCode"] == 200
    run = answer["RestApiResponse"]
    assert run["dag_id"] == DAG
    assert run["dag_run_id"] == "r1"
    assert run["state"] == "queued"
    assert run["conf"] == {"phase": "bulk"}
    assert run["external_trigger"] is True
    assert run["execution_date"] == run["logical_date"]


def test_a_run_is_followed_to_success_through_its_own_path(mwaa, emulator, source):
    _invoke(
        mwaa,
        f"/dags/{DAG}",
        "PATCH",
        QueryParameters={"update_mask": ["is_paused"]},
        Body={"is_paused": False},
    )
    _invoke(mwaa, f"/dags/{DAG}/dagRuns", "POST", Body={"dag_run_id": "r1"})

    states = []
    for _ in range(10):  # a deadline: the emulator ends a run after dag_run_polls reads
        states.append(_invoke(mwaa, f"/dags/{DAG}/dagRuns/r1")["RestApiResponse"]["state"])
        if states[-1] in {"success", "failed"}:
            break

    assert states[0] == "running"
    assert states[-1] == "success"


def test_triggering_the_same_run_id_again_answers_409(mwaa, source):
    _invoke(mwaa, f"/dags/{DAG}/dagRuns", "POST", Body={"dag_run_id": "r1"})

    with pytest.raises(ClientError) as raised:
        _invoke(mwaa, f"/dags/{DAG}/dagRuns", "POST", Body={"dag_run_id": "r1"})

    code, status, body = _error(raised)
    assert (code, status) == ("RestApiClientException", 409)
    assert body["title"] == "Conflict"
    assert "already exists" in body["detail"]


def test_an_unknown_dag_answers_airflows_404_problem(mwaa, source):
    with pytest.raises(ClientError) as raised:
        _invoke(mwaa, "/dags/nope/dagRuns", "POST", Body={})

    code, status, body = _error(raised)
    assert (code, status) == ("RestApiClientException", 404)
    assert body["status"] == 404
    assert body["title"] == "Not Found"
    assert body["type"].endswith("#section/Errors/NotFound")


def test_pausing_a_dag_through_patch_shows_in_the_dag_list(mwaa, source):
    patched = _invoke(
        mwaa,
        "/dags/daily_sales",
        "PATCH",
        QueryParameters={"update_mask": ["is_paused"]},
        Body={"is_paused": True},
    )
    listed = _invoke(mwaa, "/dags", QueryParameters={"limit": 100, "offset": 0})["RestApiResponse"]

    assert patched["RestApiResponse"]["is_paused"] is True
    assert listed["total_entries"] == 2
    assert {dag["dag_id"]: dag["is_paused"] for dag in listed["dags"]} == {DAG: True, "daily_sales": True}


def test_patch_with_a_pattern_changes_every_matching_dag(mwaa, source):
    answer = _invoke(
        mwaa,
        "/dags",
        "PATCH",
        QueryParameters={"dag_id_pattern": "sales", "update_mask": ["is_paused"]},
        Body={"is_paused": True},
    )

    assert [dag["dag_id"] for dag in answer["RestApiResponse"]["dags"]] == ["daily_sales"]


def test_only_is_paused_may_be_patched(mwaa, source):
    with pytest.raises(ClientError) as raised:
        _invoke(mwaa, f"/dags/{DAG}", "PATCH", Body={"is_paused": True, "owners": ["me"]})

    assert _error(raised)[:2] == ("RestApiClientException", 400)


def test_the_list_endpoints_page(mwaa, source):
    first = _invoke(mwaa, "/dags", QueryParameters={"limit": 1, "offset": 0})["RestApiResponse"]
    second = _invoke(mwaa, "/dags", QueryParameters={"limit": 1, "offset": 1})["RestApiResponse"]

    assert [d["dag_id"] for d in first["dags"] + second["dags"]] == ["daily_sales", DAG]
    assert first["total_entries"] == second["total_entries"] == 2


def test_import_errors_have_airflows_fields(mwaa, source):
    errors = _invoke(mwaa, "/importErrors")["RestApiResponse"]

    assert errors["total_entries"] == 1
    assert errors["import_errors"][0]["filename"] == "/usr/local/airflow/dags/broken.py"
    assert errors["import_errors"][0]["stack_trace"] == "SyntaxError"
    assert errors["import_errors"][0]["import_error_id"] == 1


def test_task_instances_of_a_run_by_its_path_and_by_the_batch_endpoint(mwaa, emulator, source):
    environment = emulator.environment("source")
    environment.metadata["dag_run"] = [{"dag_id": DAG, "run_id": "r1", "state": "failed"}]
    environment.metadata["task_instance"] = [
        {"dag_id": DAG, "run_id": "r1", "task_id": "export", "state": "failed"},
        {"dag_id": DAG, "run_id": "r0", "task_id": "export", "state": "success"},
    ]

    own = _invoke(mwaa, f"/dags/{DAG}/dagRuns/r1/taskInstances")["RestApiResponse"]
    batch = _invoke(
        mwaa, "/dags/~/dagRuns/~/taskInstances/list", "POST", Body={"dag_ids": [DAG], "state": ["failed"]}
    )["RestApiResponse"]

    assert [(ti["task_id"], ti["state"]) for ti in own["task_instances"]] == [("export", "failed")]
    assert [(ti["dag_run_id"], ti["state"]) for ti in batch["task_instances"]] == [("r1", "failed")]


def test_a_path_over_64_characters_is_refused_by_the_model(mwaa, source):
    with pytest.raises(ClientError) as raised:
        _invoke(mwaa, f"/dags/{DAG}/dagRuns/{'r' * 50}")

    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "length less than or equal to 64" in raised.value.response["Error"]["Message"]


def test_an_environment_older_than_2_4_3_must_be_updated(mwaa, emulator):
    emulator.add_environment({"Name": "source", "AirflowVersion": "2.2.2"})

    with pytest.raises(ClientError) as raised:
        _invoke(mwaa, "/dags")

    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "Update your environment to use InvokeRestApi" in raised.value.response["Error"]["Message"]


def test_a_call_airflow_takes_longer_than_the_timeout_for_ends_with_a_server_error(mwaa, emulator, source):
    emulator.rest_api.timeout = 0.2  # MWAA's 10 s, shortened for the test
    emulator.inject_delay("InvokeRestApi", 1.0)

    with pytest.raises(ClientError) as raised:
        _invoke(mwaa, f"/dags/{DAG}/dagRuns", "POST", Body={"dag_run_id": "r1"})

    assert _error(raised)[:2] == ("RestApiServerException", 504)
    # Airflow carried it out all the same: the answer is what was lost.
    assert _invoke(mwaa, f"/dags/{DAG}/dagRuns/r1")["RestApiResponse"]["dag_run_id"] == "r1"


def test_an_answer_over_6_mb_is_refused(mwaa, emulator, source):
    emulator.environment("source").metadata["import_error"] = [
        {"filename": f"/usr/local/airflow/dags/f{n}.py", "stack_trace": "x" * 1_000_000} for n in range(7)
    ]

    with pytest.raises(ClientError) as raised:
        _invoke(mwaa, "/importErrors")

    code, _, body = _error(raised)
    assert code == "RestApiServerException"
    assert "6 MB" in body["detail"]


def test_an_unknown_environment_is_not_found(mwaa, emulator):
    with pytest.raises(mwaa.exceptions.ResourceNotFoundException):
        _invoke(mwaa, "/dags")


def test_airflow_3_needs_a_logical_date_to_trigger(mwaa, emulator):
    emulator.add_environment({"Name": "source", "AirflowVersion": "3.0.6"}, {"dag": [{"dag_id": DAG}]})

    with pytest.raises(ClientError) as raised:
        _invoke(mwaa, f"/dags/{DAG}/dagRuns", "POST", Body={"dag_run_id": "r1"})
    answer = _invoke(mwaa, f"/dags/{DAG}/dagRuns", "POST", Body={"dag_run_id": "r1", "logical_date": None})

    assert _error(raised)[:2] == ("RestApiClientException", 422)
    assert answer["RestApiResponse"]["triggered_by"] == "rest_api"
    assert "execution_date" not in answer["RestApiResponse"]


def test_every_call_is_recorded(mwaa, emulator, source):
    _invoke(mwaa, "/version")

    assert ("InvokeRestApi", "source") in emulator.calls
    assert emulator.rest_api.requests == [("source", "GET", "/version")]
