"""Status badges: ``/api/v1/badges`` manages them, ``/badge/<key>.svg`` (and ``.json``) shows them.

``POST /api/v1/badges {"service": …} | {"job": …} | {"tag": …}`` creates a badge and answers its key
and URLs once; ``GET /api/v1/badges`` lists them (never a key); ``DELETE /api/v1/badges/{id}``
revokes one. A service's badge needs ``services:write``, a job's ``jobs:write``, a tag's either (or
``admin``), on an unbound token: a tag spans services. How keys are made and why they are random
rows rather than HMACs: :mod:`mission_control.monitoring.badges`.

**Why /badge needs no token.** The image is fetched by browsers and image proxies (GitHub's camo)
that cannot send an ``Authorization`` header, so the unguessable key in the URL is the credential,
as a service token in a heartbeat's query string is. The routes live outside ``/api/v1`` and are
declared ``PUBLIC`` in :data:`mission_control.web.api.scopes.RULES` on purpose, not by omission. What
a key can reveal is one label and one state. An unknown or revoked key answers the same bare 404 as
any other (no hint whether it ever existed) and spends the client address's failed-authentication
budget (429 once it is spent), as a wrong token does; the key's 192 random bits are what make
guessing hopeless (see :mod:`mission_control.web.api.limits`).

Answers carry ``Cache-Control: public, max-age=60`` (READMEs and proxies refresh within a minute;
errors are ``no-store``), ``X-Content-Type-Options: nosniff`` and a Content-Security-Policy that
allows nothing (an SVG opened on its own cannot run anything), and every user string in the SVG is
XML-escaped (:mod:`mission_control.base.badge_svg`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from flask import Response, current_app, g, jsonify
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mission_control.base.badge_svg import render
from mission_control.base.tags import Tag
from mission_control.jobs.spec import Name
from mission_control.monitoring.badges import BadgeStore, SubjectNotFound
from mission_control.web.api.audit import entry
from mission_control.web.api.auth import spend_auth_budget
from mission_control.web.api.bodies import json_object, query, validate
from mission_control.web.api.errors import ApiError
from mission_control.web.api.limits import too_many
from mission_control.web.api.openapi import ApiBlueprint
from mission_control.web.api.responses import json_response

bp = ApiBlueprint("badges", __name__, tag="badges")
images = ApiBlueprint("badge_images", __name__, tag="badges")

KEY_PATTERN = r"^[A-Za-z0-9_-]{16,128}$"
CACHE = "public, max-age=60"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
    "X-Content-Type-Options": "nosniff",
}
# Who may manage a badge of each kind (admin always may).
_SCOPES = {"service": ("services:write",), "job": ("jobs:write",), "tag": ("services:write", "jobs:write")}


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class BadgeIn(BaseModel):
    """Exactly one of ``service``, ``job`` and ``tag`` (never null)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1, "maxProperties": 1})

    service: Name = Field(None, description="a service's state", json_schema_extra=_no_default)
    job: Name = Field(None, description="a job's state", json_schema_extra=_no_default)
    tag: Tag = Field(
        None, description="the worst state of everything carrying this tag", json_schema_extra=_no_default
    )

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if len(data) != 1:
                raise ValueError("give exactly one of service, job and tag")
            for key, value in data.items():
                if value is None and key in cls.model_fields:
                    raise ValueError(f"{key}: give a name, not null")
        return data

    def subject(self) -> tuple[str, str]:
        for kind in ("service", "job", "tag"):
            value = getattr(self, kind)
            if value is not None:
                return kind, value
        raise AssertionError("validated: one is given")


class BadgeOut(BaseModel):
    id: int
    kind: Literal["service", "job", "tag"]
    subject: str = Field(description="the service, job or tag it shows")
    created_at: datetime
    created_by: str = Field(description="the name of the token that created it")
    revoked_at: datetime | None


class BadgeCreated(BadgeOut):
    key: str = Field(description="shown once; only its SHA-256 is stored. The URLs below carry it")
    svg_url: str = Field(description="the image, for READMEs: /badge/<key>.svg (no token)")
    json_url: str = Field(description="the same state as JSON: /badge/<key>.json (no token)")


class BadgeList(BaseModel):
    badges: list[BadgeOut] = Field(description="oldest first, never a key")


class BadgeListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    all: bool = Field(False, description="include revoked badges")


class BadgeState(BaseModel):
    label: str = Field(description="the service, job or tag")
    status: Literal["up", "late", "down", "new", "paused", "unknown"] = Field(
        description="a tag's: the worst of everything carrying it; unknown: nothing (any more)"
    )
    total: int = Field(description="services and jobs counted")
    down: int
    late: int


def _store() -> BadgeStore:
    state = current_app.extensions["mission_control"]
    return BadgeStore(state.engine, state.clock)


def _may_manage(kind: str) -> None:
    if not g.principal.has(*_SCOPES[kind]):
        needed = " or ".join((*_SCOPES[kind], "admin"))
        raise ApiError(403, "forbidden", f"scope: a {kind} badge needs {needed}", "scope")


@bp.operation(
    "POST", "/badges", summary="Create a status badge for a service, a job or a tag (its key shown once)",
    body=BadgeIn, responses={201: BadgeCreated}, errors=(404,),
)  # fmt: skip
def create_badge() -> Response:
    kind, subject = validate(BadgeIn, json_object()).subject()
    _may_manage(kind)
    try:
        issued = _store().create(kind, subject, g.principal.name, audit=entry("badge.create"))
    except SubjectNotFound:
        raise ApiError(404, "not_found", f"{kind}: no {kind} named {subject!r}", kind) from None
    created = BadgeCreated(
        **dict(issued.row),
        key=issued.key,
        svg_url=f"/badge/{issued.key}.svg",
        json_url=f"/badge/{issued.key}.json",
    )
    response = json_response(created, 201)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.operation(
    "GET", "/badges", summary="List badges (never their keys); ?all=true includes revoked ones",
    query=BadgeListQuery, responses={200: BadgeList},
)  # fmt: skip
def list_badges() -> Response:
    rows = _store().list(include_revoked=query(BadgeListQuery).all)
    return json_response(BadgeList(badges=[BadgeOut(**dict(row)) for row in rows]))


@bp.operation(
    "DELETE", "/badges/<id:badge_id>", summary="Revoke a badge: its URL answers 404 from now on",
    responses={204: None},
)  # fmt: skip
def revoke_badge(badge_id: int) -> Response:
    badge = _store().get(badge_id)
    if badge is not None:
        _may_manage(badge["kind"])
    if badge is None or not _store().revoke(badge_id, audit=entry("badge.revoke")):
        raise ApiError(404, "not_found", f"badge_id: no live badge with id {badge_id}", "badge_id")
    return Response(status=204)


def _state(key: str) -> BadgeState:
    found = _store().state(key) if re.fullmatch(KEY_PATTERN, key) else None
    if found is None:
        wait = spend_auth_budget()
        if wait is not None:
            raise too_many("too many failed authentications from this address", wait)
        raise ApiError(404, "not_found", "not found", headers={"Cache-Control": "no-store"})
    return BadgeState(
        label=found.label,
        status=found.status,
        total=found.total,
        down=found.down,
        late=found.late,  # type: ignore[arg-type]
    )


@images.operation(
    "GET", "/badge/<key>.svg", summary="A status badge as SVG for READMEs (no token: the key is one)",
    responses={200: None}, public=True, errors=(429,),
)  # fmt: skip
def badge_svg(key: str) -> Response:
    state = _state(key)
    response = Response(render(state.label, state.status), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = CACHE
    return response


@images.operation(
    "GET", "/badge/<key>.json", summary="A status badge's state as JSON (no token: the key is one)",
    responses={200: BadgeState}, public=True, errors=(429,),
)  # fmt: skip
def badge_json(key: str) -> Response:
    response = jsonify(_state(key).model_dump(mode="json"))
    response.headers["Cache-Control"] = CACHE
    return response


@images.after_request
def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response
