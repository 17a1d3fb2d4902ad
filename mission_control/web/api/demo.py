"""``POST /demo/echo``: a target for ``mission-control dev``'s demo job, so a first run has somewhere to go.

It answers only when ``MC_DEMO_ECHO=1`` (``dev`` sets it) and only to requests signed with the signing
secret, so it also shows a receiver checking ``X-Mission-Control-Signature``. Each signed call also
records a heartbeat of the service ``demo`` (every 10 s, 10 s grace), so a newcomer's dashboard shows
a service beating live; stop the worker and it goes late, then down, with an alert.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from mission_control.monitoring.services import ServiceConfig
from mission_control.outbound.signing import SIGNATURE_HEADER, verify

bp = Blueprint("demo", __name__)
DEMO_SERVICE = "demo"


@bp.post("/demo/echo")
def echo() -> Response:
    state = current_app.extensions["mission_control"]
    body = request.get_data()
    signed = verify(
        state.settings.signing_secret or "",
        request.headers.get(SIGNATURE_HEADER, ""),
        method=request.method,
        url=request.url,
        idempotency_key=request.headers.get("Idempotency-Key", ""),
        body=body,
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
    if signed:
        result = state.services.record_heartbeat(
            DEMO_SERVICE, status="ok", message=None, truncated=False, register=ServiceConfig(10, 10)
        )
        state.notify(result.changes)
    response.status_code = 200 if signed else 401
    return response
