"""``mission-control web --workers 2`` as the Procfile runs it: one answer on /metrics whichever process.

Before, each gunicorn process answered with its own counters, so ``mc_heartbeats_total`` flipped
between values from scrape to scrape. Now ``web`` gives its processes a private
PROMETHEUS_MULTIPROC_DIR (nothing set by the operator), every scrape adds them all up, an exited
process's counts stay counted, and the directory is gone when the master exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from mission_control.db import migrate
from mission_control.db.engine import make_engine
from tests.cli.test_web_gunicorn_config import _children
from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET, stop, wait_until
from tests.servers import free_port

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HEARTBEATS = 24
SCRAPES = 30


class Web:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path, tmp: Path) -> None:
        self.process, self.url, self.log, self.tmp = process, url, log, tmp


@pytest.fixture
def web(postgres, tmp_path: Path) -> Iterator[Web]:
    url = postgres.create("multiproc")
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    port = free_port()
    private_tmp = tmp_path / "tmp"  # where web's private directory goes (tempfile honours TMPDIR)
    private_tmp.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MC_", "GUNICORN", "PROMETHEUS"))},
        "MC_DATABASE_URL": url,
        "MC_ADMIN_TOKEN": ADMIN_TOKEN,
        "MC_SIGNING_SECRET": SIGNING_SECRET,
        "MC_BROKER_URL": "memory://",
        "TMPDIR": str(private_tmp),
    }
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mission_control", "web", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "2", "--threads", "4"],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    server = Web(process, f"http://127.0.0.1:{port}", log, private_tmp)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"web exited: {log.read_text()[-2000:]}")
            try:
                return requests.get(server.url + "/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, 30, "gunicorn to answer")
        wait_until(lambda: len(_children(process.pid)) == 2, 30, "two gunicorn workers")
        yield server
    finally:
        stop(process)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def heartbeats_counted(url: str) -> float:
    # A new connection per scrape, so either process may take it.
    text = requests.get(url + "/metrics", headers={**AUTH, "Connection": "close"}, timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "mc_heartbeats_total" and sample.labels == {"status": "ok"}:
                return sample.value
    raise AssertionError("no mc_heartbeats_total{status='ok'}")


def test_every_scrape_of_two_gunicorn_processes_counts_every_heartbeat(web: Web) -> None:
    [private] = list(web.tmp.iterdir())  # web made its own directory, nothing set by the operator
    assert private.name.startswith("mission-control-metrics-")
    for _ in range(HEARTBEATS):
        answer = requests.post(
            web.url + "/api/v1/heartbeats/multi", headers={**AUTH, "Connection": "close"}, timeout=10
        )
        assert answer.status_code in (200, 201), answer.text
    assert [heartbeats_counted(web.url) for _ in range(SCRAPES)] == [HEARTBEATS] * SCRAPES
    assert {path.name.split("_")[-1] for path in private.iterdir()} >= {
        f"{pid}.db" for pid in _children(web.process.pid)
    }  # each process wrote its own file there

    # A gunicorn process that exits (and is replaced) leaves its counts counted.
    before = _children(web.process.pid)
    os.kill(min(before), signal.SIGTERM)
    wait_until(
        lambda: len(_children(web.process.pid)) == 2 and _children(web.process.pid) != before,
        30,
        "gunicorn to replace the exited worker",
    )
    assert [heartbeats_counted(web.url) for _ in range(SCRAPES)] == [HEARTBEATS] * SCRAPES

    stop(web.process)
    assert web.process.returncode == 0
    assert not private.exists(), "the private metrics directory outlived web"
