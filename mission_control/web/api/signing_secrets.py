"""``/api/v1/services/{name}/signing-secrets``: a service's own signing secrets, issued and rotated.

The secret is answered once, when issued (``Cache-Control: no-store``); listings show ids and
lifetimes only. The service need not be registered for heartbeats: jobs name their service freely,
and it is the jobs' requests that these secrets sign. See :mod:`mission_control.outbound.service_secrets`.
"""

from __future__ import annotations

from flask import Response, current_app

from mission_control.outbound.service_secrets import ServiceSigningSecrets
from mission_control.web.api.audit import entry
from mission_control.web.api.bodies import optional_body
from mission_control.web.api.errors import ApiError
from mission_control.web.api.openapi import ApiBlueprint
from mission_control.web.api.responses import check_name, json_response, secret_box
from mission_control.web.api.schemas import (
    SigningSecretIn,
    SigningSecretIssued,
    SigningSecretList,
    SigningSecretOut,
)

bp = ApiBlueprint("signing_secrets", __name__, tag="services")
SECRET_ID = "<id:secret_id>"


def _store() -> ServiceSigningSecrets:
    state = current_app.extensions["mission_control"]
    return ServiceSigningSecrets(state.engine, state.clock, secret_box(state.settings))


@bp.operation(
    "POST",
    "/services/<name>/signing-secrets",
    summary="Issue the service its own signing secret, or rotate it (shown once)",
    body=SigningSecretIn,
    body_required=False,
    responses={201: SigningSecretIssued},
)
def rotate_signing_secret(name: str) -> Response:
    check_name(name)
    issued = _store().rotate(
        name, optional_body(SigningSecretIn).overlap_s, audit=entry("signing_secret.rotate")
    )
    response = json_response(
        SigningSecretIssued(
            id=issued.id,
            service=name,
            secret=issued.secret,
            created_at=issued.created_at,
            previous_expire_at=issued.previous_expire_at,
        ),
        201,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.operation(
    "GET",
    "/services/<name>/signing-secrets",
    summary="The secrets signing this service's requests (never their values)",
    responses={200: SigningSecretList},
)
def list_signing_secrets(name: str) -> Response:
    check_name(name)
    rows = _store().list(name)
    return json_response(
        SigningSecretList(service=name, signing_secrets=[SigningSecretOut(**row) for row in rows])
    )


@bp.operation(
    "DELETE",
    f"/services/<name>/signing-secrets/{SECRET_ID}",
    summary="Stop signing with one secret at once",
    responses={204: None},
)
def revoke_signing_secret(name: str, secret_id: int) -> Response:
    check_name(name)
    if not _store().revoke(name, secret_id, audit=entry("signing_secret.revoke")):
        raise ApiError(
            404,
            "not_found",
            f"secret_id: service {name!r} has no live signing secret {secret_id}",
            "secret_id",
        )
    return Response(status=204)
