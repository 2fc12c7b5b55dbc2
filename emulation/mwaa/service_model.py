"""botocore's `mwaa` model: the authority for request shapes and constraints, as the service applies
them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import (
    ListShape,
    MapShape,
    ServiceModel,
    Shape,
    StringShape,
    StructureShape,
)


@lru_cache(maxsize=1)
def service_model() -> ServiceModel:
    """botocore's MWAA model, loaded once."""
    return botocore.session.get_session().get_service_model("mwaa")


def structure_of(shape: Shape | None) -> StructureShape:
    if not isinstance(shape, StructureShape):
        raise TypeError(f"expected a structure shape, got {shape!r}")
    return shape


def input_shape(operation: str) -> StructureShape:
    return structure_of(service_model().operation_model(operation).input_shape)


def model_problems(shape: Shape, value: Any, where: str = "") -> list[str]:
    """Every way `value` breaks `shape` (types, required members, lengths, ranges, enums, patterns),
    worded as AWS's ValidationException does."""
    meta = shape.metadata
    shown = "***" if meta.get("sensitive") else value

    def broken(rule: str) -> list[str]:
        return [f"Value '{shown}' at '{where}' failed to satisfy constraint: Member must {rule}"]

    kind = shape.type_name
    if kind == "structure":
        if meta.get("document"):
            return []
        if not isinstance(value, dict):
            return broken("be a structure")
        structure = structure_of(shape)
        problems = [
            f"Value null at '{_join(where, name)}' failed to satisfy constraint: Member must not be null"
            for name in structure.required_members
            if value.get(name) is None
        ]
        for name, item in value.items():
            member = structure.members.get(name)
            if member is None:
                problems.append(f"'{_join(where, name)}' is not a member of {structure.name}")
            elif item is not None:
                problems.extend(model_problems(member, item, _join(where, name)))
        return problems
    if kind == "list":
        if not isinstance(value, list) or not isinstance(shape, ListShape):
            return broken("be a list")
        problems = _length_problems(value, meta, broken)
        for index, item in enumerate(value):
            problems.extend(model_problems(shape.member, item, f"{where}.{index + 1}"))
        return problems
    if kind == "map":
        if not isinstance(value, dict) or not isinstance(shape, MapShape):
            return broken("be a map")
        problems = _length_problems(value, meta, broken)
        for key, item in value.items():
            problems.extend(model_problems(shape.key, key, f"{where}.key"))
            problems.extend(model_problems(shape.value, item, f"{where}.{key}"))
        return problems
    if kind == "string":
        if not isinstance(value, str):
            return broken("be a string")
        problems = _length_problems(value, meta, broken)
        enum = shape.enum if isinstance(shape, StringShape) else []
        if enum and value not in enum:
            problems += broken(f"satisfy enum value set: [{', '.join(enum)}]")
        pattern = meta.get("pattern")
        if pattern and not _matches(pattern, value):
            problems += broken(f"satisfy regular expression pattern: {pattern}")
        return problems
    if kind in {"integer", "long"}:
        if not isinstance(value, int) or isinstance(value, bool):
            return broken("be an integer")
        if "min" in meta and value < meta["min"]:
            return broken(f"have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            return broken(f"have value less than or equal to {meta['max']}")
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else broken("be a boolean")
    if kind in {"double", "float", "timestamp"}:
        return [] if isinstance(value, int | float) and not isinstance(value, bool) else broken("be a number")
    return []


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _length_problems(value: Any, meta: Mapping[str, Any], broken: Callable[[str], list[str]]) -> list[str]:
    if "min" in meta and len(value) < meta["min"]:
        return broken(f"have length greater than or equal to {meta['min']}")
    if "max" in meta and len(value) > meta["max"]:
        return broken(f"have length less than or equal to {meta['max']}")
    return []


def _matches(pattern: str, value: str) -> bool:
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:  # \p{L} and friends: Python's re has no Unicode classes; the service checks them
        return True
