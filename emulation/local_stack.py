"""The whole pipeline on this machine: moto for S3, IAM, CloudWatch Logs, Lambda and Step Functions
(which executes the real ASL), the project's MWAA emulator for MWAA, and the handlers in process.

    with LocalStack(scenario) as stack:
        execution = stack.start(name="demo-1")
        stack.wait(execution)
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import boto3
import jsonpath_ng.ext.parser
import jsonpath_ng.parser
import urllib3.util.retry
from moto import mock_aws
from moto.logs.models import logs_backends
from moto.moto_api._internal import mock_random
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.asl.utils import json_path
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from emulation.accounts import ACCOUNT_ID, MWAA_SERVICES, create_service_role
from emulation.dag_runtime import MigrationDagRuntime
from emulation.distributed_map import emulate_distributed_map
from emulation.hands_on import (
    HandsOnOperator,
    lambda_targets_delivered,
    put_manifest_landed_rule,
    with_operator,
)
from emulation.lambdas import (
    REPO_ROOT,
    InProcessLambdas,
    acting_as,
    as_function,
    function_folders,
    load_handler,
    logical_id,
    placeholder_zip,
    run_lambdas_in_process,
)
from emulation.logs_limits import enforce_logs_limits
from emulation.moto_fixes import (
    execution_history_serialized_once,
    task_failure_cause_kept,
    task_timeouts_always_evaluated,
)
from emulation.moto_kms import rsa_decryption
from emulation.mwaa import DagRunResult, DagRuntime, EmulatedEnvironment, MwaaEmulator
from emulation.scenario import Scenario, TaskLogStream, UnknownScenario
from emulation.scenario import find as find_scenario
from emulation.self_managed import (
    NO_AWS_CREDENTIALS,
    SelfManagedWebserver,
    ServedSelfManaged,
    seed_self_managed,
    seed_served_self_managed,
)
from emulation.self_managed import USERNAME as SELF_MANAGED_USERNAME
from mwaa_migrate import clients, settings
from mwaa_migrate.execution import approval_wait, execution_history, new_execution_name
from mwaa_migrate.models import source_name_of

if TYPE_CHECKING:
    from mypy_boto3_logs.type_defs import InputLogEventTypeDef
    from mypy_boto3_stepfunctions.type_defs import DescribeExecutionOutputTypeDef

ASL_PATH = REPO_ROOT / "statemachine" / "migration.asl.json"
STATE_MACHINE_NAME = "mwaa-migrate-migration"
LAMBDA_ROLE = "mwaa-migrate-local-lambda"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
# The source's log groups, one per Airflow log module.
LOG_MODULES = ("Task", "Worker", "Scheduler", "DAGProcessing", "WebServer")


@dataclass(frozen=True)
class Timing:
    """Poll intervals and deadlines that the template takes as parameters."""

    environment_poll_seconds: int = 0
    environment_max_polls: int = 20
    dag_poll_seconds: int = 0
    dag_max_polls: int = 20
    log_copy_max_concurrency: int = 4
    log_copy_tolerated_failure_percentage: int = 0


def definition(function_arns: dict[str, str], timing: Timing) -> str:
    """The ASL with its ${...} placeholders filled, as CloudFormation's DefinitionSubstitutions does."""
    substitutions = {f"{name}Arn": arn for name, arn in function_arns.items()}
    substitutions.update(
        EnvironmentPollSeconds=str(timing.environment_poll_seconds),
        EnvironmentMaxPolls=str(timing.environment_max_polls),
        DagPollSeconds=str(timing.dag_poll_seconds),
        DagMaxPolls=str(timing.dag_max_polls),
        LogCopyMaxConcurrency=str(timing.log_copy_max_concurrency),
        LogCopyToleratedFailurePercentage=str(timing.log_copy_tolerated_failure_percentage),
    )
    text = ASL_PATH.read_text()
    for key, value in substitutions.items():
        text = text.replace("${" + key + "}", value)
    if "${" in text:
        missing = text[text.index("${") : text.index("}", text.index("${")) + 1]
        raise ValueError(f"the ASL uses {missing}, which the local stack does not fill")
    return text


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    with mock.patch.dict(os.environ, values):
        settings.settings.cache_clear()
        clients.reset()
        try:
            yield
        finally:
            settings.settings.cache_clear()
            clients.reset()


class LocalStack:
    def __init__(
        self,
        scenario: Scenario,
        *,
        timing: Timing | None = None,
        instant_retries: bool = True,
        real_airflow: Callable[[LocalStack], DagRuntime] | None = None,
        served_self_managed: ServedSelfManaged | None = None,
    ) -> None:
        """`real_airflow` makes the emulator's CLI endpoint run DAGs in real Airflow: it is called
        once AWS is emulated and returns the DagRuntime to use (emulation.real_airflow).
        `served_self_managed`: a self-managed source's Airflow served outside the emulation (its own
        web server), which the stack then only seeds the secret, role and bucket for."""
        self.scenario = scenario
        self.real_airflow = real_airflow
        self.served_self_managed = served_self_managed
        self.timing = timing or Timing()
        self.instant_retries = instant_retries
        self.region = scenario.region
        self.retry_sleeps: list[float] = []
        # The backoffs urllib3 waited before resending a CLI or REST request (instant_cli_retries).
        self.cli_retry_sleeps: list[float] = []
        # A self-managed source's (the request's `source` block): the stack's RSA sealing key, the
        # Airflow's REST API and its password (for tests that look for it where it must not be).
        self.sealing_key_arn: str | None = None
        self.self_managed_webserver: SelfManagedWebserver | None = None
        self.self_managed_password: str | None = None
        self._exit = ExitStack()

    # -- set up -------------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    def _start(self) -> None:
        scenario = self.scenario
        self._exit.enter_context(
            _environment(
                {
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing",
                    "AWS_DEFAULT_REGION": self.region,
                    "AWS_REGION": self.region,
                    "MOTO_ACCOUNT_ID": ACCOUNT_ID,
                    "POWERTOOLS_SERVICE_NAME": "mwaa-migrate",
                    "POWERTOOLS_METRICS_NAMESPACE": "MwaaMigrate",
                    "POWERTOOLS_TRACE_DISABLED": "1",
                    "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
                    "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
                    "MIGRATION_BUCKET": scenario.migration_bucket,
                    # The ARN the stack gives SettleStoppedExecution (the name is fixed).
                    "STATE_MACHINE_ARN": (
                        f"arn:aws:states:{self.region}:{ACCOUNT_ID}:stateMachine:{STATE_MACHINE_NAME}"
                    ),
                    "POLICY_NAME_PREFIX": "mwaa-migrate",
                    "MWAA_CLI_SCHEME": "http",
                    "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
                    **(
                        {}
                        if scenario.functions_in_vpc is None
                        else {"WEBSERVER_FUNCTIONS_IN_VPC": str(scenario.functions_in_vpc).lower()}
                    ),
                }
            )
        )
        self._exit.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        # moto logs each failed state with a dump of the whole parse tree; the history says it better.
        self._exit.enter_context(_quiet("moto.stepfunctions"))
        self.put_log = self._exit.enter_context(enforce_logs_limits())
        self._exit.enter_context(emulate_distributed_map())
        self._exit.enter_context(_parse_once())
        self._exit.enter_context(task_timeouts_always_evaluated())
        self._exit.enter_context(execution_history_serialized_once())
        self._exit.enter_context(task_failure_cause_kept())
        if self.instant_retries:
            self._exit.enter_context(instant_state_retries(self.retry_sleeps))
            # A real web server's 503 while it starts is what the backoff waits out; the emulator's
            # 5xx answers are scripted, and their backoffs only make a run idle.
            if self.real_airflow is None and self.served_self_managed is None:
                self._exit.enter_context(instant_cli_retries(self.cli_retry_sleeps))

        self.s3 = boto3.client("s3", region_name=self.region)
        self.iam = boto3.client("iam", region_name=self.region)
        self.logs = boto3.client("logs", region_name=self.region)
        self.sfn = boto3.client("stepfunctions", region_name=self.region)
        self.kms = boto3.client("kms", region_name=self.region)
        # The same scenario gets the same key id and S3 object versions (moto draws them from its own
        # random): events recorded from one run (make events) name what a replay's world also has.
        mock_random.seed(0)
        # The stack's MigrationKey, which seals the exported metadata.
        key = self.kms.create_key(Description="mwaa-migrate migration key")
        self.migration_key_arn = key["KeyMetadata"]["Arn"]
        self._exit.enter_context(_environment({"MIGRATION_KEY_ARN": self.migration_key_arn}))

        self.dag_runtime = MigrationDagRuntime(self.s3, self.kms)
        self.mwaa_emulator = MwaaEmulator(
            region=self.region,
            account_id=ACCOUNT_ID,
            s3_client=self.s3,
            logs_client=self.logs,
            dag_runtime=_AsExecutionRole(
                self.dag_runtime if self.real_airflow is None else self.real_airflow(self)
            ),
        )
        endpoint = self.mwaa_emulator.start()
        self._exit.callback(self.mwaa_emulator.stop)
        self._exit.enter_context(_environment({"AWS_ENDPOINT_URL_MWAA": endpoint}))
        self.mwaa = boto3.client("mwaa", region_name=self.region)

        self._seed()
        self.lambdas = InProcessLambdas({})
        self._exit.enter_context(run_lambdas_in_process(self.lambdas))
        # EventBridge's rules invoke their Lambda targets (S3's events for a hands-on export).
        self.event_deliveries = self._exit.enter_context(lambda_targets_delivered(self.lambdas))
        self.state_machine_arn = self._deploy()

    def _seed(self) -> None:
        """Create in the emulated AWS what exists before the migration starts: the scenario's world."""
        scenario = self.scenario
        source = scenario.source
        self.s3.create_bucket(Bucket=scenario.migration_bucket)
        # As the template's MigrationBucket: versioned (the plan references its configuration object
        # by version, so a second plan of the same migration cannot replace what the first wrote).
        self.s3.put_bucket_versioning(
            Bucket=scenario.migration_bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        dag_bucket = source["SourceBucketArn"].split(":::", 1)[-1]
        self.s3.create_bucket(Bucket=dag_bucket)
        # MWAA requires versioning: it reads plugins, requirements and startup script by version.
        self.s3.put_bucket_versioning(Bucket=dag_bucket, VersioningConfiguration={"Status": "Enabled"})
        folder = source["DagS3Path"].strip("/")
        for file_name, text in scenario.dag_files.items():
            self.s3.put_object(Bucket=dag_bucket, Key=f"{folder}/{file_name}", Body=text.encode())
        for path_field in ("PluginsS3Path", "RequirementsS3Path", "StartupScriptS3Path"):
            if source.get(path_field):  # the file the source names (its latest version, none named)
                self.s3.put_object(
                    Bucket=dag_bucket, Key=source[path_field], Body=b"# " + path_field.encode()
                )
        if "source" in scenario.input:
            self._seed_self_managed()
        else:
            roles = {source["ExecutionRoleArn"], scenario.input.get("targetExecutionRoleArn")} - {None}
            for role_arn in roles:
                create_service_role(self.iam, str(role_arn), MWAA_SERVICES)
            self.mwaa_emulator.add_environment(
                source, metadata=json.loads(json.dumps(scenario.source_metadata))
            )
            for module in LOG_MODULES:
                self.logs.create_log_group(logGroupName=f"airflow-{source['Name']}-{module}")
            _write_task_logs(self, scenario.task_logs, f"airflow-{source['Name']}-Task")

        for fault in scenario.faults:
            self.mwaa_emulator.inject_fault(fault.operation, fault.error_code, times=fault.times)
        target = str(scenario.input.get("targetEnvironmentName", ""))
        if scenario.create_failure:
            self.mwaa_emulator.fail_next_create(
                target, scenario.create_failure.error_code, scenario.create_failure.error_message
            )
        if scenario.update_failure:
            self.mwaa_emulator.fail_next_update(
                target, scenario.update_failure.error_code, scenario.update_failure.error_message
            )
        for where, message in scenario.dag_failures.items():
            # "dag_id", "dag_id@phase" or "dag_id@phase/task_id"
            dag_id, _, rest = where.partition("@")
            phase, _, task_id = rest.partition("/")
            self.dag_runtime.fail_dag(dag_id, message, phase=phase or None, task_id=task_id or None)

    def _seed_self_managed(self) -> None:
        """A self-managed source (the request's `source` block): an Airflow no MWAA API knows, its
        REST API served on this machine for the stack's life, the stack's RSA sealing key."""
        self._exit.enter_context(rsa_decryption())
        key = self.kms.create_key(
            Description="mwaa-migrate sealing key", KeySpec="RSA_4096", KeyUsage="ENCRYPT_DECRYPT"
        )
        self.sealing_key_arn = key["KeyMetadata"]["Arn"]
        self._exit.enter_context(_environment({"SEALING_KEY_ARN": self.sealing_key_arn}))
        served = self.served_self_managed
        if served is not None:
            # Its Airflow reaches S3 at the moto server: the functions' S3 client names that endpoint
            # too, so the presigned URLs they sign for its export do; moto's mock in this process
            # still answers their own calls (MOTO_S3_CUSTOM_ENDPOINTS), sharing the server's state.
            self._exit.enter_context(
                _environment(
                    {
                        "AWS_ENDPOINT_URL_S3": served.s3_endpoint,
                        "MOTO_S3_CUSTOM_ENDPOINTS": served.s3_endpoint,
                    }
                )
            )
            reached = seed_served_self_managed(
                served,
                source=self.scenario.source,
                execution_input=self.scenario.input,
                s3=self.s3,
                iam=self.iam,
                secretsmanager=boto3.client("secretsmanager", region_name=self.region),
            )
            self.self_managed_password = served.password
            self.scenario = self.scenario.model_copy(update={"input": reached.execution_input})
            return
        seeded = seed_self_managed(
            self.mwaa_emulator,
            source=self.scenario.source,
            metadata=self.scenario.source_metadata,
            execution_input=self.scenario.input,
            s3=self.s3,
            iam=self.iam,
            secretsmanager=boto3.client("secretsmanager", region_name=self.region),
        )
        self.self_managed_webserver = self._exit.enter_context(seeded.webserver)
        self.self_managed_password = seeded.password
        self.scenario = self.scenario.model_copy(update={"input": seeded.execution_input})

    def _deploy(self) -> str:
        role_arn = create_service_role(
            self.iam, LAMBDA_ROLE, ("lambda.amazonaws.com", "states.amazonaws.com")
        )
        lambda_client = boto3.client("lambda", region_name=self.region)
        arns: dict[str, str] = {}
        for folder in function_folders():
            name = logical_id(folder)
            arns[name] = lambda_client.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role_arn,
                Handler="app.lambda_handler",
                Code={"ZipFile": placeholder_zip()},
                Timeout=900,
            )["FunctionArn"]
            self.lambdas.handlers[name] = as_function(name, load_handler(folder).lambda_handler)
        if self.hands_on_operator_phases is not None:
            self._hands_on(arns)
        return self.sfn.create_state_machine(
            name=STATE_MACHINE_NAME, definition=definition(arns, self.timing), roleArn=role_arn
        )["stateMachineArn"]

    @property
    def hands_on_operator_phases(self) -> frozenset[str] | None:
        """The phases the operator of a source run by hand carries out; None for any other source."""
        access = (self.scenario.input.get("source") or {}).get("access") or {}
        return frozenset(self.scenario.hands_on_phases) if access.get("mode") == "hands_on" else None

    def _hands_on(self, arns: dict[str, str]) -> None:
        """A source run by hand: the stack's rule for the export's manifest, and its operator, who
        follows the steps each time HandOverExport hands an export over."""
        put_manifest_landed_rule(
            boto3.client("events", region_name=self.region),
            self.s3,
            bucket=self.scenario.migration_bucket,
            function_arn=arns["ExportLandedFunction"],
        )
        phases = self.hands_on_operator_phases
        webserver, served = self.self_managed_webserver, self.served_self_managed
        if phases is None:
            raise RuntimeError("the scenario's source is not run by hand")
        # The operator looks for the DAG and at their run (the emulated Airflow answers at once).
        pacing: dict[str, Any] = {}
        if served is not None:
            # A real Airflow's own web server and user: its scheduler parses the copied files and
            # runs the export, so the operator looks as often and as long as the DAG-run loop does.
            api_url, username, password = served.rest_api_url, served.username, served.password
            pacing = {
                "poll_seconds": max(1, self.timing.dag_poll_seconds),
                "polls": max(1, self.timing.dag_max_polls),
            }
        elif webserver is not None and self.self_managed_password is not None:
            api_url, username, password = webserver.api_url, SELF_MANAGED_USERNAME, self.self_managed_password
        else:
            raise RuntimeError("a source run by hand is seeded before the stack is deployed")
        source = self.scenario.source
        self.hands_on_operator = HandsOnOperator(
            self.s3,
            api_url=api_url,
            username=username,
            password=password,
            dags_bucket=str(source["SourceBucketArn"]).split(":::", 1)[-1],
            dag_folder=str(source.get("DagS3Path", "dags")).strip("/"),
            phases=phases,
            **pacing,
        )
        self.lambdas.handlers["HandOverExportFunction"] = with_operator(
            self.lambdas.handlers["HandOverExportFunction"], self.hands_on_operator
        )

    # -- run ----------------------------------------------------------------------------------
    def start(self, name: str | None = None, execution_input: dict[str, Any] | None = None) -> str:
        """Start an execution; without a name, one that no other start can share."""
        payload = execution_input if execution_input is not None else self.scenario.input
        if name is None:
            name = new_execution_name(
                str(source_name_of(payload) or "source"),
                str(payload.get("targetEnvironmentName", "target")),
            )
        return self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(payload)
        )["executionArn"]

    def wait(self, execution_arn: str, timeout_seconds: float = 120) -> DescribeExecutionOutputTypeDef:
        """Poll until the execution ends; a deadline stops a run that hangs. A scenario with an
        `approval` answers the cutover's approval wait as its operator would."""
        deadline = time.monotonic() + timeout_seconds
        answered = self.scenario.approval is None
        # Each look is a call to moto, in this process: the interval grows, so that a run that ends
        # at once is seen at once and a long one is not slowed down by the looking.
        interval = 0.02
        while True:
            described = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] in TERMINAL:
                return described
            if not answered and approval_wait(self.history(execution_arn)).waiting:
                self.answer_approval(execution_arn, approve=self.scenario.approval == "approve")
                answered = True
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still {described['status']} after {timeout_seconds}s")
            time.sleep(interval)
            interval = min(interval * 1.5, 0.25)

    def answer_approval(self, execution_arn: str, *, approve: bool, timeout_seconds: float = 30) -> None:
        """What `mwaa-migrate approve` or `reject` does: answer the open wait with its task token,
        which the history holds once the state has scheduled its task."""
        deadline = time.monotonic() + timeout_seconds
        while (token := approval_wait(self.history(execution_arn)).token) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} opened no approval wait in {timeout_seconds}s")
            time.sleep(0.05)
        if approve:
            self.sfn.send_task_success(taskToken=token, output=json.dumps({"approvedBy": "local"}))
        else:
            self.sfn.send_task_failure(taskToken=token, error="CutoverRejected", cause="rejected locally")

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return execution_history(self.sfn, execution_arn, with_data=True)

    def read_json(self, bucket: str, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _write_task_logs(stack: LocalStack, task_logs: list[TaskLogStream], group: str) -> None:
    now_ms = int(time.time() * 1000)
    for log in task_logs:
        stack.logs.create_log_stream(logGroupName=group, logStreamName=log.stream)
        first = now_ms - log.minutes_ago * 60_000
        events: list[InputLogEventTypeDef] = [
            {
                "timestamp": first + index * log.seconds_between_events * 1000,
                "message": f"[{log.stream}] line {index}",
            }
            for index in range(log.events)
        ]
        for start in range(0, len(events), 10_000):
            stack.logs.put_log_events(
                logGroupName=group, logStreamName=log.stream, logEvents=events[start : start + 10_000]
            )
        last = events[-1]["timestamp"] if events else first
        _as_if_written_then(stack, group, log.stream, created_ms=first, ingested_ms=last)


def _as_if_written_then(
    stack: LocalStack, group: str, stream: str, *, created_ms: int, ingested_ms: int
) -> None:
    """Give a seeded stream the times DescribeLogStreams would show had its task written it as it ran:
    created at its first event, last ingested at its last. moto stamps both with the moment of the
    seeding, which would make every stream look active now and the listing select streams whose
    events are all days older than the window (AWS would count them outside it)."""
    seeded = logs_backends[ACCOUNT_ID][stack.region].groups[group].streams[stream]
    seeded.creation_time = datetime.fromtimestamp(created_ms / 1000, UTC).replace(tzinfo=None)
    seeded.last_ingestion_time = datetime.fromtimestamp(ingested_ms / 1000, UTC).replace(tzinfo=None)
    for event in seeded.events:
        event.ingestion_time = event.timestamp


class _AsExecutionRole:
    """A DAG's AWS calls are its environment's execution role's (emulation.lambdas.acting_as)."""

    def __init__(self, runtime: DagRuntime) -> None:
        self.runtime = runtime

    def run(self, environment: EmulatedEnvironment, dag_id: str, conf: dict[str, Any]) -> DagRunResult:
        # A self-managed Airflow has no execution role: its DAGs hold no AWS credentials at all.
        role = environment.description.get("ExecutionRoleArn") or NO_AWS_CREDENTIALS
        with acting_as(str(role)):
            return self.runtime.run(environment, dag_id, conf)


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


# moto's AmazonStateLanguageParser.parse, kept before any LocalStack patches it.
_MOTO_PARSE = AmazonStateLanguageParser.parse


@functools.lru_cache(maxsize=16)
def _syntax_tree(definition: str) -> Any:  # antlr4's ParserRuleContext
    return _MOTO_PARSE(definition)[1]


# The JSONPath expressions of the ASL (InputPath, ResultPath, "x.$" parameters), compiled once a
# process: moto compiles each one again every time a state evaluates it.
_json_path = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parser.parse)
_result_path = functools.lru_cache(maxsize=1024)(jsonpath_ng.parser.parse)


# Definitions CreateStateMachine has found valid in this process.
_valid_definitions: set[str] = set()
_MOTO_VALIDATE = StepFunctionsParserBackend._validate_definition


def _validate_once(definition: str) -> None:
    if definition not in _valid_definitions:
        _MOTO_VALIDATE(definition)
        _valid_definitions.add(definition)


@contextmanager
def _parse_once() -> Iterator[None]:
    """moto's Step Functions, without doing the same work twice: what only makes it faster. The ASL
    and its JSONPath expressions are parsed once a process, a definition is validated once, and a
    stack's Lambda invocations share one client (moto makes a new one for every Task)."""
    clients: dict[tuple[str, str], Any] = {}

    def lambda_client(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service)
        if key not in clients:
            clients[key] = boto_client_for(region, service, state_credentials)
        return clients[key]

    with (
        mock.patch.object(AmazonStateLanguageParser, "parse", staticmethod(_parse_with_cached_syntax)),
        mock.patch.object(StepFunctionsParserBackend, "_validate_definition", staticmethod(_validate_once)),
        mock.patch.object(json_path, "parse", _json_path),
        mock.patch.object(result_path, "parse", _result_path),
        mock.patch.object(lambda_eval_utils, "boto_client_for", lambda_client),
    ):
        yield


def _parse_with_cached_syntax(definition: str) -> tuple[EvalComponent, Any]:
    """moto's parse, with the ANTLR parse of each definition done once a process. moto parses the
    whole definition on CreateStateMachine and again on every StartExecution: for this ASL that is
    most of a second each, most of a local stack's set-up. The syntax tree is only read; the program
    (the evaluation components, which hold an execution's state) is built anew from it each time,
    as moto does. A definition that does not parse raises each time (nothing is cached)."""
    tree = _syntax_tree(definition)
    return Preprocessor().visit(tree), tree


@contextmanager
def instant_state_retries(sleeps: list[float] | None = None) -> Iterator[list[float]]:
    """moto's Step Functions retries a state as its Retry says, but records each interval instead
    of sleeping it."""
    recorded = sleeps if sleeps is not None else []
    with mock.patch.object(retrier_decl, "time", _RecordingClock(recorded)):
        yield recorded


@contextmanager
def instant_cli_retries(sleeps: list[float] | None = None) -> Iterator[list[float]]:
    """urllib3 resends a web server request as the pipeline's Retry says (airflow_cli.default_http),
    but records each backoff and Retry-After instead of sleeping it: a failure path that meets an
    environment answering 5xx does not wait seconds for nothing."""
    recorded = sleeps if sleeps is not None else []
    with mock.patch.object(urllib3.util.retry, "time", _RecordingClock(recorded)):
        yield recorded


class _RecordingClock:
    """Stands in for the time module in a retrier (moto's, urllib3's): records each retry delay,
    sleeps none; tells the time as the time module does (urllib3 reads it for a Retry-After date)."""

    def __init__(self, sleeps: list[float]) -> None:
        self.sleeps = sleeps

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def time(self) -> float:
        return time.time()


def scenario_path(name: str) -> Path:
    """The file of a scenario given by name (under scenarios/) or path; a name that matches none
    gives the path it would have under scenarios/ (emulation.scenario.find says what exists)."""
    try:
        return find_scenario(name)
    except UnknownScenario:
        return REPO_ROOT / "scenarios" / f"{name}.json"
