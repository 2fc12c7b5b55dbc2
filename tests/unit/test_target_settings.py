"""targetSettings: CreateEnvironment members for the target instead of the source's, refused with the
member and the rule before anything changes, carried into the clone's request when they are right."""

from __future__ import annotations

from typing import Any

import pytest

from mwaa_migrate.environment.secret_options import load_configuration
from mwaa_migrate.environment.target_settings import apply_target_settings, request_problems
from mwaa_migrate.errors import InvalidMigrationRequest
from mwaa_migrate.models import MigrationRequest, parse_model
from tests.unit.test_plan import SOURCE, _objects, _plan, aws  # noqa: F401 (aws is a fixture)

REQUEST = {
    "sourceEnvironmentName": "analytics",
    "targetEnvironmentName": "next",
    "targetAirflowVersion": "2.10.3",
}
SECRET = "s3cr3t-Value-42"


def _refusal(settings: dict[str, Any]) -> str:
    with pytest.raises(InvalidMigrationRequest) as refused:
        parse_model(MigrationRequest, {**REQUEST, "targetSettings": settings})
    return str(refused.value)


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"Name": "other"}, "targetSettings: Name: set by targetEnvironmentName, not here"),
        ({"ExecutionRoleArn": "arn:aws:iam::1:role/x"}, "ExecutionRoleArn: set by targetExecutionRoleArn"),
        ({"DagS3Path": "dags"}, "DagS3Path: set by the pipeline (the target gets its own copy"),
        ({"Bogus": 1}, "Bogus: not a CreateEnvironment member (one of NetworkConfiguration,"),
        ({"MaxWorkers": "5"}, "Invalid type for parameter MaxWorkers"),
        ({"NetworkConfiguration": {"SubnetIds": "subnet-1"}}, "parameter NetworkConfiguration.SubnetIds"),
        ({"WebserverAccessMode": "OPEN"}, "WebserverAccessMode: 'OPEN' is not one of PRIVATE_ONLY"),
        ({"Tags": {"mwaa-migrate:source-environment": "x"}}, "Tags.mwaa-migrate:source-environment: tags"),
    ],
)
def test_a_setting_the_request_may_not_carry_is_refused_naming_the_member_and_the_rule(settings, said):
    assert said in _refusal(settings)


def test_a_refusal_never_repeats_a_configuration_options_value():
    said = _refusal({"AirflowConfigurationOptions": {"core.parallelism": 123456789}})

    assert "AirflowConfigurationOptions.core.parallelism" in said
    assert "123456789" not in said


def test_an_option_named_as_a_secret_is_refused_since_the_request_stays_in_the_history():
    said = _refusal({"AirflowConfigurationOptions": {"smtp.smtp_password": SECRET, "core.parallelism": "64"}})

    assert "AirflowConfigurationOptions.smtp.smtp_password: names a secret" in said
    assert "core.parallelism" not in said
    assert SECRET not in said


def test_options_and_tags_merge_key_by_key_and_other_members_replace_the_sources():
    request = {
        "NetworkConfiguration": {"SubnetIds": ["a", "b"], "SecurityGroupIds": ["sg-old"]},
        "AirflowConfigurationOptions": {"core.parallelism": "32", "celery.worker_autoscale": "5,5"},
        "Tags": {"team": "data"},
    }

    replaced = apply_target_settings(
        request,
        {
            "NetworkConfiguration": {"SubnetIds": ["c", "d"]},
            "AirflowConfigurationOptions": {"core.parallelism": "64"},
            "Tags": {"cost-center": "42"},
        },
    )

    assert replaced == ["AirflowConfigurationOptions", "NetworkConfiguration", "Tags"]
    assert request["NetworkConfiguration"] == {"SubnetIds": ["c", "d"]}
    assert request["AirflowConfigurationOptions"] == {
        "core.parallelism": "64",
        "celery.worker_autoscale": "5,5",
    }
    assert request["Tags"] == {"team": "data", "cost-center": "42"}


def test_the_plan_creates_the_target_with_its_own_settings_and_keeps_option_values_out_of_the_plan(aws):  # noqa: F811
    plan = _plan(
        aws,
        targetSettings={
            "EnvironmentClass": "mw1.large",
            "MaxWorkers": 8,
            "NetworkConfiguration": {"SubnetIds": ["subnet-9", "subnet-8"], "SecurityGroupIds": ["sg-9"]},
            "AirflowConfigurationOptions": {"webserver.instance_name": SECRET},
            "Tags": {"cost-center": "42"},
        },
    )

    created = plan.target.create_request
    assert created["EnvironmentClass"] == "mw1.large"
    assert created["MaxWorkers"] == 8
    assert created["NetworkConfiguration"] == {
        "SubnetIds": ["subnet-9", "subnet-8"],
        "SecurityGroupIds": ["sg-9"],
    }
    assert created["Tags"]["cost-center"] == "42"
    assert created["Tags"]["mwaa-migrate:source-environment"] == "analytics"  # still the pipeline's
    # The source's logging is kept: targetSettings did not name it.
    assert created["LoggingConfiguration"]["TaskLogs"] == SOURCE["LoggingConfiguration"]["TaskLogs"]
    assert any("targetSettings replace the source's" in warning for warning in plan.warnings)
    # An option's value (any may be sensitive) is in the encrypted object CloneEnvironment reads, never
    # in the plan.
    assert SECRET not in str(plan.to_event())
    assert plan.target.configuration is not None
    options = load_configuration(
        aws["s3"],
        plan.target.configuration,
        migration_id=plan.migration_id,
        names=set(created["AirflowConfigurationOptions"]),
    )
    assert options["webserver.instance_name"] == SECRET


def test_every_problem_is_said_at_once():
    said = _refusal({"NetworkConfiguration": {"SubnetIds": []}, "MinWorkers": 0, "Name": "x"})

    assert "Name: set by targetEnvironmentName" in said
    assert "NetworkConfiguration.SubnetIds, valid min length: 2" in said
    assert "MinWorkers, valid min value: 1" in said


def test_the_clones_request_of_a_source_as_it_stands_passes_botocores_model():
    request = {**SOURCE, "Name": "next", "AirflowVersion": "2.10.3"}

    assert request_problems(request) == []
    assert request_problems({**request, "MaxWorkers": -1}) == [
        "Invalid value for parameter MaxWorkers, valid min value: 1"
    ]
