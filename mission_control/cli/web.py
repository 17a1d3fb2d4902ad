"""``mission-control web``: the API and dashboard under gunicorn.

Workers are :class:`~mission_control.cli.serving.BufferingThreadWorker`, gunicorn's ``gthread`` with
whole requests read in its selector loop before a thread takes them, so slow or stalled clients cannot
hold the threads (``--read-timeout``/WEB_READ_TIMEOUT bounds how long a request may take to arrive).

Forwarded headers are the app's business, not gunicorn's: with MC_PROXY_HOPS > 0 werkzeug's
``ProxyFix`` takes the client address and scheme from that many trusted proxies'
X-Forwarded-For/-Proto (see :func:`mission_control.web.api.create_app`). gunicorn is told to trust no
peer's forwarded headers (``forwarded_allow_ips`` empty), so the two are never applied twice or
disagree; FORWARDED_ALLOW_IPS, which gunicorn would otherwise read, is ignored with a warning.

Everything else is gunicorn's to configure as usual: a ``gunicorn.conf.py`` in the working directory
(or ``-c`` in GUNICORN_CMD_ARGS) and GUNICORN_CMD_ARGS are read as the ``gunicorn`` command reads them
(see :class:`_Gunicorn`), so a platform's ``GUNICORN_CMD_ARGS="--workers 3"`` boots three workers.
"""

from __future__ import annotations

from typing import Any

import click
from gunicorn.app.base import Application, get_default_config_file

from mission_control.base.config import ConfigError, Settings
from mission_control.cli.serving import BufferingThreadWorker

# What no configuration file, GUNICORN_CMD_ARGS or --option may change: the worker class that reads whole
# requests before a thread takes them, the access log line that leaves out query strings (a token may
# ride there), and trusting no peer's forwarded headers (ProxyFix does that, counted by MC_PROXY_HOPS).
LOCKED = ("worker_class", "access_log_format", "forwarded_allow_ips")


class _Gunicorn(Application):  # type: ignore[misc]
    """Gunicorn with our settings; each worker builds its own app (and engine) after the fork.

    Configured as ``gunicorn`` itself is, in the same order, lowest first: our defaults (from the
    settings: PORT, WEB_CONCURRENCY, ...), then a configuration file (``--config``/``-c`` in
    GUNICORN_CMD_ARGS, else ``./gunicorn.conf.py``), then GUNICORN_CMD_ARGS, then this command's own
    options. The settings in :data:`LOCKED` are ours whatever those say; a different value is ignored
    with a warning.
    """

    def __init__(self, defaults: dict[str, Any], overrides: dict[str, Any]) -> None:
        self.defaults = defaults
        self.overrides = overrides
        self.ignored: list[str] = []
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.defaults.items():
            self.cfg.set(key, value)
        env_args = self.cfg.parser().parse_args(self.cfg.get_cmd_args_from_env())
        config_file = env_args.config or get_default_config_file()
        if config_file:
            self.load_config_from_file(config_file)
        for key, value in vars(env_args).items():
            if value is not None and key not in ("args", "config"):
                self.cfg.set(key.lower(), value)
        for key, value in self.overrides.items():
            self.cfg.set(key, value)
        for key in LOCKED:
            if self.cfg.settings[key].get() != self.defaults[key]:
                self.ignored.append(key)
                self.cfg.set(key, self.defaults[key])

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
    defaults = {
        "bind": f"{host}:{settings.port}",
        "workers": settings.web_concurrency,
        "worker_class": worker,
        "threads": settings.web_threads,
        "worker_connections": settings.web_max_connections,
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": "-",
        # The path without the query string (a service token may ride there), no referer, no agent.
        "access_log_format": '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms',
        # No peer is trusted for X-Forwarded-*: ProxyFix does that, counted by MC_PROXY_HOPS.
        "forwarded_allow_ips": "",
        "limit_request_field_size": 16384,
    }
    given = {
        "bind": f"{host}:{port}" if port else None,
        "workers": workers,
        "threads": threads,
        "worker_connections": max_connections,
    }
    server = _Gunicorn(defaults, {key: value for key, value in given.items() if value is not None})
    for key in server.ignored:
        click.echo(f"warning: gunicorn's {key} is Mission Control's own; ignoring the value given", err=True)
    server.run()
