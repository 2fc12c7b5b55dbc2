"""The functions that talk to Airflow may call InvokeRestApi as Airflow role User, and no other
function may; in the stack's VPC they get the network interfaces Lambda needs, outside it nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.iam.actions import Where, iam_requests
from tests.iam.evaluator import Request, evaluate
from tests.iam.template import StackValues, load_template, policies

WHERE = Where("aws", "eu-west-1", "210987654321")
STACK = StackValues(
    region="eu-west-1",
    account_id="210987654321",
    stack_name="mig",
    bucket="mig-bucket",
    key_arn="arn:aws:kms:eu-west-1:210987654321:key/k-1",
)
IN_VPC = replace(
    STACK,
    parameters=(
        ("WebserverSubnetIds", "subnet-0a1b2c3d,subnet-4e5f6a7b"),
        ("WebserverSecurityGroupIds", "sg-0a1b2c3d"),
    ),
)
WEBSERVER_FUNCTIONS = (
    "TriggerDagFunction",
    "CheckDagRunFunction",
    "StartTargetDagsFunction",
    "RecordFailureFunction",
    "SettleStoppedExecutionFunction",
)


def _role(environment: str, role: str) -> Request:
    return Request(
        "airflow:InvokeRestApi", f"arn:aws:airflow:eu-west-1:210987654321:role/{environment}/{role}"
    )


class _NoWorld:
    def environment_tags(self, name: str) -> None:
        return None


def test_invoke_rest_api_is_authorised_on_the_airflow_role_the_functions_act_as() -> None:
    [request] = iam_requests(
        "airflow", "InvokeRestApi", {"Name": "prod", "Path": "/dags", "Method": "GET"}, WHERE, _NoWorld()
    )

    assert request == _role("prod", "User")


@pytest.mark.parametrize("function", WEBSERVER_FUNCTIONS)
def test_each_function_that_talks_to_airflow_may_invoke_its_rest_api_as_user_only(function: str) -> None:
    statements = policies(load_template(), STACK)[function]

    assert evaluate(statements, _role("prod", "User")).allowed
    assert not evaluate(statements, _role("prod", "Admin")).allowed
    assert not evaluate(statements, _role("prod", "Op")).allowed


def test_no_other_function_may_invoke_the_rest_api() -> None:
    resolved = policies(load_template(), STACK)

    allowed = sorted(
        name for name, statements in resolved.items() if evaluate(statements, _role("prod", "User")).allowed
    )

    assert allowed == sorted(WEBSERVER_FUNCTIONS)


@pytest.mark.parametrize("function", WEBSERVER_FUNCTIONS)
def test_in_the_stacks_vpc_the_functions_may_make_their_network_interfaces(function: str) -> None:
    eni = Request("ec2:CreateNetworkInterface", "arn:aws:ec2:eu-west-1:210987654321:network-interface/*")

    assert not evaluate(policies(load_template(), STACK)[function], eni).allowed
    assert evaluate(policies(load_template(), IN_VPC)[function], eni).allowed
    other_account = Request(
        "ec2:CreateNetworkInterface", "arn:aws:ec2:eu-west-1:111111111111:network-interface/*"
    )
    assert not evaluate(policies(load_template(), IN_VPC)[function], other_account).allowed


def test_only_the_functions_that_talk_to_airflow_run_in_the_vpc() -> None:
    resources = load_template()["Resources"]

    in_vpc = sorted(
        name for name, resource in resources.items() if "VpcConfig" in resource.get("Properties", {})
    )

    assert in_vpc == sorted(WEBSERVER_FUNCTIONS)
