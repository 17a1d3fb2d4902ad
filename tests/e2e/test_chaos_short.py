"""The chaos run's short form (bench/chaos/chaos.py, about 90 s): kill -9 of workers, beats and the web
app, a Redis and a PostgreSQL restart under load, then nothing may be lost, duplicated or stuck, every
expected alert must have opened (and resolved) and no process may have exited by itself. Run as a
subprocess, as an operator runs it, so its processes, private PostgreSQL and Redis are its own and its
one JSON line is what is judged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import postgres_bin

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]


def test_the_short_chaos_run_loses_duplicates_and_strands_nothing(tmp_path: Path) -> None:
    if postgres_bin() is None:
        pytest.fail("no PostgreSQL server binaries (install the test extra, which has pgserver)")
    logs = tmp_path / "logs"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "chaos" / "chaos.py"), "--keep-logs", str(logs)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"no figures; exit {done.returncode}\n{done.stderr[-4000:]}"
    figures = json.loads(lines[-1])
    print(lines[-1])  # the figures, for `pytest -rP`
    keys = ("lost", "duplicated", "stuck", "heartbeats_missing", "job_failed_missing", "service_down_missing",
            "service_down_unresolved", "unexpected_exits")  # fmt: skip
    summary = {k: figures.get(k) for k in keys}
    assert figures["ok"] and done.returncode == 0, f"{summary}\n{lines[-1]}\n{done.stderr[-3000:]}"
    assert figures["slots_due"] > 1000 and figures["heartbeats_accepted"] > 500
    assert figures["events"]["redis_restarts"] == 1 and figures["events"]["postgres_restarts"] == 1
