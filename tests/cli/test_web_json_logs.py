"""``mission-control web`` under MC_LOG_FORMAT=json: every line it writes is a JSON object.

Before, workers and beat wrote JSON while gunicorn's error log, its access log and the app's own
loggers stayed text. Now all three come out through the same formatter: the access line carries the
method, the path without its query string, the status and the duration, and a heartbeat token in
``?token=`` appears nowhere.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET, stop, wait_until
from tests.servers import free_port

pytestmark = pytest.mark.slow

SECRET = "secret-token-in-the-query-0123456789"


def test_gunicorn_and_app_lines_are_json_and_the_access_line_has_no_query(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MC_", "GUNICORN", "FORWARDED"))},
        "MC_DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "MC_ADMIN_TOKEN": ADMIN_TOKEN,
        "MC_SIGNING_SECRET": SIGNING_SECRET,
        # A broker nobody listens on: /readyz then logs a warning through the app's own logger.
        "MC_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
        "MC_LOG_FORMAT": "json",
    }
    subprocess.run([sys.executable, "-m", "mission_control", "db", "upgrade"], env=env, check=True,
                   capture_output=True, timeout=60)  # fmt: skip
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mission_control", "web", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert process.poll() is None, log.read_text()[-2000:]
            try:
                return requests.get(url + "/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(up, 30, "gunicorn to answer")
        beat = requests.post(f"{url}/api/v1/heartbeats/billing?token={SECRET}&status=ok", timeout=10)
        assert beat.status_code == 401
        assert requests.get(url + "/readyz", timeout=10).status_code == 503
        wait_until(lambda: "readiness: broker unreachable" in log.read_text(), 10, "the app's warning")
        wait_until(lambda: '"/readyz"' in log.read_text(), 10, "the access line of /readyz")
    finally:
        stop(process)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    text = log.read_text()
    assert SECRET not in text
    lines = [json.loads(line) for line in text.splitlines()]  # every line, or this raises
    assert all(
        isinstance(line, dict) and {"ts", "level", "logger", "message"} <= line.keys() for line in lines
    )
    loggers = {line["logger"] for line in lines}
    assert {"gunicorn.error", "gunicorn.access", "mission_control.web.api.health"} <= loggers, loggers
    [access] = [
        line for line in lines if line["logger"] == "gunicorn.access" and "heartbeats" in line["message"]
    ]
    assert access["method"] == "POST"
    assert access["path"] == "/api/v1/heartbeats/billing"
    assert access["status"] == 401
    assert isinstance(access["duration_ms"], float) and access["duration_ms"] >= 0
