"""A worker's or a beat's own ``/metrics``, on ``MC_METRICS_PORT``, behind the same token as web's.

Web's ``/metrics`` shows the fleet as the database has it, but the counters and histograms of a worker
(runs by final status, attempt durations, firing lag) and of a beat (tick durations) live in those
processes, which serve no HTTP. With ``MC_METRICS_PORT`` set, a worker (Celery's ``worker_init``) and a
beat (``beat_init``) each start one: prometheus-client's own WSGI app (content negotiation, gzip,
``name[]`` filters) on a small threading server at ``MC_METRICS_ADDRESS`` (default ``0.0.0.0``),
wired in :mod:`mission_control.runtime.app`. A worker and a beat on one host need different ports: run
the beat with its own ``MC_METRICS_PORT`` (the README shows one way).

Security is on by default, and the rule is web's: ``Authorization: Bearer`` with ``MC_ADMIN_TOKEN`` or
a live, unexpired API token bound to no service whose scopes include ``metrics`` or ``admin``, looked
up in ``api_tokens`` on every scrape (:meth:`~mission_control.db.api_tokens.ApiTokenStore.lookup`, so a
revoked token is refused at once; its ``last_used_at`` is touched as web touches it). No credential or
an unknown one answers 401, a token lacking the scope or bound to a service 403.

A worker's pool must be threads or solo (the Procfile's ``-P threads``): prefork children count in
their own processes, which this server, in the parent, cannot see unless every one writes to a
``PROMETHEUS_MULTIPROC_DIR``, whose files it then adds up. A port that cannot be bound is logged as an
error and the process goes on without the endpoint: scheduling and running jobs matter more than their
figures, and Prometheus' ``up`` shows the scrape down.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from mission_control.base.clock import SYSTEM_CLOCK, Clock
from mission_control.base.config import Settings
from mission_control.db.api_tokens import TOUCH_EVERY_S, ApiTokenStore
from mission_control.runtime.metrics import process_registry

log = logging.getLogger(__name__)

METRICS_SCOPES = ("metrics", "admin")
StartResponse = Callable[..., Any]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class MetricsAccess:
    """Who may read a process's metrics: web's rule for ``/metrics`` (see the module's docstring)."""

    def __init__(self, tokens: ApiTokenStore, admin_token: str | None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.tokens = tokens
        self.admin_digest = _digest(admin_token) if admin_token else None
        self.clock = clock

    def check(self, authorization: str) -> tuple[int, str] | None:
        """None if the ``Authorization`` header lets the scrape in, else (HTTP status, reason)."""
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return 401, "a token is required: Authorization: Bearer <a token with the metrics scope>"
        if self.admin_digest is not None and hmac.compare_digest(_digest(token), self.admin_digest):
            return None
        row = self.tokens.lookup(token)
        now: datetime = self.clock.now()
        if row is None or (row["expires_at"] is not None and row["expires_at"] <= now):
            return 401, "a valid token is required"
        if not any(scope in row["scopes"] for scope in METRICS_SCOPES):
            return 403, f"this token ({row['name']}) lacks the scope this needs: metrics or admin"
        if row["service"] is not None:
            return 403, f"this token is bound to {row['service']!r}; this needs an unbound token"
        last = row["last_used_at"]
        if last is None or (now - last).total_seconds() >= TOUCH_EVERY_S:
            self.tokens.touch(row["id"], now)
        return None


def metrics_app(access: MetricsAccess, multiproc_dir: str | None = None) -> Callable[..., Iterable[bytes]]:
    """The WSGI app: ``/metrics`` behind :class:`MetricsAccess`, prometheus-client's app behind that."""
    exposition = make_wsgi_app(process_registry(multiproc_dir))

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            return _answer(start_response, 404, "Not Found", "not found: this endpoint serves /metrics")
        try:
            refusal = access.check(environ.get("HTTP_AUTHORIZATION", ""))
        except SQLAlchemyError as exc:
            log.warning("metrics: tokens cannot be checked (%s)", type(exc).__name__)
            return _answer(start_response, 503, "Service Unavailable", "the token store is unavailable")
        if refusal is not None:
            status, reason = refusal
            phrase = "Unauthorized" if status == 401 else "Forbidden"
            return _answer(start_response, status, phrase, reason)
        return exposition(environ, start_response)  # type: ignore[no-any-return]

    return app


def _answer(start_response: StartResponse, status: int, phrase: str, text: str) -> list[bytes]:
    headers = [("Content-Type", "text/plain; charset=utf-8")]
    if status == 401:
        headers.append(("WWW-Authenticate", 'Bearer realm="mission-control"'))
    start_response(f"{status} {phrase}", headers)
    return [text.encode() + b"\n"]


class _QuietHandler(WSGIRequestHandler):
    """No access line per scrape on stderr (Prometheus scrapes every few seconds)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetricsServer:
    """The endpoint of one process: a threading WSGI server on a daemon thread."""

    def __init__(self, app: Callable[..., Iterable[bytes]], address: str, port: int) -> None:
        self.server = make_server(
            address, port, app, server_class=ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, name="metrics", daemon=True)

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


_serving: MetricsServer | None = None
_serving_lock = threading.Lock()


def serve_from_settings(role: str, engine: Engine, settings: Settings | None = None) -> MetricsServer | None:
    """Start this process's endpoint if ``MC_METRICS_PORT`` is set (once per process); ``role`` (worker,
    beat) names it in the log. None when it is off or its port cannot be bound."""
    global _serving
    settings = settings or Settings.from_env()
    if settings.metrics_port is None:
        return None
    with _serving_lock:
        if _serving is not None:
            return _serving
        access = MetricsAccess(ApiTokenStore(engine, SYSTEM_CLOCK), settings.admin_token)
        app = metrics_app(access, settings.prometheus_multiproc_dir)
        try:
            _serving = MetricsServer(app, settings.metrics_address, settings.metrics_port).start()
        except OSError as exc:
            log.error(
                "%s metrics: cannot listen on %s:%s (%s); running without the endpoint",
                role,
                settings.metrics_address,
                settings.metrics_port,
                exc.strerror or exc,
            )
            return None
        log.info("%s metrics on http://%s:%s/metrics", role, settings.metrics_address, _serving.port)
        return _serving


def stop_serving() -> None:
    """Stop this process's endpoint, if it runs (a worker's shutdown)."""
    global _serving
    with _serving_lock:
        if _serving is not None:
            _serving.stop()
            _serving = None
