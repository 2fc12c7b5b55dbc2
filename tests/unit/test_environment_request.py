import botocore.session
from botocore.validate import ParamValidator

from mwaa_migrate.environment.environment_request import (
    CREATED_BY_TAG,
    PAUSED_AT_CREATION,
    SOURCE_TAG,
    build_create_request,
    create_environment_input,
)

SOURCE = {
    "Name": "analytics-prod",
    "Arn": "arn:aws:airflow:us-east-1:123456789012:environment/analytics-prod",
    "Status": "AVAILABLE",
    "CreatedAt": "2025-01-01T00:00:00Z",
    "WebserverUrl": "abc.c10.airflow.us-east-1.on.aws",
    "ServiceRoleArn": "arn:aws:iam::123456789012:role/aws-service-role/airflow.amazonaws.com/MWAA",
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/service-role/AmazonMWAA-analytics-prod",
    "AirflowVersion": "2.0.2",
    "SourceBucketArn": "arn:aws:s3:::airflow-analytics-prod",
    "DagS3Path": "dags",
    "PluginsS3Path": "plugins.zip",
    "PluginsS3ObjectVersion": "v1",
    "StartupScriptS3Path": "startup.sh",
    "KmsKey": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "NetworkConfiguration": {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]},
    "EndpointManagement": "CUSTOMER",
    "WebserverVpcEndpointService": "com.amazonaws.vpce.us-east-1.vpce-svc-1",
    "DatabaseVpcEndpointService": "com.amazonaws.vpce.us-east-1.vpce-svc-2",
    "CeleryExecutorQueue": "arn:aws:sqs:us-east-1:123456789012:airflow-celery-1",
    "LastUpdate": {"Status": "SUCCESS", "CreatedAt": "2025-01-02T00:00:00Z"},
    "MinWebservers": 2,
    "MaxWebservers": 5,
    "Schedulers": 3,
    "AirflowConfigurationOptions": {"core.dag_concurrency": "8"},
    "LoggingConfiguration": {
        "TaskLogs": {
            "Enabled": True,
            "LogLevel": "INFO",
            "CloudWatchLogGroupArn": "arn:aws:logs:us-east-1:123456789012:log-group:airflow-analytics-Task",
        }
    },
    "Tags": {"team": "analytics", "aws:cloudformation:stack-name": "mwaa"},
}


def _request():
    return build_create_request(
        SOURCE,
        name="analytics-next",
        airflow_version="2.10.3",
        execution_role_arn="arn:aws:iam::123456789012:role/next",
    )


def test_read_only_fields_are_dropped_and_every_setting_carried():
    request, _ = _request()
    for read_only in (
        "Arn",
        "Status",
        "CreatedAt",
        "WebserverUrl",
        "ServiceRoleArn",
        "LastUpdate",
        "WebserverVpcEndpointService",
        "DatabaseVpcEndpointService",
        "CeleryExecutorQueue",
    ):
        assert read_only not in request
    for carried in (
        "KmsKey",
        "PluginsS3Path",
        "PluginsS3ObjectVersion",
        "StartupScriptS3Path",
        "EndpointManagement",
        "MinWebservers",
        "MaxWebservers",
        "Schedulers",
        "NetworkConfiguration",
    ):
        assert request[carried] == SOURCE[carried]


def test_log_group_arns_are_dropped_inside_the_logging_configuration():
    request, _ = _request()
    assert request["LoggingConfiguration"] == {"TaskLogs": {"Enabled": True, "LogLevel": "INFO"}}


def test_overrides_apply_and_reserved_tags_are_dropped():
    request, _ = _request()
    assert request["Name"] == "analytics-next"
    assert request["AirflowVersion"] == "2.10.3"
    assert request["ExecutionRoleArn"] == "arn:aws:iam::123456789012:role/next"
    assert request["Tags"] == {
        "team": "analytics",
        SOURCE_TAG: "analytics-prod",
        CREATED_BY_TAG: "mwaa-migrate",
    }


def test_configuration_is_adapted_to_the_new_version():
    request, warnings = _request()
    assert request["AirflowConfigurationOptions"]["core.max_active_tasks_per_dag"] == "8"
    assert "core.dag_concurrency" not in request["AirflowConfigurationOptions"]
    assert any("core.dag_concurrency" in warning for warning in warnings)


def test_the_target_creates_every_dag_paused_when_the_source_says_nothing():
    # Given a source that leaves core.dags_are_paused_at_creation to Airflow's default
    # When the clone's request is built
    request, warnings = _request()
    # Then the target is told to pause every DAG it finds, without a warning (the default is True)
    assert request["AirflowConfigurationOptions"][PAUSED_AT_CREATION] == "True"
    assert not any(PAUSED_AT_CREATION in warning for warning in warnings)


def test_a_source_that_starts_dags_unpaused_is_overridden_with_a_warning():
    # Given a source whose new DAGs start unpaused
    source = {**SOURCE, "AirflowConfigurationOptions": {PAUSED_AT_CREATION: "False"}}
    # When the clone's request is built
    request, warnings = build_create_request(
        source,
        name="analytics-next",
        airflow_version="2.10.3",
        execution_role_arn="arn:aws:iam::123456789012:role/next",
    )
    # Then the target still pauses them, and the plan says so
    assert request["AirflowConfigurationOptions"] == {PAUSED_AT_CREATION: "True"}
    assert any(f"{PAUSED_AT_CREATION}=False" in warning for warning in warnings)


def test_a_source_without_configuration_options_gets_only_the_pause():
    source = {key: value for key, value in SOURCE.items() if key != "AirflowConfigurationOptions"}
    request, _ = build_create_request(
        source,
        name="analytics-next",
        airflow_version="2.10.3",
        execution_role_arn="arn:aws:iam::123456789012:role/next",
    )
    assert request["AirflowConfigurationOptions"] == {PAUSED_AT_CREATION: "True"}


def test_the_request_is_valid_for_botocore():
    request, _ = _request()
    # botocore's own validator, the one every client call goes through.
    report = ParamValidator().validate(request, create_environment_input())
    assert not report.has_errors(), report.generate_report()


def test_the_fields_come_from_the_model_so_new_ones_are_carried():
    members = set(create_environment_input().members)
    assert {"Name", "ExecutionRoleArn", "SourceBucketArn", "DagS3Path", "NetworkConfiguration"} <= members
    model_input = (
        botocore.session.get_session().get_service_model("mwaa").operation_model("CreateEnvironment")
    )
    assert members == set(model_input.input_shape.members)
