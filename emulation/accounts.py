"""The emulated AWS account, and its IAM roles as their services assume them: one place for what the
stack (local_stack.py) and the scenarios (scenario.py) both create."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

# moto's default account: every emulated ARN carries it.
ACCOUNT_ID = "123456789012"
# The services MWAA's execution roles trust (the MWAA user guide's trust policy).
MWAA_SERVICES = ("airflow.amazonaws.com", "airflow-env.amazonaws.com")


def create_service_role(iam: IAMClient, role_arn_or_name: str, services: Iterable[str]) -> str:
    """Create a role (a name, or an ARN whose path and name are kept) that `services` may assume;
    returns its ARN."""
    path_and_name = role_arn_or_name.split(":role/", 1)[-1]
    path, _, name = path_and_name.rpartition("/")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": list(services)}, "Action": "sts:AssumeRole"}
        ],
    }
    created = iam.create_role(
        RoleName=name, Path=f"/{path}/" if path else "/", AssumeRolePolicyDocument=json.dumps(trust)
    )
    return created["Role"]["Arn"]
