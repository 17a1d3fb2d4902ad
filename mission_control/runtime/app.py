"""The Celery application every Mission Control process shares (``celery -A mission_control.celery_app``).

Its settings live in the top-level ``celeryconfig`` module (installed with the package, so it imports
from any working directory); see that file for why each one is set. The signal handlers below refuse a
process bad settings, give Celery's loggers the JSON format, and start a worker's or a beat's own
``/metrics`` when ``MC_METRICS_PORT`` is set (:mod:`mission_control.runtime.metrics_server`).
"""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from mission_control.base.config import ConfigError, Settings
from mission_control.runtime import redis_transport

redis_transport.install()  # before any connection: a Redis restart must not end a worker
app = Celery("mission_control")
app.config_from_object("celeryconfig")
app.conf.include = ["mission_control.runtime.tasks"]


@app.on_configure.connect
def _refuse_to_start_with_bad_settings(**_: Any) -> None:
    # Sent before celeryconfig (which reads the settings) is imported, when a process of this app
    # (worker, beat, flower) first needs its configuration, i.e. at start-up: a variable it cannot use
    # stops it with one line naming the variable, not a traceback through Celery's CLI. Celery logs and
    # swallows an Exception raised by a signal handler, so the refusal leaves as SystemExit (status 1).
    try:
        Settings.from_env()
    except ConfigError as exc:
        raise SystemExit(f"Error: {exc}") from None


@signals.worker_init.connect
def _refuse_to_start_without_secrets(**_: Any) -> None:
    # Workers sign every trigger; an unsigned request must never go out (DESIGN.md invariant 7). Celery
    # logs and swallows an Exception raised by a signal handler (the worker would start anyway), so a
    # refusal leaves as SystemExit: one line on stderr, exit status 1, no traceback.
    try:
        Settings.from_env().require_signing_secret()
    except ConfigError as exc:
        raise SystemExit(f"Error: {exc}") from None


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _json_logs(logger: Any, **_: Any) -> None:
    # One JSON object per line (MC_LOG_FORMAT=text for Celery's own format), so a log pipeline can
    # select every line of a run by its run_id and job.
    from mission_control.runtime.logs import json_logs_wanted, use_json

    if json_logs_wanted(Settings.from_env()):
        use_json(logger)


@signals.worker_init.connect
def _serve_worker_metrics(**_: Any) -> None:
    # MC_METRICS_PORT: this worker's own /metrics (runs, attempt durations, firing lag), see
    # mission_control.runtime.metrics_server. In the worker's main process, where a threads or solo
    # pool counts.
    from mission_control.runtime.context import get_runtime
    from mission_control.runtime.metrics_server import serve_from_settings

    runtime = get_runtime()
    serve_from_settings("worker", runtime.engine, runtime.settings)


@signals.beat_init.connect
def _serve_beat_metrics(**_: Any) -> None:
    # MC_METRICS_PORT: this beat's own /metrics (tick durations); a beat on the same host as a worker
    # runs with a value of its own.
    from mission_control.runtime.context import get_runtime
    from mission_control.runtime.metrics_server import serve_from_settings

    runtime = get_runtime()
    serve_from_settings("beat", runtime.engine, runtime.settings)


@signals.worker_shutdown.connect
def _stop_worker_metrics(**_: Any) -> None:
    from mission_control.runtime.metrics_server import stop_serving

    stop_serving()
