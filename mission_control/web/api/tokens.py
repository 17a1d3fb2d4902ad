"""``/api/v1/tokens``: named tokens with scopes, optionally bound to one service (admin only).

A token is answered once, when created (``Cache-Control: no-store``); afterwards it is listed by id,
name, scopes, service and times only, and revoked by id with effect on its next request. ``admin``
bound to a service means every scope, on that service's objects only (it cannot manage tokens). An
``expires_at`` in the past makes a token that is refused from the start. Several admin
tokens may live at once, so rotating one is: create, deploy, revoke, with no downtime.
"""

from __future__ import annotations

from flask import Response, current_app, g

from mission_control.db.api_tokens import ApiTokenStore, TokenNameTaken
from mission_control.web.api.audit import entry
from mission_control.web.api.bodies import json_object, query, validate
from mission_control.web.api.errors import ApiError
from mission_control.web.api.openapi import ApiBlueprint
from mission_control.web.api.responses import json_response
from mission_control.web.api.token_schemas import (
    ApiTokenCreated,
    ApiTokenIn,
    ApiTokenList,
    ApiTokenListQuery,
    ApiTokenOut,
)

bp = ApiBlueprint("tokens", __name__, tag="tokens")


def _store() -> ApiTokenStore:
    return current_app.extensions["mission_control"].tokens


@bp.operation(
    "POST", "/tokens", summary="Create a named token with scopes, optionally bound to a service (shown once)",
    body=ApiTokenIn, responses={201: ApiTokenCreated}, errors=(409,),
)  # fmt: skip
def create_api_token() -> Response:
    body = validate(ApiTokenIn, json_object())
    try:
        issued = _store().create(
            body.name,
            body.scopes,
            service=body.service,
            expires_at=body.expires_at,
            created_by=g.principal.name,
            audit=entry("token.create"),
        )
    except TokenNameTaken:
        raise ApiError(409, "conflict", f"name: a token named {body.name!r} exists", "name") from None
    response = json_response(ApiTokenCreated(**dict(issued.row), token=issued.token), 201)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.operation(
    "GET", "/tokens", summary="List tokens (never their secrets); ?all=true includes revoked ones",
    query=ApiTokenListQuery, responses={200: ApiTokenList},
)  # fmt: skip
def list_api_tokens() -> Response:
    params = query(ApiTokenListQuery)
    rows = _store().list(include_revoked=params.all)
    return json_response(ApiTokenList(tokens=[ApiTokenOut(**dict(row)) for row in rows]))


@bp.operation(
    "DELETE", "/tokens/<id:token_id>", summary="Revoke a token: its next request is refused (401)",
    responses={204: None},
)  # fmt: skip
def revoke_api_token(token_id: int) -> Response:
    if not _store().revoke(token_id, audit=entry("token.revoke")):
        raise ApiError(404, "not_found", f"token_id: no live token with id {token_id}", "token_id")
    return Response(status=204)
