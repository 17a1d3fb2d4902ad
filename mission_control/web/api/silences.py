"""``/api/v1/silences``: mute the notices of matching alerts for a while; alerts still open and record.

``DELETE`` expires a silence (ends it now) rather than erasing it: notices keep naming the silence
that kept them, and the audit trail the window it had.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Response, current_app, jsonify

from mission_control.monitoring.silences import (
    SilenceSpec,
    create_silence,
    expire_silence,
    get_silence,
    list_silences,
)
from mission_control.web.api.audit import entry
from mission_control.web.api.bodies import json_object, query, validate
from mission_control.web.api.channels import named_field
from mission_control.web.api.errors import ApiError
from mission_control.web.api.openapi import ApiBlueprint
from mission_control.web.api.silence_schemas import (
    MAX_SILENCE_S,
    SilenceIn,
    SilenceList,
    SilenceListQuery,
    SilenceOut,
)

bp = ApiBlueprint("silences", __name__, tag="silences")
SILENCE_ID = "<id:silence_id>"


def _state():  # type: ignore[no-untyped-def]
    return current_app.extensions["mission_control"]


def _not_found(silence_id: int) -> ApiError:
    return ApiError(404, "not_found", f"silence_id: no silence with id {silence_id}", "silence_id")


@bp.operation(
    "POST", "/silences", summary="Silence matching alerts' notices from starts_at (default now) to ends_at",
    body=SilenceIn, responses={201: SilenceOut},
)  # fmt: skip
def add_silence() -> Response:
    body = named_field(lambda: validate(SilenceIn, json_object()))
    now = _state().clock.now()
    starts_at = body.starts_at or now
    if body.ends_at <= now:
        raise ApiError(422, "validation_error", "ends_at: a silence must end in the future", "ends_at")
    if body.ends_at <= starts_at:
        raise ApiError(422, "validation_error", "ends_at: a silence ends after it starts", "ends_at")
    if body.ends_at - starts_at > timedelta(seconds=MAX_SILENCE_S):
        raise ApiError(422, "validation_error", "ends_at: a silence lasts at most 366 days", "ends_at")
    audit = entry("silence.create")
    spec = SilenceSpec(
        alert_kinds=list(body.alert_kinds) if body.alert_kinds else None,
        subject_pattern=body.subject_pattern,
        tag_pattern=body.tag_pattern,
        starts_at=starts_at,
        ends_at=body.ends_at,
        comment=body.comment,
        created_by=audit.actor,
    )
    row = create_silence(_state().engine, spec, now, audit=audit)
    response = jsonify(SilenceOut.of(row, now).model_dump(mode="json"))
    response.status_code = 201
    return response


@bp.operation(
    "GET", "/silences", summary="List silences, newest first (?state=pending|active|expired)",
    query=SilenceListQuery, responses={200: SilenceList},
)  # fmt: skip
def list_all_silences() -> Response:
    params = query(SilenceListQuery)
    now = _state().clock.now()
    rows = list_silences(_state().engine, now, params.state)
    return jsonify(SilenceList(silences=[SilenceOut.of(r, now) for r in rows]).model_dump(mode="json"))


@bp.operation("GET", f"/silences/{SILENCE_ID}", summary="One silence", responses={200: SilenceOut})
def get_one_silence(silence_id: int) -> Response:
    row = get_silence(_state().engine, silence_id)
    if row is None:
        raise _not_found(silence_id)
    return jsonify(SilenceOut.of(row, _state().clock.now()).model_dump(mode="json"))


@bp.operation(
    "DELETE", f"/silences/{SILENCE_ID}", summary="Expire a silence now (it is kept, as expired)",
    responses={200: SilenceOut},
)  # fmt: skip
def expire_one_silence(silence_id: int) -> Response:
    now = _state().clock.now()
    row = expire_silence(_state().engine, silence_id, now, audit=entry("silence.expire"))
    if row is None:
        raise _not_found(silence_id)
    return jsonify(SilenceOut.of(row, now).model_dump(mode="json"))
