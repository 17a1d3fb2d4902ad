"""``/api/v1/services``: the services that send heartbeats, their state, history and tokens.

A service token is shown once, when created; afterwards it is listed by id, label and creation time
only, and revoked one at a time by id (a leaked token need not cost the service all its others).
"""

from __future__ import annotations

from dataclasses import replace

from flask import Response, current_app

from mission_control.monitoring.services import ServiceConfig, ServiceNotFound, ServiceRegistry
from mission_control.web.api.audit import entry
from mission_control.web.api.bodies import json_object, optional_body, query, validate
from mission_control.web.api.errors import ApiError
from mission_control.web.api.openapi import ApiBlueprint
from mission_control.web.api.responses import check_name, json_response, keyset_page
from mission_control.web.api.schemas import (
    EventList,
    EventQuery,
    FlipOut,
    HeartbeatOut,
    ServiceDetail,
    ServiceList,
    ServiceListQuery,
    ServiceOut,
    ServicePut,
    TokenCreated,
    TokenIn,
    TokenInfo,
    TokenList,
)
from mission_control.web.api.scopes import bound_service

bp = ApiBlueprint("services", __name__, tag="services")
TOKEN_ID = "<id:token_id>"


def _services() -> ServiceRegistry:
    return current_app.extensions["mission_control"].services


def _not_found(name: str) -> ApiError:
    return ApiError(404, "not_found", f"name: no service named {name!r}", "name")


def _detail(name: str, status: int = 200) -> Response:
    row = _services().get(name)
    if row is None:
        raise _not_found(name)
    base = ServiceOut.of(row)
    detail = ServiceDetail.model_construct(
        **dict(base),
        heartbeats=[HeartbeatOut.model_construct(**h) for h in _services().recent_heartbeats([name])[name]],
        flips=[FlipOut.model_construct(**f) for f in _services().flips([name])[name]],
    )
    return json_response(detail, status)


@bp.operation(
    "GET", "/services", summary="List services by name", query=ServiceListQuery, responses={200: ServiceList}
)
def list_services() -> Response:
    params = query(ServiceListQuery)
    rows = _services().list(
        state=params.state, after=params.cursor, limit=params.limit + 1, name=bound_service(), tags=params.tag
    )
    page, next_cursor = keyset_page(rows, params.limit, lambda row: row["name"])
    return json_response(ServiceList(services=[ServiceOut.of(row) for row in page], next_cursor=next_cursor))


@bp.operation(
    "GET", "/services/<name>", summary="One service with recent heartbeats and state changes",
    responses={200: ServiceDetail},
)  # fmt: skip
def get_service(name: str) -> Response:
    check_name(name)
    return _detail(name)


@bp.operation(
    "PUT",
    "/services/<name>",
    summary="Register a service or change its interval and grace",
    body=ServicePut,
    responses={200: ServiceDetail, 201: ServiceDetail},
)
def put_service(name: str) -> Response:
    check_name(name)
    body = validate(ServicePut, json_object(), strict=True)
    if (body.interval_s is None) == (body.schedule is None):
        field = "interval_s" if body.schedule is None else "schedule"
        message = f"{field}: give exactly one of interval_s and schedule"
        raise ApiError(422, "validation_error", message, field)
    config = ServiceConfig(
        interval_s=body.interval_s,
        grace_s=body.grace_s,
        max_runtime_s=body.max_runtime_s,
        cron=body.schedule.cron if body.schedule else None,
        timezone=body.schedule.timezone if body.schedule else None,
        fail_threshold=body.fail_threshold,
        early_tolerance_s=body.early_tolerance_s,
    )
    config = replace(config, tags=tuple(body.tags))
    _, created = _services().put(name, config, audit=entry("service.put"))
    return _detail(name, 201 if created else 200)


@bp.operation(
    "GET",
    "/services/<name>/events",
    summary="The service's kept events (heartbeats, run starts and ends, logs), newest first",
    query=EventQuery,
    responses={200: EventList},
)
def list_events(name: str) -> Response:
    check_name(name)
    params = query(EventQuery)
    try:
        rows = _services().events(name, before=params.cursor, limit=params.limit + 1)
    except ServiceNotFound:
        raise _not_found(name) from None
    page, next_cursor = keyset_page(rows, params.limit, lambda row: row["number"])
    return json_response(
        EventList(events=[HeartbeatOut.model_construct(**row) for row in page], next_cursor=next_cursor)
    )


@bp.operation("DELETE", "/services/<name>", summary="Remove a service and its tokens", responses={204: None})
def delete_service(name: str) -> Response:
    check_name(name)
    if not _services().delete(name, audit=entry("service.delete")):
        raise _not_found(name)
    return Response(status=204)


def _set_paused(name: str, paused: bool) -> Response:
    check_name(name)
    try:
        _services().set_paused(name, paused, audit=entry("service.pause" if paused else "service.resume"))
    except ServiceNotFound:
        raise _not_found(name) from None
    return _detail(name)


@bp.operation(
    "POST", "/services/<name>/pause", summary="Silence a service (no staleness, no alerts)",
    responses={200: ServiceDetail},
)  # fmt: skip
def pause_service(name: str) -> Response:
    return _set_paused(name, True)


@bp.operation(
    "POST", "/services/<name>/resume", summary="Watch a paused service again", responses={200: ServiceDetail}
)
def resume_service(name: str) -> Response:
    return _set_paused(name, False)


@bp.operation(
    "POST",
    "/services/<name>/tokens",
    summary="Create a token that may send this service's heartbeats only (shown once)",
    body=TokenIn,
    body_required=False,
    responses={201: TokenCreated},
)
def create_token(name: str) -> Response:
    check_name(name)
    label = optional_body(TokenIn).label
    try:
        issued = _services().create_token(name, label, audit=entry("service.token_create"))
    except ServiceNotFound:
        raise _not_found(name) from None
    response = json_response(TokenCreated(id=issued.id, service=name, token=issued.token, label=label), 201)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.operation(
    "GET", "/services/<name>/tokens", summary="This service's tokens: id, label and creation time only",
    responses={200: TokenList},
)  # fmt: skip
def list_tokens(name: str) -> Response:
    check_name(name)
    try:
        rows = _services().list_tokens(name)
    except ServiceNotFound:
        raise _not_found(name) from None
    return json_response(TokenList(tokens=[TokenInfo.model_validate(dict(row)) for row in rows]))


@bp.operation(
    "DELETE", f"/services/<name>/tokens/{TOKEN_ID}",
    summary="Revoke one token: its next heartbeat is refused as an unknown token's", responses={204: None},
)  # fmt: skip
def revoke_token(name: str, token_id: int) -> Response:
    check_name(name)
    try:
        revoked = _services().revoke_token(name, token_id, audit=entry("service.token_revoke"))
    except ServiceNotFound:
        raise _not_found(name) from None
    if not revoked:
        raise ApiError(
            404, "not_found", f"token_id: service {name!r} has no token with id {token_id}", "token_id"
        )
    return Response(status=204)
