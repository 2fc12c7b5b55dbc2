import pytest

from mwaa_migrate.errors import InvalidMigrationRequest
from mwaa_migrate.models import MigrationRequest, parse_model, parse_request

VALID = {
    "sourceEnvironmentName": "analytics-prod",
    "targetEnvironmentName": "analytics-prod-2-10",
    "targetAirflowVersion": "2.10.3",
}


def test_defaults_apply_to_a_minimal_request():
    request = parse_model(MigrationRequest, VALID)
    assert (request.log_days, request.dry_run, request.migration_bucket) == (3, False, None)
    assert (request.log_groups, request.failed_tasks_only) == (["Task"], False)
    assert request.target_execution_role_arn is None


@pytest.mark.parametrize(
    ("field", "python_name", "value"),
    [("dryRun", "dry_run", True), ("logGroups", "log_groups", ["Task"]), ("logDays", "log_days", 5)],
)
def test_a_request_field_spelt_by_its_python_name_is_refused_naming_it(field, python_name, value):
    """The documented names only: `dry_run` is not read as dryRun (which would otherwise default)."""
    with pytest.raises(InvalidMigrationRequest, match=rf"{python_name}: Extra inputs are not permitted"):
        parse_request({**VALID, python_name: value})
    assert getattr(parse_request({**VALID, field: value}), python_name) == value


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"sourceEnvironmentName": "1starts-with-digit"}, "sourceEnvironmentName", "should match pattern"),
        ({"targetEnvironmentName": "x" * 81}, "targetEnvironmentName", "at most 80 characters"),
        ({"targetEnvironmentName": "has space"}, "targetEnvironmentName", "should match pattern"),
        ({"targetAirflowVersion": "2.10.4"}, "targetAirflowVersion", "must be one of"),
        (
            {"targetExecutionRoleArn": "arn:aws:iam::123:role/x"},
            "targetExecutionRoleArn",
            "should match pattern",
        ),
        ({"migrationBucket": "Upper_Case"}, "migrationBucket", "should match pattern"),
        ({"logDays": 0}, "logDays", "greater than or equal to 1"),
        ({"logDays": 15}, "logDays", "less than or equal to 14"),
        ({"dryRun": "perhaps"}, "dryRun", "valid boolean"),
        ({"logGroups": ["Task", "Audit"]}, "logGroups.1", "Input should be 'Task', 'Worker'"),
        ({"logGroups": "Task"}, "logGroups", "valid list"),
        ({"logGroups": ["Task", "Worker", "Task"]}, "logGroups", "names Task more than once"),
        ({"failedTasksOnly": "perhaps"}, "failedTasksOnly", "valid boolean"),
        (
            {"failedTasksOnly": True, "logGroups": ["Worker"]},
            "input",
            "failedTasksOnly selects Task logs, but logGroups does not include Task",
        ),
        ({"unexpected": 1}, "unexpected", "Extra inputs are not permitted"),
        ({"targetEnvironmentName": "analytics-prod"}, "input", "must differ from sourceEnvironmentName"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_the_rule(change, field, rule):
    with pytest.raises(InvalidMigrationRequest) as refused:
        parse_model(MigrationRequest, {**VALID, **change})
    assert field in str(refused.value)
    assert rule in str(refused.value)


def test_a_missing_field_is_named():
    with pytest.raises(InvalidMigrationRequest, match="targetAirflowVersion: Field required"):
        parse_model(MigrationRequest, {k: v for k, v in VALID.items() if k != "targetAirflowVersion"})


def test_the_wire_form_is_camel_case():
    request = parse_model(MigrationRequest, {**VALID, "logDays": 5})
    assert request.to_event() == {
        **VALID,
        "logDays": 5,
        "logGroups": ["Task"],
        "failedTasksOnly": False,
        "dryRun": False,
        "cutover": "auto",
        "approvalTimeoutHours": 24,
        "drainTimeoutMinutes": 30,
        "onDrainTimeout": "fail",
        "onConflict": "fail",
        "onIncompatibleDags": "warn",
        "replaceFailedTarget": True,
    }


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"cutover": "now"}, "cutover", "'auto' or 'approve'"),
        ({"drainTimeoutMinutes": -1}, "drainTimeoutMinutes", "greater than or equal to 0"),
        ({"drainTimeoutMinutes": "30"}, "drainTimeoutMinutes", "valid integer"),
        ({"onDrainTimeout": "wait"}, "onDrainTimeout", "'fail' or 'carry'"),
        ({"onConflict": "skip"}, "onConflict", "'fail', 'keep-target' or 'overwrite'"),
        ({"approvalTimeoutHours": 0}, "approvalTimeoutHours", "greater than or equal to 1"),
        ({"replaceFailedTarget": "yes"}, "replaceFailedTarget", "valid boolean"),
    ],
)
def test_cutover_settings_that_break_a_rule_are_refused_naming_the_field(change, field, rule):
    with pytest.raises(InvalidMigrationRequest) as refused:
        parse_model(MigrationRequest, {**VALID, **change})
    assert field in str(refused.value)
    assert rule in str(refused.value)


def test_log_groups_may_name_every_mwaa_log_group_or_none():
    every = ["Task", "Worker", "Scheduler", "DAGProcessing", "WebServer"]
    assert parse_model(MigrationRequest, {**VALID, "logGroups": every}).log_groups == every
    assert parse_model(MigrationRequest, {**VALID, "logGroups": []}).log_groups == []
