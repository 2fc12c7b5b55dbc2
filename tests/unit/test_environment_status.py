import boto3
import pytest
from botocore.stub import Stubber

from mwaa_migrate.environment.environment_status import check_environment
from mwaa_migrate.errors import EnvironmentFailed, TransientAwsError


def _environment(status, version="2.10.3", last_update=None):
    environment = {"Name": "next", "Status": status, "AirflowVersion": version}
    if last_update:
        environment["LastUpdate"] = last_update
    return {"Environment": environment}


@pytest.fixture
def mwaa():
    client = boto3.client("mwaa", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_creating_is_not_ready_and_counts_the_attempt(mwaa):
    client, stubber = mwaa
    stubber.add_response("get_environment", _environment("CREATING"), {"Name": "next"})
    check = check_environment(client, "next", attempt=4)
    assert (check.ready, check.status, check.attempt) == (False, "CREATING", 5)


def test_available_is_ready(mwaa):
    client, stubber = mwaa
    stubber.add_response("get_environment", _environment("AVAILABLE"), {"Name": "next"})
    assert check_environment(client, "next", attempt=0, expected_version="2.10.3").ready


@pytest.mark.parametrize("status", ["CREATE_FAILED", "UPDATE_FAILED", "UNAVAILABLE", "DELETED"])
def test_a_failed_status_fails_at_once_with_mwaas_error(mwaa, status):
    client, stubber = mwaa
    error = {
        "Status": "FAILED",
        "Error": {"ErrorCode": "INCORRECT_CONFIGURATION", "ErrorMessage": "subnet has no route"},
    }
    stubber.add_response("get_environment", _environment(status, last_update=error), {"Name": "next"})
    with pytest.raises(
        EnvironmentFailed, match=f"next is {status}: INCORRECT_CONFIGURATION: subnet has no route"
    ):
        check_environment(client, "next", attempt=0)


def test_an_update_rolled_back_to_the_old_version_fails(mwaa):
    client, stubber = mwaa
    error = {
        "Status": "FAILED",
        "Error": {"ErrorCode": "UPGRADE_FAILED", "ErrorMessage": "plugins did not load"},
    }
    stubber.add_response("get_environment", _environment("AVAILABLE", "2.11.0", error), {"Name": "next"})
    with pytest.raises(EnvironmentFailed, match="stayed on Airflow 2.11.0: the update to 3.0.6 failed"):
        check_environment(client, "next", attempt=0, expected_version="3.0.6")


def test_available_on_the_old_version_before_the_update_starts_is_not_ready(mwaa):
    client, stubber = mwaa
    stubber.add_response("get_environment", _environment("AVAILABLE", "2.11.0"), {"Name": "next"})
    assert not check_environment(client, "next", attempt=0, expected_version="3.0.6").ready


def test_a_missing_environment_fails(mwaa):
    client, stubber = mwaa
    stubber.add_client_error("get_environment", "ResourceNotFoundException", http_status_code=404)
    with pytest.raises(EnvironmentFailed, match="does not exist"):
        check_environment(client, "next", attempt=0)


def test_throttling_that_outlives_botocore_is_transient(mwaa):
    client, stubber = mwaa
    stubber.add_client_error("get_environment", "ThrottlingException", http_status_code=429)
    with pytest.raises(TransientAwsError):
        check_environment(client, "next", attempt=0)


def test_a_target_already_on_the_final_version_is_ready(mwaa):
    # Given a re-run whose target was upgraded 2.11.0 -> 3.0.6 by the earlier run
    client, stubber = mwaa
    stubber.add_response("get_environment", _environment("AVAILABLE", "3.0.6"), {"Name": "next"})
    # When CheckTarget polls it for the create version, with the plan's final version
    check = check_environment(client, "next", attempt=0, expected_version="2.11.0", final_version="3.0.6")
    # Then it is ready at once instead of polling until the deadline
    assert (check.ready, check.airflow_version) == (True, "3.0.6")


def test_available_on_neither_the_create_nor_the_final_version_is_not_ready(mwaa):
    client, stubber = mwaa
    stubber.add_response("get_environment", _environment("AVAILABLE", "2.10.3"), {"Name": "next"})
    check = check_environment(client, "next", attempt=0, expected_version="2.11.0", final_version="3.0.6")
    assert check.ready is False
