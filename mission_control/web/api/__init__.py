"""The HTTP side of Mission Control: a Flask app factory with one blueprint per resource."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, jsonify, request
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from mission_control.base.clock import SYSTEM_CLOCK, Clock
from mission_control.base.config import Settings
from mission_control.db import migrate
from mission_control.db.alerts import AlertChange
from mission_control.db.api_tokens import ApiTokenStore
from mission_control.db.engine import engine_for
from mission_control.jobs.registry import JobRegistry
from mission_control.missions.store import MissionStore
from mission_control.monitoring.services import ServiceRegistry
from mission_control.runtime import notify as dispatch
from mission_control.web.api import (
    alerts,
    audit,
    badges,
    channels,
    demo,
    docs,
    health,
    heartbeats,
    jobs,
    metrics,
    missions,
    runs,
    services,
    signing_secrets,
    silences,
    tokens,
)
from mission_control.web.api.auth import (
    HEARTBEAT_ENDPOINTS,
    authenticate,
    deferred_heartbeat_credential,
    enforce,
    token_digest,
)
from mission_control.web.api.errors import ApiError, register_error_handlers
from mission_control.web.api.limits import TokenBuckets
from mission_control.web.api.openapi import ApiBlueprint, openapi_document_of
from mission_control.web.api.scopes import RULES, owner_lookup

API_PREFIX = "/api/v1"


@dataclass(frozen=True)
class AppState:
    """What request handlers share, kept in ``app.extensions["mission_control"]``."""

    settings: Settings
    engine: Engine
    clock: Clock
    registry: JobRegistry
    admin_digest: bytes
    schema_head: str | None
    enqueue: Callable[[Sequence[int]], object]
    services: ServiceRegistry
    notify: Callable[[Sequence[AlertChange]], object]
    deliver: Callable[[Sequence[Sequence[int]]], object]
    missions: MissionStore
    enqueue_missions: Callable[[Sequence[str]], object]
    auth_failures: TokenBuckets
    heartbeat_limits: TokenBuckets
    tokens: ApiTokenStore


meta = ApiBlueprint("meta", __name__, tag="meta")


@meta.operation("GET", "/openapi.json", summary="This document", responses={200: None}, public=True)
def openapi_document() -> Response:
    return jsonify(openapi_document_of(current_app))


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    engine: Engine | None = None,
    enqueue: Callable[[Sequence[int]], object] | None = None,
    notify: Callable[[Sequence[AlertChange]], object] | None = None,
    deliver: Callable[[Sequence[Sequence[int]]], object] | None = None,
    enqueue_missions: Callable[[Sequence[str]], object] | None = None,
) -> Flask:
    """Build the web app; refuses to build one without an admin token and a signing secret.

    ``enqueue`` sends run ids to the workers, ``notify`` alert changes to the notification channels
    and ``deliver`` groups of one channel's notice ids to delivery; by default all three through the
    Celery app's broker.
    """
    settings = settings or Settings.from_env()
    settings.require_secrets()
    assert settings.admin_token is not None
    clock = clock or SYSTEM_CLOCK
    # No pool pre-ping (a round trip per request): a request that finds its connection dead answers
    # 503 and SQLAlchemy then invalidates the whole pool, so one request per process sees a restart.
    engine = engine or engine_for(settings, pool_pre_ping=False)

    app = Flask("mission_control")
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        MC_MAX_TARGET_BODY_BYTES=settings.max_target_body_bytes,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.proxy_hops > 0:
        # Trust the last MC_PROXY_HOPS entries of X-Forwarded-For and -Proto (our own proxies'):
        # request.remote_addr is then the real client, which the failed-authentication budget keys on.
        # Not X-Forwarded-Host: a proxy that does not set it would pass on the client's own value.
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.extensions["mission_control"] = AppState(
        settings=settings,
        engine=engine,
        clock=clock,
        registry=JobRegistry(engine, clock),
        admin_digest=token_digest(settings.admin_token),
        schema_head=migrate.head_revision(),
        enqueue=enqueue or _celery_enqueue,
        services=ServiceRegistry(engine, clock, log_size=settings.heartbeat_log_size),
        notify=notify or dispatch.notify,
        deliver=deliver or dispatch.deliver,
        missions=MissionStore(engine, clock, requeue_after_s=settings.requeue_after_s),
        enqueue_missions=enqueue_missions or _celery_enqueue_missions,
        auth_failures=TokenBuckets(
            rate=settings.auth_failures_per_min / 60.0, burst=settings.auth_failures_per_min
        ),
        heartbeat_limits=TokenBuckets(
            rate=settings.heartbeats_per_s, burst=max(10.0, 10 * settings.heartbeats_per_s)
        ),
        tokens=ApiTokenStore(engine, clock),
    )
    register_error_handlers(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(meta, url_prefix=API_PREFIX)
    app.register_blueprint(docs.bp)
    app.register_blueprint(jobs.bp, url_prefix=API_PREFIX)
    app.register_blueprint(runs.bp, url_prefix=API_PREFIX)
    app.register_blueprint(heartbeats.bp, url_prefix=API_PREFIX)
    app.register_blueprint(services.bp, url_prefix=API_PREFIX)
    app.register_blueprint(signing_secrets.bp, url_prefix=API_PREFIX)
    app.register_blueprint(alerts.bp, url_prefix=API_PREFIX)
    app.register_blueprint(channels.bp, url_prefix=API_PREFIX)
    app.register_blueprint(silences.bp, url_prefix=API_PREFIX)
    app.register_blueprint(missions.bp, url_prefix=API_PREFIX)
    app.register_blueprint(tokens.bp, url_prefix=API_PREFIX)
    app.register_blueprint(audit.bp, url_prefix=API_PREFIX)
    app.register_blueprint(badges.bp, url_prefix=API_PREFIX)
    app.register_blueprint(badges.images)  # /badge/<key>.svg: public, see web/api/badges.py
    if settings.demo_echo:
        app.register_blueprint(demo.bp)
    from mission_control.web import dashboard
    from mission_control.web.dashboard import session as dashboard_session

    dashboard_session.configure(
        app,
        engine,
        settings.session_secret,
        settings.admin_token,
        insecure_cookie=settings.dashboard_insecure_cookie,
    )
    app.register_blueprint(dashboard.bp)

    owner_of = owner_lookup(engine)

    @app.before_request
    def _authorize() -> None:
        """Every API call (and /metrics): authenticate, then check the endpoint's rule (scopes.RULES).

        An unknown path or method under /api/v1 still needs a valid token before it learns it is a 404.
        """
        endpoint = request.endpoint
        if not (request.path.startswith(API_PREFIX + "/") or endpoint == "metrics.metrics"):
            return
        rule = RULES.get(endpoint) if endpoint is not None else None
        if rule is not None and rule.boundary == "public":
            return
        query_token = request.args.get("token") if endpoint and endpoint.startswith("heartbeats.") else None
        if endpoint in HEARTBEAT_ENDPOINTS:
            # An API token's heartbeat is checked by the heartbeat's own statement (the hot path);
            # the view sets g.principal, or authorizes in full to say why not.
            g.heartbeat_credential = deferred_heartbeat_credential(query_token)
            if g.heartbeat_credential is not None:
                return
        g.principal = authenticate(query_token=query_token)
        if endpoint is None:
            return  # routing answers 404 or 405
        if rule is None:  # a route nobody declared: refuse rather than guess (a test forbids this)
            raise ApiError(403, "forbidden", f"scope: {endpoint} declares no scope", "scope")
        enforce(endpoint, g.principal, owner_of)

    return app


def _celery_enqueue(run_ids: Sequence[int]) -> int:
    from mission_control.runtime.app import app as celery_app
    from mission_control.scheduling.queueing import enqueue_runs

    return enqueue_runs(celery_app, run_ids)


def _celery_enqueue_missions(mission_ids: Sequence[str]) -> int:
    from mission_control.runtime.app import app as celery_app
    from mission_control.scheduling.queueing import enqueue_missions

    return enqueue_missions(celery_app, mission_ids)


__all__ = ["AppState", "create_app"]
