"""``POST /demo/echo``: a target for ``mission-control dev``'s demo job, so a first run has somewhere to go.

It answers only when ``MC_DEMO_ECHO=1`` (``dev`` sets it) and only to requests signed with the signing
secret, so it also shows a receiver checking ``X-Mission-Control-Signature``.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from mission_control.signing import SIGNATURE_HEADER, verify

bp = Blueprint("demo", __name__)


@bp.post("/demo/echo")
def echo() -> Response:
    state = current_app.extensions["mission_control"]
    body = request.get_data()
    signed = verify(
        state.settings.signing_secret or "",
        request.headers.get(SIGNATURE_HEADER, ""),
        body,
        now=int(state.clock.now().timestamp()),
    )
    response = jsonify(
        {
            "signature_valid": signed,
            "job": request.headers.get("X-Mission-Control-Job"),
            "run": request.headers.get("X-Mission-Control-Run"),
            "attempt": request.headers.get("X-Mission-Control-Attempt"),
            "received_at": state.clock.now().isoformat(),
        }
    )
    response.status_code = 200 if signed else 401
    return response
