"""A self-managed Airflow run by hand (access mode hands_on), for the emulation: S3's events reaching
a Lambda function through EventBridge, and the operator who follows the steps.

- moto's S3 sends "Object Created" events to EventBridge (the bucket's EventBridgeConfiguration)
  and moto's rules match them, but moto delivers to no Lambda target. `lambda_targets_delivered`
  adds that delivery as AWS makes it: asynchronous (on its own thread, after the S3 call that
  caused it returned), the event as the rule matched it, a failed invocation tried again twice
  (Lambda's asynchronous retries).
- `ManifestLandedRule` is ExportLandedFunction's rule, its pattern read from template.yaml.
- `HandsOnOperator` does what steps.md tells a person: copy the export DAG's files into the
  Airflow's DAG folder, unpause the DAG and trigger it with the phase's conf and run id, through
  the Airflow's own REST API (as its UI or CLI would). It holds no AWS permission of the stack's:
  it reads the hand-over as an operator with access to the migration bucket does.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

from moto.events.models import Rule
from moto.utilities.arns import parse_arn

from mwaa_migrate.models import s3_parts

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client

    from emulation.lambdas import InProcessLambdas

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
RULE_NAME = "mwaa-migrate-manifest-landed"
# Lambda's asynchronous invocation: the first try and two retries.
ASYNC_TRIES = 3


@contextlib.contextmanager
def lambda_targets_delivered(
    lambdas: InProcessLambdas, *, retry_seconds: float = 0.05
) -> Iterator[list[threading.Thread]]:
    """EventBridge rules deliver to their Lambda targets (the in-process functions). Yields the
    delivery threads, so a test can wait for them."""
    deliveries: list[threading.Thread] = []
    send_to_targets = Rule.send_to_targets

    def deliver(function_name: str, event: dict[str, Any]) -> None:
        for attempt in range(ASYNC_TRIES):
            _, failed, _ = lambdas.invoke(function_name, json.loads(json.dumps(event, default=str)))
            if not failed:
                return
            time.sleep(retry_seconds * (attempt + 1))

    def send(self: Rule, original_event: Any, transform_input: bool = True) -> None:
        if self.event_pattern.matches_event(original_event):
            delivered = dict(original_event)
            # EventBridge's events say their time in ISO 8601 (moto's S3 gives epoch seconds).
            if isinstance(delivered.get("time"), int | float):
                delivered["time"] = f"{datetime.fromtimestamp(delivered['time'], UTC):%Y-%m-%dT%H:%M:%SZ}"
            for target in self.targets:
                arn = parse_arn(target["Arn"])
                if arn.service == "lambda":
                    function_name = arn.resource_id.split(":")[-1]
                    thread = threading.Thread(target=deliver, args=(function_name, delivered), daemon=True)
                    deliveries.append(thread)
                    thread.start()
        others = [target for target in self.targets if parse_arn(target["Arn"]).service != "lambda"]
        if others:
            with mock.patch.object(self, "targets", others):
                send_to_targets(self, original_event, transform_input)

    with mock.patch.object(Rule, "send_to_targets", send):
        yield deliveries


def manifest_landed_pattern(bucket: str) -> dict[str, Any]:
    """ExportLandedFunction's EventBridge rule pattern, as template.yaml writes it, for `bucket`."""
    # Imported here: cfn-lint takes half a second to import, and only a hands-on scenario needs it.
    from cfnlint.decode import cfn_yaml  # type: ignore[import-untyped]  # noqa: PLC0415

    template = cfn_yaml.load(str(TEMPLATE))
    pattern = template["Resources"]["ExportLandedFunction"]["Properties"]["Events"]["ManifestLanded"][
        "Properties"
    ]["Pattern"]
    text = json.dumps(pattern).replace(json.dumps({"Ref": "MigrationBucket"}), json.dumps(bucket))
    return dict(json.loads(text))


def put_manifest_landed_rule(
    events: EventBridgeClient, s3: S3Client, *, bucket: str, function_arn: str
) -> str:
    """What the stack deploys: the bucket's events to EventBridge, the rule, its target."""
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    rule_arn = events.put_rule(
        Name=RULE_NAME, EventPattern=json.dumps(manifest_landed_pattern(bucket)), State="ENABLED"
    )["RuleArn"]
    events.put_targets(Rule=RULE_NAME, Targets=[{"Id": "ExportLandedFunction", "Arn": function_arn}])
    return rule_arn


@dataclass
class HandsOnOperator:
    """The person who runs a hands-on source's export. `phases`: the phases they carry out (a phase
    left out is never run: its wait reaches its deadline)."""

    s3: S3Client
    api_url: str
    username: str
    password: str
    dags_bucket: str
    dag_folder: str
    phases: frozenset[str] = frozenset({"bulk", "cutover"})
    # How often and how many times they look (for the DAG in Airflow's list, at their run): the
    # emulated Airflow answers at once; a real one's scheduler parses the files and runs the export.
    poll_seconds: float = 0.02
    polls: int = 600
    # What they did: (phase, run id, how the run ended) of each export they triggered.
    runs: list[tuple[str, str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def handed_over(self, handed: dict[str, Any]) -> None:
        """HandOverExport returned (its output: where the steps are): a person starts on them."""
        if handed.get("phase") not in self.phases:
            return
        thread = threading.Thread(target=self._follow_steps, args=(handed,), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _follow_steps(self, handed: dict[str, Any]) -> None:
        try:
            self.follow_steps(handed)
        except Exception as error:  # a person would read it; a test does
            self.errors.append(f"{type(error).__name__}: {error}")

    def follow_steps(self, handed: dict[str, Any]) -> None:
        bucket, folder = s3_parts(str(handed["dagsUri"]))
        listed = self.s3.list_objects_v2(Bucket=bucket, Prefix=folder)
        for item in listed.get("Contents", []):
            name = item["Key"].rsplit("/", 1)[-1]
            body = self.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            self.s3.put_object(Bucket=self.dags_bucket, Key=f"{self.dag_folder}/{name}", Body=body)
        conf_bucket, conf_key = s3_parts(str(handed["confUri"]))
        conf = json.loads(self.s3.get_object(Bucket=conf_bucket, Key=conf_key)["Body"].read())
        dag_id = "mwaa_migrate_export"
        # Step 2: until Airflow lists the DAG (its scheduler parses the new files first).
        for _ in range(self.polls):
            listed_dags = self._call("GET", "/dags?limit=100")["dags"]
            if any(dag["dag_id"] == dag_id for dag in listed_dags):
                break
            time.sleep(self.poll_seconds)
        self._call("PATCH", f"/dags/{dag_id}?update_mask=is_paused", {"is_paused": False})
        run_id = str(handed["runId"])
        self._call("POST", f"/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "conf": conf})
        # They watch the run in Airflow's UI until it ends (the emulated scheduler moves a run on as
        # it is looked at).
        state = ""
        for _ in range(self.polls):
            state = str(self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])
            if state in {"success", "failed"}:
                break
            time.sleep(self.poll_seconds)
        self.runs.append((str(handed["phase"]), run_id, state))

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        credentials = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310  (the emulation's own http://127.0.0.1 server)
            self.api_url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Basic {credentials}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as refused:
            # What Airflow answered, as its UI would show it (the request's body holds the conf's
            # presigned URLs: left out).
            answered = refused.read().decode(errors="replace")[:2000]
            raise RuntimeError(f"{method} {path} answered {refused.code}: {answered}") from None

    def wait(self, timeout_seconds: float = 60) -> None:
        for thread in list(self._threads):
            thread.join(timeout_seconds)


def with_operator(
    handler: Callable[[dict[str, Any], Any], Any], operator: HandsOnOperator
) -> Callable[..., Any]:
    """HandOverExport's handler, followed by the operator acting on what it handed over."""

    def handle(event: dict[str, Any], context: Any) -> Any:
        handed = handler(event, context)
        operator.handed_over(dict(handed))
        return handed

    return handle
