"""JSON log lines for workers and beat: one object per line, with the run and job on every executor line.

Only the fields listed here leave the process: the message, the logger, the level, the time, and
the known context keys the executor passes in ``extra`` (never headers, bodies, URLs or secrets).
``MC_LOG_FORMAT=text`` (``Settings.log_format``) keeps Celery's human format (``mission-control dev``
sets it).
"""

from __future__ import annotations

import json
import logging
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
