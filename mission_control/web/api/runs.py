"""``/api/v1/runs``: the history of every run, newest first, with its attempts."""

from __future__ import annotations

from flask import Response, current_app, jsonify

from mission_control.jobs.history import RunFilter, get_run, list_runs
from mission_control.web.api.bodies import query
from mission_control.web.api.errors import ApiError
from mission_control.web.api.openapi import ApiBlueprint
from mission_control.web.api.responses import keyset_page
from mission_control.web.api.schemas import RunDetail, RunList, RunListQuery, RunOut
from mission_control.web.api.scopes import bound_service

bp = ApiBlueprint("runs", __name__, tag="runs")


@bp.operation("GET", "/runs", summary="List runs, newest first", query=RunListQuery, responses={200: RunList})
def list_all_runs() -> Response:
    params = query(RunListQuery)
    engine = current_app.extensions["mission_control"].engine
    rows = list_runs(
        engine,
        RunFilter(
            job=params.job,
            service=bound_service(),  # a service-bound token lists its service's runs only
            status=params.status,
            since=params.since,
            until=params.until,
            before_id=int(params.cursor) if params.cursor else None,
            limit=params.limit + 1,
        ),
    )
    page, next_cursor = keyset_page(rows, params.limit, lambda row: row["id"])
    listing = RunList(runs=[RunOut.of(row) for row in page], next_cursor=next_cursor)
    return jsonify(listing.model_dump(mode="json"))


@bp.operation(
    "GET",
    "/runs/<id:run_id>",
    summary="One run with every attempt",
    responses={200: RunDetail},
)
def get_one_run(run_id: int) -> Response:
    row = get_run(current_app.extensions["mission_control"].engine, run_id)
    if row is None:
        raise ApiError(404, "not_found", f"run_id: no run with id {run_id}", "run_id")
    return jsonify(RunDetail.of(row).model_dump(mode="json"))
