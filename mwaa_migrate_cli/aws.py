"""How the tool reaches the pipeline: the AWS CLI's conventions for region and profile (a flag, then
AWS_REGION / AWS_DEFAULT_REGION / AWS_PROFILE, then the shared config files), the state machine found
through the stack's outputs, and AWS errors turned into one line and an exit code.

With --local the same calls go to the local emulation (`mwaa-migrate local up`) instead of AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from mwaa_migrate.errors import MigrationConflict, MigrationError
from mwaa_migrate_cli import local
from mwaa_migrate_cli.errors import CliError, ExitCode

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_mwaa import MWAAClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_stepfunctions import SFNClient
    from mypy_boto3_sts import STSClient

DEFAULT_STACK_NAME = "mwaa-migrate"  # samconfig.toml's stack_name
STATE_MACHINE_OUTPUT = "MigrationStateMachineArn"
BUCKET_OUTPUT = "MigrationBucketName"
_RETRIES = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)

_NOT_FOUND_CODES = frozenset(
    {
        "ExecutionDoesNotExist",
        "StateMachineDoesNotExist",
        "ResourceNotFoundException",
        "NoSuchKey",
        "NoSuchBucket",
        "NotFound",
        "404",
    }
)
_REFUSED_CODES = frozenset({"ExecutionAlreadyExists", "InvalidExecutionInput", "InvalidName"})
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"})


@dataclass(frozen=True)
class Target:
    """Where the commands go: a region and profile of AWS, or the local emulation."""

    region: str | None
    profile: str | None
    stack_name: str
    state_machine_arn: str | None
    local: bool


class Pipeline:
    """The deployed pipeline (or the local one): clients, and its state machine."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._endpoint: str | None = None
        self._mwaa_endpoint: str | None = None
        with aws_errors("reading the AWS configuration"):
            if target.local:
                emulation = local.running()
                self._endpoint = emulation.endpoint
                self._mwaa_endpoint = emulation.mwaa_endpoint or emulation.endpoint
                # The emulation accepts any credentials: these are not secrets, and never the user's.
                self.session = boto3.Session(
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",  # noqa: S106
                    region_name=emulation.region,
                )
            else:
                self.session = boto3.Session(profile_name=target.profile, region_name=target.region)
        if self.session.region_name is None:
            raise CliError(
                "no AWS region: pass --region, set AWS_REGION, or set a region in your AWS profile",
                ExitCode.AWS_ERROR,
            )

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    @cached_property
    def sfn(self) -> SFNClient:
        return self.session.client("stepfunctions", endpoint_url=self._endpoint, config=_RETRIES)

    @cached_property
    def s3(self) -> S3Client:
        return self.session.client("s3", endpoint_url=self._endpoint, config=_RETRIES)

    @cached_property
    def cloudformation(self) -> CloudFormationClient:
        return self.session.client("cloudformation", endpoint_url=self._endpoint, config=_RETRIES)

    @cached_property
    def mwaa(self) -> MWAAClient:
        # MWAA's token calls go to the host prefix env.: the local emulation is one host.
        config = _RETRIES.merge(Config(inject_host_prefix=False)) if self.target.local else _RETRIES
        return self.session.client("mwaa", endpoint_url=self._mwaa_endpoint, config=config)

    @cached_property
    def secretsmanager(self) -> SecretsManagerClient:
        """A self-managed source's REST API credentials (the rollback reaches its Airflow)."""
        return self.session.client("secretsmanager", endpoint_url=self._endpoint, config=_RETRIES)

    @cached_property
    def sts(self) -> STSClient:
        return self.session.client("sts", endpoint_url=self._endpoint, config=_RETRIES)

    @property
    def local(self) -> bool:
        return self.target.local

    @cached_property
    def stack_outputs(self) -> dict[str, str]:
        """The stack's outputs by key."""
        stack = self.target.stack_name
        with aws_errors(f"reading stack {stack}"):
            try:
                described = self.cloudformation.describe_stacks(StackName=stack)
            except ClientError as error:
                message = error.response.get("Error", {}).get("Message", "")
                if "does not exist" in message:
                    raise CliError(
                        f"stack {stack} not found in {self.region}: deploy it (sam deploy --guided), "
                        "or pass --stack-name, --region or --state-machine-arn",
                        ExitCode.NOT_FOUND,
                    ) from None
                raise
        return {
            output["OutputKey"]: output["OutputValue"]
            for output in described["Stacks"][0].get("Outputs", [])
            if "OutputKey" in output and "OutputValue" in output
        }

    def _output(self, key: str) -> str:
        outputs = self.stack_outputs
        if key not in outputs:
            raise CliError(
                f"stack {self.target.stack_name} has no output {key}: is it an mwaa-migrate stack?",
                ExitCode.NOT_FOUND,
            )
        return outputs[key]

    @cached_property
    def state_machine_arn(self) -> str:
        """--state-machine-arn, or the stack's output MigrationStateMachineArn."""
        if self.target.state_machine_arn:
            return self.target.state_machine_arn
        return self._output(STATE_MACHINE_OUTPUT)

    @cached_property
    def bucket(self) -> str:
        """The stack's migration bucket (output MigrationBucketName)."""
        return self._output(BUCKET_OUTPUT)

    def execution_arn(self, execution: str) -> str:
        """An execution's ARN from its ARN or its name (an execution of the pipeline's state machine)."""
        if execution.startswith("arn:"):
            return execution
        machine = self.state_machine_arn
        return machine.replace(":stateMachine:", ":execution:", 1) + ":" + execution

    def console_url(self, execution_arn: str) -> str | None:
        if self.target.local:
            return None
        return (
            f"https://{self.region}.console.aws.amazon.com/states/home?region={self.region}"
            f"#/v2/executions/details/{execution_arn}"
        )


@contextmanager
def aws_errors(doing: str) -> Iterator[None]:
    """Turn botocore's errors into a CliError: one line that says what was being done."""
    try:
        yield
    except ClientError as error:
        raise _client_error(error, doing) from None
    except MigrationError as error:  # the shared layer's readers turn ClientErrors into these
        code = ExitCode.REFUSED if isinstance(error, MigrationConflict) else ExitCode.AWS_ERROR
        raise CliError(str(error), code) from None
    except ProfileNotFound as error:
        raise CliError(f"{error} (see aws configure list-profiles)", ExitCode.USAGE) from None
    except (NoCredentialsError, PartialCredentialsError):
        raise CliError(
            "no AWS credentials: configure a profile (aws configure) and pass --profile or set "
            "AWS_PROFILE, or use --local for the local emulation",
            ExitCode.AWS_ERROR,
        ) from None
    except NoRegionError:
        raise CliError(
            "no AWS region: pass --region, set AWS_REGION, or set a region in your AWS profile",
            ExitCode.AWS_ERROR,
        ) from None
    except EndpointConnectionError as error:
        raise CliError(
            f"{doing}: cannot reach {error.kwargs.get('endpoint_url')}", ExitCode.AWS_ERROR
        ) from None
    except BotoCoreError as error:
        raise CliError(f"{doing}: {error}", ExitCode.AWS_ERROR) from None


def _client_error(error: ClientError, doing: str) -> CliError:
    details = error.response.get("Error", {})
    code = str(details.get("Code", "Unknown"))
    message = str(details.get("Message", "")) or code
    text = f"{doing}: {code}: {message}"
    if code in _NOT_FOUND_CODES:
        return CliError(text, ExitCode.NOT_FOUND)
    if code in _REFUSED_CODES:
        return CliError(text, ExitCode.REFUSED)
    if code in _DENIED_CODES:
        return CliError(f"{text} (check the permissions of your AWS identity)", ExitCode.AWS_ERROR)
    return CliError(text, ExitCode.AWS_ERROR)
