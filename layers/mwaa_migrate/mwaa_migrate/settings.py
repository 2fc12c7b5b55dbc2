"""Settings read once at cold start from the function's environment: a missing one fails at once."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Where MWAA's console creates execution roles (MWAA user guide, "Amazon MWAA execution role"); the
# template's default for ExecutionRoleArnPattern.
DEFAULT_EXECUTION_ROLE_ARN_PATTERN = "role/service-role/AmazonMWAA-*"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    # The stack's bucket, used when the request names none.
    migration_bucket: str = Field(alias="MIGRATION_BUCKET", min_length=3)
    # Names of the temporary inline policies start with this, so they are easy to find and remove.
    policy_name_prefix: str = Field(default="mwaa-migrate", alias="POLICY_NAME_PREFIX")
    # The stack's KMS key: the export DAG seals the metadata with a data key of it, which only the
    # target's execution role may decrypt (grants.py).
    migration_key_arn: str = Field(
        alias="MIGRATION_KEY_ARN", pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/.+$"
    )
    # The stack's RSA key whose public half seals a self-managed Airflow's export keys (only the
    # target's role may decrypt with it; grants.py). Unset: a stack older than self-managed sources.
    sealing_key_arn: str | None = Field(
        default=None, alias="SEALING_KEY_ARN", pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/.+$"
    )
    # The stack's ExecutionRoleArnPattern: the only roles that may receive the migration's grants
    # (execution_roles.py); IAM enforces the same pattern on the functions' own policies.
    execution_role_arn_pattern: str = Field(
        default=DEFAULT_EXECUTION_ROLE_ARN_PATTERN,
        alias="EXECUTION_ROLE_ARN_PATTERN",
        pattern=r"^role/[A-Za-z0-9_+=,.@/*?-]{1,512}$",
    )
    # https on AWS; the local emulation serves the CLI endpoint over plain http.
    mwaa_cli_scheme: Literal["https", "http"] = Field(default="https", alias="MWAA_CLI_SCHEME")
    # The pipeline's state machine: a stopped execution of it is settled, of no other (its ARN is
    # known only after the stack made it, so only SettleStoppedExecution has it).
    state_machine_arn: str = Field(
        default="",
        alias="STATE_MACHINE_ARN",
        pattern=r"^(arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:.+)?$",
    )
    # Whether the functions that talk to Airflow run in a VPC (the stack's WebserverSubnetIds): the
    # plan reaches a PRIVATE_ONLY web server through its CLI endpoint then, else through InvokeRestApi.
    # Unset outside a stack deployed from template.yaml (webserver_transport.choose_route).
    webserver_functions_in_vpc: bool | None = Field(default=None, alias="WEBSERVER_FUNCTIONS_IN_VPC")
    # The SNS topic that also gets the started/succeeded/failed notifications (unset: EventBridge only).
    notification_topic_arn: str | None = Field(
        default=None,
        alias="NOTIFICATION_TOPIC_ARN",
        pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$",
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.model_validate(dict(os.environ))
