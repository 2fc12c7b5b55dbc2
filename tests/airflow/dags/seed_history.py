"""DAGs whose real runs give the source environment its history: successes, a retried task, a
failing task and its downstream, mapped tasks, XComs, a pool, a connection and a variable in use,
and datasets: a producer whose run updates one, a consumer the scheduler runs on that event, and a
paused consumer (Airflow before 2.10 queues a trigger for it that waits until it is unpaused)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.datasets import Dataset
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

SALES = Dataset("s3://lake/sales")

with DAG(
    dag_id="publish_sales",
    schedule=None,  # triggered once by the tier
    start_date=datetime(2026, 11, 1),
    catchup=False,
    default_args=DEFAULTS,
    tags=["seed"],
):

    @task(outlets=[SALES])
    def publish() -> int:
        return 7

    publish()

with DAG(
    dag_id="sales_report",
    schedule=[SALES],
    start_date=datetime(2026, 11, 1),
    catchup=False,
    default_args=DEFAULTS,
    tags=["seed"],
):

    @task
    def report(**context) -> list:
        return [event.source_dag_id for event in context["triggering_dataset_events"][SALES.uri]]

    report()

with DAG(
    dag_id="weekly_rollup",
    schedule=[SALES],
    start_date=datetime(2026, 11, 1),
    catchup=False,
    tags=["seed"],
):

    @task
    def rollup() -> None:
        pass

    rollup()
