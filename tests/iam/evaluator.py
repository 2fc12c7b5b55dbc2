"""IAM's evaluation of an identity-based policy, the parts this project's policies use.

A request is an action, a resource ARN and the condition keys the call carries. The policy decides
as IAM does for a principal with identity policies only (no SCP, boundary or session policy): an
explicit Deny in any statement wins, otherwise an Allow in any statement allows, otherwise the
request is implicitly denied.

Matching follows the IAM user guide ("Policy evaluation logic", "IAM JSON policy elements"):
- Action and NotAction: `*` and `?` wildcards, case-insensitive.
- Resource and NotResource: an ARN's six colon-separated parts match part by part (a wildcard does
  not cross into another part, but the resource part may hold colons and slashes); case-sensitive.
- Condition: every operator block must match, every key in it must match, any value of a key does.
  A key absent from the request matches no positive operator (...IfExists matches it, a negated
  operator matches it); ForAnyValue/ForAllValues qualify multivalued keys. Condition key names are
  case-insensitive, values case-sensitive unless the operator says IgnoreCase.

Any element or operator outside this set raises UnsupportedPolicy: the evaluator never guesses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

ContextValue = str | bool | Sequence[str]


class UnsupportedPolicy(ValueError):
    """A policy element or operator the evaluator does not implement."""


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # "allowed by <sid>", "explicitly denied by <sid>" or "no statement allows it".
    reason: str


@lru_cache(maxsize=4096)
def _glob(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def like(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcard match: `*` any run of characters, `?` one character, nothing else special."""
    return _glob(pattern, ignore_case=ignore_case).fullmatch(value) is not None


def arn_like(pattern: str, arn: str) -> bool:
    """Resource/ArnLike matching: `*` alone matches anything; otherwise part by part."""
    if pattern == "*":
        return True
    want = pattern.split(":", 5)
    have = arn.split(":", 5)
    if len(want) != 6:
        raise UnsupportedPolicy(f"resource {pattern!r} is neither * nor an ARN of six parts")
    if len(have) != 6:
        return False
    return all(like(w, h) for w, h in zip(want, have, strict=True))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _lookup(context: Mapping[str, ContextValue], key: str) -> ContextValue | None:
    lowered = key.lower()
    for name, value in context.items():
        if name.lower() == lowered:
            return value
    return None


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str | int):
        raise UnsupportedPolicy(f"condition value {value!r} is neither a string, a number nor a boolean")
    return str(value)


def _value_matches(base: str, wanted: str, have: str) -> bool:
    match base:
        case "StringEquals":
            return have == wanted
        case "StringEqualsIgnoreCase":
            return have.lower() == wanted.lower()
        case "StringLike":
            return like(wanted, have)
        case "ArnEquals" | "ArnLike":
            return arn_like(wanted, have)
        case "Bool":
            return have.lower() == wanted.lower()
    raise UnsupportedPolicy(f"condition operator {base}")


_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
_POSITIVE = frozenset(
    {"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike", "Bool"}
)


def _condition_matches(
    operator: str, key: str, wanted: list[Any], context: Mapping[str, ContextValue]
) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    have = _lookup(context, key)
    wanted_strings = [_string(value) for value in wanted]
    if base == "Null":
        if qualifier or if_exists:
            raise UnsupportedPolicy(f"condition operator {operator}")
        absent = have is None or (isinstance(have, list | tuple) and not have)
        return all((w.lower() == "true") == absent for w in wanted_strings)
    negated = base in _NEGATED
    positive = _NEGATED.get(base, base)
    if positive not in _POSITIVE:
        raise UnsupportedPolicy(f"condition operator {operator}")

    def one(value: str) -> bool:
        hit = any(_value_matches(positive, w, value) for w in wanted_strings)
        return not hit if negated else hit

    if have is None:
        if qualifier == "ForAllValues":
            return True
        return if_exists or (negated and qualifier != "ForAnyValue")
    values = [_string(v) for v in _as_list(have)]
    match qualifier:
        case "ForAnyValue":
            return any(one(v) for v in values)
        case "ForAllValues":
            return all(one(v) for v in values)
        case "":
            if isinstance(have, list | tuple):
                raise UnsupportedPolicy(
                    f"{operator} on the multivalued key {key} needs ForAnyValue/ForAllValues"
                )
            return one(values[0])
    raise UnsupportedPolicy(f"condition operator {operator}")


def conditions_match(condition: Mapping[str, Any], context: Mapping[str, ContextValue]) -> bool:
    return all(
        _condition_matches(operator, key, _as_list(wanted), context)
        for operator, keys in condition.items()
        for key, wanted in keys.items()
    )


_ELEMENTS = frozenset({"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"})


def statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    unknown = set(statement) - _ELEMENTS
    if unknown or ("Action" in statement) == ("NotAction" in statement):
        raise UnsupportedPolicy(f"statement {statement.get('Sid', '?')}: elements {sorted(statement)}")
    if ("Resource" in statement) == ("NotResource" in statement):
        raise UnsupportedPolicy(f"statement {statement.get('Sid', '?')}: needs one of Resource, NotResource")
    if "Action" in statement:
        action_ok = any(like(a, request.action, ignore_case=True) for a in _as_list(statement["Action"]))
    else:
        action_ok = not any(
            like(a, request.action, ignore_case=True) for a in _as_list(statement["NotAction"])
        )
    if not action_ok:
        return False
    if "Resource" in statement:
        resource_ok = any(arn_like(r, request.resource) for r in _as_list(statement["Resource"]))
    else:
        resource_ok = not any(arn_like(r, request.resource) for r in _as_list(statement["NotResource"]))
    return resource_ok and conditions_match(statement.get("Condition", {}), request.context)


def evaluate(statements: Iterable[Mapping[str, Any]], request: Request) -> Decision:
    allowed_by: str | None = None
    for index, statement in enumerate(statements):
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise UnsupportedPolicy(f"statement {statement.get('Sid', index)}: Effect {effect!r}")
        if not statement_applies(statement, request):
            continue
        sid = str(statement.get("Sid", f"#{index}"))
        if effect == "Deny":
            return Decision(False, f"explicitly denied by {sid}")
        allowed_by = allowed_by or sid
    if allowed_by is None:
        return Decision(False, "no statement allows it")
    return Decision(True, f"allowed by {allowed_by}")
