"""The whole pipeline migrating a real self-managed Apache Airflow (issue 16) into the emulated MWAA
target's real Airflow, compared table by table through Airflow itself as the MWAA path is
(test_local_pipeline.py).

The source is what a self-managed deployment runs: a real Airflow 2.7.2 on its own PostgreSQL
database, its history made by its own scheduler (tier.seed_source), its stable REST API served by its
own `airflow webserver` on 127.0.0.1 and an ephemeral port (basic auth, a user made with `airflow
users create`), its DAG runs run by its own `airflow scheduler` (LocalExecutor): ServedAirflow.
Its processes hold no AWS credentials, endpoint or configuration (NO_AWS): the export reaches S3
only through the presigned forms and URLs the pipeline hands it, and seals its data keys with the
public half of the stack's RSA key.

Its DAG folder is the request's `dagsUri` (s3://airflow-onprem/dags/), which the deployment keeps in
step with its local DAG folder as `aws s3 sync --delete` on a timer would: S3DagFolderSync, a thread
with the deployment's own S3 client (not the Airflow processes') that every second writes new or
changed objects into the folder and removes files whose object is gone. So the export DAG files the
plan writes to S3 reach the scheduler only that way, and leave it when the pipeline removes them.

The pipeline is the real state machine on the local stack (scenarios/self_managed.json with the
source on 2.7.2 and its DAG folder holding the seeded DAGs; access mode reached, dryRun false): it
reaches the source only through the REST API (the URL and credentials from the Secrets Manager
secret `mwaa-migrate/onprem-airflow`), and the source reaches S3 at a moto server on loopback that
shares the emulation's state (the functions' S3 client names the same endpoint, so their presigned
URLs do). The target is the MWAA emulator's environment, whose CLI endpoint runs the import in a
real Airflow 2.10.3 (RealAirflowDagRuntime).

Checked: the execution succeeds; Airflow reports the same history on both sides, section by
section; the cutover paused exactly the source's active DAGs on the real source and started them on
the target; every call that reached the source is in its web server's access log as the pipeline's
Airflow user, and MWAA never heard of the source; the execution's history holds no credentials.
A second execution, from a copy of the same seeded source, has the target's cutover import fail
after the source paused its DAGs: the way back unpauses exactly those on the real source through its
REST API (PATCH).

A third, from another copy, runs in access mode hands_on (scenarios/self_managed_hands_on.json): the
pipeline never reaches the source. HandOverExport writes the export DAG's files and each phase's conf
and steps to the migration bucket and waits; the stack's operator (emulation.hands_on.HandsOnOperator)
does what the steps say against the real web server, as its Airflow user: copies the files into the
DAG folder (the S3 one, `dagsUri`: this deployment's dags/ is a copy of it, whose sync would remove a
file put there by hand), waits until the API lists the export DAG, unpauses it, triggers it with the
handed run id and conf, and watches its run; the real scheduler runs it, and S3's event for its
manifest (moto's S3, the template's EventBridge rule, ExportLanded) ends the wait. Checked: the same
history on both sides, the cutover's pause and start, the web server's access log holding only the
operator's calls, and no credential in the execution's history.
"""

from __future__ import annotations

import json
import secrets
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from emulation.local_stack import LocalStack, Timing, scenario_path
from emulation.mwaa import DagRunResult, DagRuntime, EmulatedEnvironment
from emulation.real_airflow import (
    AirflowEnvironment,
    AirflowInstallation,
    ApiCall,
    RealAirflowDagRuntime,
    S3DagFolderSync,
    ServedAirflow,
    copy_database,
)
from emulation.scenario import Scenario
from emulation.self_managed import ServedSelfManaged
from tests.airflow.test_self_managed_export import NO_AWS
from tests.airflow.tier import REGION, SECTIONS, SEED_DAGS, report, seed_source

pytestmark = pytest.mark.airflow

SOURCE_VERSION = "2.7.2"
SCENARIO = "self_managed"
HANDS_ON_SCENARIO = "self_managed_hands_on"
USERNAME = "mwaa-migrate"
EXECUTION = "self-managed-real-airflow"
HANDS_ON_EXECUTION = "self-managed-hands-on"
EXPORT_DAG = "/api/v1/dags/mwaa_migrate_export"
PROJECT_DAG_FILES = ("mwaa_migrate_metadata.py", "mwaa_migrate_export.py")
# The real scheduler parses, queues and runs for real: the DAG-run loop waits between its looks.
TIMING = Timing(dag_poll_seconds=2, dag_max_polls=150)


@dataclass
class Migrated:
    scenario: Scenario
    described: dict[str, Any]
    history: list[dict[str, Any]]
    password: str
    source_before: dict[str, Any]
    source_after: dict[str, Any]
    target_after: dict[str, Any]
    target_version: str
    api_calls: list[ApiCall]
    synced: list[tuple[str, str]]
    mwaa_calls: list[tuple[str, str | None]]
    mwaa_cli_environments: list[str]
    manifest: dict[str, Any]
    sealing_key_arn: str | None
    source_env: dict[str, str]
    export_runs: list[list[str]]
    # A source run by hand: (phase, run id, how it ended) of each export its operator ran, and
    # what went wrong for them.
    operator_runs: list[tuple[str, str, str]]
    operator_errors: list[str]


def _scenario(name: str = SCENARIO) -> Scenario:
    """scenarios/self_managed.json (or self_managed_hands_on.json) with the source on the real one's
    version and its DAG folder holding the real one's DAG files."""
    base = Scenario.load(scenario_path(name))
    source = {**base.source, "AirflowVersion": SOURCE_VERSION}
    request = json.loads(json.dumps(base.input))
    request["source"]["airflowVersion"] = SOURCE_VERSION
    assert request["source"]["access"]["mode"] == ("hands_on" if name == HANDS_ON_SCENARIO else "reached")
    assert not request.get("dryRun")
    return base.model_copy(
        update={
            "source": source,
            "input": request,
            "dag_files": {name: body.decode() for name, body in SEED_DAGS.items()},
            "dag_failures": {},
        }
    )


class _CutoverImportFails:
    """The target's runtime, whose cutover import fails (as a full disk would make it) after the
    source paused its DAGs: the way back must start them again on the source."""

    def __init__(self, runtime: DagRuntime) -> None:
        self.runtime = runtime

    def run(self, environment: EmulatedEnvironment, dag_id: str, conf: dict[str, Any]) -> DagRunResult:
        if dag_id == "mwaa_migrate_import" and conf.get("phase") == "cutover":
            return DagRunResult("failed", failed_task="import_tables", stderr="OSError: disk full")
        return self.runtime.run(environment, dag_id, conf)


def _migrate(
    source: AirflowEnvironment,
    installations: dict[str, AirflowInstallation],
    folder: Path,
    *,
    cutover_import_fails: bool = False,
    scenario_name: str = SCENARIO,
    execution_name: str = EXECUTION,
) -> Migrated:
    """One execution of the whole pipeline from the served source; when it returns, the source's
    processes are stopped, the stack is closed and the target's Airflow is dropped. In access mode
    hands_on the stack's operator runs each export through the source's web server."""
    scenario = _scenario(scenario_name)
    target_name = str(scenario.input["targetEnvironmentName"])
    s3_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3_server.start()
    host, port = s3_server.get_host_and_port()
    s3_endpoint = f"http://{host}:{port}"
    runtimes: list[RealAirflowDagRuntime] = []

    def real_airflow(stack: LocalStack) -> DagRuntime:
        runtime = RealAirflowDagRuntime(
            stack.s3,
            installations=installations,
            home=folder / "targets",
            endpoint=s3_endpoint,
            region=stack.region,
        )
        runtimes.append(runtime)
        return _CutoverImportFails(runtime) if cutover_import_fails else runtime

    # Always led by "-": one token_urlsafe password in 64 is, and Airflow's argparse read one
    # given as `--password <value>` as an option of its own (a CI run failed on it).
    password = "-" + secrets.token_urlsafe(18)
    try:
        with ServedAirflow(source, username=USERNAME, password=password) as served:
            reached = ServedSelfManaged(served.api_url, USERNAME, password, s3_endpoint)
            with LocalStack(
                scenario, timing=TIMING, real_airflow=real_airflow, served_self_managed=reached
            ) as stack:
                # The deployment's own S3 client, as its sync job holds one.
                deployment_s3 = boto3.client(
                    "s3",
                    endpoint_url=s3_endpoint,
                    region_name=REGION,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                )
                dags_bucket = str(scenario.source["SourceBucketArn"]).split(":::", 1)[-1]
                with S3DagFolderSync(
                    deployment_s3,
                    bucket=dags_bucket,
                    folder=str(scenario.source["DagS3Path"]),
                    dags_folder=source.dags_folder,
                ) as sync:
                    source_before = report(source)
                    execution = stack.start(name=execution_name)
                    described = dict(stack.wait(execution, timeout_seconds=900))
                    history = stack.history(execution)
                    # The operator watches their run until it ends (the manifest, its last write,
                    # already ended the execution's wait).
                    operator = stack.hands_on_operator if stack.hands_on_operator_phases is not None else None
                    if operator is not None:
                        operator.wait(timeout_seconds=120)
                    # The timer's next pass, after the pipeline removed its files.
                    sync.sync_once()
                [runtime] = runtimes
                target = runtime.environments.get(target_name)
                prefix = f"migrations/{scenario.source['Name']}/{target_name}"
                manifest_key = f"{prefix}/export/cutover/manifest.json"
                listed = stack.s3.list_objects_v2(Bucket=scenario.migration_bucket, Prefix=manifest_key)
                return Migrated(
                    scenario=scenario,
                    described=described,
                    history=history,
                    password=password,
                    source_before=source_before,
                    source_after=report(source),
                    target_after=report(target) if target is not None else {},
                    target_version=target.version if target is not None else "",
                    api_calls=served.api_calls(),
                    synced=list(sync.synced),
                    mwaa_calls=list(stack.mwaa_emulator.calls),
                    mwaa_cli_environments=[name for name, _ in stack.mwaa_emulator.cli_commands],
                    manifest=stack.read_json(scenario.migration_bucket, manifest_key)
                    if listed.get("KeyCount")
                    else {},
                    sealing_key_arn=stack.sealing_key_arn,
                    source_env=served.env(),
                    export_runs=source.sql(
                        "SELECT run_id, run_type, state FROM dag_run "
                        "WHERE dag_id = 'mwaa_migrate_export' ORDER BY id"
                    ),
                    operator_runs=list(operator.runs) if operator is not None else [],
                    operator_errors=list(operator.errors) if operator is not None else [],
                )
    finally:
        s3_server.stop()
        for runtime in runtimes:
            for environment in runtime.environments.values():
                environment.drop()


@pytest.fixture(scope="module")
def seeded(
    installations: dict[str, AirflowInstallation], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowEnvironment]:
    """The source's history, made once by its own scheduler; each execution gets a copy."""
    target_version = str(_scenario().input["targetAirflowVersion"])
    if SOURCE_VERSION not in installations or target_version not in installations:
        pytest.skip(f"the tier's versions do not include {SOURCE_VERSION} and {target_version}")
    folder = tmp_path_factory.mktemp("self-managed-seeded")
    environment = AirflowEnvironment.create(installations[SOURCE_VERSION], folder, aws_env=NO_AWS)
    try:
        seed_source(environment)
        yield environment
    finally:
        environment.drop()


@contextmanager
def _copy_of(seeded: AirflowEnvironment, home: Path) -> Iterator[AirflowEnvironment]:
    """A source holding the seeded one's database (same Fernet key) and DAG folder."""
    database = f"{seeded.database}_{uuid.uuid4().hex[:8]}"
    copy = AirflowEnvironment(
        seeded.installation, home, copy_database(seeded.database, database), seeded.fernet_key, dict(NO_AWS)
    )
    try:
        shutil.copytree(seeded.dags_folder, copy.dags_folder, ignore=shutil.ignore_patterns("__pycache__"))
        yield copy
    finally:
        copy.drop()


@pytest.fixture(scope="module")
def migrated(
    seeded: AirflowEnvironment,
    installations: dict[str, AirflowInstallation],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Migrated]:
    folder = tmp_path_factory.mktemp("self-managed-migrated")
    with _copy_of(seeded, folder / "source") as source:
        yield _migrate(source, installations, folder)


@pytest.fixture(scope="module")
def run_by_hand(
    seeded: AirflowEnvironment,
    installations: dict[str, AirflowInstallation],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Migrated]:
    """Access mode hands_on: the pipeline hands each export over and waits; the operator copies the
    export DAG's files into the source's DAG folder in S3 (which the deployment's sync brings into
    its dags/ folder), unpauses and triggers it through the real web server; the real scheduler
    runs it; S3's event for its manifest ends the wait."""
    folder = tmp_path_factory.mktemp("self-managed-hands-on")
    with _copy_of(seeded, folder / "source") as source:
        yield _migrate(
            source,
            installations,
            folder,
            scenario_name=HANDS_ON_SCENARIO,
            execution_name=HANDS_ON_EXECUTION,
        )


@pytest.fixture(scope="module")
def rolled_back(
    seeded: AirflowEnvironment,
    installations: dict[str, AirflowInstallation],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Migrated]:
    folder = tmp_path_factory.mktemp("self-managed-rolled-back")
    with _copy_of(seeded, folder / "source") as source:
        yield _migrate(source, installations, folder, cutover_import_fails=True)


def test_the_migration_succeeds(migrated: Migrated) -> None:
    assert migrated.described["status"] == "SUCCEEDED", (
        migrated.described.get("error"),
        migrated.described.get("cause"),
    )
    assert migrated.target_version == migrated.scenario.input["targetAirflowVersion"]


# Both access modes' runs: reached (the pipeline reaches the source) and hands_on (its operator does).
ACCESS_MODES = pytest.mark.parametrize("run", ["migrated", "run_by_hand"])


@ACCESS_MODES
@pytest.mark.parametrize("section", SECTIONS)
def test_airflow_reports_the_same_history_on_both_sides(
    request: pytest.FixtureRequest, run: str, section: str
) -> None:
    migrated: Migrated = request.getfixturevalue(run)
    assert migrated.source_before[section], f"the source made no {section}"
    assert migrated.target_after[section] == migrated.source_before[section]


@ACCESS_MODES
def test_the_cutover_pauses_the_active_dags_on_the_source_and_starts_them_on_the_target(
    request: pytest.FixtureRequest, run: str
) -> None:
    migrated: Migrated = request.getfixturevalue(run)
    # The user's DAGs (the project's own DAG records stay behind, their files removed).
    before = migrated.source_before["paused"]
    active = sorted(dag for dag, paused in before.items() if not paused)
    source_after = {dag: migrated.source_after["paused"][dag] for dag in before}
    target_after = {dag: migrated.target_after["paused"][dag] for dag in before}

    assert active == ["daily_sales", "hourly_events", "publish_sales", "sales_report"]
    assert source_after == dict.fromkeys(before, True)
    assert target_after == {dag: dag not in active for dag in before}


def test_the_source_is_reached_through_its_rest_api_only(migrated: Migrated) -> None:
    calls = migrated.api_calls
    said = {(call.method, call.path) for call in calls}

    assert {call.user for call in calls} == {USERNAME}
    assert ("PATCH", "/api/v1/dags/mwaa_migrate_export") in said
    for phase in ("bulk", "cutover"):
        assert ("GET", f"/api/v1/dags/mwaa_migrate_export/dagRuns/mwaa_migrate__{phase}__{EXECUTION}") in said
    assert [call.path for call in calls if call.method == "POST"] == [
        "/api/v1/dags/mwaa_migrate_export/dagRuns"
    ] * 2
    # A run is looked for before it is started (404), every other call is answered.
    refused = [call for call in calls if call.status >= 400]
    assert all(call.status == 404 and call.method == "GET" and "/dagRuns/" in call.path for call in refused)
    # MWAA never hears of the source: it is no MWAA environment.
    source = migrated.scenario.source["Name"]
    assert [call for call in migrated.mwaa_calls if call[1] == source] == []
    assert source not in migrated.mwaa_cli_environments


def test_the_sources_own_scheduler_ran_the_export_the_api_triggered(migrated: Migrated) -> None:
    assert migrated.export_runs == [
        [f"mwaa_migrate__{phase}__{EXECUTION}", "manual", "success"] for phase in ("bulk", "cutover")
    ]


def test_the_export_dag_reaches_the_source_through_its_s3_dag_folder(migrated: Migrated) -> None:
    put = [name for action, name in migrated.synced if action == "put"]
    deleted = [name for action, name in migrated.synced if action == "delete"]

    assert sorted(put) == sorted(PROJECT_DAG_FILES)
    assert sorted(deleted) == sorted(PROJECT_DAG_FILES)


def test_the_sources_airflow_holds_no_aws_credentials(migrated: Migrated) -> None:
    aws = {name: value for name, value in migrated.source_env.items() if name.startswith("AWS_")}

    assert aws == NO_AWS


def test_the_export_was_sealed_for_the_stacks_rsa_key(migrated: Migrated) -> None:
    assert migrated.manifest["secrets"]["data_key_sealing"] == "RSAES_OAEP_SHA_256"
    assert migrated.manifest["secrets"]["kms_key_id"] == migrated.sealing_key_arn


def test_no_credential_is_in_the_execution_history(migrated: Migrated) -> None:
    history = json.dumps(migrated.history, default=str)

    for leaked in (migrated.password, "X-Amz-Signature", "x-amz-signature", "AWSAccessKeyId", '"policy"'):
        assert leaked not in history


def test_a_failed_cutover_starts_the_dags_again_on_the_real_source_through_its_rest_api(
    rolled_back: Migrated,
) -> None:
    """The target's cutover import fails after the source paused its DAGs: the way back unpauses
    exactly the recorded DAGs on the real source (PATCH through its REST API), the target's stay
    paused, and the execution fails."""
    before = rolled_back.source_before["paused"]
    active = sorted(dag for dag, paused in before.items() if not paused)
    patched = [call.path for call in rolled_back.api_calls if call.method == "PATCH" and call.status == 200]

    assert rolled_back.described["status"] == "FAILED"
    assert {dag: rolled_back.source_after["paused"][dag] for dag in before} == before
    assert {dag: rolled_back.target_after["paused"][dag] for dag in before} == dict.fromkeys(before, True)
    assert sorted(path.rsplit("/", 1)[-1] for path in patched if "mwaa_migrate" not in path) == active
    assert rolled_back.password not in json.dumps(rolled_back.history, default=str)


# ---- access mode hands_on: the operator runs each export through the real web server


def _run_ids(execution: str) -> list[tuple[str, str]]:
    return [(phase, f"mwaa_migrate__{phase}__{execution}") for phase in ("bulk", "cutover")]


def test_the_exports_run_by_hand_land_and_the_migration_succeeds(run_by_hand: Migrated) -> None:
    states = {
        event["stateEnteredEventDetails"]["name"]
        for event in run_by_hand.history
        if "stateEnteredEventDetails" in event
    }

    assert run_by_hand.described["status"] == "SUCCEEDED", (
        run_by_hand.described.get("error"),
        run_by_hand.described.get("cause"),
    )
    assert run_by_hand.operator_errors == []
    assert run_by_hand.operator_runs == [
        (phase, run_id, "success") for phase, run_id in _run_ids(HANDS_ON_EXECUTION)
    ]
    # The source's own scheduler ran the runs the operator triggered; the pipeline triggered none.
    assert run_by_hand.export_runs == [
        [run_id, "manual", "success"] for _, run_id in _run_ids(HANDS_ON_EXECUTION)
    ]
    assert {"HandOverExport", "HandOverCutoverExport"} <= states
    assert not {"TriggerExportDag", "TriggerCutoverExport"} & states
    assert run_by_hand.target_version == run_by_hand.scenario.input["targetAirflowVersion"]


def test_only_the_operator_reaches_the_source_run_by_hand(run_by_hand: Migrated) -> None:
    """The web server's access log: the operator's listing, unpause, trigger and watch of their own
    runs, all answered; nothing of the pipeline's (no run looked for before it exists, no DAG of the
    user's paused or unpaused through the API: the export paused them itself)."""
    calls = run_by_hand.api_calls
    run_paths = {f"{EXPORT_DAG}/dagRuns/{run_id}" for _, run_id in _run_ids(HANDS_ON_EXECUTION)}

    assert {call.user for call in calls} == {USERNAME}
    assert {(call.method, call.path) for call in calls} == {
        ("GET", "/api/v1/dags"),
        ("PATCH", EXPORT_DAG),
        ("POST", f"{EXPORT_DAG}/dagRuns"),
    } | {("GET", path) for path in run_paths}
    assert [call.target for call in calls if call.method == "PATCH"] == [
        f"{EXPORT_DAG}?update_mask=is_paused"
    ] * 2
    assert [call.path for call in calls if call.method == "POST"] == [f"{EXPORT_DAG}/dagRuns"] * 2
    assert [call for call in calls if call.status >= 400] == []
    # The export's files reached the scheduler through the DAG folder the operator copied them into;
    # they stay (the pipeline never touches a source run by hand).
    assert sorted(name for action, name in run_by_hand.synced if action == "put") == sorted(PROJECT_DAG_FILES)
    assert [name for action, name in run_by_hand.synced if action == "delete"] == []
    source = run_by_hand.scenario.source["Name"]
    assert [call for call in run_by_hand.mwaa_calls if call[1] == source] == []
    assert source not in run_by_hand.mwaa_cli_environments


def test_no_credential_is_in_the_history_of_an_execution_run_by_hand(run_by_hand: Migrated) -> None:
    history = json.dumps(run_by_hand.history, default=str)

    for leaked in (run_by_hand.password, "X-Amz-Signature", "x-amz-signature", "AWSAccessKeyId", '"policy"'):
        assert leaked not in history
