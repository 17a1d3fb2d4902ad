"""JSON log lines: one object per line, the run's context kept, nothing else let through."""

from __future__ import annotations

import json
import logging

from mission_control.runtime.logs import JsonFormatter


def test_a_log_line_is_one_json_object_with_the_run_context_and_nothing_unlisted():
    record = logging.LogRecord(
        "mission_control.execution.executor", logging.INFO, __file__, 1, "run %s done", (7,), None
    )
    record.__dict__.update(
        run_id=7, job="billing.export", attempt=2, headers={"Authorization": "x"}, body="s"
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "run 7 done" and entry["level"] == "info"
    assert (entry["run_id"], entry["job"], entry["attempt"]) == (7, "billing.export", 2)
    assert entry["ts"].endswith("Z")
    assert "headers" not in entry and "body" not in entry
