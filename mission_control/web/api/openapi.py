"""Routes declared once, with the models that validate them, and the OpenAPI document derived from that.

A view registered through :meth:`ApiBlueprint.operation` records its request, query and response
models; :func:`build_openapi` turns those records into the document served at
``/api/v1/openapi.json``. Because the same models validate the requests, the document cannot drift
from what the server accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Blueprint, Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter, Map, ValidationError

from mission_control import __version__
from mission_control.jobs.spec import NAME_PATTERN
from mission_control.missions.store import MISSION_ID_PATTERN
from mission_control.web.api.errors import ErrorBody

F = TypeVar("F", bound=Callable[..., Any])

_ERROR_TEXT = {
    400: "Malformed request (invalid JSON)",
    401: "Missing or invalid bearer token",
    403: "The token is valid but lacks the scope, or is bound to another service",
    404: "No such resource",
    409: "Conflict with the current state",
    413: "Request body too large",
    415: "Wrong Content-Type",
    422: "Invalid field value",
    429: "Too many failed authentications from this address (or heartbeats with this token); see Retry-After",
    503: "Database unavailable; retry later",
}
_RULE_PARAM = re.compile(r"<(?:(?P<converter>[a-z]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
MAX_ID = 2**63 - 1
# What a string path parameter may hold, by its name (a name means the same thing on every route). The
# views check these themselves and answer 422 naming the parameter; the document says so up front.
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "pattern": NAME_PATTERN},
    "signal": {"type": "string", "pattern": NAME_PATTERN},
    "mission_id": {"type": "string", "pattern": MISSION_ID_PATTERN},
    "code": {"type": "integer", "minimum": 0, "maximum": 255},  # an exit status (heartbeats)
    "key": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{16,128}$"},  # a status badge's key
}


class IdConverter(IntegerConverter):
    """``<id:run_id>``: a database id, 0..2**63-1. A larger number names nothing, so it is a 404.

    Werkzeug's ``int(max=...)`` rejects it with a ValidationError instead, which its matcher reports as
    405 Method Not Allowed whenever another rule with the same path but a different method was tried
    first (``DELETE /channels/9223372036854775808`` answered 405, ``GET`` 404).
    """

    def __init__(self, map: Map) -> None:
        super().__init__(map, max=MAX_ID)

    def to_python(self, value: str) -> int:
        try:
            return int(super().to_python(value))
        except ValidationError:
            raise NotFound(f"no resource has the id {value} (ids are at most {MAX_ID})") from None


@dataclass(frozen=True)
class Operation:
    method: str
    rule: str
    operation_id: str
    summary: str
    tag: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    responses: dict[int, type[BaseModel] | None]
    errors: tuple[int, ...]
    public: bool
    scoped: bool
    body_required: bool


class ApiBlueprint(Blueprint):
    """A blueprint whose routes carry their request and response models."""

    def __init__(self, name: str, import_name: str, *, tag: str, **kwargs: Any) -> None:
        super().__init__(name, import_name, **kwargs)
        self.operations: list[Operation] = []
        self.tag = tag
        # Before any of this blueprint's rules reach the app's URL map, which needs the converter.
        self.record_once(lambda state: state.app.url_map.converters.setdefault("id", IdConverter))

    def operation(
        self,
        method: str,
        rule: str,
        *,
        summary: str,
        responses: dict[int, type[BaseModel] | None],
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        errors: Iterable[int] = (),
        public: bool = False,
        scoped: bool = False,
        body_required: bool = True,
    ) -> Callable[[F], F]:
        """Register a route. ``public``: no token at all. Which tokens may call it otherwise is
        :data:`mission_control.web.api.scopes.RULES`'s entry for it (a token without the scope: 403).
        ``scoped`` is kept for routes that also answer 403 for reasons of their own (no longer needed)."""

        def register(view: F) -> F:
            for match in _RULE_PARAM.finditer(rule):
                if match["converter"] is None and match["name"] not in PATH_PARAMETERS:
                    raise ValueError(f"{rule}: say what <{match['name']}> may hold in PATH_PARAMETERS")
            self.add_url_rule(rule, endpoint=view.__name__, view_func=view, methods=[method])
            implied = (
                {422, 503} | ({400, 413, 415} if body else set()) | (set() if public else {401, 403, 429})
            )
            if _RULE_PARAM.search(rule):
                implied.add(404)
            self.operations.append(
                Operation(
                    method=method.lower(),
                    rule=rule,
                    operation_id=view.__name__,
                    summary=summary,
                    tag=self.tag,
                    body=body,
                    query=query,
                    responses=responses,
                    errors=tuple(sorted(implied | set(errors))),
                    public=public,
                    scoped=scoped,
                    body_required=body_required,
                )
            )
            return view

        return register


def openapi_document_of(app: Flask) -> dict[str, Any]:
    """The app's document, built once (the routes do not change after start-up)."""
    document = app.extensions.get("mission_control.openapi")
    if document is None:
        document = app.extensions["mission_control.openapi"] = build_openapi(app)
    return document  # type: ignore[no-any-return]


def build_openapi(app: Flask) -> dict[str, Any]:
    operations = {
        f"{blueprint.name}.{operation.operation_id}": operation
        for blueprint in app.blueprints.values()
        if isinstance(blueprint, ApiBlueprint)
        for operation in blueprint.operations
    }
    routed = [
        (rule.rule, operations[rule.endpoint])
        for rule in app.url_map.iter_rules()
        if rule.endpoint in operations
    ]
    wanted: list[tuple[type[BaseModel], Any]] = [(ErrorBody, "serialization")]
    for _, operation in routed:
        if operation.body is not None:
            wanted.append((operation.body, "validation"))
        wanted.extend((model, "serialization") for model in operation.responses.values() if model is not None)
    wanted = list(dict.fromkeys(wanted))
    refs, definitions = models_json_schema(wanted, ref_template="#/components/schemas/{model}")

    paths: dict[str, dict[str, Any]] = {}
    for rule, operation in sorted(routed, key=lambda item: item[0]):
        path = _RULE_PARAM.sub(r"{\g<name>}", rule)
        paths.setdefault(path, {})[operation.method] = _operation_object(operation, refs)

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Mission Control API",
            "version": __version__,
            "description": "Registry, runs, heartbeats and alerts of Mission Control. Every /api/v1 call "
            "needs `Authorization: Bearer <token>`: MC_ADMIN_TOKEN or a token from POST /api/v1/tokens, "
            "whose scopes (and service, if bound to one) decide what it may do.",
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearerAuth": []}],
    }


def _operation_object(operation: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    parameters = [
        {
            "name": match["name"],
            "in": "path",
            "required": True,
            "schema": _path_schema(match["converter"], match["name"]),
        }
        for match in _RULE_PARAM.finditer(operation.rule)
    ]
    if operation.query is not None:
        schema = operation.query.model_json_schema()
        for name, prop in schema.get("properties", {}).items():
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in schema.get("required", []),
                    "schema": _without_null(prop),
                    **({"description": prop["description"]} if "description" in prop else {}),
                }
            )
    responses: dict[str, Any] = {}
    for status, model in operation.responses.items():
        entry: dict[str, Any] = {"description": "Success"}
        if model is not None:
            entry["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
        responses[str(status)] = entry
    for status in operation.errors:
        responses[str(status)] = {
            "description": _ERROR_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": refs[(ErrorBody, "serialization")]}},
        }
    result: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": [operation.tag],
        "parameters": parameters,
        "responses": responses,
    }
    if operation.body is not None:
        result["requestBody"] = {
            "required": operation.body_required,
            "content": {"application/json": {"schema": refs[(operation.body, "validation")]}},
        }
    if operation.public:
        result["security"] = []
    return result


def _path_schema(converter: str | None, name: str) -> dict[str, Any]:
    if converter in ("id", "int"):
        return {"type": "integer", "minimum": 0, "maximum": MAX_ID}
    return dict(PATH_PARAMETERS[name])


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """Query parameters are absent or a value, never JSON null; drop the null branch of Optional."""
    options = schema.get("anyOf")
    if options:
        kept = [option for option in options if option.get("type") != "null"]
        if len(kept) == 1:
            rest = {key: value for key, value in schema.items() if key not in ("anyOf", "default")}
            return {**kept[0], **rest}
    return {key: value for key, value in schema.items() if key != "default" or value is not None}
