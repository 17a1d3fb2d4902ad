"""``/api/v1/audit``: who changed what, and the :class:`AuditEntry` every mutating route hands its store.

The routes (API and dashboard) build the entry with :func:`entry` from the request's principal
(``flask.g.principal``) and client address; the store that makes the change writes the row in the
change's own transaction (:mod:`mission_control.db.audit`). A dashboard action is recorded as
``dashboard: <token name>``, so the trail tells a click from a script with the same token.

The listing is newest first and paged by an opaque (at, id) cursor; a cursor the API did not give out
is a 400 ``invalid_cursor``. ``read`` (or ``admin``) reads it; a token bound to a service reads that
service's rows only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response, current_app, g, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from mission_control.db.audit import AuditEntry, AuditFilter, decode_cursor, encode_cursor, list_entries
from mission_control.web.api.auth import client_address
from mission_control.web.api.bodies import cursor_query
from mission_control.web.api.errors import ApiError
from mission_control.web.api.openapi import ApiBlueprint
from mission_control.web.api.responses import keyset_page
from mission_control.web.api.schemas import Instant
from mission_control.web.api.scopes import bound_service

bp = ApiBlueprint("audit", __name__, tag="audit")

SUBJECT_KINDS = ("job", "service", "channel", "token", "definition", "mission", "alert", "badge")


def entry(action: str) -> AuditEntry:
    """The audit entry for this request's change: its principal, address and ``action``."""
    who = g.principal
    dashboard = request.blueprint == "dashboard"
    return AuditEntry(
        actor=f"dashboard: {who.name}" if dashboard else who.name,
        actor_token_id=who.id,
        client_address=client_address(),
        action=action,
    )


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description='the token\'s name, "MC_ADMIN_TOKEN", or "dashboard: <token name>"')
    actor_token_id: int | None = Field(description="the token's id (null: the bootstrap admin token)")
    client_address: str | None
    action: str = Field(description="<kind>.<verb>, e.g. job.put, job.pause, run.trigger, token.create")
    subject_kind: str
    subject_name: str
    service: str | None = Field(description="the service the subject belongs to, if any")
    change: dict[str, Any] | None = Field(description='{"before": ..., "after": ...}; secrets as "****"')


class AuditList(BaseModel):
    entries: list[AuditOut]
    next_cursor: str | None = Field(description="pass as `cursor` for older rows; null on the last page")


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(
        None, max_length=240, description="`kind:name` (job:billing.sync) or a bare name (any kind)"
    )
    actor: str | None = Field(None, max_length=160, description="only changes by this actor")
    action: str | None = Field(None, max_length=64, description="only this action (job.put, ...)")
    since: Instant | None = Field(None, description="at or after this instant (with offset)")
    until: Instant | None = Field(None, description="before this instant (with offset)")
    limit: int = Field(50, ge=1, le=1000, description="page size (1..1000)")
    cursor: str | None = Field(None, max_length=400, description="next_cursor of the previous page")


def subject_filter(subject: str | None) -> tuple[str | None, str | None]:
    """``kind:name`` as (kind, name); a bare name, or a prefix that is no subject kind, as (None, name)."""
    if subject is None:
        return None, None
    kind, separator, name = subject.partition(":")
    if separator and kind in SUBJECT_KINDS:
        return kind, name
    return None, subject


@bp.operation(
    "GET",
    "/audit",
    summary="The audit trail, newest first: who changed what, when, from where",
    query=AuditQuery,
    responses={200: AuditList},
    errors=(400,),
)
def list_audit() -> Response:
    """A cursor the API did not give out, however crafted, is a 400 ``invalid_cursor`` naming it."""
    params = cursor_query(AuditQuery)
    before = None
    if params.cursor is not None:
        try:
            before = decode_cursor(params.cursor)
        except ValueError as exc:
            raise ApiError(400, "invalid_cursor", f"cursor: {exc}", "cursor") from None
    kind, name = subject_filter(params.subject)
    rows = list_entries(
        current_app.extensions["mission_control"].engine,
        AuditFilter(
            subject_kind=kind,
            subject_name=name,
            actor=params.actor,
            action=params.action,
            service=bound_service(),
            since=params.since,
            until=params.until,
            before=before,
            limit=params.limit + 1,
        ),
    )
    page, next_cursor = keyset_page(rows, params.limit, lambda row: encode_cursor(row["at"], row["id"]))
    listing = AuditList(entries=[AuditOut.model_validate(dict(row)) for row in page], next_cursor=next_cursor)
    return jsonify(listing.model_dump(mode="json"))
