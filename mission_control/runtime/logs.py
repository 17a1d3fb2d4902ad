"""JSON log lines for workers and beat: one object per line, with the run and job on every executor line.

Only the fields listed here leave the process: the message, the logger, the level, the time, and
the known context keys the executor passes in ``extra`` (never headers, bodies, URLs or secrets).
``MC_LOG_FORMAT=text`` (``Settings.log_format``) keeps Celery's human format (``mission-control dev``
sets it).
"""

from __future__ import annotations

import json
import logging
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
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.processName,
        }
        for key in CONTEXT_KEYS:
            value = record.__dict__.get(key)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
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
