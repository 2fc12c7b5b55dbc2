"""The whole pipeline on the local emulation, with the MWAA emulator's CLI endpoint running the
export and import DAGs in real Airflow: the state machine, the handlers and the MWAA emulator as
in `make demo`, and real Airflow 2.7.2 (the source, with history from its own scheduler) and 2.10.3
(the target, created when the pipeline's CreateEnvironment's environment first runs a DAG) behind
the CLI endpoint. S3 and KMS are moto's, reached by the DAGs through a moto server that shares the
emulation's state.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from emulation.local_stack import LocalStack, scenario_path
from emulation.mwaa import DagRuntime
from emulation.real_airflow import AirflowEnvironment, AirflowInstallation, RealAirflowDagRuntime
from emulation.scenario import Scenario
from tests.airflow.tier import SECTIONS, SEED_DAGS, report, seed_source

pytestmark = pytest.mark.airflow

SOURCE_VERSION, TARGET_VERSION = "2.7.2", "2.10.3"


@pytest.fixture(scope="module")
def real_source(
    installations: dict[str, AirflowInstallation], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowEnvironment]:
    if SOURCE_VERSION not in installations or TARGET_VERSION not in installations:
        pytest.skip(f"the tier's versions do not include {SOURCE_VERSION} and {TARGET_VERSION}")
    environment = AirflowEnvironment.create(
        installations[SOURCE_VERSION], tmp_path_factory.mktemp("local") / "src"
    )
    try:
        seed_source(environment)
        yield environment
    finally:
        environment.drop()


def test_the_local_pipeline_migrates_a_real_airflow_environment(
    real_source: AirflowEnvironment, installations: dict[str, AirflowInstallation], tmp_path: Path
) -> None:
    base = Scenario.load(scenario_path("default"))
    assert base.source["AirflowVersion"] == SOURCE_VERSION
    assert base.input["targetAirflowVersion"] == TARGET_VERSION
    # The emulated DAG folder holds the same DAG files as the real source.
    scenario = base.model_copy(
        update={"dag_files": {name: body.decode() for name, body in SEED_DAGS.items()}, "dag_failures": {}}
    )
    source_report = report(real_source)
    runtimes: list[RealAirflowDagRuntime] = []
    servers: list[ThreadedMotoServer] = []

    def real_airflow(stack: LocalStack) -> DagRuntime:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        servers.append(server)
        host, port = server.get_host_and_port()
        runtime = RealAirflowDagRuntime(
            stack.s3,
            installations=installations,
            home=tmp_path,
            endpoint=f"http://{host}:{port}",
            region=stack.region,
            environments={scenario.source["Name"]: real_source},
        )
        runtimes.append(runtime)
        return runtime

    try:
        with LocalStack(scenario, real_airflow=real_airflow) as stack:
            execution = stack.start(name="real-airflow")
            described = stack.wait(execution, timeout_seconds=900)

            assert described["status"] == "SUCCEEDED", described.get("cause")
            [runtime] = runtimes
            target = runtime.environments[scenario.input["targetEnvironmentName"]]
            assert target.version == TARGET_VERSION
            target_report = report(target)
            for section in SECTIONS:
                assert target_report[section] == source_report[section], section
            assert target_report["paused"]["daily_sales"] is False
            assert report(real_source)["paused"]["daily_sales"] is True
    finally:
        for server in servers:
            server.stop()
        for runtime in runtimes:
            for name, environment in runtime.environments.items():
                if name != scenario.source["Name"]:
                    environment.drop()
