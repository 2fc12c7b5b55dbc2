"""The local emulation as a service the other commands reach with --local.

`mwaa-migrate local up` runs a scenario's world (emulation/local_stack.py: moto's S3, IAM, CloudWatch
Logs, Lambda and Step Functions executing the real ASL, the MWAA emulator, the handlers in process)
and serves it over HTTP with moto's server, the way AWS serves its APIs. It also creates a
CloudFormation stack with the deployed stack's outputs, so the commands find the state machine the
same way they do on AWS, and it prints the notifications the pipeline publishes as they arrive.
It writes where it listens to a state file, which --local reads; Ctrl-C stops it.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import boto3

from mwaa_migrate_cli.errors import CliError, ExitCode

if TYPE_CHECKING:
    from emulation.local_stack import LocalStack

STATE_FILE_VARIABLE = "MWAA_MIGRATE_LOCAL_STATE"
NOTIFICATIONS_QUEUE = "mwaa-migrate-local-notifications"
NOTIFICATIONS_RULE = "mwaa-migrate-local-notifications"


def state_file() -> Path:
    """$MWAA_MIGRATE_LOCAL_STATE, or local.json under $XDG_STATE_HOME (~/.local/state)/mwaa-migrate."""
    explicit = os.environ.get(STATE_FILE_VARIABLE)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mwaa-migrate" / "local.json"


@dataclass(frozen=True)
class Emulation:
    endpoint: str
    region: str
    stack_name: str
    scenario: str
    pid: int
    # MWAA is the project's own emulator, on a port of its own (moto has no MWAA).
    mwaa_endpoint: str = ""


def running() -> Emulation:
    """The local emulation that `mwaa-migrate local up` started, or a CliError saying how to start one."""
    path = state_file()
    hint = "start one with: mwaa-migrate local up (in another terminal)"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CliError(
            f"no local emulation is running ({path} does not exist): {hint}", ExitCode.NOT_FOUND
        ) from None
    except (OSError, ValueError) as error:
        raise CliError(f"cannot read {path}: {error}", ExitCode.USAGE) from None
    emulation = Emulation(
        endpoint=str(data["endpoint"]),
        region=str(data["region"]),
        stack_name=str(data["stackName"]),
        scenario=str(data["scenario"]),
        pid=int(data["pid"]),
        mwaa_endpoint=str(data.get("mwaaEndpoint", "")),
    )
    if not _alive(emulation.pid):
        raise CliError(
            f"the local emulation that wrote {path} (process {emulation.pid}) has stopped: {hint}",
            ExitCode.NOT_FOUND,
        )
    return emulation


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------------ the service


def _stack_template(stack: LocalStack) -> dict[str, Any]:
    """A stack whose outputs are the deployed stack's, pointing at the local world."""
    return {
        "Description": "mwaa-migrate on the local emulation (outputs as the deployed stack's)",
        "Resources": {"Local": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {
            "MigrationStateMachineArn": {"Value": stack.state_machine_arn},
            "MigrationBucketName": {"Value": stack.scenario.migration_bucket},
            "MigrationEventSource": {"Value": "mwaa.migration"},
        },
    }


def _capture_notifications(stack: LocalStack) -> str:
    """An EventBridge rule that routes the pipeline's notifications to a queue: what a team would do."""
    # Imported here, once the emulation has set the handlers' environment: importing it creates the
    # handlers' logger, which reads its level and service name from that environment.
    from mwaa_migrate.run.notifications import DETAIL_TYPES, EVENT_SOURCE  # noqa: PLC0415

    sqs = boto3.client("sqs", region_name=stack.region)
    events = boto3.client("events", region_name=stack.region)
    queue_url = sqs.create_queue(QueueName=NOTIFICATIONS_QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name=NOTIFICATIONS_RULE,
        EventPattern=json.dumps({"source": [EVENT_SOURCE], "detail-type": sorted(DETAIL_TYPES.values())}),
    )
    events.put_targets(Rule=NOTIFICATIONS_RULE, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return queue_url


def _print_notifications(stack: LocalStack, queue_url: str, stop: threading.Event) -> None:
    sqs = boto3.client("sqs", region_name=stack.region)
    while not stop.is_set():
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        for message in messages:
            event = json.loads(message["Body"])
            detail = event.get("detail", {})
            print(
                f"notification: {event.get('detail-type')}: {detail.get('sourceEnvironmentName')} -> "
                f"{detail.get('targetEnvironmentName')} ({detail.get('executionName')})",
                flush=True,
            )
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        stop.wait(0.5)


def serve(
    scenario_name: str,
    *,
    port: int,
    poll_seconds: int,
    stack_name: str,
    ready: Callable[[Emulation], None] | None = None,
    verbose: bool = False,
) -> int:
    """Run the emulation until SIGINT or SIGTERM. It prints that it is up and the notifications;
    `verbose` adds the server's access log and the pipeline's logs."""
    # The emulation needs the dev dependencies (moto and its server): say so rather than fail to import.
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise CliError(
            "the local emulation needs the development dependencies: pip install -e '.[dev]'", ExitCode.USAGE
        )
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    from emulation.local_stack import LocalStack, Timing, scenario_path  # noqa: PLC0415
    from emulation.scenario import Scenario  # noqa: PLC0415

    _require_free_port(port)
    path = scenario_path(scenario_name)
    if not path.is_file():
        raise CliError(
            f"no scenario {scenario_name}: give a path, or one of {', '.join(scenario_names())}",
            ExitCode.USAGE,
        )
    try:
        scenario = Scenario.load(path)
    except (OSError, ValueError) as error:  # unreadable, not JSON, or not a scenario (pydantic's errors)
        raise CliError(
            f"scenario {path} cannot be used: {' '.join(str(error).split())}", ExitCode.USAGE
        ) from None
    timing = Timing(
        environment_poll_seconds=poll_seconds,
        environment_max_polls=120,
        dag_poll_seconds=poll_seconds,
        dag_max_polls=120,
    )
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    file = state_file()
    try:
        with LocalStack(scenario, timing=timing, instant_retries=False) as stack, _quiet(verbose):
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()
            try:
                host, bound = server.get_host_and_port()
                with warnings.catch_warnings():
                    # moto creates no resource for the placeholder; the stack's outputs are what matter.
                    warnings.simplefilter("ignore", UserWarning)
                    boto3.client("cloudformation", region_name=stack.region).create_stack(
                        StackName=stack_name, TemplateBody=json.dumps(_stack_template(stack))
                    )
                queue_url = _capture_notifications(stack)
                emulation = Emulation(
                    endpoint=f"http://{host}:{bound}",
                    region=stack.region,
                    stack_name=stack_name,
                    scenario=scenario.name,
                    pid=os.getpid(),
                    mwaa_endpoint=stack.mwaa_emulator.endpoint_url,
                )
                state = {
                    "endpoint": emulation.endpoint,
                    "region": emulation.region,
                    "stackName": emulation.stack_name,
                    "scenario": emulation.scenario,
                    "pid": emulation.pid,
                    "mwaaEndpoint": emulation.mwaa_endpoint,
                }
                try:
                    file.parent.mkdir(parents=True, exist_ok=True)
                    file.write_text(json.dumps(state))
                except OSError as error:
                    raise CliError(
                        f"cannot write {file}: {error.strerror} (set {STATE_FILE_VARIABLE} to a file you "
                        "can write)",
                        ExitCode.USAGE,
                    ) from None
                if ready:
                    ready(emulation)
                _print_notifications(stack, queue_url, stop)
            finally:
                server.stop()
    finally:
        if file.is_file() and _owned(file):
            file.unlink()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return ExitCode.OK


def scenario_names() -> list[str]:
    """The scenarios that --scenario takes by name."""
    from emulation.scenario import available  # noqa: PLC0415 (the emulation: a dev dependency)

    return available()


@contextmanager
def _quiet(verbose: bool) -> Iterator[None]:
    """Output for people: that it is up, and a line per notification. The server's access log
    (werkzeug's, a line per API call) and the pipeline's logs (JSON, a Lambda's CloudWatch Logs) only
    with `verbose`; without them, the notifications say how each migration ends and `status` and
    `report` say why."""
    from mwaa_migrate.observability import logger  # noqa: PLC0415

    access_log = logging.getLogger("werkzeug")
    levels = (access_log.level, logger.log_level)
    access_log.setLevel(logging.INFO if verbose else logging.WARNING)
    # The handlers' logger was made when this command imported the layer: it gets its level here.
    logger.setLevel(logging.INFO if verbose else logging.CRITICAL)
    with warnings.catch_warnings():
        if not verbose:
            # A step that counts nothing has no metrics to flush: Powertools warns on each invocation.
            warnings.filterwarnings("ignore", message="No application metrics to publish")
        try:
            yield
        finally:
            access_log.setLevel(levels[0])
            logger.setLevel(levels[1])


def _require_free_port(port: int) -> None:
    """moto's server would wait forever for a port it cannot bind: find out first."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise CliError(f"cannot listen on 127.0.0.1:{port}: {error.strerror}", ExitCode.USAGE) from None


def _owned(file: Path) -> bool:
    try:
        return int(json.loads(file.read_text())["pid"]) == os.getpid()
    except (OSError, ValueError, KeyError):
        return False
