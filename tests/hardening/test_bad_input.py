"""Bad input, property-based: every malformed state machine input and every malformed step event is
refused with a message naming the field, and nothing in AWS is called, let alone changed.

The step events are the files in events/ (recorded from real runs), each mutated by hypothesis at a
field its model types: a required field dropped, an unknown field added, a value of the wrong type,
or any JSON value at all. Which model each handler parses is read from the handler itself.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from types import UnionType
from typing import Any, Union, get_args, get_origin

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from pydantic import BaseModel

from emulation.faults import FaultInjector
from emulation.lambdas import (
    FUNCTIONS_DIR,
    REPO_ROOT,
    FakeLambdaContext,
    function_folders,
    load_handler,
    logical_id,
)
from emulation.local_stack import LocalStack
from mwaa_migrate import step_events
from mwaa_migrate.environment.versions import TARGET_VERSIONS
from mwaa_migrate.errors import InvalidMigrationRequest
from mwaa_migrate.models import MigrationRequest, parse_model, parse_request
from tests.hardening.discovery import default_scenario
from tests.hardening.end_state import snapshot

# A handler that fails before it counts anything has no metrics to flush: Powertools warns.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

EVENTS = REPO_ROOT / "events"
UNKNOWN_FIELD = "notAFieldOfThisEvent"
_PARSED = re.compile(r"step = parse_model\((\w+), event\)")
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
EXAMPLES_PER_EVENT = 60


def _handler_models() -> dict[str, type[BaseModel]]:
    """functions/<folder> -> the model its handler parses its event with (read from the handler)."""
    found = {}
    for folder in function_folders():
        match = _PARSED.search((FUNCTIONS_DIR / folder / "app.py").read_text())
        assert match, f"functions/{folder}/app.py does not parse its event with parse_model"
        found[folder] = getattr(load_handler(folder), match.group(1))
    return found


HANDLER_MODELS = _handler_models()


def _subclasses(model: type[BaseModel]) -> set[type[BaseModel]]:
    return {sub for child in model.__subclasses__() for sub in {child, *_subclasses(child)}}


def test_every_step_event_model_is_parsed_by_a_handler_and_has_a_sample():
    assert _subclasses(step_events.StepEvent) <= set(HANDLER_MODELS.values()), (
        "a step event no handler parses"
    )
    for folder, model in HANDLER_MODELS.items():
        model.model_validate(json.loads((EVENTS / f"{folder}.json").read_text()))


@dataclass(frozen=True)
class _Field:
    path: tuple[str | int, ...]
    annotation: Any
    required: bool

    @property
    def dotted(self) -> str:
        return ".".join(str(part) for part in self.path)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in {Union, UnionType}:
        return [model for member in get_args(annotation) for model in _models_in(member)]
    return []


def _fields(
    model: type[BaseModel], sample: dict[str, Any], prefix: tuple[str | int, ...] = ()
) -> Iterator[_Field]:
    """The fields the model types, at the paths the sample has them (nested models and lists of them)."""
    for name, info in model.model_fields.items():
        key = info.alias or name
        path = (*prefix, key)
        yield _Field(path, info.annotation, info.is_required())
        value = sample.get(key)
        nested = _models_in(info.annotation)
        if nested and isinstance(value, dict):
            yield from _fields(nested[0], value, path)
        if get_origin(info.annotation) is list and isinstance(value, list) and value:
            items = _models_in(get_args(info.annotation)[0])
            if items and isinstance(value[0], dict):
                yield from _fields(items[0], value[0], (*path, 0))


def _model_paths(model: type[BaseModel], sample: dict[str, Any]) -> list[tuple[str | int, ...]]:
    """Where a model (not a free-form dict) is: an unknown key there must be refused."""
    return [
        (),
        *(
            f.path
            for f in _fields(model, sample)
            if _models_in(f.annotation) and _get(sample, f.path) is not None
        ),
    ]


def _get(document: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        if isinstance(part, int):
            document = document[part] if isinstance(document, list) and len(document) > part else None
        else:
            document = document.get(part) if isinstance(document, dict) else None
    return document


def _set(document: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(document))
    target: Any = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return copy


def _without(document: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(document))
    target: Any = copy
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return copy


def _wrong_type(annotation: Any) -> Any:
    """A JSON value no field of this type accepts."""
    origins = {get_origin(member) or member for member in (get_args(annotation) or (annotation,))}
    return {"not": "a list"} if list in origins else [{"not": ["a", "scalar", "or", "an", "object"]}]


@dataclass(frozen=True)
class _Mutation:
    kind: str
    event: dict[str, Any]
    # The field the refusal must name.
    field: str
    must_refuse: bool


def _mutations(model: type[BaseModel], sample: dict[str, Any]) -> st.SearchStrategy[_Mutation]:
    fields = [f for f in _fields(model, sample) if _get(sample, f.path) is not None]
    required = [f for f in fields if f.required]
    dropped = st.sampled_from(required).map(
        lambda f: _Mutation("drop", _without(sample, f.path), f.dotted, True)
    )
    # The state machine's payloads refuse a field they do not know; an event whose shape AWS owns
    # (EventBridge's) ignores what AWS adds to it.
    refuses_extras = model.model_config.get("extra") == "forbid"
    extra = st.sampled_from(_model_paths(model, sample)).map(
        lambda path: _Mutation(
            "extra",
            _set(sample, (*path, UNKNOWN_FIELD), "x"),
            ".".join(str(part) for part in (*path, UNKNOWN_FIELD)),
            refuses_extras,
        )
    )
    retyped = st.sampled_from(fields).map(
        lambda f: _Mutation("retype", _set(sample, f.path, _wrong_type(f.annotation)), f.dotted, True)
    )
    anything = st.tuples(st.sampled_from(fields), _JSON).map(
        lambda pair: _Mutation("any", _set(sample, pair[0].path, pair[1]), pair[0].dotted, False)
    )
    return st.one_of(dropped, extra, retyped, anything)


def _names(message: str, field: str) -> bool:
    return f"{field}:" in message or f"{field}." in message


def refusal_of(model: type[BaseModel], data: Any) -> str | None:
    """Why the model refuses `data` (InvalidMigrationRequest's message), or None when it accepts it."""
    try:
        parse_model(model, data)
    except InvalidMigrationRequest as refusal:
        return str(refusal)
    return None


@pytest.mark.parametrize("folder", sorted(HANDLER_MODELS))
def test_a_malformed_step_event_is_refused_naming_its_field_before_any_aws_call(folder):
    model = HANDLER_MODELS[folder]
    sample = json.loads((EVENTS / f"{folder}.json").read_text())
    handler = load_handler(folder).lambda_handler
    refused = 0

    with mock_aws(), FaultInjector() as injector:

        @settings(
            max_examples=EXAMPLES_PER_EVENT, deadline=None, suppress_health_check=[HealthCheck.too_slow]
        )
        @given(mutation=_mutations(model, sample))
        def check(mutation: _Mutation) -> None:
            nonlocal refused
            try:
                model.model_validate(mutation.event)
            except ValueError:
                pass
            else:
                assert not mutation.must_refuse, f"{mutation.kind} of {mutation.field} was accepted"
                return
            refused += 1
            with injector.as_step(logical_id(folder)), pytest.raises(InvalidMigrationRequest) as refusal:
                handler(mutation.event, FakeLambdaContext(function_name=logical_id(folder)))
            assert _names(str(refusal.value), mutation.field), str(refusal.value)
            assert injector.calls == [], "a refused event made no AWS call"

        check()
    assert refused, "some mutations were refused"


# ------------------------------------------------------------------ the state machine's input

# \Z, not $: Python's $ also matches before a trailing newline, which the models' patterns refuse.
_NAME = re.compile(r"^[a-zA-Z][0-9a-zA-Z_-]*\Z")
_ROLE = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[A-Za-z0-9_+=,.@/-]+\Z")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]+[a-z0-9]\Z")
_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-_ ./:;$`'\"\n@*", max_size=90)
_VALID_NAME = st.from_regex(r"\A[a-zA-Z][0-9a-zA-Z_-]{0,20}\Z")


def _valid_name(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 80 and bool(_NAME.match(value))


_ORACLE = {
    "sourceEnvironmentName": _valid_name,
    "targetEnvironmentName": _valid_name,
    "targetAirflowVersion": lambda v: v in TARGET_VERSIONS,
    "targetExecutionRoleArn": lambda v: (
        v is None or (isinstance(v, str) and len(v) <= 1224 and bool(_ROLE.match(v)))
    ),
    "migrationBucket": lambda v: (
        v is None or (isinstance(v, str) and 3 <= len(v) <= 63 and bool(_BUCKET.match(v)))
    ),
    "logDays": lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 14,
    "dryRun": lambda v: isinstance(v, bool),
}
_REQUEST = st.fixed_dictionaries(
    {
        "sourceEnvironmentName": _VALID_NAME | _TEXT,
        "targetEnvironmentName": _VALID_NAME | _TEXT,
        "targetAirflowVersion": st.sampled_from(TARGET_VERSIONS)
        | st.sampled_from(["2.10.4", "3", "", "1.10.15"]),
    },
    optional={
        "targetExecutionRoleArn": st.just("arn:aws:iam::123456789012:role/service-role/AmazonMWAA-x") | _TEXT,
        "migrationBucket": st.just("my-bucket") | _TEXT,
        "logDays": st.integers(min_value=-5, max_value=30),
        "dryRun": st.booleans() | st.sampled_from(["no", 2]),
    },
)


@settings(max_examples=400, deadline=None)
@given(request=_REQUEST)
def test_a_migration_request_is_refused_exactly_when_a_field_breaks_its_rule_naming_each(request):
    broken = [name for name, rule in _ORACLE.items() if name in request and not rule(request[name])]
    same = request["sourceEnvironmentName"] == request["targetEnvironmentName"]
    refusal = refusal_of(MigrationRequest, request)
    if refusal is None:
        assert not broken, f"accepted {broken}"
        assert not same, "accepted source = target"
        return
    assert broken or same, f"refused a valid request: {refusal}"
    for name in broken:
        assert _names(refusal, name), f"{name} not named in: {refusal}"


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(sorted(_ORACLE)), extra=st.text(min_size=1, max_size=20))
# A field's Python name is no name of the request's (hypothesis found it among the code's strings).
@example(field="dryRun", extra="log_groups")
def test_a_migration_request_with_an_unknown_field_is_refused_naming_it(field, extra):
    request = {"sourceEnvironmentName": "a", "targetEnvironmentName": "b", "targetAirflowVersion": "2.10.3"}
    name = extra if extra not in _ORACLE else f"{extra}x"
    with pytest.raises(InvalidMigrationRequest) as refusal:
        parse_request({**request, name: "x"})
    assert _names(str(refusal.value), name)


def test_bad_state_machine_inputs_fail_at_the_plan_and_change_nothing_in_aws():
    """A few generated bad inputs through the real state machine, in one emulated AWS."""
    with LocalStack(default_scenario()) as stack:
        before = snapshot(stack)
        tried = []

        @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(request=_REQUEST)
        def check(request: dict[str, Any]) -> None:
            broken = [name for name, rule in _ORACLE.items() if name in request and not rule(request[name])]
            if not broken:
                return
            tried.append(request)
            arn = stack.start(f"bad-{len(tried)}", request)
            described = stack.wait(arn, timeout_seconds=60)
            assert described["status"] == "FAILED"
            assert described["error"] == "InvalidMigrationRequest"
            assert described["cause"].startswith("PlanMigration: ")
            assert _names(described["cause"], broken[0]), described["cause"]

        check()
        assert tried, "some bad inputs ran"
        assert snapshot(stack) == before, "nothing in AWS changed"
        assert [call for call in stack.mwaa_emulator.calls if call[0] != "GetEnvironment"] == []
