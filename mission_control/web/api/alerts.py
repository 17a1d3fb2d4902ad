"""``/api/v1/alerts``: what deviated, for how long, and the patterns across incidents."""

from __future__ import annotations

from flask import Response, current_app, jsonify

from mission_control.db.alerts import (
    AlertChange,
    AlertFilter,
    AlertState,
    acknowledge,
    get_alert,
    list_alerts,
    summarize,
)
from mission_control.web.api.audit import entry
from mission_control.web.api.bodies import optional_body, query
from mission_control.web.api.errors import ApiError
from mission_control.web.api.openapi import ApiBlueprint
from mission_control.web.api.responses import keyset_page
from mission_control.web.api.schemas import (
    AcknowledgeIn,
    AlertList,
    AlertListQuery,
    AlertOut,
    AlertPattern,
    AlertSummary,
    AlertSummaryQuery,
)

bp = ApiBlueprint("alerts", __name__, tag="alerts")
ALERT_ID = "<id:alert_id>"


@bp.operation(
    "GET", "/alerts", summary="List alerts, newest first", query=AlertListQuery, responses={200: AlertList}
)
def list_all_alerts() -> Response:
    params = query(AlertListQuery)
    state = current_app.extensions["mission_control"]
    rows = list_alerts(
        state.engine,
        AlertFilter(
            state=params.state,
            kind=params.kind,
            subject=params.subject,
            since=params.since,
            until=params.until,
            before_id=int(params.cursor) if params.cursor else None,
            limit=params.limit + 1,
        ),
    )
    page, next_cursor = keyset_page(rows, params.limit, lambda row: row["id"])
    return jsonify(
        AlertList(alerts=[AlertOut.of(r) for r in page], next_cursor=next_cursor).model_dump(mode="json")
    )


@bp.operation(
    "GET", "/alerts/summary", summary="Per kind and subject: how often, how long, mean time to recovery",
    query=AlertSummaryQuery, responses={200: AlertSummary},
)  # fmt: skip
def alert_summary() -> Response:
    params = query(AlertSummaryQuery)
    state = current_app.extensions["mission_control"]
    patterns = summarize(state.engine, state.clock.now(), since=params.since)
    summary = AlertSummary(patterns=[AlertPattern.model_construct(**vars(p)) for p in patterns])
    return jsonify(summary.model_dump(mode="json"))


@bp.operation("GET", f"/alerts/{ALERT_ID}", summary="One alert", responses={200: AlertOut})
def get_one_alert(alert_id: int) -> Response:
    row = get_alert(current_app.extensions["mission_control"].engine, alert_id)
    if row is None:
        raise ApiError(404, "not_found", f"alert_id: no alert with id {alert_id}", "alert_id")
    return jsonify(AlertOut.of(row).model_dump(mode="json"))


@bp.operation(
    "POST",
    f"/alerts/{ALERT_ID}/acknowledge",
    summary="Acknowledge an unresolved alert, optionally with a comment (stops repeat notices)",
    body=AcknowledgeIn,
    body_required=False,
    responses={200: AlertOut},
    errors=(409,),
)
def acknowledge_alert(alert_id: int) -> Response:
    comment = optional_body(AcknowledgeIn).comment
    state = current_app.extensions["mission_control"]
    row = acknowledge(state.engine, alert_id, state.clock.now(), comment, audit=entry("alert.acknowledge"))
    if row is None:
        raise ApiError(404, "not_found", f"alert_id: no alert with id {alert_id}", "alert_id")
    if row["state"] == AlertState.RESOLVED:
        raise ApiError(409, "conflict", f"alert_id: alert {alert_id} is already resolved", "alert_id")
    # PagerDuty channels acknowledge their incident (once: the notice's dedup key absorbs re-acks).
    state.notify([AlertChange(row["id"], row["kind"], row["subject"], "acknowledged")])
    return jsonify(AlertOut.of(row).model_dump(mode="json"))
