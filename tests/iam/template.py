"""The policies of template.yaml's functions and state machine, as IAM gets them from the deployed
stack: intrinsics resolved to the emulated stack's values, SAM policy templates expanded.

Read with cfn-lint's decoder (intrinsics in their long form, as CloudFormation sees them). Any
intrinsic, reference or policy template not handled here raises: a policy is never half resolved.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
STATE_MACHINE = "MigrationStateMachine"
_POLICY_HOLDERS = ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")
_NO_VALUE = object()


class UnresolvedTemplate(ValueError):
    """An intrinsic or reference the resolver does not know."""


@dataclass(frozen=True)
class StackValues:
    """What the emulated stack's template resolves to."""

    region: str
    account_id: str
    stack_name: str
    bucket: str
    key_arn: str
    # Parameter values other than the template's defaults (from the functions' environment).
    parameters: tuple[tuple[str, str], ...] = ()
    partition: str = "aws"
    # The RSA key that seals a self-managed source's export keys (SEALING_KEY_ARN; "" when unset).
    sealing_key_arn: str = ""


@lru_cache(maxsize=1)
def _loaded(mtime: float) -> dict[str, Any]:
    # Imported here: cfn-lint takes a second to import, and only a test that ran a migration needs it.
    from cfnlint.decode import cfn_yaml  # type: ignore[import-untyped]  # noqa: PLC0415

    return cfn_yaml.load(str(TEMPLATE_PATH))  # type: ignore[no-any-return]


def load_template() -> dict[str, Any]:
    """template.yaml as it is now (re-read when the file changes), a copy the caller may change."""
    return dict(copy.deepcopy(current_template()))


def current_template() -> Mapping[str, Any]:
    """template.yaml as it is now, shared: not to be changed."""
    return _loaded(TEMPLATE_PATH.stat().st_mtime)


def template_parameter_variables() -> dict[str, str]:
    """parameter_variables of template.yaml as it is now."""
    return _parameter_variables(TEMPLATE_PATH.stat().st_mtime)


@lru_cache(maxsize=1)
def _parameter_variables(mtime: float) -> dict[str, str]:
    return parameter_variables(_loaded(mtime))


# SAM's policy templates that the template uses (samtranslator's policy_templates.json).
_POLICY_TEMPLATES: dict[str, Any] = {
    "LambdaInvokePolicy": {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["lambda:InvokeFunction"],
                "Resource": {
                    "Fn::Sub": [
                        "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${functionName}*",
                        {"functionName": {"Ref": "FunctionName"}},
                    ]
                },
            }
        ]
    }
}


def parameter_variables(template: Mapping[str, Any]) -> dict[str, str]:
    """Environment variable -> template parameter, for the functions' variables set from a
    parameter (!Ref or a branch of !If): the emulation sets the variable, so it is the value."""
    found: dict[str, str] = {}
    parameters = template.get("Parameters", {})

    def refs(value: Any) -> list[str]:
        if isinstance(value, Mapping):
            if set(value) == {"Ref"} and value["Ref"] in parameters:
                return [str(value["Ref"])]
            if set(value) == {"Fn::If"}:
                return [ref for branch in value["Fn::If"][1:] for ref in refs(branch)]
        return []

    blocks = [template.get("Globals", {}).get("Function", {})]
    blocks += [
        r.get("Properties", {}) for r in template["Resources"].values() if r["Type"] in _POLICY_HOLDERS
    ]
    for block in blocks:
        for variable, value in block.get("Environment", {}).get("Variables", {}).items():
            for parameter in refs(value):
                found[str(variable)] = parameter
    return found


class _Resolver:
    def __init__(self, template: Mapping[str, Any], stack: StackValues) -> None:
        self.template = template
        self.stack = stack
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()
        }
        self.parameters.update(dict(stack.parameters))
        self.conditions: dict[str, bool] = {}

    def ref(self, name: str) -> Any:
        stack = self.stack
        pseudo = {
            "AWS::Partition": stack.partition,
            "AWS::Region": stack.region,
            "AWS::AccountId": stack.account_id,
            "AWS::StackName": stack.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        resources = self.template["Resources"]
        if name not in resources:
            raise UnresolvedTemplate(f"Ref {name}: no such parameter or resource")
        kind = resources[name]["Type"]
        if name == "MigrationBucket":
            return stack.bucket
        if name == "MigrationKey":
            return stack.key_arn.rsplit("/", 1)[-1]
        if kind == "AWS::Serverless::Function":
            # The emulation names each function by its logical id (emulation.lambdas.logical_id).
            return name
        if kind == "AWS::Serverless::StateMachine":
            return self.get_att(name, "Arn")
        raise UnresolvedTemplate(f"Ref {name} ({kind}) has no emulated value")

    def get_att(self, name: str, attribute: str) -> str:
        stack = self.stack
        region = f"{stack.partition}:{{service}}:{stack.region}:{stack.account_id}"
        match name, attribute:
            case "MigrationBucket", "Arn":
                return f"arn:{stack.partition}:s3:::{stack.bucket}"
            case "MigrationKey", "Arn":
                return stack.key_arn
            case "SealingKey", "Arn":
                return stack.sealing_key_arn or f"arn:{region.format(service='kms')}:key/sealing-key-not-set"
            case _, "Arn" if (
                self.template["Resources"].get(name, {}).get("Type") == "AWS::Serverless::Function"
            ):
                return "arn:" + region.format(service="lambda") + f":function:{name}"
            case _, "Arn" if name == STATE_MACHINE:
                return (
                    "arn:" + region.format(service="states") + f":stateMachine:{stack.stack_name}-migration"
                )
        raise UnresolvedTemplate(f"GetAtt {name}.{attribute} has no emulated value")

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self.conditions[name]

    def sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                resource, attribute = name.split(".", 1)
                return self.get_att(resource, attribute)
            value = self.ref(name)
            if value is _NO_VALUE:
                raise UnresolvedTemplate(f"Sub ${{{name}}}: AWS::NoValue")
            return str(value)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(node, Mapping):
            return str(node) if isinstance(node, str) else node
        if len(node) == 1:
            [(key, value)] = node.items()
            match key:
                case "Ref":
                    return self.ref(str(value))
                case "Fn::GetAtt":
                    resource, attribute = value if isinstance(value, list) else str(value).split(".", 1)
                    return self.get_att(str(resource), str(attribute))
                case "Fn::Sub":
                    if isinstance(value, list):
                        text, variables = value
                        return self.sub(str(text), {k: self.resolve(v) for k, v in variables.items()})
                    return self.sub(str(value), {})
                case "Fn::Join":
                    separator, items = value
                    return str(separator).join(str(item) for item in self.resolve(items))
                case "Fn::If":
                    name, when_true, when_false = value
                    return self.resolve(when_true if self.condition(str(name)) else when_false)
                case "Fn::Equals":
                    left, right = (self.resolve(item) for item in value)
                    return left == right
                case "Fn::Not":
                    return not self.resolve(value[0])
                case "Fn::And":
                    return all(self.resolve(item) for item in value)
                case "Fn::Or":
                    return any(self.resolve(item) for item in value)
                case "Condition":
                    return self.condition(str(value))
            if key.startswith("Fn::"):
                raise UnresolvedTemplate(f"intrinsic {key}")
        resolved = {str(k): self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def policy_statements(self, policy: Any, holder: str) -> list[dict[str, Any]]:
        if isinstance(policy, Mapping) and set(policy) == {"Fn::If"}:
            chosen = self.resolve(policy)
            return [] if chosen is _NO_VALUE else self.policy_statements(chosen, holder)
        if not isinstance(policy, Mapping):
            raise UnresolvedTemplate(f"{holder}: managed policy {policy!r} is not evaluated")
        if "Statement" in policy:
            statements = self.resolve(policy["Statement"])
            return [statements] if isinstance(statements, dict) else list(statements)
        [(name, arguments)] = policy.items()
        if name not in _POLICY_TEMPLATES:
            raise UnresolvedTemplate(f"{holder}: SAM policy template {name} is not expanded here")
        resolved_arguments = self.resolve(arguments)
        expanded = copy.deepcopy(_POLICY_TEMPLATES[name])

        def bind(node: Any) -> Any:
            if isinstance(node, Mapping):
                if set(node) == {"Ref"} and node["Ref"] in resolved_arguments:
                    return resolved_arguments[node["Ref"]]
                return {k: bind(v) for k, v in node.items()}
            if isinstance(node, list):
                return [bind(item) for item in node]
            return node

        return list(self.resolve(bind(expanded)["Statement"]))


def policies(template: Mapping[str, Any], stack: StackValues) -> dict[str, list[dict[str, Any]]]:
    """Logical id -> the resolved statements of every function's and the state machine's role."""
    resolver = _Resolver(template, stack)
    found: dict[str, list[dict[str, Any]]] = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] not in _POLICY_HOLDERS:
            continue
        statements: list[dict[str, Any]] = []
        for policy in resource.get("Properties", {}).get("Policies", []):
            statements += resolver.policy_statements(policy, str(name))
        found[str(name)] = statements
    return found
