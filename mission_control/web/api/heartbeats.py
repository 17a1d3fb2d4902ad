"""``/api/v1/heartbeats/{service}``: services prove they are alive.

POST with an optional JSON body (``status``, ``message``) or any text body (kept as the message); GET
and HEAD for a crontab's ``curl -fsS -m 5 URL``. Any token with ``heartbeats:write`` (bound to this
service or to none) or ``admin`` is accepted (the rule in :mod:`.scopes`); only a
token that may also write services (``admin``, ``services:write``) registers a service the heartbeat
names for the first time. A heartbeat-only token may also come as ``?token=``. A
heartbeat is committed before the answer, so a 2xx means it is recorded; a database outage answers
503 and the sender retries.

An API token's heartbeat is the hot path: the token is checked by the heartbeat's own statement
(one transaction, one round trip on PostgreSQL; see
:meth:`~mission_control.monitoring.services.ServiceRegistry.record_heartbeat`), which also names
``g.principal``. Whenever that statement does not accept it (unknown, revoked, expired, lacking the
scope, another service's, an unknown service, a spent budget) the request is authorized in full, as
every other route is, and answered as that says. The admin token needs no lookup and is checked
before the view.

Measured runs and exit codes (Healthchecks' ping API): ``/heartbeats/{service}/start`` starts a run,
``/fail`` reports failure, ``/{code}`` an exit status (0 success, 1-255 failure, kept), ``/log`` keeps
an event that changes nothing; ``?rid=`` pairs a start with its end when runs overlap (see
:mod:`mission_control.monitoring.heartbeat_runs`). They take the same body, query-string token and
GET/HEAD as the heartbeat, are authorized in full before the view (they are not the hot path) and
spend the same per-token budget. A plain heartbeat with ``?rid=`` leaves the hot path too.

Limits: each token but an admin one has its own heartbeat budget (MC_HEARTBEATS_PER_S); a missing or unknown
token spends the sender's failed-authentication budget (401, then 429), checked only after the token
was, so a valid token gets through whatever others at the same address sent.
"""

from __future__ import annotations

from typing import TypeVar

from flask import Response, current_app, g, jsonify, request
from pydantic import BaseModel

from mission_control.base.config import Settings
from mission_control.base.instruments import HEARTBEATS
from mission_control.db.api_tokens import HeartbeatCredential
from mission_control.monitoring.services import (
    HeartbeatResult,
    ServiceConfig,
    ServiceNotFound,
    TokenNotAccepted,
)
from mission_control.web.api.auth import authorize, deferred_heartbeat_credential
from mission_control.web.api.bodies import json_object, query, validate
from mission_control.web.api.errors import ApiError
from mission_control.web.api.limits import too_many
from mission_control.web.api.openapi import ApiBlueprint
from mission_control.web.api.responses import check_name
from mission_control.web.api.schemas import (
    HeartbeatAccepted,
    HeartbeatIn,
    HeartbeatQuery,
    SignalIn,
    SignalQuery,
)
from mission_control.web.api.scopes import Principal, owner_lookup

bp = ApiBlueprint("heartbeats", __name__, tag="heartbeats")

_RESPONSES = {200: HeartbeatAccepted, 201: HeartbeatAccepted}
M = TypeVar("M", bound=BaseModel)
MAX_EXIT_CODE = 255


@bp.operation(
    "POST",
    "/heartbeats/<name>",
    summary="Send a heartbeat (JSON {status, message} or a text body)",
    query=HeartbeatQuery,
    body=HeartbeatIn,
    body_required=False,
    responses=_RESPONSES,
    scoped=True,
)
def post_heartbeat(name: str) -> Response:
    return _heartbeat(name, with_body=True)


@bp.operation(
    "GET",
    "/heartbeats/<name>",
    summary="Send a heartbeat (for curl one-liners; HEAD works too)",
    query=HeartbeatQuery,
    responses=_RESPONSES,
    scoped=True,
)
def get_heartbeat(name: str) -> Response:
    return _heartbeat(name, with_body=False)


def _heartbeat(name: str, *, with_body: bool) -> Response:
    credential: HeartbeatCredential | None = g.pop("heartbeat_credential", None)
    state = current_app.extensions["mission_control"]
    try:
        check_name(name, "service")
        params = query(HeartbeatQuery)
        limit = state.settings.heartbeat_message_bytes
        body = HeartbeatIn(status=params.status or "ok", interval_s=params.interval_s, grace_s=params.grace_s)
        truncated = False
        if with_body and (request.content_length or request.headers.get("Transfer-Encoding")):
            body, truncated = _read_body(limit, defaults=body)
        rid = str(params.rid) if params.rid is not None else None
    except ApiError:
        if credential is not None:
            _authorize()  # a refused token is answered first, as on every other route
        raise
    if credential is not None:
        budget = _budget(credential)
        if state.heartbeat_limits.wait_s(budget) is None:
            try:
                result = state.services.record_heartbeat(
                    name, status=body.status, message=body.message, truncated=truncated, token=credential,
                    rid=rid,
                )  # fmt: skip
            except TokenNotAccepted:
                pass  # why not (or a registration) is the full check's to say, below
            else:
                token = result.token
                assert token is not None
                g.principal = Principal(
                    id=token["id"],
                    name=token["name"],
                    scopes=frozenset(token["scopes"]),
                    service=token["service"],
                    kind="token",
                )
                if not g.principal.is_admin:
                    state.heartbeat_limits.take(budget)  # checked above; racing requests may overdraw it
                return _accepted(name, body.status, truncated, result, rid=rid)
        _authorize()
    who = g.principal
    if not who.is_admin:
        assert credential is not None  # only the bootstrap admin comes without one, and it is admin
        wait = state.heartbeat_limits.take(_budget(credential))
        if wait is not None:
            raise too_many("too many heartbeats with this token (MC_HEARTBEATS_PER_S)", wait)
    register = _registration(body, state.settings) if who.has("services:write") else None
    status, message = body.status, body.message
    try:
        result = state.services.record_heartbeat(
            name,
            status=status,
            message=message,
            truncated=truncated,
            register=register,
            rid=rid,
        )
    except ServiceNotFound:
        raise _unknown(name) from None
    return _accepted(name, status, truncated, result, rid=rid)


def _unknown(name: str) -> ApiError:
    return ApiError(
        404,
        "not_found",
        f"name: no service named {name!r} (registering one needs admin or services:write)",
        "name",
    )


# --- measured runs, exit codes, logs ------------------------------------------------------------------


def _signal_routes(suffix: str, what: str, kind: str | None) -> None:
    """POST and GET (HEAD) of ``/heartbeats/<name>/<suffix>``; ``kind`` None: the exit code's route."""

    def post(name: str, code: str | None = None) -> Response:
        return _signal(name, kind, code, with_body=True)

    def get(name: str, code: str | None = None) -> Response:
        return _signal(name, kind, code, with_body=False)

    label = suffix.strip("<>")
    post.__name__ = f"post_{label}"
    get.__name__ = f"get_{label}"
    common = {"query": SignalQuery, "responses": _RESPONSES, "scoped": True}
    bp.operation("POST", f"/heartbeats/<name>/{suffix}", summary=what, body=SignalIn, body_required=False,
                 **common)(post)  # fmt: skip
    bp.operation("GET", f"/heartbeats/<name>/{suffix}", summary=f"{what} (HEAD works too)", **common)(get)


_signal_routes("start", "A run starts: the next end (same rid, if any) records its duration", "start")
_signal_routes("fail", "Report failure (the service is down at once; ends the run)", "fail")
_signal_routes("log", "Keep an event (a message) that changes no state", "log")
_signal_routes("<code>", "Report an exit status: 0 success, 1-255 failure (kept; ends the run)", None)


def _signal(name: str, kind: str | None, code_text: str | None, *, with_body: bool) -> Response:
    """A start, failure, exit status or log: authorized in full already (``g.principal``)."""
    state = current_app.extensions["mission_control"]
    check_name(name, "service")
    code = None
    if kind is None:
        code = _exit_code(code_text)
        kind = "ok" if code == 0 else "fail"
    params = query(SignalQuery)
    body = SignalIn(interval_s=params.interval_s, grace_s=params.grace_s)
    truncated = False
    if with_body and (request.content_length or request.headers.get("Transfer-Encoding")):
        body, truncated = _read_body(state.settings.heartbeat_message_bytes, defaults=body)
    who = g.principal
    if not who.is_admin:
        credential = deferred_heartbeat_credential(request.args.get("token"))
        if credential is not None:
            wait = state.heartbeat_limits.take(_budget(credential))
            if wait is not None:
                raise too_many("too many heartbeats with this token (MC_HEARTBEATS_PER_S)", wait)
    register = _registration(body, state.settings) if who.has("services:write") else None
    rid = str(params.rid) if params.rid is not None else None
    try:
        result = state.services.record_heartbeat(
            name,
            status=kind,
            message=body.message,
            truncated=truncated,
            register=register,
            rid=rid,
            exit_code=code,
            duration_s=body.duration_s if kind in ("ok", "fail") else None,
        )
    except ServiceNotFound:
        raise _unknown(name) from None
    return _accepted(name, kind, truncated, result, rid=rid, exit_code=code)


def _exit_code(text: str | None) -> int:
    """The exit status a path names: 0 to 255 in decimal, else a 422 naming ``code``."""
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 3 or int(text) > MAX_EXIT_CODE:
        shown = (text or "")[:20]
        raise ApiError(422, "validation_error", f"code: an exit status is 0 to 255, not {shown!r}", "code")
    return int(text)


def _authorize() -> None:
    """The full check of this request's credential into ``g.principal`` (raises its refusal)."""
    state = current_app.extensions["mission_control"]
    authorize(str(request.endpoint), owner_lookup(state.engine), query_token=request.args.get("token"))


def _registration(body: HeartbeatIn | SignalIn, settings: Settings) -> ServiceConfig:
    """How a ping registers a service it names for the first time (a token that may write services):
    ``?interval_s=&grace_s=``, else the configured defaults."""
    return ServiceConfig(
        interval_s=body.interval_s or settings.service_interval_s,
        grace_s=body.grace_s if body.grace_s is not None else settings.service_grace_s,
    )


def _budget(credential: HeartbeatCredential) -> str:
    """The heartbeat budget's key: one per token, by digest (known before the token is looked up)."""
    return f"token:{credential.digest}"


def _accepted(
    name: str,
    status: str,
    truncated: bool,
    result: HeartbeatResult,
    *,
    rid: str | None = None,
    exit_code: int | None = None,
) -> Response:
    """The answer to a recorded heartbeat (its alert changes handed on first)."""
    state = current_app.extensions["mission_control"]
    HEARTBEATS.labels(status).inc()
    state.notify(result.changes)
    service = result.service
    body = HeartbeatAccepted(
        service=name,
        state=service["state"],
        created=result.created,
        received_at=result.received_at or service["last_seen_at"],
        deadline_at=service["deadline_at"],
        truncated=truncated,
        event=status,
        rid=rid,
        duration_s=result.duration_s,
        exit_code=exit_code,
    )
    response = jsonify(body.model_dump(mode="json"))
    response.status_code = 201 if result.created else 200
    return response


def _read_body(limit: int, *, defaults: M) -> tuple[M, bool]:
    """The heartbeat from a JSON or text body, and whether its message was cut (never refused)."""
    if request.mimetype and request.mimetype.endswith("json"):
        raw = json_object(scrub=("message",))
        message = raw.get("message")
        truncated = False
        if isinstance(message, str):
            raw["message"], truncated = _cut(message, limit)
        merged = {**defaults.model_dump(exclude_none=True), **raw}
        return validate(type(defaults), merged, strict=True), truncated
    # Any other body is the message, as a cron job's output piped to curl would send it. Read only
    # what is kept (plus one byte to know it was cut), however large the body is.
    request.max_content_length = 2**62  # None would fall back to MAX_CONTENT_LENGTH
    data = request.stream.read(limit + 1)
    text = data[:limit].decode("utf-8", errors="ignore" if len(data) > limit else "replace")
    text = text.replace("\x00", "\ufffd")
    return defaults.model_copy(update={"message": text or None}), len(data) > limit


def _cut(message: str, limit: int) -> tuple[str, bool]:
    encoded = message.encode("utf-8")
    if len(encoded) <= limit:
        return message, False
    return encoded[:limit].decode("utf-8", errors="ignore"), True
