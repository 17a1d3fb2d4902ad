"""JSON log lines for every process: one object per line, with the run and job on every executor line.

Workers and beat get :class:`JsonFormatter` through Celery's logging signals
(:mod:`mission_control.runtime.app`), ``mission-control web`` through gunicorn's logger class
(:class:`mission_control.cli.web.JsonGunicornLogger`: gunicorn's error log, its access log and the
app's own loggers), so a log pipeline reads the same shape from each.

Only the fields listed here leave the process: the message, the logger, the level, the time, and
the known context keys passed in ``extra`` (:data:`CONTEXT_KEYS`: the executor's run and outcome,
web's access line: method, path, status, duration; never headers, bodies, query strings or secrets).
A ``token=`` in a message's query string and a status badge's key in a ``/badge/<key>.svg`` path
(the message's or the access line's ``path``) are masked, whoever wrote the message (gunicorn names
the request URI when it fails to handle one). ``MC_LOG_FORMAT=text`` (``Settings.log_format``) keeps
Celery's and gunicorn's human formats (``mission-control dev`` sets it).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from mission_control.base.config import Settings

CONTEXT_KEYS = (
    "run_id",
    "job",
    "attempt",
    "run_status",
    "http_status",
    "duration_ms",
    "error_class",
    "retry_in_s",
    "lease_lost",
    # web's access line (see mission_control.cli.web.JsonGunicornLogger): the path has no query string
    "method",
    "path",
    "status",
    "bytes",
    "remote",
)
# ?token=... or &token=... in a message (heartbeat URLs may carry a service token there).
QUERY_TOKEN = re.compile(r"([?&](?:access_)?token=)[^&\s\"']*", re.IGNORECASE)


# /badge/<key>.svg|json: a status badge's key is its credential (mission_control.web.api.badges).
BADGE_KEY = re.compile(r"(/badge/)[A-Za-z0-9_-]+(\.(?:svg|json)\b)")


def mask_query_tokens(text: str) -> str:
    """``text`` with the value of every ``token=`` query parameter, and every badge key in a
    ``/badge/<key>.svg`` path, replaced by ``***``."""
    return BADGE_KEY.sub(r"\1***\2", QUERY_TOKEN.sub(r"\1***", text))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_query_tokens(record.getMessage()),
            "process": record.processName,
        }
        for key in CONTEXT_KEYS:
            value = record.__dict__.get(key)
            if value is not None:
                entry[key] = mask_query_tokens(value) if key == "path" and isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = mask_query_tokens(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def json_logs_wanted(settings: Settings) -> bool:
    return settings.log_format == "json"


def use_json(logger: logging.Logger) -> None:
    """Give every handler of ``logger`` the JSON formatter."""
    formatter = JsonFormatter()
    for handler in logger.handlers:
        handler.setFormatter(formatter)


class HousekeepingAtDebug(logging.Filter):
    """Celery's own lines about the periodic housekeeping tasks, moved from INFO to DEBUG.

    Beat sends ``check_services`` every second and ``reconcile`` every five. At INFO Celery logs each
    three times (beat's "Sending due task", the worker's "Task ... received" and "... succeeded"): 4.5
    lines a second, some 400,000 a day on an idle system, and the lines about real runs drown in them.
    The housekeeping tasks say themselves, at INFO, when they did something. Attached to the three
    loggers those lines come from (see :meth:`install`); lines about any other task, and warnings and
    errors about these, pass unchanged. At DEBUG the lines are still there, marked DEBUG.
    """

    LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")
    BEAT_SENDING = "Scheduler: Sending due task"

    def __init__(self, task_names: Iterable[str]) -> None:
        super().__init__()
        self.task_names = frozenset(task_names)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or self._task_of(record) not in self.task_names:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

    def _task_of(self, record: logging.LogRecord) -> str | None:
        args = record.args
        if isinstance(args, Mapping):  # trace and strategy log a context dict: {"name": task, ...}
            name = args.get("name")
            return name if isinstance(name, str) else None
        if isinstance(args, tuple) and len(args) == 2 and str(record.msg).startswith(self.BEAT_SENDING):
            return str(args[1])  # beat: (entry name, task name)
        return None

    def install(self) -> None:
        """Attach to Celery's loggers, once per process (a second install replaces the first)."""
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            for old in [f for f in logger.filters if isinstance(f, HousekeepingAtDebug)]:
                logger.removeFilter(old)
            logger.addFilter(self)
