"""``mission-control web``: the API and dashboard under gunicorn."""

from __future__ import annotations

import os
from typing import Any

import click
from gunicorn.app.base import BaseApplication

from mission_control.config import ConfigError, Settings


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """Gunicorn with our settings; each worker builds its own app (and engine) after the fork."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from mission_control.api import create_app

        return create_app()


@click.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", type=int, default=None, help="Default: $PORT, else 8001.")
@click.option("--workers", type=int, default=None, help="Processes; default $WEB_CONCURRENCY or 2.")
@click.option(
    "--threads",
    type=int,
    default=lambda: int(os.environ.get("WEB_THREADS", "16")),
    show_default="$WEB_THREADS or 16",
    help="Threads per process (requests wait on the database, not the CPU).",
)
def web(host: str, port: int | None, workers: int | None, threads: int) -> None:
    """Serve the HTTP API (refuses to start without MC_ADMIN_TOKEN and MC_SIGNING_SECRET)."""
    try:
        settings = Settings.from_env()
        settings.require_secrets()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    options = {
        "bind": f"{host}:{port or settings.port}",
        "workers": workers or int(os.environ.get("WEB_CONCURRENCY", "2")),
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": "-",
        # The path without the query string (a service token may ride there), no referer, no agent.
        "access_log_format": '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms',
        "forwarded_allow_ips": os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        "limit_request_field_size": 16384,
    }
    _Gunicorn(options).run()
