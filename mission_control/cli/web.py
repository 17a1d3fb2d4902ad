"""``mission-control web``: the API and dashboard under gunicorn.

Workers are :class:`~mission_control.cli.serving.BufferingThreadWorker`, gunicorn's ``gthread`` with
whole requests read in its selector loop before a thread takes them, so slow or stalled clients cannot
hold the threads (``--read-timeout``/WEB_READ_TIMEOUT bounds how long a request may take to arrive).

Forwarded headers are the app's business, not gunicorn's: with MC_PROXY_HOPS > 0 werkzeug's
``ProxyFix`` takes the client address and scheme from that many trusted proxies'
X-Forwarded-For/-Proto (see :func:`mission_control.web.api.create_app`). gunicorn is told to trust no
peer's forwarded headers (``forwarded_allow_ips`` empty), so the two are never applied twice or
disagree; FORWARDED_ALLOW_IPS, which gunicorn would otherwise read, is ignored with a warning.
"""

from __future__ import annotations

from typing import Any

import click
from gunicorn.app.base import BaseApplication

from mission_control.base.config import ConfigError, Settings
from mission_control.cli.serving import BufferingThreadWorker


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """Gunicorn with our settings; each worker builds its own app (and engine) after the fork."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from mission_control.web.api import create_app

        return create_app()


@click.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", type=int, default=None, help="Default: $PORT, else 8001.")
@click.option("--workers", type=int, default=None, help="Processes; default $WEB_CONCURRENCY or 2.")
@click.option(
    "--threads",
    type=int,
    default=None,
    help="Threads per process (requests wait on the database, not the CPU); default $WEB_THREADS or 16.",
)
@click.option(
    "--read-timeout",
    type=click.FloatRange(min=0.5, max=300),
    default=None,
    help="Seconds a request head may take to arrive, and its body after it; then the connection is "
    "closed. Default $WEB_READ_TIMEOUT or 10.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1, max=100_000),
    default=None,
    help="Open connections per process (gunicorn's worker_connections); at the limit the one reading "
    "longest is closed for a newcomer. Default $WEB_MAX_CONNECTIONS or 1000.",
)
def web(
    host: str,
    port: int | None,
    workers: int | None,
    threads: int | None,
    read_timeout: float | None,
    max_connections: int | None,
) -> None:
    """Serve the HTTP API (refuses to start without MC_ADMIN_TOKEN and MC_SIGNING_SECRET).

    An option given here wins over its variable; every variable is read through the settings, so a
    value that cannot be used stops the command at once with one line naming it.
    """
    try:
        settings = Settings.from_env()
        settings.require_secrets()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if settings.forwarded_allow_ips:
        click.echo(
            "warning: FORWARDED_ALLOW_IPS is ignored; set MC_PROXY_HOPS to the number of trusted proxies "
            "in front of mission-control web",
            err=True,
        )
    worker = BufferingThreadWorker.configured(
        read_timeout_s=read_timeout or settings.web_read_timeout_s,
        max_body_bytes=settings.max_request_bytes,
    )
    options = {
        "bind": f"{host}:{port or settings.port}",
        "workers": workers or settings.web_concurrency,
        "worker_class": worker,
        "threads": threads or settings.web_threads,
        "worker_connections": max_connections or settings.web_max_connections,
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": "-",
        # The path without the query string (a service token may ride there), no referer, no agent.
        "access_log_format": '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms',
        # No peer is trusted for X-Forwarded-*: ProxyFix does that, counted by MC_PROXY_HOPS.
        "forwarded_allow_ips": "",
        "limit_request_field_size": 16384,
    }
    _Gunicorn(options).run()
