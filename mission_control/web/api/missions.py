"""``/api/v1/mission-definitions`` and ``/api/v1/missions``: register, start, signal, cancel, inspect."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, current_app, jsonify

from mission_control.missions.definition import DefinitionError, MissionDefinition, parse_definition
from mission_control.missions.machine import MissionConflict, PayloadInvalid
from mission_control.missions.store import (
    MISSION_ID_PATTERN,
    DefinitionNotFound,
    DuplicateMission,
    MissionNotFound,
    MissionStore,
    public_view,
)
from mission_control.web.api.audit import entry
from mission_control.web.api.bodies import cursor_query, json_object, json_value, query, validate
from mission_control.web.api.errors import ApiError
from mission_control.web.api.mission_schemas import (
    CancelIn,
    DefinitionList,
    DefinitionOut,
    DefinitionQuery,
    MissionList,
    MissionListQuery,
    MissionOut,
    StartIn,
    definition_out,
)
from mission_control.web.api.openapi import ApiBlueprint
from mission_control.web.api.responses import check_name
from mission_control.web.api.scopes import bound_service

bp = ApiBlueprint("missions", __name__, tag="missions")


def store() -> MissionStore:
    return current_app.extensions["mission_control"].missions


def _mission(doc: dict[str, Any], status: int = 200) -> Response:
    """Answer with the mission; if it waits for a worker, send it one (after the commit, as always)."""
    if doc["status"] == "running":
        current_app.extensions["mission_control"].enqueue_missions([doc["id"]])
    response = jsonify(MissionOut.model_validate(public_view(doc)).model_dump(mode="json"))
    response.status_code = status
    return response


def _check_id(mission_id: str) -> None:
    if not re.fullmatch(MISSION_ID_PATTERN, mission_id):
        raise ApiError(
            422,
            "validation_error",
            f"id: {mission_id!r} does not match [A-Za-z0-9][A-Za-z0-9._:-]{{0,127}}",
            "id",
        )


def _not_found(mission_id: str) -> ApiError:
    return ApiError(404, "not_found", f"id: no mission with id {mission_id!r}", "id")


@bp.operation(
    "PUT", "/mission-definitions/<name>", summary="Register a mission definition (a new version if changed)",
    body=MissionDefinition, responses={200: DefinitionOut, 201: DefinitionOut},
)  # fmt: skip
def put_definition(name: str) -> Response:
    check_name(name)
    body = json_object()
    if body.setdefault("name", name) != name:
        raise ApiError(
            422, "validation_error", f"name: the body names {body['name']!r} but the path {name!r}", "name"
        )
    try:
        definition = parse_definition(body)
    except DefinitionError as exc:
        raise ApiError(
            422,
            "validation_error",
            str(exc),
            exc.field,
            details=exc.details if len(exc.details) > 1 else None,
        ) from None
    record, created = store().put_definition(definition, audit=entry("definition.put"))
    response = jsonify(
        definition_out(name, record.version, record.created_at, definition).model_dump(mode="json")
    )
    response.status_code = 201 if created else 200
    return response


@bp.operation("GET", "/mission-definitions", summary="List mission definitions (latest versions)",
              responses={200: DefinitionList})  # fmt: skip
def list_definitions() -> Response:
    records = store().list_definitions()
    listing = DefinitionList(
        definitions=[
            definition_out(r.definition.name, r.version, r.created_at, r.definition) for r in records
        ]
    )
    return jsonify(listing.model_dump(mode="json"))


@bp.operation("GET", "/mission-definitions/<name>", summary="One mission definition (latest, or ?version=)",
              query=DefinitionQuery, responses={200: DefinitionOut})  # fmt: skip
def get_definition(name: str) -> Response:
    check_name(name)
    params = query(DefinitionQuery)
    try:
        record = store().definition(name, params.version)
    except DefinitionNotFound:
        raise ApiError(404, "not_found", f"name: no mission definition named {name!r}", "name") from None
    return jsonify(
        definition_out(name, record.version, record.created_at, record.definition).model_dump(mode="json")
    )


@bp.operation("POST", "/missions", summary="Start a mission", body=StartIn, responses={201: MissionOut},
              errors=(409,))  # fmt: skip
def start_mission() -> Response:
    body = validate(StartIn, json_object())
    try:
        doc = store().start(
            body.definition, body.input, body.id, service=bound_service(), audit=entry("mission.start")
        )
    except DefinitionNotFound:
        raise ApiError(
            422,
            "unknown_definition",
            f"definition: no mission definition named {body.definition!r}",
            "definition",
        ) from None
    except PayloadInvalid as exc:
        raise ApiError(422, "validation_error", str(exc), exc.field) from None
    except DuplicateMission as exc:
        raise ApiError(409, "duplicate_id", f"id: {exc}", "id") from None
    return _mission(doc, 201)


@bp.operation("GET", "/missions", summary="List missions, newest first", query=MissionListQuery,
              responses={200: MissionList}, errors=(400,))  # fmt: skip
def list_missions() -> Response:
    """A cursor the API did not give out, however crafted, is a 400 ``invalid_cursor`` naming it."""
    params = cursor_query(MissionListQuery)
    try:
        items, next_cursor = store().list(
            status=params.status,
            definition=params.definition,
            cursor=params.cursor,
            limit=params.limit,
            service=bound_service(),  # a service-bound token lists its service's missions only
        )
    except ValueError as exc:
        raise ApiError(400, "invalid_cursor", f"cursor: {exc}", "cursor") from None
    return jsonify(
        MissionList.model_validate({"missions": items, "next_cursor": next_cursor}).model_dump(mode="json")
    )


@bp.operation("GET", "/missions/<mission_id>", summary="Inspect a mission: state, outputs, history",
              responses={200: MissionOut})  # fmt: skip
def get_mission(mission_id: str) -> Response:
    _check_id(mission_id)
    try:
        doc = store().get(mission_id)
    except MissionNotFound:
        raise _not_found(mission_id) from None
    response = jsonify(MissionOut.model_validate(public_view(doc)).model_dump(mode="json"))
    return response


@bp.operation(
    "POST", "/missions/<mission_id>/signals/<signal>", summary="Deliver a signal (the body is its payload)",
    responses={200: MissionOut}, errors=(400, 409, 413, 415), body_required=False,
)  # fmt: skip
def signal_mission(mission_id: str, signal: str) -> Response:
    _check_id(mission_id)
    check_name(signal, "signal")
    payload = json_value(empty=None, field="payload")
    try:
        doc = store().signal(mission_id, signal, payload, audit=entry("mission.signal"))
    except MissionNotFound:
        raise _not_found(mission_id) from None
    except MissionConflict as exc:
        raise ApiError(409, exc.code, f"signal: {exc}", "signal") from None
    except PayloadInvalid as exc:
        raise ApiError(422, "validation_error", str(exc), exc.field) from None
    return _mission(doc)


@bp.operation("POST", "/missions/<mission_id>/cancel", summary="Cancel a mission, with a reason",
              body=CancelIn, responses={200: MissionOut}, errors=(409,), body_required=False)  # fmt: skip
def cancel_mission(mission_id: str) -> Response:
    _check_id(mission_id)
    body = validate(CancelIn, json_value(empty={}))
    try:
        doc = store().cancel(mission_id, body.reason, audit=entry("mission.cancel"))
    except MissionNotFound:
        raise _not_found(mission_id) from None
    except MissionConflict as exc:
        raise ApiError(409, exc.code, str(exc)) from None
    return _mission(doc)
