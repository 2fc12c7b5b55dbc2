"""The SAM template: its names line up with the code, the state machine and the sample events, and
every function holds only the permissions its step uses.

The template is read with cfn-lint's decoder, so !Ref, !Sub and !GetAtt come back in their long
form ({"Ref": ...}, {"Fn::Sub": ...}, {"Fn::GetAtt": [...]}) exactly as CloudFormation sees them.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from mwaa_migrate.settings import DEFAULT_EXECUTION_ROLE_ARN_PATTERN

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
SAMCONFIG_PATH = ROOT / "samconfig.toml"
ASL_PATH = ROOT / "statemachine" / "migration.asl.json"
FUNCTIONS_DIR = ROOT / "functions"
EVENTS_DIR = ROOT / "events"

STATE_MACHINE = "MigrationStateMachine"
POLL_SUBSTITUTIONS = ("EnvironmentPollSeconds", "EnvironmentMaxPolls", "DagPollSeconds", "DagMaxPolls")
LOG_COPY_SUBSTITUTIONS = ("LogCopyMaxConcurrency", "LogCopyToleratedFailurePercentage")

# The only actions that may be granted on Resource '*': none of them supports resource-level
# permissions (Service Authorization Reference; Step Functions' guide for log delivery).
RESOURCE_STAR_ACTIONS = frozenset(
    {
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeVpcs",
        "ec2:DescribeRouteTables",
        "ec2:DescribeNetworkInterfaces",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
        # A Task state's task token is no IAM resource (only an activity is).
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
    }
)

# The functions that announce a migration started (GrantPermissions) or ended (FinishMigration,
# RecordFailure) may put events on the default bus, and publish to the SNS topic when there is one.
NOTIFICATION_ACTIONS = frozenset({"events:PutEvents", "sns:Publish"})
NOTIFYING_FUNCTIONS = frozenset(
    {
        "GrantPermissionsFunction",
        "AwaitApprovalFunction",
        "HandOverExportFunction",
        "FinishMigrationFunction",
        "RecordFailureFunction",
        "SettleStoppedExecutionFunction",
    }
)

# The functions that talk to Airflow: through the CLI endpoint or InvokeRestApi (the plan's choice,
# webserver_transport.py), and in the stack's VPC when WebserverSubnetIds is set (Lambda's ENIs).
AIRFLOW_ACTIONS = frozenset({"airflow:CreateCliToken", "airflow:InvokeRestApi"})
VPC_ACTIONS = frozenset(
    {
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
    }
)

# What each step's function may do. A change here is a change to the pipeline's permissions:
# make it on purpose, in both places.
# A self-managed source's REST API credentials (the airflow_api transport), in Secrets Manager.
SELF_MANAGED_AIRFLOW_ACTIONS = frozenset({"secretsmanager:GetSecretValue"})
FUNCTION_ACTIONS: dict[str, frozenset[str]] = {
    "PlanMigrationFunction": frozenset(
        {
            "airflow:GetEnvironment",
            "iam:GetRole",
            "s3:ListBucket",
            # the source's DAG files and the versions of its plugins, requirements, startup script
            "s3:GetBucketVersioning",
            "s3:GetObject",
            "s3:GetObjectVersion",
            # the Airflow configuration option values' SSE-KMS object (secret_options.py)
            "s3:PutObject",
            "kms:GenerateDataKey",
        }
    ),
    "GrantPermissionsFunction": frozenset(
        {
            # the event is not trusted: the source as it is, the target role's trust policy
            "airflow:GetEnvironment",
            "iam:GetRole",
            "iam:PutRolePolicy",
            "iam:GetRolePolicy",
            *NOTIFICATION_ACTIONS,
            # the migration lock (mwaa_migrate.run.lock)
            "s3:PutObject",
            "s3:GetObject",
            "s3:ListBucket",
            "states:DescribeExecution",
        }
    ),
    "CloneEnvironmentFunction": frozenset(
        {
            "airflow:GetEnvironment",
            "airflow:CreateEnvironment",
            "airflow:TagResource",
            "iam:PassRole",
            "iam:CreateServiceLinkedRole",
            "ec2:DescribeSubnets",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeVpcs",
            "ec2:DescribeRouteTables",
            "ec2:CreateVpcEndpoint",
            "ec2:CreateNetworkInterface",
            "kms:DescribeKey",
            "kms:CreateGrant",
            "s3:GetEncryptionConfiguration",
            # the target's own copy of the source's files, and replacing a failed target of its own
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:ListBucket",
            "s3:PutObject",
            "airflow:DeleteEnvironment",
            # the Airflow configuration option values' SSE-KMS object (secret_options.py)
            "kms:Decrypt",
        }
    ),
    "CheckEnvironmentFunction": frozenset({"airflow:GetEnvironment"}),
    "UpgradeEnvironmentFunction": frozenset(
        {"airflow:GetEnvironment", "airflow:UpdateEnvironment", "iam:PassRole"}
    ),
    "DeployDagFunction": frozenset({"s3:PutObject", "s3:GetObject", "s3:ListBucket"}),
    "TriggerDagFunction": frozenset(
        {
            *AIRFLOW_ACTIONS,
            *VPC_ACTIONS,
            *SELF_MANAGED_AIRFLOW_ACTIONS,
            # a self-managed source's export: its presigned uploads and reads, the sealing key's
            # public half
            "s3:PutObject",
            "s3:GetObject",
            "kms:GetPublicKey",
        }
    ),
    "CheckDagRunFunction": frozenset(
        {
            *AIRFLOW_ACTIONS,
            *VPC_ACTIONS,
            *SELF_MANAGED_AIRFLOW_ACTIONS,
            "logs:DescribeLogStreams",
            "logs:GetLogEvents",
            "s3:GetObject",
        }
    ),
    "ListLogStreamsFunction": frozenset(
        {"logs:DescribeLogStreams", "logs:DescribeLogGroups", "s3:GetObject", "s3:PutObject", "kms:Decrypt"}
    ),
    "CopyLogStreamsFunction": frozenset(
        {
            "logs:GetLogEvents",
            "logs:FilterLogEvents",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "s3:PutObject",
        }
    ),
    "SummarizeLogCopyFunction": frozenset({"s3:GetObject", "s3:ListBucket"}),
    "FinishMigrationFunction": frozenset(
        {
            "iam:DeleteRolePolicy",
            "iam:GetRolePolicy",
            "s3:PutObject",
            "s3:GetObject",
            "states:GetExecutionHistory",
            *NOTIFICATION_ACTIONS,
            # releasing the migration lock (mwaa_migrate.run.lock)
            "s3:DeleteObject",
            "s3:ListBucket",
        }
    ),
    "AwaitApprovalFunction": frozenset(NOTIFICATION_ACTIONS),
    # A source run by hand (hands_on): the hand-over signs the export's forms and writes its conf,
    # steps and wait; the landing reads the wait and the manifest and answers the wait's token.
    "HandOverExportFunction": frozenset(
        {"s3:PutObject", "s3:GetObject", "kms:GetPublicKey", *NOTIFICATION_ACTIONS}
    ),
    "ExportLandedFunction": frozenset(
        {"s3:GetObject", "s3:ListBucket", "states:SendTaskSuccess", "states:SendTaskFailure"}
    ),
    "StartTargetDagsFunction": frozenset({*AIRFLOW_ACTIONS, *VPC_ACTIONS, "s3:GetObject", "s3:PutObject"}),
    "SettleStoppedExecutionFunction": frozenset(
        {
            "states:DescribeExecution",
            "states:GetExecutionHistory",
            *AIRFLOW_ACTIONS,
            *VPC_ACTIONS,
            *SELF_MANAGED_AIRFLOW_ACTIONS,
            "iam:DeleteRolePolicy",
            "iam:GetRolePolicy",
            "s3:PutObject",
            "s3:GetObject",
            "s3:DeleteObject",
            "s3:ListBucket",
            *NOTIFICATION_ACTIONS,
        }
    ),
    "RecordFailureFunction": frozenset(
        {
            # the way back: pause and unpause DAGs on both environments
            *AIRFLOW_ACTIONS,
            *VPC_ACTIONS,
            *SELF_MANAGED_AIRFLOW_ACTIONS,
            "iam:DeleteRolePolicy",
            "iam:GetRolePolicy",
            "s3:PutObject",
            "s3:GetObject",
            "states:GetExecutionHistory",
            *NOTIFICATION_ACTIONS,
            # releasing the migration lock (mwaa_migrate.run.lock)
            "s3:DeleteObject",
            "s3:ListBucket",
        }
    ),
}

ENVIRONMENT_ARN = "arn:${AWS::Partition}:airflow:${AWS::Region}:${AWS::AccountId}:environment/*"
# InvokeRestApi is authorised on the Airflow role the call acts as (rbac-role): User, of any environment.
REST_API_ROLE_ARN = "arn:${AWS::Partition}:airflow:${AWS::Region}:${AWS::AccountId}:role/*/User"
EXECUTION_ROLES_ARN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:${ExecutionRoleArnPattern}"
TASK_LOG_GROUPS_ARN = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:airflow-*-Task:*"
# MWAA's log groups, one per logging module: airflow-NAME-Task, -Worker, -Scheduler, -DAGProcessing ...
MWAA_LOG_GROUPS_ARNS = [
    f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:airflow-*-{kind}:*"
    for kind in ("Task", "Worker", "Scheduler", "DAGProcessing", "WebServer")
]
MIGRATION_OBJECTS = "${MigrationBucket.Arn}/migrations/*"
POWERTOOLS_VARIABLES = {
    "POWERTOOLS_SERVICE_NAME": "mwaa-migrate",
    "POWERTOOLS_METRICS_NAMESPACE": "MwaaMigrate",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
PLACEHOLDER = re.compile(r"\$\{([^}!][^}]*)\}")


# ------------------------------------------------------------------ helpers


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _pascal(folder: str) -> str:
    """plan_migration -> PlanMigration"""
    return "".join(part.capitalize() for part in folder.split("_"))


def _folder(code_uri: str) -> str:
    """functions/plan_migration/ -> plan_migration"""
    match = re.fullmatch(r"functions/([a-z][a-z0-9_]*)/?", code_uri)
    assert match, f"CodeUri {code_uri!r} is not functions/<folder>/"
    return match.group(1)


def _resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def _sub_string(value: Any) -> str | None:
    """The template string of a !Sub (short or list form), or a plain string as it is."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return None


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _policy_documents(policy: Any) -> Iterator[dict[str, Any]]:
    """An inline policy of a SAM Policies list, or both of a Fn::If's (AWS::NoValue is none)."""
    if isinstance(policy, dict) and "Statement" in policy:
        yield policy
    elif isinstance(policy, dict) and "Fn::If" in policy:
        _, when_true, when_false = policy["Fn::If"]
        yield from _policy_documents(when_true)
        yield from _policy_documents(when_false)


def _policy_statements(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Inline statements of a SAM resource's Policies, or of a plain IAM role or policy."""
    properties = resource.get("Properties", {})
    if resource["Type"] in {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}:
        for policy in _as_list(properties.get("Policies", [])):
            for document in _policy_documents(policy):
                yield from _as_list(document["Statement"])
    elif resource["Type"] == "AWS::IAM::Role":
        for policy in properties.get("Policies", []):
            yield from _as_list(policy["PolicyDocument"]["Statement"])
    elif resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
        yield from _as_list(properties["PolicyDocument"]["Statement"])


def _allow_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template["Resources"].items():
        for statement in _policy_statements(resource):
            if statement["Effect"] == "Allow":
                yield logical_id, statement


def _allowed_actions(resource: dict[str, Any]) -> set[str]:
    return {
        action
        for statement in _policy_statements(resource)
        if statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"])
    }


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return _resources(template, "AWS::Serverless::Function")


def _function_folders() -> set[str]:
    return {
        path.name
        for path in FUNCTIONS_DIR.iterdir()
        if path.is_dir() and not path.name.startswith((".", "_"))
    }


def _defines_lambda_handler(source: Path) -> bool:
    tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "lambda_handler"
        for node in tree.body
    )


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATE_PATH))
    return loaded


@pytest.fixture(scope="module")
def state_machine(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][STATE_MACHINE]["Properties"]
    return properties


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    with SAMCONFIG_PATH.open("rb") as file:
        return tomllib.load(file)


# ------------------------------------------------------------------ names line up


def test_every_function_is_named_after_its_folder(template: dict[str, Any]) -> None:
    for logical_id, function in _functions(template).items():
        folder = _folder(function["Properties"]["CodeUri"])
        assert logical_id == f"{_pascal(folder)}Function", f"{logical_id} builds functions/{folder}/"


def test_the_template_has_exactly_the_steps_whose_permissions_are_listed(template: dict[str, Any]) -> None:
    assert set(_functions(template)) == set(FUNCTION_ACTIONS)


def test_every_function_folder_has_a_function_in_the_template(template: dict[str, Any]) -> None:
    built = {_folder(function["Properties"]["CodeUri"]) for function in _functions(template).values()}
    assert _function_folders() == built


@pytest.mark.parametrize("logical_id", sorted(FUNCTION_ACTIONS))
def test_every_function_has_an_app_module_defining_lambda_handler(
    template: dict[str, Any], logical_id: str
) -> None:
    properties = template["Resources"][logical_id]["Properties"]
    app = ROOT / properties["CodeUri"] / "app.py"
    assert properties["Handler"] == "app.lambda_handler"
    assert app.is_file(), f"{app.relative_to(ROOT)} is missing"
    assert _defines_lambda_handler(app), f"{app.relative_to(ROOT)} defines no lambda_handler"


@pytest.mark.parametrize("logical_id", sorted(FUNCTION_ACTIONS))
def test_every_function_has_a_sample_event(template: dict[str, Any], logical_id: str) -> None:
    folder = _folder(template["Resources"][logical_id]["Properties"]["CodeUri"])
    event = EVENTS_DIR / f"{folder}.json"
    assert event.is_file(), f"events/{folder}.json is missing (sam local invoke -e)"
    assert isinstance(json.loads(event.read_text(encoding="utf-8")), dict)


# Functions that EventBridge calls, not the state machine (a stopped execution never reaches it).
# Invoked by EventBridge rules, not by a Task state.
OUTSIDE_THE_STATE_MACHINE = frozenset({"SettleStoppedExecutionFunction", "ExportLandedFunction"})


def _pipeline_functions(template: dict[str, Any]) -> set[str]:
    return set(_functions(template)) - OUTSIDE_THE_STATE_MACHINE


def test_every_function_arn_is_substituted_under_its_own_name(
    template: dict[str, Any], state_machine: dict[str, Any]
) -> None:
    substitutions = state_machine["DefinitionSubstitutions"]
    for logical_id in _pipeline_functions(template):
        assert substitutions[f"{logical_id}Arn"] == {"Fn::GetAtt": [logical_id, "Arn"]}


def test_substitutions_are_the_function_arns_and_the_poll_settings(
    template: dict[str, Any], state_machine: dict[str, Any]
) -> None:
    substitutions = state_machine["DefinitionSubstitutions"]
    settings = {*POLL_SUBSTITUTIONS, *LOG_COPY_SUBSTITUTIONS}
    expected = {f"{logical_id}Arn" for logical_id in _pipeline_functions(template)} | settings
    assert set(substitutions) == expected
    for name in settings:
        assert substitutions[name] == {"Ref": name}


def test_state_machine_definition_is_the_asl_file(state_machine: dict[str, Any]) -> None:
    assert ROOT / state_machine["DefinitionUri"] == ASL_PATH
    assert state_machine["Type"] == "STANDARD"


def test_every_asl_placeholder_is_substituted_and_every_substitution_is_used(
    state_machine: dict[str, Any],
) -> None:
    placeholders = set(PLACEHOLDER.findall(ASL_PATH.read_text(encoding="utf-8")))
    assert placeholders == set(state_machine["DefinitionSubstitutions"])


def test_state_machine_may_invoke_exactly_the_pipeline_functions(
    template: dict[str, Any], state_machine: dict[str, Any]
) -> None:
    invoked = {
        policy["LambdaInvokePolicy"]["FunctionName"]["Ref"]
        for policy in state_machine["Policies"]
        if isinstance(policy, dict) and "LambdaInvokePolicy" in policy
    }
    assert invoked == _pipeline_functions(template)


def test_a_stopped_execution_of_this_state_machine_only_is_settled(template: dict[str, Any]) -> None:
    function = template["Resources"]["SettleStoppedExecutionFunction"]["Properties"]
    (rule,) = function["Events"].values()
    pattern = rule["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail"]["status"] == ["ABORTED", "TIMED_OUT"]
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": "MigrationStateMachine"}]
    assert function["Environment"]["Variables"]["STATE_MACHINE_ARN"] == {"Ref": "MigrationStateMachine"}


# ------------------------------------------------------------------ least privilege


@pytest.mark.parametrize("logical_id", sorted(FUNCTION_ACTIONS))
def test_each_function_is_allowed_exactly_the_calls_its_step_makes(
    template: dict[str, Any], logical_id: str
) -> None:
    assert _allowed_actions(template["Resources"][logical_id]) == FUNCTION_ACTIONS[logical_id]


def test_no_allowed_action_is_a_wildcard(template: dict[str, Any]) -> None:
    for logical_id, statement in _allow_statements(template):
        for action in _as_list(statement.get("Action", [])):
            assert "*" not in action, f"{logical_id} allows {action}"
        assert "NotAction" not in statement, f"{logical_id} allows by NotAction"


def test_resource_star_only_for_actions_without_resource_level_permissions(template: dict[str, Any]) -> None:
    for logical_id, statement in _allow_statements(template):
        assert "NotResource" not in statement, f"{logical_id} allows by NotResource"
        if "*" in _as_list(statement["Resource"]):
            unscoped = set(_as_list(statement["Action"])) - RESOURCE_STAR_ACTIONS
            assert not unscoped, f"{logical_id} allows {sorted(unscoped)} on every resource"


def test_no_full_access_managed_policies_or_policy_templates(template: dict[str, Any]) -> None:
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        names = [policy for policy in _as_list(properties.get("Policies", [])) if isinstance(policy, str)]
        names += [
            next(iter(policy))
            for policy in _as_list(properties.get("Policies", []))
            if isinstance(policy, dict) and "Statement" not in policy and len(policy) == 1
        ]
        names += [arn for arn in properties.get("ManagedPolicyArns", []) if isinstance(arn, str)]
        for name in names:
            assert "FullAccess" not in name, f"{logical_id} uses {name}"
            assert not name.endswith("AdministratorAccess"), f"{logical_id} uses {name}"


def test_execution_roles_are_passed_to_mwaa_only(template: dict[str, Any]) -> None:
    passing = [
        (logical_id, statement)
        for logical_id, statement in _allow_statements(template)
        if "iam:PassRole" in _as_list(statement["Action"])
    ]
    assert {logical_id for logical_id, _ in passing} == {
        "CloneEnvironmentFunction",
        "UpgradeEnvironmentFunction",
    }
    for logical_id, statement in passing:
        assert _as_list(statement["Action"]) == ["iam:PassRole"], logical_id
        assert _sub_string(statement["Resource"]) == EXECUTION_ROLES_ARN, logical_id
        assert statement.get("Condition") == {
            "StringEquals": {"iam:PassedToService": "airflow.amazonaws.com"}
        }, logical_id


def test_role_policies_are_changed_only_on_the_execution_role_pattern(template: dict[str, Any]) -> None:
    role_actions = {"iam:GetRole", "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"}
    for logical_id, statement in _allow_statements(template):
        if role_actions & set(_as_list(statement["Action"])):
            assert set(_as_list(statement["Action"])) <= role_actions, logical_id
            assert _sub_string(statement["Resource"]) == EXECUTION_ROLES_ARN, logical_id


def test_functions_that_change_role_policies_never_change_this_stacks_roles(template: dict[str, Any]) -> None:
    for logical_id, function in _functions(template).items():
        changes = {"iam:PutRolePolicy", "iam:DeleteRolePolicy"} & _allowed_actions(function)
        if not changes:
            continue
        denied = {
            action
            for statement in _policy_statements(function)
            if statement["Effect"] == "Deny"
            and _sub_string(statement["Resource"])
            == "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}-*"
            for action in _as_list(statement["Action"])
        }
        assert changes <= denied, logical_id


def test_service_linked_role_creation_is_for_mwaa_only(template: dict[str, Any]) -> None:
    for logical_id, statement in _allow_statements(template):
        if "iam:CreateServiceLinkedRole" in _as_list(statement["Action"]):
            resource = _sub_string(statement["Resource"])
            assert resource is not None
            assert resource.endswith(
                ":role/aws-service-role/airflow.amazonaws.com/AWSServiceRoleForAmazonMWAA"
            )
            assert statement.get("Condition") == {
                "StringEquals": {"iam:AWSServiceName": "airflow.amazonaws.com"}
            }, logical_id


def test_mwaa_actions_are_on_environments_of_this_account_and_region(template: dict[str, Any]) -> None:
    for logical_id, statement in _allow_statements(template):
        actions = _as_list(statement["Action"])
        if any(action.startswith("airflow:") for action in actions):
            expected = REST_API_ROLE_ARN if actions == ["airflow:InvokeRestApi"] else ENVIRONMENT_ARN
            assert [_sub_string(resource) for resource in _as_list(statement["Resource"])] == [expected], (
                logical_id
            )


def test_log_stream_access_is_limited_to_mwaa_log_groups(template: dict[str, Any]) -> None:
    for logical_id, statement in _allow_statements(template):
        actions = set(_as_list(statement["Action"]))
        if actions & {
            "logs:GetLogEvents",
            "logs:FilterLogEvents",
            "logs:PutLogEvents",
            "logs:CreateLogStream",
            "logs:DescribeLogStreams",
        }:
            resources = [_sub_string(resource) for resource in _as_list(statement["Resource"])]
            # Only the log copy reads and writes other modules' logs than the Task logs.
            allowed = MWAA_LOG_GROUPS_ARNS if "Log" in logical_id else [TASK_LOG_GROUPS_ARN]
            assert resources == allowed, logical_id


def test_the_log_copy_works_only_under_migrations_in_the_migration_bucket(template: dict[str, Any]) -> None:
    for logical_id in ("ListLogStreamsFunction", "CopyLogStreamsFunction", "SummarizeLogCopyFunction"):
        for statement in _policy_statements(template["Resources"][logical_id]):
            actions = set(_as_list(statement["Action"]))
            if actions & {"s3:GetObject", "s3:PutObject"}:
                for resource in _as_list(statement["Resource"]):
                    assert (_sub_string(resource) or "").startswith(MIGRATION_OBJECTS), logical_id
            if "s3:ListBucket" in actions:
                assert statement["Condition"] == {"StringLike": {"s3:prefix": "migrations/*/logs/*"}}


def test_the_state_machine_may_run_its_distributed_map_and_nothing_more(
    state_machine: dict[str, Any],
) -> None:
    allowed = {
        action: [_sub_string(resource) for resource in _as_list(statement["Resource"])]
        for statement in _policy_statements(
            {"Type": "AWS::Serverless::StateMachine", "Properties": state_machine}
        )
        if statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"])
        if action.startswith(("states:", "s3:"))
    }
    account = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
    machine = f"{account}:stateMachine:${{AWS::StackName}}-migration"
    executions = machine.replace(":stateMachine:", ":execution:")
    assert allowed == {
        "states:StartExecution": [machine],
        "states:DescribeExecution": [f"{executions}:*", f"{executions}/*"],
        "states:StopExecution": [f"{executions}:*", f"{executions}/*"],
        "s3:GetObject": ["${MigrationBucket.Arn}/migrations/*/logs/*"],
        "s3:PutObject": ["${MigrationBucket.Arn}/migrations/*/logs/*"],
        "s3:ListMultipartUploadParts": ["${MigrationBucket.Arn}/migrations/*/logs/*"],
        "s3:AbortMultipartUpload": ["${MigrationBucket.Arn}/migrations/*/logs/*"],
    }


def test_dag_bucket_access_is_limited_to_mwaa_buckets(template: dict[str, Any]) -> None:
    for logical_id, statement in _allow_statements(template):
        for resource in _as_list(statement["Resource"]):
            arn = _sub_string(resource)
            if arn and arn.startswith("arn:${AWS::Partition}:s3:::"):
                assert arn.startswith("arn:${AWS::Partition}:s3:::airflow-"), f"{logical_id}: {arn}"


def test_no_arn_hard_codes_partition_region_or_account(template: dict[str, Any]) -> None:
    for node in _walk(template["Resources"]):
        text = _sub_string(node)
        if text and text.startswith("arn:"):
            assert text.startswith("arn:${AWS::Partition}:"), text
            assert not re.search(r":\d{12}:", text), text
            assert not re.search(r":[a-z]{2}(-[a-z]+)+-\d:", text), text


# ------------------------------------------------------------------ logs and tracing


@pytest.mark.parametrize("logical_id", sorted(FUNCTION_ACTIONS))
def test_every_function_logs_to_its_own_log_group_with_retention(
    template: dict[str, Any], logical_id: str
) -> None:
    log_group_id = f"{logical_id}LogGroup"
    properties = template["Resources"][logical_id]["Properties"]
    assert properties["LoggingConfig"]["LogGroup"] == {"Ref": log_group_id}
    log_group = template["Resources"][log_group_id]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"].get("RetentionInDays") == {"Ref": "LogRetentionDays"}
    name = _sub_string(log_group["Properties"]["LogGroupName"])
    assert name is not None
    assert name.startswith("/aws/lambda/")
    assert name.endswith(logical_id)


def test_state_machine_logs_errors_without_execution_data_and_is_traced(
    template: dict[str, Any], state_machine: dict[str, Any]
) -> None:
    logging = state_machine["Logging"]
    assert logging["Level"] in {"ERROR", "ALL"}
    assert logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    log_group_id, attribute = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"]
    assert attribute == "Arn"
    log_group = template["Resources"][log_group_id]
    assert log_group["Properties"].get("RetentionInDays") == {"Ref": "LogRetentionDays"}
    name = _sub_string(log_group["Properties"]["LogGroupName"])
    assert name is not None
    assert name.startswith("/aws/vendedlogs/states/")
    assert state_machine["Tracing"] == {"Enabled": True}


def test_state_machine_may_deliver_its_logs(state_machine: dict[str, Any]) -> None:
    allowed = _allowed_actions({"Type": "AWS::Serverless::StateMachine", "Properties": state_machine})
    assert {
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    } <= allowed


def test_globals_carry_runtime_tracing_json_logs_the_layer_and_powertools(template: dict[str, Any]) -> None:
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.12"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Tracing"] == "Active"
    assert function_globals["LoggingConfig"]["LogFormat"] == "JSON"
    assert function_globals["Layers"] == [{"Ref": "SharedLayer"}]
    variables = function_globals["Environment"]["Variables"]
    assert POWERTOOLS_VARIABLES.items() <= variables.items()
    assert variables["MIGRATION_BUCKET"] == {"Ref": "MigrationBucket"}
    assert variables["POLICY_NAME_PREFIX"] == "mwaa-migrate"


def test_no_function_overrides_the_runtime_architecture_or_layers(template: dict[str, Any]) -> None:
    for logical_id, function in _functions(template).items():
        overridden = {"Runtime", "Architectures", "Layers", "Tracing"} & set(function["Properties"])
        assert not overridden, f"{logical_id} overrides {sorted(overridden)}"


def test_shared_layer_is_built_for_the_functions_runtime_and_architecture(template: dict[str, Any]) -> None:
    layer = template["Resources"]["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    content = ROOT / layer["Properties"]["ContentUri"]
    assert (content / "requirements.txt").is_file()
    assert (content / "mwaa_migrate" / "__init__.py").is_file()
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "python3.12", "BuildArchitecture": "arm64"}


# ------------------------------------------------------------------ the migration bucket


def test_migration_bucket_is_encrypted_versioned_private_and_expires(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["MigrationBucket"]["Properties"]
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert encryption["BucketKeyEnabled"] is True
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == {"Ref": "MigrationObjectExpiryDays"}
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == {"Ref": "MigrationObjectExpiryDays"}


def test_migration_bucket_refuses_requests_without_tls(template: dict[str, Any]) -> None:
    policy = template["Resources"]["MigrationBucketPolicy"]
    assert policy["Type"] == "AWS::S3::BucketPolicy"
    assert policy["Properties"]["Bucket"] == {"Ref": "MigrationBucket"}
    denials = [
        statement
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(denials) == 1
    (denial,) = denials
    assert denial["Principal"] == "*"
    assert denial["Action"] in ("s3:*", ["s3:*"])
    resources = {_sub_string(resource) or json.dumps(resource) for resource in _as_list(denial["Resource"])}
    assert resources == {json.dumps({"Fn::GetAtt": ["MigrationBucket", "Arn"]}), "${MigrationBucket.Arn}/*"}


# ------------------------------------------------------------------ the EventBridge trigger


def test_migration_requested_events_start_the_state_machine_with_their_detail(
    state_machine: dict[str, Any],
) -> None:
    (event,) = state_machine["Events"].values()
    assert event["Type"] == "EventBridgeRule"
    properties = event["Properties"]
    # The stack's own bus, whose policy names who may start a migration.
    assert properties["EventBusName"] == {"Ref": "MigrationEventBus"}
    assert properties["Pattern"]["source"] == ["mwaa.migration"]
    assert properties["Pattern"]["detail-type"] == ["Migration Requested"]
    assert properties["InputPath"] == "$.detail"
    assert properties["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert properties["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": ["MigrationRequestDeadLetterQueue", "Arn"]}
    }


def test_only_the_trigger_rule_may_send_to_the_dead_letter_queue(template: dict[str, Any]) -> None:
    (event,) = template["Resources"][STATE_MACHINE]["Properties"]["Events"].values()
    rule_name = _sub_string(event["Properties"]["RuleName"])
    policy = template["Resources"]["MigrationRequestDeadLetterQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "MigrationRequestDeadLetterQueue"}]
    (allow,) = [
        statement for statement in policy["PolicyDocument"]["Statement"] if statement["Effect"] == "Allow"
    ]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    source_arn = _sub_string(allow["Condition"]["ArnEquals"]["aws:SourceArn"])
    # A rule on a custom bus is rule/BUS/RULE.
    bus = _sub_string(template["Resources"]["MigrationEventBus"]["Properties"]["Name"])
    assert (
        source_arn
        == f"arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{bus}/{rule_name}"
    )


def test_only_the_named_principals_may_put_events_on_the_migration_bus(template: dict[str, Any]) -> None:
    # The finding: anyone with events:PutEvents on the default bus could start a migration.
    policy = template["Resources"]["MigrationEventBusPolicy"]["Properties"]
    assert policy["EventBusName"] == {"Ref": "MigrationEventBus"}
    statement = policy["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
        "Deny",
        "*",
        "events:PutEvents",
    )
    assert statement["Resource"] == {"Fn::GetAtt": ["MigrationEventBus", "Arn"]}
    # Named principals are spared; with none named, the Deny has no condition: nobody.
    named, nobody = statement["Condition"]["Fn::If"][1:]
    assert statement["Condition"]["Fn::If"][0] == "HasMigrationRequesters"
    assert named == {"ArnNotLike": {"aws:PrincipalArn": {"Ref": "MigrationRequesterArns"}}}
    assert nobody == {"Ref": "AWS::NoValue"}
    assert template["Parameters"]["MigrationRequesterArns"]["Default"] == ""


def test_outputs_name_how_to_start_a_migration(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["MigrationStateMachineArn"]["Value"] == {"Ref": STATE_MACHINE}
    assert outputs["MigrationBucketName"]["Value"] == {"Ref": "MigrationBucket"}
    assert outputs["SharedLayerArn"]["Value"] == {"Ref": "SharedLayer"}
    (event,) = template["Resources"][STATE_MACHINE]["Properties"]["Events"].values()
    assert [outputs["MigrationEventSource"]["Value"]] == event["Properties"]["Pattern"]["source"]
    assert [outputs["MigrationEventDetailType"]["Value"]] == event["Properties"]["Pattern"]["detail-type"]


# ------------------------------------------------------------------ parameters and samconfig


def test_every_parameter_is_used(template: dict[str, Any]) -> None:
    used: set[str] = set()
    for section in ("Globals", "Resources", "Outputs", "Conditions"):
        for node in _walk(template.get(section, {})):
            if isinstance(node, dict) and isinstance(node.get("Ref"), str):
                used.add(node["Ref"])
            if isinstance(node, dict) and "Fn::Sub" in node:
                text = _sub_string(node)
                used.update(PLACEHOLDER.findall(text or ""))
    unused = set(template["Parameters"]) - used
    assert not unused, f"parameters declared and never used: {sorted(unused)}"


def test_every_parameter_is_described_and_bounded(template: dict[str, Any]) -> None:
    for name, parameter in template["Parameters"].items():
        assert parameter.get("Description"), name
        assert "Default" in parameter, name
        if parameter["Type"] == "Number":
            assert "AllowedValues" in parameter or {"MinValue", "MaxValue"} <= set(parameter), name
        else:
            assert "AllowedValues" in parameter or "AllowedPattern" in parameter, name


def test_execution_role_pattern_default_and_example_are_valid(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["ExecutionRoleArnPattern"]
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch(parameter["Default"])
    assert pattern.fullmatch("role/service-role/AmazonMWAA-*")
    assert not pattern.fullmatch("arn:aws:iam::*:role/*")
    assert not pattern.fullmatch("user/*")


def _overrides(deploy: dict[str, Any]) -> dict[str, str]:
    """Key=Value entries as SAM reads them: a value in double quotes stands for what is inside."""
    overrides = deploy["parameter_overrides"]
    entries = overrides if isinstance(overrides, list) else overrides.split()
    pairs = (entry.split("=", 1) for entry in entries)
    return {
        key: value[1:-1] if value.startswith('"') and value.endswith('"') else value for key, value in pairs
    }


def test_samconfig_default_deploys_the_template_defaults(
    template: dict[str, Any], samconfig: dict[str, Any]
) -> None:
    assert samconfig["version"] == 0.1
    assert samconfig["default"]["global"]["parameters"]["stack_name"] == "mwaa-migrate"
    assert samconfig["default"]["validate"]["parameters"]["lint"] is True
    deploy = samconfig["default"]["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["confirm_changeset"] is True
    assert deploy["resolve_s3"] is True
    assert deploy["region"] == "us-east-1"
    defaults = {name: str(parameter["Default"]) for name, parameter in template["Parameters"].items()}
    assert _overrides(deploy) == defaults


def test_every_samconfig_environment_overrides_only_declared_parameters(
    template: dict[str, Any], samconfig: dict[str, Any]
) -> None:
    environments = [name for name, value in samconfig.items() if isinstance(value, dict)]
    assert {"default", "prod"} <= set(environments)
    for environment in environments:
        deploy = samconfig[environment].get("deploy", {}).get("parameters", {})
        if "parameter_overrides" in deploy:
            assert set(_overrides(deploy)) <= set(template["Parameters"]), environment


# ------------------------------------------------------------------ notifications


def _notification_documents(function: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Any]]:
    """The function's unconditional inline policies, and its Fn::If policies on the topic."""
    plain, conditional = [], []
    for policy in _as_list(function["Properties"].get("Policies", [])):
        if isinstance(policy, dict) and "Fn::If" in policy:
            if policy["Fn::If"][0] == "HasNotificationTopic":
                conditional.append(policy["Fn::If"])
        elif isinstance(policy, dict) and "Statement" in policy:
            plain.append(policy)
    return plain, conditional


def test_only_the_functions_that_notify_may_put_events_or_publish(template: dict[str, Any]) -> None:
    for logical_id, function in _functions(template).items():
        allowed = _allowed_actions(function) & NOTIFICATION_ACTIONS
        assert allowed == (NOTIFICATION_ACTIONS if logical_id in NOTIFYING_FUNCTIONS else set()), logical_id


@pytest.mark.parametrize("logical_id", sorted(NOTIFYING_FUNCTIONS))
def test_notifications_go_to_the_default_bus_with_this_projects_source_only(
    template: dict[str, Any], logical_id: str
) -> None:
    (statement,) = [
        statement
        for statement in _policy_statements(template["Resources"][logical_id])
        if "events:PutEvents" in _as_list(statement["Action"])
    ]
    assert _as_list(statement["Action"]) == ["events:PutEvents"]
    assert _sub_string(statement["Resource"]) == (
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
    )
    assert statement["Condition"] == {"StringEquals": {"events:source": "mwaa.migration"}}


@pytest.mark.parametrize("logical_id", sorted(NOTIFYING_FUNCTIONS))
def test_sns_publish_is_granted_only_when_a_topic_is_given_and_only_on_it(
    template: dict[str, Any], logical_id: str
) -> None:
    plain, conditional = _notification_documents(template["Resources"][logical_id])
    assert not any(
        "sns:Publish" in _as_list(statement["Action"])
        for document in plain
        for statement in document["Statement"]
    )
    (if_policy,) = conditional
    condition, when_set, when_unset = if_policy
    assert condition == "HasNotificationTopic"
    assert when_unset == {"Ref": "AWS::NoValue"}
    (statement,) = when_set["Statement"]
    assert statement["Effect"] == "Allow"
    assert _as_list(statement["Action"]) == ["sns:Publish"]
    assert statement["Resource"] == {"Ref": "NotificationTopicArn"}


def test_the_topic_condition_is_an_empty_parameter_or_not(template: dict[str, Any]) -> None:
    assert template["Conditions"]["HasNotificationTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "NotificationTopicArn"}, ""]}]
    }
    parameter = template["Parameters"]["NotificationTopicArn"]
    assert parameter["Default"] == ""


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("arn:aws:sns:us-east-1:123456789012:migrations", True),
        ("arn:aws-us-gov:sns:us-gov-west-1:123456789012:team_alerts-1", True),
        ("arn:aws:sns:us-east-1:123456789012:migrations.fifo", False),
        ("arn:aws:sqs:us-east-1:123456789012:migrations", False),
        ("migrations", False),
    ],
)
def test_the_topic_parameter_takes_a_standard_topic_arn_or_nothing(
    template: dict[str, Any], value: str, accepted: bool
) -> None:
    pattern = re.compile(template["Parameters"]["NotificationTopicArn"]["AllowedPattern"])
    assert bool(pattern.fullmatch(value)) is accepted


def test_functions_read_the_topic_from_the_environment_only_when_there_is_one(
    template: dict[str, Any],
) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["NOTIFICATION_TOPIC_ARN"] == {
        "Fn::If": ["HasNotificationTopic", {"Ref": "NotificationTopicArn"}, {"Ref": "AWS::NoValue"}]
    }


def test_the_report_may_read_its_own_executions_history(template: dict[str, Any]) -> None:
    (statement,) = [
        statement
        for statement in _policy_statements(template["Resources"]["FinishMigrationFunction"])
        if "states:GetExecutionHistory" in _as_list(statement["Action"])
    ]
    assert _sub_string(statement["Resource"]) == (
        "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}-migration:*"
    )


def test_outputs_name_the_console_the_command_line_and_the_notifications(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    console = _sub_string(outputs["MigrationStateMachineConsoleUrl"]["Value"])
    assert console is not None
    assert console.startswith(
        "https://${AWS::Region}.console.aws.amazon.com/states/home?region=${AWS::Region}"
    )
    assert console.endswith("${MigrationStateMachine}")
    command = _sub_string(outputs["MigrationCommandLine"]["Value"])
    assert command is not None
    assert command.startswith("mwaa-migrate plan --stack-name ${AWS::StackName} --region ${AWS::Region}")
    assert outputs["NotificationEventSource"]["Value"] == "mwaa.migration"
    assert outputs["NotificationDetailTypes"]["Value"] == (
        "Migration Started, Migration Succeeded, Migration Failed"
    )
    assert outputs["NotificationTopic"]["Condition"] == "HasNotificationTopic"
    for name, output in outputs.items():
        assert output.get("Description"), name


# ------------------------------------------------------------------ who may receive the grants


def test_the_execution_roles_default_to_where_mwaa_creates_them(template: dict[str, Any]) -> None:
    # The finding: with role/* any role in the account could receive the import grant.
    parameter = template["Parameters"]["ExecutionRoleArnPattern"]
    assert parameter["Default"] == DEFAULT_EXECUTION_ROLE_ARN_PATTERN == "role/service-role/AmazonMWAA-*"
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["EXECUTION_ROLE_ARN_PATTERN"] == {"Ref": "ExecutionRoleArnPattern"}
    # Every statement on execution roles names the pattern, so IAM enforces what the code checks.
    role_actions = {"iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:GetRolePolicy", "iam:PassRole"}
    for name, function in _functions(template).items():
        for statement in _policy_statements(function):
            if statement["Effect"] != "Allow" or not role_actions & set(_as_list(statement["Action"])):
                continue
            (resource,) = _as_list(statement["Resource"])
            assert _sub_string(resource) == (
                "arn:${AWS::Partition}:iam::${AWS::AccountId}:${ExecutionRoleArnPattern}"
            ), name


def test_mwaa_may_grant_itself_a_key_but_nobody_else_gets_a_grant(template: dict[str, Any]) -> None:
    clone = _functions(template)["CloneEnvironmentFunction"]
    (statement,) = [s for s in _policy_statements(clone) if "kms:CreateGrant" in _as_list(s["Action"])]
    assert statement["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
