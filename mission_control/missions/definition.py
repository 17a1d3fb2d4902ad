"""What a mission is: a named, versioned list of steps, validated before anything runs it.

The same models serve the Python builder, ``PUT /api/v1/mission-definitions/{name}`` and the engines,
so a definition that passes here runs the same everywhere. Structure is checked by pydantic; what
needs the whole definition (unique names, templates that only read earlier steps, valid JSON Schemas)
is checked by :func:`parse_definition`, which names the offending field in every error.

JSON Schemas come from users, so they are compiled with ``jsonschema_rs`` in a way that cannot hurt
the process that uses them: ``offline`` (no ``$ref`` is ever retrieved, from the network or a file:
the outbound policy guards requests, and a schema fetcher would go around it) and with the linear-time
``regex`` engine (``pattern`` and ``patternProperties`` cannot backtrack exponentially). On top of
that, a definition may only reference inside its own schemas (``$ref`` starting with ``#``), so a
stored definition never depends on a document somewhere else.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

import jsonschema_rs
from pydantic import ConfigDict, Field, JsonValue, ValidationError, ValidationInfo, model_validator

from mission_control.jobs.spec import NAME_PATTERN, Name, StrictModel, TargetSpec
from mission_control.missions import templates
from mission_control.missions.bounds import bounded

MAX_STEPS = 100
MAX_DURATION_S = 366 * 86_400.0
# Step names that would read ambiguously in templates and inspection output.
RESERVED_STEP_NAMES = frozenset({"input", "steps", "mission", "output", "start", "end"})
FUNCTION_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.:-]{0,199}$"
KINDS = ("http", "wait_for", "sleep", "call")


class _Model(StrictModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, allow_inf_nan=False, populate_by_name=True
    )


class StepRetry(_Model):
    """Attempts of one step: ``backoff_s * multiplier**(n-1)`` before attempt ``n+1``, capped.

    No jitter: a mission's retries are one flow's, not a fleet's, and the testing kit must be able to
    say exactly when a retry fires.
    """

    max_attempts: int = Field(3, ge=1, le=100, description="attempts in all, the first included (1..100)")
    backoff_s: float = Field(1.0, ge=0, le=86_400, description="initial interval before the second attempt")
    multiplier: float = Field(2.0, ge=1, le=100, description="factor between consecutive intervals (>= 1)")
    backoff_max_s: float = Field(300.0, ge=0, le=MAX_DURATION_S, description="cap on any one interval")

    @model_validator(mode="after")
    def _cap_not_below_base(self) -> StepRetry:
        if self.backoff_max_s < self.backoff_s:
            raise ValueError(
                f"backoff_max_s ({self.backoff_max_s}) must not be below backoff_s ({self.backoff_s})"
            )
        return self

    def delay_for(self, attempts_made: int) -> float:
        exponent = min(attempts_made - 1, 1000)
        try:
            delay = self.backoff_s * self.multiplier**exponent
        except OverflowError:
            delay = math.inf
        return min(delay, self.backoff_max_s)


class _Step(_Model):
    name: Name = Field(description="unique within the mission, matching [a-z0-9][a-z0-9._-]{0,127}")


class HttpStep(_Step):
    """A signed HTTP request, like a job's trigger; its JSON answer becomes the step's output."""

    kind: Literal["http"]
    url: str = Field(max_length=2048, description="http(s) URL; may hold {{ references }}")
    method: Literal["POST", "PUT", "PATCH", "GET", "DELETE"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: JsonValue = Field(None, description="JSON body; strings may hold {{ references }}")
    timeout_s: float = Field(30.0, gt=0, le=3600)
    retry: StepRetry = Field(default_factory=StepRetry)

    @model_validator(mode="after")
    def _sendable(self, info: ValidationInfo) -> HttpStep:
        # Check URL and headers as a job's target would be, with references stood in for by a word. A
        # stored definition is read under the rules it was stored with (context {"stored": True}).
        filled_url = templates._REFERENCE.sub("x", self.url)
        filled_headers = {k: templates._REFERENCE.sub("x", v) for k, v in self.headers.items()}
        try:
            TargetSpec.model_validate(
                {"url": filled_url, "headers": filled_headers, "method": self.method}, context=info.context
            )
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return self


class WaitForStep(_Step):
    """Wait for a signal whose payload must match ``schema``; it becomes the step's output."""

    kind: Literal["wait_for"]
    signal: Name | None = Field(None, description="the signal's name; the step's name when omitted")
    schema_: dict[str, JsonValue] = Field(default_factory=dict, alias="schema", description="JSON Schema")
    timeout_s: float | None = Field(None, gt=0, le=MAX_DURATION_S, description="fail the mission after this")

    @property
    def signal_name(self) -> str:
        return self.signal or self.name


class SleepStep(_Step):
    """Wait a duration, or until an instant (ISO-8601 with offset, or a {{ reference }} to one)."""

    kind: Literal["sleep"]
    seconds: float | None = Field(None, ge=0, le=MAX_DURATION_S)
    until: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _one_of(self) -> SleepStep:
        if (self.seconds is None) == (self.until is None):
            raise ValueError("give exactly one of seconds or until")
        if self.until is not None and not templates._WHOLE.match(self.until):
            parse_instant(self.until)
        return self


class CallStep(_Step):
    """A Python callable registered with the worker; its JSON-able return value is the output."""

    kind: Literal["call"]
    function: str = Field(pattern=FUNCTION_PATTERN, description="name the callable was registered under")
    args: JsonValue = Field(None, description="passed to the callable; strings may hold {{ references }}")
    timeout_s: float = Field(30.0, gt=0, le=3600)
    retry: StepRetry = Field(default_factory=StepRetry)


Step = Annotated[HttpStep | WaitForStep | SleepStep | CallStep, Field(discriminator="kind")]


class MissionDefinition(_Model):
    """A mission as registered: its steps run in order."""

    name: Name = Field(description="unique name matching [a-z0-9][a-z0-9._-]{0,127}")
    description: str | None = Field(None, max_length=2000)
    input_schema: dict[str, JsonValue] = Field(default_factory=dict, description="JSON Schema of the input")
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)

    def step_index(self, name: str) -> int:
        for index, step in enumerate(self.steps):
            if step.name == name:
                return index
        raise KeyError(name)

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class DefinitionError(ValueError):
    """A definition that cannot be registered; ``field`` is the dotted path of the first problem."""

    def __init__(self, message: str, field: str | None, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
        self.field = field
        self.details = details or [{"field": field, "message": message}]


def parse_definition(data: Any) -> MissionDefinition:
    """Validate a definition's JSON form completely, or raise :class:`DefinitionError`."""
    try:
        definition = MissionDefinition.model_validate(data)
    except ValidationError as exc:
        details = [_detail(error) for error in exc.errors(include_url=False, include_input=False)]
        raise DefinitionError(details[0]["message"], details[0]["field"], details) from None
    check_definition(definition)
    return definition


def check_definition(definition: MissionDefinition) -> None:
    """The checks that need the whole definition: names, schemas and references between steps."""
    _check_schema(definition.input_schema, "input_schema")
    seen: set[str] = set()
    for index, step in enumerate(definition.steps):
        where = f"steps.{index}"
        if step.name in RESERVED_STEP_NAMES:
            raise DefinitionError(f"{step.name!r} is a reserved name", f"{where}.name")
        if step.name in seen:
            raise DefinitionError(f"step name {step.name!r} is used twice", f"{where}.name")
        for field_name, value in _templated_fields(step):
            for path in templates.references(value):
                _check_reference(path, seen, f"{where}.{field_name}")
        if isinstance(step, WaitForStep):
            _check_schema(step.schema_, f"{where}.schema")
        seen.add(step.name)


def _templated_fields(step: Any) -> list[tuple[str, Any]]:
    if isinstance(step, HttpStep):
        return [("url", step.url), ("headers", step.headers), ("body", step.body)]
    if isinstance(step, CallStep):
        return [("args", step.args)]
    if isinstance(step, SleepStep) and step.until is not None:
        return [("until", step.until)]
    return []


def _check_reference(path: str, earlier: set[str], field: str) -> None:
    try:
        root, keys = templates.parse(path)
    except templates.TemplateError as exc:
        raise DefinitionError(str(exc), field) from None
    if root == "steps" and keys[0] not in earlier:
        raise DefinitionError(
            f"{{{{ {path} }}}} names step {keys[0]!r}, which is not an earlier step of this mission", field
        )


# Keywords whose value names another schema by URI; only fragments of the schema itself may be named.
REFERENCE_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
# The meta-schemas jsonschema_rs carries built in: a ``$schema`` naming any other would be retrieved.
KNOWN_META_SCHEMAS = frozenset(
    {
        "https://json-schema.org/draft/2020-12/schema",
        "https://json-schema.org/draft/2019-09/schema",
        "http://json-schema.org/draft-07/schema",
        "http://json-schema.org/draft-06/schema",
        "http://json-schema.org/draft-04/schema",
    }
)


def _check_schema(schema: dict[str, Any], field: str) -> None:
    for where, message in _outside_references(schema):
        raise DefinitionError(message, f"{field}.{where}")
    try:
        _compile(schema)
    except jsonschema_rs.ValidationError as exc:
        at = ".".join(str(part) for part in exc.instance_path)
        message = f"not a valid JSON Schema: {exc.message}" + (f" (at {at})" if at else "")
        if exc.message.endswith('is not a "regex"'):
            message += (
                "; patterns are matched by a linear-time engine, which has no lookaround "
                "and no backreferences"
            )
        raise DefinitionError(bounded(message), field) from None
    except (ValueError, TypeError) as exc:  # not a schema jsonschema_rs can read at all
        raise DefinitionError(bounded(f"not a valid JSON Schema: {exc}"), field) from None


def _outside_references(schema: Any) -> Iterator[tuple[str, str]]:
    """(dotted path, problem) of every reference that leaves the schema, anywhere in it.

    Every object is looked at, not only those in schema positions: a JSON pointer (``#/const``) can
    make any object of the document a schema, so a remote ``$ref`` hidden in ``const`` or an unknown
    keyword would be followed too. A property *named* ``$ref`` holds an object, so it is no reference.
    """
    stack: list[tuple[list[str], Any]] = [([], schema)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                where = ".".join([*path, key])
                if key in REFERENCE_KEYWORDS and isinstance(item, str) and not item.startswith("#"):
                    yield (
                        where,
                        f"{key} {bounded(item, 200)!r} points outside this schema: only references "
                        "to the schema itself (starting with #) are allowed, nothing is retrieved",
                    )
                elif (
                    key == "$schema" and isinstance(item, str) and item.rstrip("#") not in KNOWN_META_SCHEMAS
                ):
                    yield (
                        where,
                        f"$schema {bounded(item, 200)!r} is not a meta-schema this server knows "
                        f"(use one of {', '.join(sorted(KNOWN_META_SCHEMAS))}); nothing is retrieved",
                    )
            stack.extend(([*path, str(key)], item) for key, item in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend(([*path, str(i)], item) for i, item in reversed(list(enumerate(value))))


class _CompiledSchemas:
    """Compiled validators by the schema's JSON text, the most recently used kept.

    Compiling costs far more than validating, and every start and signal validates against a schema
    of a definition that rarely changes; a bounded map keeps that cost to once per schema.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._validators: OrderedDict[str, jsonschema_rs.Validator] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, schema: dict[str, Any]) -> jsonschema_rs.Validator:
        key = json.dumps(schema, separators=(",", ":"))
        with self._lock:
            validator = self._validators.get(key)
            if validator is not None:
                self._validators.move_to_end(key)
                return validator
        validator = jsonschema_rs.validator_for(
            schema,
            validate_formats=True,
            offline=True,  # no $ref is ever retrieved, whatever the schema says
            pattern_options=jsonschema_rs.RegexOptions(),  # the linear-time regex engine
        )
        with self._lock:
            self._validators[key] = validator
            while len(self._validators) > self.size:
                self._validators.popitem(last=False)
        return validator


_COMPILED = _CompiledSchemas(size=256)


def _compile(schema: dict[str, Any]) -> jsonschema_rs.Validator:
    return _COMPILED.get(schema)


def _detail(error: Any) -> dict[str, Any]:
    # A tagged union puts the tag in the path (steps.0.http.url); people wrote steps.0.url.
    loc = [str(part) for part in error["loc"]]
    parts = [part for i, part in enumerate(loc) if not (i >= 2 and loc[i - 2] == "steps" and part in KINDS)]
    parts = ["schema" if part == "schema_" else part for part in parts]
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif error["type"] == "missing":
        message = "this field is required"
    elif error["type"] == "union_tag_invalid":
        message = f"kind must be one of {', '.join(KINDS)}"
    return {"field": ".".join(parts) or None, "message": message}


_OFFSET = re.compile(r"([zZ]|[+-]\d\d:?\d\d)$")


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant that says its offset; a bare local time would be a guess, so it is refused."""
    if not _OFFSET.search(text.strip()):
        raise ValueError(f"{text!r} must be an ISO-8601 instant with an offset (Z or +hh:mm)")
    try:
        return datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 instant") from None


def schema_errors(schema: dict[str, Any], value: Any) -> list[tuple[str, str]]:
    """(field, message) of every way ``value`` fails ``schema``, the most specific first.

    A schema that cannot be compiled (stored before the checks of :func:`check_definition` existed,
    with a reference outside itself, say) fails every value with one bounded message; nothing it
    names is retrieved.
    """
    try:
        validator = _compile(schema)
    except (jsonschema_rs.ValidationError, ValueError, TypeError) as exc:
        reason = exc.message if isinstance(exc, jsonschema_rs.ValidationError) else str(exc)
        return [("", bounded(f"the definition's schema cannot be used: {reason}"))]
    errors = sorted(validator.iter_errors(value), key=lambda e: (-len(e.instance_path), e.message))
    return [(".".join(str(p) for p in error.instance_path), bounded(error.message)) for error in errors]


__all__ = [
    "NAME_PATTERN",
    "CallStep",
    "DefinitionError",
    "HttpStep",
    "MissionDefinition",
    "SleepStep",
    "StepRetry",
    "WaitForStep",
    "parse_definition",
    "schema_errors",
]
