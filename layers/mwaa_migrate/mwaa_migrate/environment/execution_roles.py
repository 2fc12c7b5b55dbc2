"""Which IAM roles the pipeline may put its temporary policies on: MWAA execution roles only.

The import grant lets a role read this migration's export (connections, variables, the audit log) and
open its data key, so whoever names the role chooses who reads the secrets. A role qualifies when
- it matches the stack's ExecutionRoleArnPattern (IAM enforces the same pattern on the functions'
  own policies, so skipping this check gains nothing), and
- its trust policy lets MWAA assume it, and nobody else: a role a person can also assume would hand
  them the secrets.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from mwaa_migrate.errors import InvalidMigrationRequest, from_client_error

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

# The service principals MWAA assumes an execution role with (MWAA user guide, "Amazon MWAA
# execution role": the trust relationship).
MWAA_PRINCIPALS = frozenset({"airflow.amazonaws.com", "airflow-env.amazonaws.com"})
_ASSUME_ACTIONS = re.compile(r"^(\*|sts:\*|sts:AssumeRole)$", re.IGNORECASE)


def arn_pattern(pattern: str) -> re.Pattern[str]:
    """The stack's pattern (the part after arn:PARTITION:iam::ACCOUNT:) as IAM reads a Resource:
    '*' is any run of characters, '/' included, and '?' any one character."""
    parts = (".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile("".join(parts))


def role_resource(role_arn: str) -> str:
    """arn:aws:iam::123456789012:role/service-role/X -> role/service-role/X."""
    return role_arn.split(":", 5)[-1]


def require_allowed_role(role_arn: str, *, pattern: str, account_id: str, field: str) -> None:
    """The role is in this stack's account and matches its ExecutionRoleArnPattern."""
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or parts[4] != account_id:
        raise InvalidMigrationRequest(
            f"{field}: role {role_arn} is not in this stack's account {account_id}: the pipeline "
            "changes only execution roles of its own account"
        )
    if not arn_pattern(pattern).fullmatch(role_resource(role_arn)):
        raise InvalidMigrationRequest(
            f"{field}: role {role_arn} does not match the stack's ExecutionRoleArnPattern {pattern}: "
            "the pipeline may change and pass only those roles (widen the parameter to allow it)"
        )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _document(raw: Any) -> dict[str, Any]:
    # IAM returns the trust policy URL-encoded; boto3 decodes it to a dict, other clients may not.
    if isinstance(raw, dict):
        return raw
    return dict(json.loads(unquote(str(raw))))


def trust_problems(trust_policy: Any) -> list[str]:
    """What is wrong with a role's trust policy for an MWAA execution role ([] if nothing)."""
    document = _document(trust_policy)
    trusted_services: set[str] = set()
    others: list[str] = []
    for statement in _as_list(document.get("Statement", [])):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement.get("Action", []))
        if not any(_ASSUME_ACTIONS.match(str(action)) for action in actions) and "NotAction" not in statement:
            continue  # sts:TagSession, sts:SetSourceIdentity... let nobody in on their own
        principal = statement.get("Principal", statement.get("NotPrincipal"))
        if "NotPrincipal" in statement or principal == "*":
            others.append("everyone (Principal *)" if principal == "*" else "NotPrincipal")
            continue
        for kind, values in (principal or {}).items():
            for value in _as_list(values):
                if kind == "Service" and value in MWAA_PRINCIPALS:
                    trusted_services.add(str(value))
                else:
                    others.append(f"{kind} {value}")
    problems = []
    if not trusted_services:
        problems.append(
            f"its trust policy does not let MWAA ({', '.join(sorted(MWAA_PRINCIPALS))}) assume it"
        )
    if others:
        problems.append(f"its trust policy also lets {', '.join(sorted(set(others)))} assume it")
    return problems


def require_execution_role(
    iam: IAMClient, role_arn: str, *, pattern: str, account_id: str, field: str
) -> None:
    """The role may receive this migration's grants: allowed by the stack, trusted by MWAA only."""
    require_allowed_role(role_arn, pattern=pattern, account_id=account_id, field=field)
    try:
        role = iam.get_role(RoleName=role_arn.rsplit("/", 1)[-1])["Role"]
    except iam.exceptions.NoSuchEntityException:
        raise InvalidMigrationRequest(f"{field}: role {role_arn} does not exist") from None
    except ClientError as error:
        raise from_client_error(error, f"reading role {role_arn}") from None
    if role["Arn"] != role_arn:
        raise InvalidMigrationRequest(
            f"{field}: role {role_arn} does not exist (the role of that name is {role['Arn']})"
        )
    problems = trust_problems(role.get("AssumeRolePolicyDocument", {}))
    if problems:
        raise InvalidMigrationRequest(
            f"{field}: role {role_arn} is not an MWAA execution role: {'; '.join(problems)}. "
            "Only MWAA may assume the role that receives this migration's exported connections and "
            "variables"
        )
