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

import pytest

import emulation.mwaa
from emulation.faults import instant_botocore_retries
from emulation.local_stack import LocalStack
from tests.hardening.discovery import default_scenario

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
        mock.patch.object(emulation.mwaa.secrets, "token_urlsafe", token),
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
