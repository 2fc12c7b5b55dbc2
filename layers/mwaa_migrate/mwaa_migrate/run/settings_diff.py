"""A CreateEnvironment request against the source's settings, member by member, with the values that
must not be shown redacted: what the plan shows (mwaa-migrate plan) and the report keeps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from mwaa_migrate.models import Model

# Which settings are sensitive and what their values are replaced with (redaction.py, shared with the
# plan, which never carries an Airflow configuration option's value, and the failure path).
from mwaa_migrate.redaction import REDACTED, is_sensitive


class SettingChange(Model):
    """One setting of the CreateEnvironment request compared with the source environment.
    `changed`: both have it with different values; `added`: only the request has it;
    `removed`: the source has it and the request does not. Sensitive values are REDACTED."""

    setting: str
    change: Literal["changed", "added", "removed"]
    source: Any = None
    target: Any = None


class SettingsSummary(Model):
    carried: list[str] = Field(default_factory=list)
    changed: list[SettingChange] = Field(default_factory=list)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"A": {"b": 1}, "C": [1]} -> {"A.b": 1, "C": [1]}: structures by member, lists whole."""
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key, member in value.items():
            flat.update(flatten(member, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value} if prefix else {}


def _shown(path: str, value: Any) -> Any:
    return REDACTED if value is not None and is_sensitive(path) else value


def settings_diff(source: Mapping[str, Any], request: Mapping[str, Any]) -> SettingsSummary:
    """The request compared with the source's own settings (both in CreateEnvironment's shape),
    setting by setting (Airflow configuration options and tags one by one)."""
    before, after = flatten(source), flatten(request)
    carried: list[str] = []
    changed: list[SettingChange] = []
    for path in sorted(before.keys() | after.keys()):
        if path in before and path in after:
            if before[path] == after[path]:
                carried.append(path)
            else:
                changed.append(
                    SettingChange(
                        setting=path,
                        change="changed",
                        source=_shown(path, before[path]),
                        target=_shown(path, after[path]),
                    )
                )
        elif path in after:
            changed.append(SettingChange(setting=path, change="added", target=_shown(path, after[path])))
        else:
            changed.append(SettingChange(setting=path, change="removed", source=_shown(path, before[path])))
    return SettingsSummary(carried=carried, changed=changed)


def redact_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """A CreateEnvironment request with sensitive configuration values replaced, for showing."""

    def walk(value: Any, prefix: str) -> Any:
        if isinstance(value, Mapping):
            return {
                key: walk(member, f"{prefix}.{key}" if prefix else str(key)) for key, member in value.items()
            }
        return _shown(prefix, value)

    redacted: dict[str, Any] = walk(request, "")
    return redacted
