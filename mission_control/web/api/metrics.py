"""``GET /metrics``: Prometheus exposition, behind a token with the ``metrics`` scope (or ``admin``).

The per-process counters of every gunicorn process of this web (multiprocess mode, see
:mod:`mission_control.runtime.metrics`) plus the fleet figures read from the database at scrape time.
"""

from __future__ import annotations

from flask import Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST

from mission_control.runtime.metrics import exposition
from mission_control.web.api.openapi import ApiBlueprint

bp = ApiBlueprint("metrics", __name__, tag="metrics")


@bp.operation("GET", "/metrics", summary="Prometheus metrics (text exposition format)", responses={200: None})
def metrics() -> Response:
    state = current_app.extensions["mission_control"]
    settings = state.settings
    return Response(
        exposition(
            state.engine,
            settings.broker_url,
            settings.prometheus_multiproc_dir,
            job_series=settings.metrics_job_series,
            grace_s=settings.misfire_grace_s,
            now=state.clock.now(),
        ),
        content_type=CONTENT_TYPE_LATEST,
    )
