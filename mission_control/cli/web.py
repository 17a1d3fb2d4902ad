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

Metrics: each gunicorn process counts its own heartbeats, and any of them may answer a scrape, so the
processes write their counters to one directory (prometheus-client's multiprocess mode) and ``/metrics``
adds them all up. With PROMETHEUS_MULTIPROC_DIR unset (the Procfile sets nothing), this command makes a
private directory before gunicorn forks the processes that import prometheus-client (which reads the
variable at import), and removes it when the master exits; PROMETHEUS_MULTIPROC_DIR set is used as it
is and left in place. Either way gunicorn's ``child_exit`` hook (after any the configuration sets)
tells prometheus-client that the process is gone (``mark_process_dead``).

Logs: under MC_LOG_FORMAT=json (the default) gunicorn's error log, its access log and the app's own
loggers write one JSON object per line (:class:`JsonGunicornLogger`, the formatter workers and beat use);
the access line carries the method, the path without its query string, the status and the duration.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import click
from gunicorn.app.base import Application, get_default_config_file
from gunicorn.glogging import Logger

from mission_control.base.config import ConfigError, Settings, export_variable
from mission_control.cli.serving import BufferingThreadWorker
from mission_control.runtime.logs import JsonFormatter

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

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

        self._chain_child_exit()

    def _chain_child_exit(self) -> None:
        """After the configured ``child_exit`` hook, if any, forget the exited process's live gauges in
        the multiprocess directory (its counters stay: totals never go down)."""
        configured: Callable[[Any, Any], None] = self.cfg.child_exit

        def child_exit(server: Any, worker: Any) -> None:
            configured(server, worker)
            directory = Settings.from_env().prometheus_multiproc_dir  # the private one, if made
            if directory:
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(worker.pid, directory)

        self.cfg.set("child_exit", child_exit)

    def load(self) -> Any:
        from mission_control.web.api import create_app

        return create_app()


class JsonGunicornLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger writing JSON lines (MC_LOG_FORMAT=json): its error log, its access log (method,
    path without the query string, status, duration; ``access_log_format`` is not used) and, through a
    handler on the root logger, the app's own loggers and Python's warnings."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = JsonFormatter()
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(formatter)
        root = logging.getLogger()
        if not any(getattr(handler, "mission_control_json", False) for handler in root.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(formatter)
            handler.mission_control_json = True  # type: ignore[attr-defined]
            root.addHandler(handler)
        logging.captureWarnings(True)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not (
            self.cfg.accesslog
            or self.cfg.logconfig
            or self.cfg.logconfig_dict
            or self.cfg.logconfig_json
            or (self.cfg.syslog and not self.cfg.disable_redirect_access_to_syslog)
        ):
            return
        method = str(req.method)
        path = str(req.path)  # gunicorn's path: the query string is not part of it
        status = resp.status_code
        self.access_log.info(
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round(request_time.total_seconds() * 1000, 3),
                "bytes": getattr(resp, "sent", None),
                "remote": environ.get("REMOTE_ADDR"),
            },
        )


def _warn(message: str, json_logs: bool) -> None:
    """A start-up warning on stderr: a JSON line under MC_LOG_FORMAT=json, else plain text."""
    if json_logs:
        record = logging.LogRecord(__name__, logging.WARNING, __file__, 0, message, None, None)
        click.echo(JsonFormatter().format(record), err=True)
    else:
        click.echo(f"warning: {message}", err=True)


def _private_multiproc_dir(settings: Settings) -> str | None:
    """Make a private PROMETHEUS_MULTIPROC_DIR unless one is set; the path made (to remove), or None.

    Must run before anything imports prometheus-client in this process: it reads the variable at
    import, and the gunicorn processes forked from here inherit what this process imported. The
    command imports nothing that imports it; where something already has (a test calling the command
    in its own process), a directory would change nothing, and none is made.
    """
    if settings.prometheus_multiproc_dir or "prometheus_client" in sys.modules:
        return None
    directory = tempfile.mkdtemp(prefix="mission-control-metrics-")
    export_variable(MULTIPROC_VARIABLE, directory)
    return directory


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
    json_logs = settings.log_format == "json"
    if settings.forwarded_allow_ips:
        _warn(
            "FORWARDED_ALLOW_IPS is ignored; set MC_PROXY_HOPS to the number of trusted proxies "
            "in front of mission-control web",
            json_logs,
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
    if json_logs:
        defaults["logger_class"] = JsonGunicornLogger
    given = {
        "bind": f"{host}:{port}" if port else None,
        "workers": workers,
        "threads": threads,
        "worker_connections": max_connections,
    }
    private_dir = _private_multiproc_dir(settings)
    server = _Gunicorn(defaults, {key: value for key, value in given.items() if value is not None})
    for key in server.ignored:
        _warn(f"gunicorn's {key} is Mission Control's own; ignoring the value given", json_logs)
    master = os.getpid()
    try:
        server.run()
    finally:
        # gunicorn's worker processes leave through here too (SystemExit from the fork): only the
        # master that made the directory removes it.
        if private_dir is not None and os.getpid() == master:
            export_variable(MULTIPROC_VARIABLE, None)
            shutil.rmtree(private_dir, ignore_errors=True)
