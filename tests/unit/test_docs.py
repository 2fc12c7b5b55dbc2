"""The README and docs/ say what the code does: the diagram is the ASL's, the input schema is the
model's, and every field, parameter, output, notification field and exit code is documented."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from emulation.lambdas import REPO_ROOT
from mwaa_migrate.models import MigrationRequest, parse_model
from mwaa_migrate.run.notifications import DETAIL_TYPES, MigrationNotification
from mwaa_migrate_cli.errors import ExitCode
from scripts import request_schema as schema
from scripts import state_machine_diagram as diagram

README = (REPO_ROOT / "README.md").read_text()
ASL = json.loads((REPO_ROOT / "statemachine" / "migration.asl.json").read_text())


def _section(title: str) -> str:
    """The README's text from a heading to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(title)}\n", README, re.MULTILINE)
    assert match, f"the README has no section {title!r}"
    level = len(match.group(1))
    rest = README[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def _first_column(section: str) -> set[str]:
    return set(re.findall(r"^\| `([^`]+)`", section, re.MULTILINE))


def _json_blocks(section: str) -> list[Any]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, re.DOTALL)]


# ------------------------------------------------------------------ generated documents


def test_the_readme_diagram_is_the_one_generated_from_the_asl():
    assert diagram.readme_block(README) == diagram.markdown_block(), "run make docs"


def test_the_input_schema_in_docs_is_the_one_generated_from_the_model():
    assert schema.SCHEMA_PATH.read_text() == schema.rendered(), "run make docs"


def test_the_input_schema_names_every_field_and_the_accepted_versions():
    generated = schema.request_schema()
    assert set(generated["properties"]) == {field.alias for field in MigrationRequest.model_fields.values()}
    assert generated["required"] == ["targetEnvironmentName", "targetAirflowVersion"]
    # ... and exactly one source: an MWAA environment's name or a self-managed Apache Airflow.
    assert [branch["required"] for branch in generated["oneOf"]] == [["sourceEnvironmentName"], ["source"]]
    assert generated["additionalProperties"] is False
    assert "3.0.6" in generated["properties"]["targetAirflowVersion"]["enum"]
    for example in generated["examples"]:
        parse_model(MigrationRequest, example)


# ------------------------------------------------------------------ the diagram


def test_every_state_and_every_transition_of_the_asl_is_drawn():
    text = diagram.mermaid(ASL)
    edges = set(re.findall(r"^  (\S+) -\S*-?>(?:\|[^|]*\|)? (\S+)$", text, re.MULTILINE))

    def walk(machine: dict[str, Any]) -> None:
        for name, state in machine["States"].items():
            node = f"s_{name}"
            assert re.search(rf'^\s*(subgraph )?{node}\b.*"{name}', text, re.MULTILINE), name
            targets = [state.get("Next"), state.get("Default")]
            targets += [rule["Next"] for rule in state.get("Choices", [])]
            targets += [catcher["Next"] for catcher in state.get("Catch", [])]
            for target in filter(None, targets):
                assert (node, f"s_{target}") in edges, f"{name} -> {target}"
            for branch in state.get("Branches", []):
                walk(branch)
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                walk(processor)

    walk(ASL)
    assert ("start", f"s_{ASL['StartAt']}") in edges


def test_a_small_definition_draws_as_expected():
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": {"Type": "Task", "Next": "Done?", "Catch": [{"ErrorEquals": ["Oops"], "Next": "Failed"}]},
            "Done?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.done", "BooleanEquals": True, "Next": "Ok"}],
                "Default": 'Wait "a bit"',
            },
            'Wait "a bit"': {"Type": "Wait", "Seconds": 1, "Next": "Work"},
            "Ok": {"Type": "Succeed"},
            "Failed": {"Type": "Fail"},
        },
    }

    assert diagram.mermaid(definition) == "\n".join(
        [
            "flowchart TD",
            '  start(("start"))',
            '  s_Work["Work"]',
            '  s_Done_{"Done?"}',
            '  s_Wait__a_bit_{{"Wait #quot;a bit#quot;"}}',
            '  s_Ok(["Ok"])',
            '  s_Failed(["Failed"])',
            "  start --> s_Work",
            "  s_Work --> s_Done_",
            '  s_Work -.->|"Oops"| s_Failed',
            '  s_Done_ -->|"done = true"| s_Ok',
            '  s_Done_ -->|"otherwise"| s_Wait__a_bit_',
            "  s_Wait__a_bit_ --> s_Work",
            "  classDef succeed fill:#d9f2d9,stroke:#2d7d2d",
            "  classDef fail fill:#f8d7d7,stroke:#b02a2a",
            "  class s_Ok succeed",
            "  class s_Failed fail",
            "",
        ]
    )


@pytest.mark.parametrize(
    ("rule", "label"),
    [
        ({"Variable": "$.plan.dryRun", "BooleanEquals": True}, "plan.dryRun = true"),
        ({"Variable": "$.attempt", "NumericGreaterThanEqualsPath": "$.max"}, "attempt >= max"),
        ({"Variable": "$.x", "IsPresent": False}, "x not present"),
        (
            {"And": [{"Variable": "$.a", "StringEquals": "b"}, {"Not": {"Variable": "$.c", "IsNull": True}}]},
            'a = "b" and not c null',
        ),
        ({"Condition": "{% $states.input.done %}"}, "{% $states.input.done %}"),
    ],
)
def test_choice_rules_read_as_conditions(rule, label):
    assert diagram.rule_label(rule) == label


# ------------------------------------------------------------------ the README documents everything


def test_every_input_field_is_in_the_readme_table():
    documented = _first_column(_section("The input"))
    assert documented == {field.alias for field in MigrationRequest.model_fields.values()}


def test_the_readme_input_examples_are_valid_and_the_first_two_are_the_sample_events():
    examples = _json_blocks(_section("The input"))
    assert len(examples) >= 3
    for example in examples:
        parse_model(MigrationRequest, example)
    for example, sample in zip(
        examples, ("migration_request.json", "migration_request_dry_run.json"), strict=False
    ):
        assert example == json.loads((REPO_ROOT / "events" / sample).read_text())


def test_every_template_parameter_and_output_is_in_the_readme():
    template = cfn_yaml.load(str(REPO_ROOT / "template.yaml"))
    deploying = _section("Deploying")
    assert _first_column(deploying) >= set(template["Parameters"])
    outputs = set(re.findall(r"`(\w+)`", deploying))
    assert set(template["Outputs"]) <= outputs


def test_the_notification_detail_table_is_the_notification_model():
    documented = _first_column(_section("Notifications"))
    fields = {field.alias for field in MigrationNotification.model_fields.values()}
    assert fields <= documented
    assert documented - fields == set(DETAIL_TYPES.values())


def test_the_notification_example_is_a_valid_event():
    (example, pattern) = _json_blocks(_section("Notifications"))
    detail = MigrationNotification.model_validate(example["detail"])
    assert example["detail-type"] == detail.detail_type
    assert example["source"] == pattern["source"][0] == "mwaa.migration"
    assert example["resources"] == [detail.execution_arn]


def test_every_exit_code_is_in_the_readme():
    table = _section("The `mwaa-migrate` command")
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)}
    assert documented == {int(code) for code in ExitCode}


def _fail_state_errors(states: dict[str, Any]) -> set[str]:
    errors: set[str] = set()
    for state in states.values():
        if state["Type"] == "Fail" and "Error" in state:
            errors.add(state["Error"])
        if state["Type"] == "Pass" and isinstance(state.get("Parameters"), dict):
            errors.update({state["Parameters"]["Error"]} if "Error" in state["Parameters"] else set())
        for branch in state.get("Branches", []):
            errors |= _fail_state_errors(branch["States"])
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            errors |= _fail_state_errors(processor["States"])
    return errors


def test_every_error_a_migration_can_end_with_is_in_when_things_go_wrong():
    import mwaa_migrate.errors as errors_module  # noqa: PLC0415
    from mwaa_migrate.run.lock import MigrationInProgress  # noqa: PLC0415

    raised = {
        name
        for name, value in vars(errors_module).items()
        if isinstance(value, type) and issubclass(value, errors_module.MigrationError)
    } - {"MigrationError"}
    raised.add(MigrationInProgress.__name__)
    documented = _first_column(_section("When things go wrong"))
    assert raised | _fail_state_errors(ASL["States"]) <= documented


def test_the_deployer_finds_the_iam_it_needs_in_the_readme():
    deploying = _section("Deploying")
    for path in ("docs/deployer-policy.json", "docs/cloudformation-service-role.json"):
        assert f"({path})" in deploying
        assert (REPO_ROOT / path).is_file()
    role = _section("The target's execution role")
    assert "airflow.amazonaws.com" in role
    assert "airflow-env.amazonaws.com" in role
    assert "ExecutionRoleArnPattern" in role
