"""One error shape for the whole API: ``{"error": {"code", "message", "field"}}`` with a 4xx/5xx status.

Every failure path ends here, including Flask's own 404/405/413 and anything unexpected, so a client
never receives an HTML page and a bug shows up as a logged 500 with a JSON body, not a crashed worker.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from pydantic import BaseModel, Field, ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    field: str | None = Field(description="dotted path of the offending field, or null")
    message: str


class ErrorObject(BaseModel):
    code: str = Field(description="machine-readable error code", examples=["validation_error"])
    message: str = Field(description="what went wrong, naming the field")
    field: str | None = Field(
        description="dotted path of the offending field, or null", examples=["schedule.cron"]
    )
    details: list[ErrorDetail] | None = Field(None, description="every problem found, when there are several")


class ErrorBody(BaseModel):
    """The body of every non-2xx answer."""

    error: ErrorObject


class ApiError(Exception):
    """An error the client caused (4xx) or the server cannot help (503), answered as JSON."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = details
        self.headers = headers or {}

    def response(self) -> Response:
        body: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        if self.details:
            body["details"] = self.details
        response = jsonify({"error": body})
        response.status_code = self.status
        response.headers.update(self.headers)
        return response


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    429: "rate_limited",
    431: "request_header_fields_too_large",
}


def from_validation_error(exc: ValidationError, prefix: str = "") -> ApiError:
    """Turn pydantic's errors into our shape, first problem on top, every problem in ``details``."""
    details = [_detail(error, prefix) for error in exc.errors(include_url=False, include_input=False)]
    first = details[0]
    code = first.pop("code")
    for detail in details[1:]:
        detail.pop("code")
    message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return ApiError(422, code, message, first["field"], details=details if len(details) > 1 else None)


def _detail(error: ErrorDetails, prefix: str) -> dict[str, Any]:
    path = ".".join(str(part) for part in error["loc"])
    field = ".".join(part for part in (prefix, path) if part) or None
    message = error["msg"].removeprefix("Value error, ")
    code = "validation_error"
    if error["type"] == "extra_forbidden":
        code = "unknown_field"
        message = "unknown field"
    elif error["type"] == "missing":
        message = "this field is required"
    return {"field": field, "message": message, "code": code}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return exc.response()

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError) -> Response:
        return from_validation_error(exc).response()

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        message = exc.description or exc.name
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"the request body is larger than the limit of {limit} bytes (MC_MAX_REQUEST_BYTES)"
        error = ApiError(status, code, message)
        response = error.response()
        if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(OperationalError)
    def _database_down(exc: OperationalError) -> Response:
        log.warning("database unavailable: %s", type(exc.orig).__name__ if exc.orig else type(exc).__name__)
        return ApiError(
            503,
            "database_unavailable",
            "the registry database is unavailable; retry shortly",
            headers={"Retry-After": "5"},
        ).response()

    @app.errorhandler(DBAPIError)
    def _database_error(exc: DBAPIError) -> Response:
        if exc.connection_invalidated:
            return _database_down(exc)  # type: ignore[arg-type]
        log.exception("database error")
        return ApiError(500, "internal_error", "the server failed to handle the request").response()

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return ApiError(500, "internal_error", "the server failed to handle the request").response()
