"""Probes: ``/healthz`` says the process serves; ``/readyz`` says it can do its job right now."""

from __future__ import annotations

import logging

from flask import Response, current_app, jsonify
from kombu import Connection
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from mission_control.db import migrate
from mission_control.web.api.openapi import ApiBlueprint
from mission_control.web.api.schemas import Health

bp = ApiBlueprint("health", __name__, tag="health")
log = logging.getLogger(__name__)


@bp.operation(
    "GET", "/healthz", summary="Liveness: the process answers", responses={200: Health}, public=True
)
def healthz() -> Response:
    return jsonify(Health(status="ok").model_dump())


@bp.operation(
    "GET",
    "/readyz",
    summary="Readiness: the database answers, its schema is current, and the broker answers",
    responses={200: Health},
    public=True,
)
def readyz() -> Response:
    state = current_app.extensions["mission_control"]
    checks: dict[str, str] = {}
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = migrate.current_revision(state.engine)
        checks["database"] = (
            "ok"
            if current == state.schema_head
            else (
                f"schema at {current or 'nothing'}, expected {state.schema_head}: "
                "run `mission-control db upgrade`"
            )
        )
    except SQLAlchemyError as exc:
        log.warning("readiness: database unreachable (%s)", type(exc).__name__)
        checks["database"] = "unreachable"
    checks["broker"] = _broker_check(state.settings.broker_url)
    ok = all(value == "ok" for value in checks.values())
    response = jsonify(Health(status="ok" if ok else "unavailable", checks=checks).model_dump())
    response.status_code = 200 if ok else 503
    return response


def _broker_check(url: str) -> str:
    """Whether a trigger could be enqueued now; a web node that cannot should leave the load balancer."""
    if url.startswith("sqla+"):  # the serverless dev broker, a SQLite file beside the registry
        url, transport = url.removeprefix("sqla+"), "mission_control.runtime.dev_transport:Transport"
    else:
        transport = None
    try:
        with Connection(url, transport=transport, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # any failure to connect means not ready, whatever the transport raises
        log.warning("readiness: broker unreachable (%s)", type(exc).__name__)
        return "unreachable"
    return "ok"
