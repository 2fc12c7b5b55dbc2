"""DAGs whose real runs give the source environment its history: successes, a retried task, a
failing task and its downstream, mapped tasks, XComs, a pool, a connection and a variable in use."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.decorators import task

DEFAULTS = {"owner": "analytics", "retries": 1, "retry_delay": timedelta(seconds=0)}

with DAG(
    dag_id="daily_sales",
    schedule="@daily",
    # Exactly two scheduled runs: 2026-11-20 and 2026-11-21.
    start_date=datetime(2026, 11, 20),
    end_date=datetime(2026, 11, 21),
    catchup=True,
    is_paused_upon_creation=False,
    default_args=DEFAULTS,
    tags=["seed"],
):

    @task
    def extract() -> dict:
        return {"rows": 42, "note": "ünïcødé ✓\nsecond line", "nested": {"a": [1, 2.5, None, True]}}

    @task
    def flaky(**context) -> str:
        # Fails its first try, succeeds on the retry: two attempts in the history.
        if context["ti"].try_number <= 1:
            raise RuntimeError("the first try fails on purpose")
        return "recovered"

    @task
    def split() -> list:
        return [1, 2, 3]

    @task(pool="warehouse")
    def load(n: int) -> int:
        return n * 10

    @task
    def uses_secrets() -> str:
        # Imported when the task runs, as Airflow recommends, so parsing the file stays cheap.
        from airflow.hooks.base import BaseHook  # noqa: PLC0415
        from airflow.models import Variable  # noqa: PLC0415

        connection = BaseHook.get_connection("warehouse_db")
        assert connection.password == "p@ss w0rd/with:odd#chars"
        assert Variable.get("partner_api_token") == "s3cr3t-token\nline2 ✓"
        return connection.host

    @task(multiple_outputs=False)
    def push_custom_key(**context) -> None:
        context["ti"].xcom_push(key="row_count", value=1234)

    extract() >> flaky() >> uses_secrets()
    load.expand(n=split())
    push_custom_key()

with DAG(
    dag_id="hourly_events",
    schedule=None,  # triggered, with a conf
    start_date=datetime(2026, 11, 1),
    catchup=False,
    is_paused_upon_creation=False,
    default_args=DEFAULTS,
    tags=["seed"],
):

    @task
    def always_fails() -> None:
        raise ValueError("this task always fails")

    @task
    def never_runs() -> None:
        pass

    always_fails() >> never_runs()

with DAG(
    dag_id="legacy_export",
    schedule=None,
    start_date=datetime(2026, 11, 1),
    catchup=False,
    tags=["seed"],
):

    @task
    def noop() -> None:
        pass

    noop()
