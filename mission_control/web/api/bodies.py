"""Reading request bodies and query strings strictly, so bad input fails loudly and changes nothing."""

from __future__ import annotations

import json
from typing import Any, TypeVar, get_origin

from flask import current_app, request
from pydantic import BaseModel, ValidationError

from mission_control.jobs.spec import READ_ONLY_FIELDS
from mission_control.web.api.errors import ApiError, from_validation_error

M = TypeVar("M", bound=BaseModel)


def json_object(*, scrub: tuple[str, ...] = ()) -> dict[str, Any]:
    """The request body as a JSON object, or an ApiError saying exactly why not.

    ``scrub`` names top-level text fields kept however they read (a heartbeat's message): their NUL
    characters and lone surrogates become U+FFFD instead of refusing the body.
    """
    value = json_value(scrub=scrub)
    if not isinstance(value, dict):
        raise ApiError(422, "validation_error", f"the body must be a JSON object, got {type(value).__name__}")
    return value


def json_value(*, empty: Any = ..., field: str | None = None, scrub: tuple[str, ...] = ()) -> Any:
    """The request body as any JSON value; ``empty`` (when given) stands for an empty body."""
    if empty is not ... and not request.get_data(cache=True):
        return empty
    if not _is_json(request.mimetype):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type must be application/json, got {request.mimetype or 'none'!r}",
            "Content-Type",
        )
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH before reading it all
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_no_constants,
            parse_float=_finite_float,
        )
    except _DuplicateKey as exc:
        raise ApiError(400, "malformed_json", f"the body repeats the key {exc.key!r}", exc.key) from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            "malformed_json",
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from None
    except (ValueError, RecursionError):
        raise ApiError(
            400, "malformed_json", "the body is not valid JSON (NaN, Infinity or nested too deep)"
        ) from None
    if isinstance(value, dict):
        for key in scrub:
            if isinstance(value.get(key), str):
                value[key] = _scrubbed(value[key])
    _check_storable(value, field or "")
    return value


def _scrubbed(text: str) -> str:
    """``text`` with what no database holds (NUL, a lone UTF-16 surrogate) replaced by U+FFFD."""
    return "".join("\ufffd" if char == "\x00" or "\ud800" <= char <= "\udfff" else char for char in text)


MAX_JSON_DEPTH = 32


def _check_storable(value: Any, path: str, depth: int = 0) -> None:
    """Refuse what no database should hold: NUL characters, lone UTF-16 surrogates, deep nesting.

    All are valid JSON (``"\\u0000"``, ``"\\ud800"``) but PostgreSQL rejects the first, UTF-8 cannot
    encode the second, and deep nesting exhausts the stack of whoever walks it next; caught here they
    are a 422 naming the field instead of a failed write or a crashed request.
    """
    if depth > MAX_JSON_DEPTH:
        raise ApiError(422, "validation_error", f"{path}: nested deeper than {MAX_JSON_DEPTH} levels", path)
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError(
                422, "validation_error", f"{path or 'body'}: NUL characters are not allowed", path or None
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(
                422, "validation_error", f"{path or 'body'}: the text is not valid Unicode", path or None
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            _check_storable(key, child, depth + 1)
            _check_storable(item, child, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_storable(item, f"{path}.{index}" if path else str(index), depth + 1)


def reject_read_only(body: dict[str, Any]) -> None:
    for key in body:
        if key in READ_ONLY_FIELDS:
            raise ApiError(422, "read_only_field", f"{key}: this field is read-only", key)


def validate(model: type[M], data: Any, *, strict: bool | None = None) -> M:
    context = {"max_target_body_bytes": current_app.config["MC_MAX_TARGET_BODY_BYTES"]}
    try:
        return model.model_validate(data, strict=strict, context=context)
    except ValidationError as exc:
        raise from_validation_error(exc) from None


def optional_body(model: type[M]) -> M:
    """The request's JSON object as ``model``, or ``model``'s defaults when the request has no body
    (for operations whose body is optional: every field of ``model`` has a default)."""
    return validate(model, json_object() if request.content_length else {}, strict=True)


def query(model: type[M]) -> M:
    """Validate the query string; unknown parameters are errors, as a misspelt filter must not match all.

    A parameter the model holds as a list (``tag``) may be repeated; any other is given once.
    """
    args: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        field = model.model_fields.get(key)
        if field is not None and get_origin(field.annotation) is list:
            args[key] = values
            continue
        if len(values) > 1:
            raise ApiError(422, "validation_error", f"{key}: give this parameter once", key)
        args[key] = values[0]
    return validate(model, args, strict=False)


def cursor_query(model: type[M]) -> M:
    """:func:`query` for a listing paged by an opaque ``cursor``: a cursor that fails validation is a
    400 ``invalid_cursor`` naming it (as one the API did not give out is), any other error as it was."""
    try:
        return query(model)
    except ApiError as exc:
        if exc.field == "cursor":
            raise ApiError(400, "invalid_cursor", exc.message, "cursor") from None
        raise


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is too large for a JSON number")
    return value
