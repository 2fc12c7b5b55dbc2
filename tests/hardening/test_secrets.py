"""No secret in any log or output: a whole migration runs with known secret values (the MWAA CLI
tokens it is given, a connection's password and extra, a sensitive variable), and none of them is
found in anything the run leaves for people to read: what every process printed and logged (the
project's logger at DEBUG), the execution's history (every state's input and output) and output, the
migration bucket's objects (reports, locks) and every CloudWatch Logs event (the environments' task
logs, including those of the export and import DAGs).

Not searched: the export's data files, which carry the metadata being migrated (its secret columns
are the subject of the metadata issue's encryption), and the environments' own databases. The test
proves its search works by finding the variable's value where it must be: in the target's database.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws

import emulation.mwaa.control_api
from emulation.faults import instant_botocore_retries
from emulation.local_stack import LocalStack, scenario_path
from emulation.mwaa import MwaaEmulator
from emulation.scenario import Scenario
from mwaa_migrate.environment.clone import clone_environment
from mwaa_migrate.environment.environment_request import PAUSED_AT_CREATION
from mwaa_migrate.environment.environment_status import get_environment
from mwaa_migrate.errors import MigrationConflict
from mwaa_migrate.models import MigrationRequest
from mwaa_migrate.redaction import REDACTED
from mwaa_migrate.run.notifications import EVENT_SOURCE
from mwaa_migrate.run.plan import plan_migration
from mwaa_migrate_cli import plan_view
from tests.hardening.discovery import default_scenario
from tests.unit.test_plan import stack_settings

CANARY = uuid.uuid4().hex[:12]
VARIABLE_VALUE = f"variable-secret-{CANARY}"
PASSWORD = f"connection-password-{CANARY}"
EXTRA_TOKEN = f"connection-extra-{CANARY}"
# Data the export carries (not a log or an output).
_EXPORT_DATA = "/export/"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # The message and every attribute of the record: the structured logger prints its `extra`
        # keys and appended keys, which a formatted message leaves out.
        self.lines.append(self.format(record) + " " + json.dumps(vars(record), default=str))


@contextmanager
def _all_logging() -> Iterator[_Records]:
    """Every log record of every logger, as the Lambda runtime would print them: the root at INFO
    (the template's level), the project's own logger at DEBUG."""
    records = _Records()
    root = logging.getLogger()
    project = logging.getLogger("mwaa-migrate")
    levels = (root.level, project.level)
    root.addHandler(records)
    project.addHandler(records)
    root.setLevel(logging.INFO)
    project.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(records)
        project.removeHandler(records)
        root.setLevel(levels[0])
        project.setLevel(levels[1])


def _scenario() -> Any:
    scenario = default_scenario()
    metadata = json.loads(json.dumps(scenario.source_metadata))
    for variable in metadata["variable"]:
        if variable["key"] == "partner_api_token":
            variable["val"] = VARIABLE_VALUE
    metadata["connection"] = [
        {
            "conn_id": "warehouse",
            "conn_type": "postgres",
            "host": "warehouse.internal",
            "login": "etl",
            "password": PASSWORD,
            "port": 5432,
            "extra": json.dumps({"sslmode": "require", "token": EXTRA_TOKEN}),
            "is_encrypted": True,
            "is_extra_encrypted": True,
        }
    ]
    return scenario.model_copy(update={"source_metadata": metadata})


def _texts(stack: LocalStack, execution_arn: str) -> dict[str, str]:
    """Everything the run left to read, by where it is."""
    texts: dict[str, str] = {}
    described = stack.sfn.describe_execution(executionArn=execution_arn)
    texts["execution output"] = json.dumps(described, default=str)
    texts["execution history"] = json.dumps(stack.history(execution_arn), default=str)
    for bucket in stack.s3.list_buckets()["Buckets"]:
        for item in stack.s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            key = item["Key"]
            if _EXPORT_DATA in key or key.endswith(".py"):
                continue
            body = stack.s3.get_object(Bucket=bucket["Name"], Key=key)["Body"].read()
            texts[f"s3://{bucket['Name']}/{key}"] = body.decode("utf-8", errors="replace")
    for group in stack.logs.describe_log_groups()["logGroups"]:
        name = group["logGroupName"]
        events = stack.logs.filter_log_events(logGroupName=name)["events"]
        texts[f"log group {name}"] = "\n".join(event["message"] for event in events)
    return texts


def test_no_secret_appears_in_any_log_or_output_of_a_migration(capfd: pytest.CaptureFixture[str]) -> None:
    tokens: list[str] = []

    def token(nbytes: int | None = None) -> str:
        tokens.append(f"cli-token-{CANARY}-{len(tokens)}")
        return tokens[-1]

    with (
        mock.patch.object(emulation.mwaa.control_api.secrets, "token_urlsafe", token),
        mock.patch.dict("os.environ", {"POWERTOOLS_LOG_LEVEL": "DEBUG"}),
        _all_logging() as records,
        instant_botocore_retries(),
        LocalStack(_scenario()) as stack,
    ):
        arn = stack.start("secrets")
        described = stack.wait(arn, timeout_seconds=180)
        texts = _texts(stack, arn)
        target = stack.mwaa_emulator.environment("analytics-prod-2-10").metadata

    printed = capfd.readouterr()
    texts["stdout"] = printed.out
    texts["stderr"] = printed.err
    texts["log records"] = "\n".join(records.lines)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert tokens, "the run used the MWAA CLI"
    assert "migration succeeded" in texts["stdout"] + texts["log records"], "the run's logs were captured"
    assert VARIABLE_VALUE in json.dumps(target["variable"]), "the search finds a secret where it is"
    secrets = [VARIABLE_VALUE, PASSWORD, EXTRA_TOKEN, *tokens]
    found = {
        (secret[:24], where)
        for secret in secrets
        for where, text in texts.items()
        if secret in text or json.dumps(secret)[1:-1] in text
    }
    assert found == set(), f"secrets found: {sorted(found)}"


@contextmanager
def _self_managed_run(
    scenario_name: str, capfd: pytest.CaptureFixture[str]
) -> Iterator[tuple[LocalStack, str, dict[str, Any], dict[str, str]]]:
    """A run of the scenario (with the default scenario's secrets in its metadata), its functions'
    logs at DEBUG: the stack, the execution, its description and everything it left to read. The
    texts get what was printed and logged when the block ends."""
    scenario = Scenario.load(scenario_path(scenario_name))
    scenario = scenario.model_copy(update={"source_metadata": _scenario().source_metadata})
    with (
        mock.patch.dict("os.environ", {"POWERTOOLS_LOG_LEVEL": "DEBUG"}),
        _all_logging() as records,
        instant_botocore_retries(),
        LocalStack(scenario) as stack,
    ):
        arn = stack.start("secrets")
        described = dict(stack.wait(arn, timeout_seconds=180))
        texts = _texts(stack, arn)
        yield stack, arn, described, texts
    printed = capfd.readouterr()
    texts["stdout"] = printed.out
    texts["stderr"] = printed.err
    texts["log records"] = "\n".join(records.lines)


def test_no_secret_of_a_self_managed_source_appears_in_any_log_or_output(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Access mode reached: the REST API's password (in Secrets Manager) and the export's presigned
    forms and URLs (signed by TriggerDag, sent to the source's Airflow only) are in nothing people
    read, nor are the migrated connection's and variable's secrets."""
    with _self_managed_run("self_managed", capfd) as (stack, _, described, texts):
        password = str(stack.self_managed_password)
        conf = next(
            run["conf"]
            for run in stack.mwaa_emulator.environment("onprem-airflow").table("dag_run")
            if run["dag_id"] == "mwaa_migrate_export"
        )

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert "migration succeeded" in texts["stdout"] + texts["log records"], "the run's logs were captured"
    # The signatures the export was given, found where they must be: in the source's own DAG run.
    signatures = [
        *(
            form["fields"].get("x-amz-signature") or form["fields"].get("signature")
            for form in conf["selfManaged"]["uploads"]
        ),
        *(
            url.split("Signature=", 1)[1].split("&", 1)[0]
            for url in conf["selfManaged"]["downloads"].values()
        ),
    ]
    assert all(signatures)
    assert _found([VARIABLE_VALUE, PASSWORD, EXTRA_TOKEN, password, *signatures], texts) == set()


def test_a_hands_on_exports_signatures_and_token_are_only_where_the_operator_and_the_landing_read_them(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Access mode hands_on: the export's presigned forms are in each phase's conf.json (for the
    operator, in the migration bucket) and the wait's token in its wait.json (for ExportLanded) and in
    the Task state's own parameters (Step Functions keeps them in the history, as for the approval's
    wait); neither is in a function's output, a log, a report or a notification."""
    with _self_managed_run("self_managed_hands_on", capfd) as (stack, arn, described, texts):
        prefix = (
            f"s3://{stack.scenario.migration_bucket}/migrations/onprem-airflow/onprem-airflow-2-10/hands-on"
        )
        confs = [json.loads(texts[f"{prefix}/{phase}/conf.json"]) for phase in ("bulk", "cutover")]
        tokens = [
            json.loads(texts[f"{prefix}/{phase}/wait.json"])["taskToken"] for phase in ("bulk", "cutover")
        ]
        history = stack.history(arn)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    signatures = [
        form["fields"].get("x-amz-signature") or form["fields"].get("signature")
        for conf in confs
        for form in conf["selfManaged"]["uploads"]
    ]
    assert all(signatures)
    assert {where for _, where in _found(signatures, texts)} == {
        f"{prefix}/{p}/conf.json" for p in ("bulk", "cutover")
    }
    assert {where for _, where in _found(tokens, texts)} == {
        f"{prefix}/bulk/wait.json",
        f"{prefix}/cutover/wait.json",
        "execution history",
    }
    # Nowhere in the history but the two Task states' own parameters.
    holding = {
        event["type"] for event in history for token in tokens if token in json.dumps(event, default=str)
    }
    assert holding == {"TaskScheduled"}
    assert _found([VARIABLE_VALUE, PASSWORD, EXTRA_TOKEN], texts) == set()


# ---------------------------------------------------------------- Airflow configuration options

SMTP_PASSWORD = f"smtp-password-{CANARY}"
BACKEND_TOKEN = f"backend-token-{CANARY}"
SECRET_OPTIONS = {
    "smtp.smtp_password": SMTP_PASSWORD,
    "secrets.backend": "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend",
    "secrets.backend_kwargs": json.dumps(
        {"connections_prefix": "airflow/connections", "token": BACKEND_TOKEN}
    ),
}
TARGET = "analytics-prod-2-10"


def _scenario_with_secret_options() -> Any:
    scenario = default_scenario()
    options = {**scenario.source["AirflowConfigurationOptions"], **SECRET_OPTIONS}
    return scenario.model_copy(update={"source": {**scenario.source, "AirflowConfigurationOptions": options}})


def _route_notifications(stack: LocalStack) -> tuple[Any, str]:
    """Every notification the pipeline sends, into a queue (an EventBridge rule on its source)."""
    sqs = boto3.client("sqs", region_name=stack.region)
    events = boto3.client("events", region_name=stack.region)
    url = sqs.create_queue(QueueName="notifications")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="notifications", EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
    events.put_targets(Rule="notifications", Targets=[{"Id": "queue", "Arn": arn}])
    return sqs, url


def _notifications(sqs: Any, url: str) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        received.extend(json.loads(message["Body"]) for message in messages)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
    return received


def _found(secrets: list[str], texts: dict[str, str]) -> set[tuple[str, str]]:
    return {
        (secret[:24], where)
        for secret in secrets
        for where, text in texts.items()
        if secret in text or json.dumps(secret)[1:-1] in text
    }


def test_configuration_option_values_reach_the_target_and_nothing_people_read(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Given a source whose configuration options hold secrets
    scenario = _scenario_with_secret_options()
    with (
        mock.patch.dict("os.environ", {"POWERTOOLS_LOG_LEVEL": "DEBUG"}),
        _all_logging() as records,
        instant_botocore_retries(),
        LocalStack(scenario) as stack,
    ):
        sqs, url = _route_notifications(stack)
        # When a dry run plans the migration (what `mwaa-migrate plan` shows) and then it runs
        dry = stack.wait(
            stack.start("secrets-dry-run", {**scenario.input, "dryRun": True}), timeout_seconds=60
        )
        dry_plan = json.loads(dry["output"])
        arn = stack.start("secrets-options")
        described = stack.wait(arn, timeout_seconds=180)
        texts = _texts(stack, arn)
        texts["dry run history"] = json.dumps(stack.history(dry["executionArn"]), default=str)
        texts["dry run output"] = dry["output"]
        texts["plan"] = "\n".join(plan_view.render_plan(dry_plan, execution_name="secrets-dry-run"))
        texts["plan --json"] = json.dumps(plan_view.redact_plan(dry_plan))
        texts["notifications"] = json.dumps(_notifications(sqs, url))
        created = stack.mwaa_emulator.environment(TARGET).description["AirflowConfigurationOptions"]
        [reference] = {
            json.dumps(
                json.loads(event["stateExitedEventDetails"]["output"])["plan"]["target"]["configuration"]
            )
            for event in stack.history(arn)
            if event.get("stateExitedEventDetails", {}).get("name") == "PlanMigration"
        }
        configuration = json.loads(reference)
        # (The local stack's migration bucket has no versions, so the reference names none.)
        version = {"VersionId": configuration["versionId"]} if "versionId" in configuration else {}
        stored = stack.s3.head_object(Bucket=configuration["bucket"], Key=configuration["key"], **version)
        # The object is read only through its reference: it is encrypted at rest on AWS (moto keeps
        # its bytes in the clear), so it is not a text people read.
        for where in [where for where in texts if where.endswith("/secrets/airflow-configuration.json")]:
            del texts[where]
    printed = capfd.readouterr()
    texts["stdout"] = printed.out + printed.err
    texts["log records"] = "\n".join(records.lines)

    assert dry["status"] == "SUCCEEDED", dry.get("cause")
    assert described["status"] == "SUCCEEDED", described.get("cause")
    # Then the target is created with the source's options, the pipeline's own added
    options = dict(scenario.source["AirflowConfigurationOptions"])
    # (core.dag_concurrency under the name Airflow 2.2 gave it: config_migration.py)
    options["core.max_active_tasks_per_dag"] = options.pop("core.dag_concurrency")
    assert created == {**options, PAUSED_AT_CREATION: "True"}
    # and the values are in an SSE-KMS object of the migration, under the stack's key,
    assert configuration["key"] == f"migrations/analytics-prod/{TARGET}/secrets/airflow-configuration.json"
    assert (stored["ServerSideEncryption"], stored["SSEKMSKeyId"]) == ("aws:kms", stack.migration_key_arn)
    # while the plans name the options and show no value but the harmless ones
    assert "smtp.smtp_password" in texts["plan"]
    shown = dry_plan["target"]["createRequest"]["AirflowConfigurationOptions"]
    assert shown["smtp.smtp_password"] == REDACTED
    assert shown["secrets.backend"] == SECRET_OPTIONS["secrets.backend"]
    assert "configuration" not in dry_plan["target"], "a dry run writes no object"
    assert '"Migration Succeeded"' in texts["notifications"], "the notifications were captured"
    assert _found([SMTP_PASSWORD, BACKEND_TOKEN], texts) == set()


def test_a_tampered_configuration_object_fails_the_clone_before_create_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with mock_aws(), MwaaEmulator() as emulator:
        # Given a plan whose configuration object (in a bucket without versions) was replaced since
        monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", emulator.endpoint_url)
        s3 = boto3.client("s3", region_name="us-east-1")
        kms = boto3.client("kms", region_name="us-east-1")
        key_arn = kms.create_key()["KeyMetadata"]["Arn"]
        s3.create_bucket(Bucket="migrations")
        s3.create_bucket(Bucket="airflow-analytics")
        s3.put_bucket_versioning(Bucket="airflow-analytics", VersioningConfiguration={"Status": "Enabled"})
        source = {
            "Name": "analytics",
            "AirflowVersion": "2.7.2",
            "ExecutionRoleArn": "arn:aws:iam::123456789012:role/service-role/mwaa-analytics",
            "SourceBucketArn": "arn:aws:s3:::airflow-analytics",
            "DagS3Path": "dags",
            "NetworkConfiguration": {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]},
            "AirflowConfigurationOptions": SECRET_OPTIONS,
        }
        emulator.add_environment(source)
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "airflow-env.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        iam = boto3.client("iam")
        iam.create_role(
            RoleName="mwaa-analytics", Path="/service-role/", AssumeRolePolicyDocument=json.dumps(trust)
        )
        mwaa = boto3.client("mwaa", region_name="us-east-1")
        request = MigrationRequest(
            source_environment_name="analytics",
            target_environment_name="next",
            target_airflow_version="2.10.3",
        )
        plan = plan_migration(
            request,
            mwaa=mwaa,
            iam=iam,
            s3=s3,
            stack=stack_settings(MIGRATION_KEY_ARN=key_arn, EXECUTION_ROLE_ARN_PATTERN="role/*"),
        )
        assert plan.target.configuration is not None
        s3.put_object(
            Bucket="migrations",
            Key=plan.target.configuration.key,
            Body=json.dumps(
                {"migrationId": plan.migration_id, "options": {**SECRET_OPTIONS, "smtp.smtp_host": "evil"}}
            ).encode(),
        )
        emulator.calls.clear()

        # When CloneEnvironment runs it
        with pytest.raises(MigrationConflict, match="not those the plan wrote"):
            clone_environment(mwaa, s3, plan)

        # Then no environment was created
        assert [call for call in emulator.calls if call[0] == "CreateEnvironment"] == []
        assert get_environment(mwaa, "next") is None


# ---------------------------------------------------------------- a failing task's last log lines

LOGGED_PASSWORD = f"logged-password-{CANARY}"
LOGGED_TOKEN = f"logged-token-{CANARY}"


def test_a_failing_tasks_log_lines_reach_cause_report_and_notification_redacted(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Given an export whose task fails, its log ending with a connection URI and a token
    failure = (
        f"OperationalError: could not connect to postgresql://etl:{LOGGED_PASSWORD}@warehouse.internal/dw "
        f"(api_token={LOGGED_TOKEN})"
    )
    scenario = default_scenario().model_copy(update={"dag_failures": {"mwaa_migrate_export": failure}})
    with _all_logging() as records, instant_botocore_retries(), LocalStack(scenario) as stack:
        sqs, url = _route_notifications(stack)
        # When the migration runs
        arn = stack.start("secrets-log-tail")
        described = stack.wait(arn, timeout_seconds=180)
        texts = {
            where: text
            for where, text in _texts(stack, arn).items()
            # The source's own task log holds the line as the task wrote it: it is not the pipeline's.
            if not where.startswith("log group airflow-")
        }
        texts["notifications"] = json.dumps(_notifications(sqs, url))
    printed = capfd.readouterr()
    texts["stdout"] = printed.out + printed.err
    texts["log records"] = "\n".join(records.lines)

    # Then the failure says what failed, with the secrets' places redacted
    assert described["status"] == "FAILED"
    assert described["error"] == "DagRunFailed"
    assert "postgresql://etl:****@warehouse.internal/dw (api_token=****)" in described["cause"]
    reports = [text for where, text in texts.items() if "/reports/" in where and where.endswith(".json")]
    assert reports
    assert all("postgresql://etl:****@warehouse.internal/dw" in text for text in reports)
    assert "postgresql://etl:****@warehouse.internal/dw" in texts["notifications"]
    # and neither secret is anywhere the run left to read
    assert _found([LOGGED_PASSWORD, LOGGED_TOKEN], texts) == set()
