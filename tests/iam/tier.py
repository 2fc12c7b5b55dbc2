"""The IAM evaluation tier: each recorded call against its principal's policy.

A function's and the state machine's calls are evaluated against their policies in template.yaml
(resolved for the stack the call was made in); an execution role's calls (the export and import
DAGs) against the temporary inline policies GrantPermissions had put on it at the time. A DAG call
that only a policy the pipeline had already removed allows is not a denial of the tier: that run
outlived its failed migration's clean-up, and IAM refuses it as it should.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.iam.evaluator import Decision, Request, evaluate, like
from tests.iam.recorder import Call
from tests.iam.template import StackValues, current_template, policies

RolePolicies = tuple[tuple[str, Mapping[str, Any]], ...]


@dataclass(frozen=True)
class Denial:
    call: Call
    request: Request
    decision: Decision

    def __str__(self) -> str:
        context = f" {dict(self.request.context)}" if self.request.context else ""
        return (
            f"{self.call.principal}: {self.call.operation} -> {self.request.action} on "
            f"{self.request.resource}{context}: {self.decision.reason}"
        )


@dataclass(frozen=True)
class KnownGap:
    """A denial the tier found whose fix belongs to a change under way elsewhere: the suite's check
    tolerates it (wildcards as in IAM), tests/iam/test_mutations.py fails once it stops occurring,
    so the entry goes with the fix. Not a place for denials nobody is fixing."""

    principal: str
    operation: str
    action: str
    why: str

    def covers(self, found: Denial | str) -> bool:
        return (
            isinstance(found, Denial)
            and like(self.principal, found.call.principal)
            and like(self.operation, found.call.operation)
            and found.request.action == self.action
        )


KNOWN_GAPS: tuple[KnownGap, ...] = ()


def unexpected(found: Iterable[Denial | str]) -> list[Denial | str]:
    """The denials no known gap covers."""
    return [item for item in found if not any(gap.covers(item) for gap in KNOWN_GAPS)]


def _role_statements(documents: RolePolicies) -> list[Mapping[str, Any]]:
    statements: list[Mapping[str, Any]] = []
    for _, document in documents:
        found = document["Statement"]
        statements += [found] if isinstance(found, Mapping) else list(found)
    return statements


def denials(
    calls: Iterable[Call],
    *,
    template: Mapping[str, Any] | None = None,
    role_policies: Callable[[RolePolicies], RolePolicies] = lambda documents: documents,
) -> list[Denial | str]:
    """Every request IAM would deny, and every call the tier could not judge (as text).
    `template` and `role_policies` replace the template and the grants (the mutation tests)."""
    calls = list(calls)
    if not calls:
        return []
    loaded = template if template is not None else current_template()
    resolved: dict[StackValues, dict[str, list[dict[str, Any]]]] = {}
    found: list[Denial | str] = []
    for call in calls:
        if call.problem is not None:
            found.append(f"{call.principal}: {call.problem}")
            continue
        revoked: list[Mapping[str, Any]] = []
        if call.role_policies is not None:
            statements: list[Mapping[str, Any]] = _role_statements(role_policies(call.role_policies))
            revoked = _role_statements(role_policies(call.revoked_policies))
        else:
            if call.stack not in resolved:
                resolved[call.stack] = policies(loaded, call.stack)
            if call.principal not in resolved[call.stack]:
                found.append(
                    f"{call.principal}: {call.operation} by a principal with no policy in the template"
                )
                continue
            statements = list(resolved[call.stack][call.principal])
        for request in call.requests:
            decision = evaluate(statements, request)
            # A DAG run that outlived its migration's clean-up is refused by IAM, as it should be.
            if not decision.allowed and not (revoked and evaluate(revoked, request).allowed):
                found.append(Denial(call, request, decision))
    return found


def report(found: Iterable[Denial | str], limit: int = 20) -> str:
    lines = sorted({str(item) for item in found})
    more = f"\n... and {len(lines) - limit} more" if len(lines) > limit else ""
    return "IAM would deny:\n" + "\n".join(lines[:limit]) + more
