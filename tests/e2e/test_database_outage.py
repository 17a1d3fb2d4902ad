"""A PostgreSQL outage with real processes: web, worker and beat stay up, answer and wait, and carry on
when the database returns. The database is a private server (initdb + pg_ctl in a temporary
directory, on a spare port: tests/servers.py), so stopping it touches nothing else on the machine."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from mission_control.db import migrate
from mission_control.db.engine import make_engine
from mission_control.jobs.registry import JobRegistry
from tests.conftest import ADMIN_TOKEN, free_port, wait_until
from tests.e2e.conftest import Stack, runs_of
from tests.factories import job_spec
from tests.servers import PrivatePostgres, PrivateServerError, started_private_postgres

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    try:
        server = started_private_postgres()
    except PrivateServerError as error:
        pytest.fail(f"no private PostgreSQL: {error}")
    try:
        yield server
    finally:
        server.destroy()


def get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=5, **kwargs)


def test_a_database_outage_is_survived_and_answered_honestly(
    private_postgres, redis_server, tmp_path, target
):
    engine = make_engine(private_postgres.url)
    migrate.upgrade(engine)
    logs = tmp_path / "logs"
    logs.mkdir()
    stack = Stack(private_postgres.url, redis_server, logs, extra_env={"MC_REQUEUE_AFTER_S": "2"})
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    try:
        stack.start("web", "-m", "mission_control", "web", "--host", "127.0.0.1", "--port", str(port),
                    "--workers", "1", command=(sys.executable,))  # fmt: skip
        wait_until(lambda: _answers(web + "/readyz"), 30, "web ready")
        stack.worker()
        stack.beat()
        registry = JobRegistry(engine)
        registry.put(job_spec("tick", target={"url": f"{target.url}/ok"}, schedule={"every_s": 1}))
        registry.put(job_spec("slow", target={"url": f"{target.url}/sleep/4"}, schedule={"every_s": 86_400}))
        wait_until(lambda: len(target.requests_to("/ok")) >= 1, 20, "the job to fire")
        definition = {"steps": [{"name": "slow", "kind": "http", "url": f"{target.url}/sleep/4.5"}]}
        requests.put(web + "/api/v1/mission-definitions/slow", headers=AUTH, json=definition, timeout=5)
        requests.post(
            web + "/api/v1/missions", headers=AUTH, json={"definition": "slow", "id": "m-slow"}, timeout=5
        )
        assert requests.post(web + "/api/v1/jobs/slow/trigger", headers=AUTH, timeout=5).status_code == 202
        target.wait_for(1, "/sleep/4.5", timeout_s=20)
        target.wait_for(1, "/sleep/4", timeout_s=20)  # both in flight: their outcomes will find no database
        engine.dispose()

        private_postgres.stop()
        outage = get(web + "/api/v1/jobs", headers=AUTH)
        assert outage.status_code == 503
        assert outage.json()["error"]["code"] == "database_unavailable" and outage.headers["Retry-After"]
        beat = requests.post(
            web + "/api/v1/heartbeats/billing", headers=AUTH, json={"status": "ok"}, timeout=5
        )
        assert beat.status_code == 503  # refused, so the sender retries: never accepted and then lost
        assert get(web + "/healthz").status_code == 200
        ready = get(web + "/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] != "ok"
        fired_during = len(target.requests_to("/ok"))
        # Down for a while: beat backs off, the worker fails its task; nobody exits.
        wait_until(lambda: "registry unavailable" in (logs / "beat.log").read_text(), 20, "beat to notice")
        wait_until(
            lambda: "cannot record attempt" in (logs / "worker.log").read_text(), 20, "the worker to wait"
        )
        wait_until(
            lambda: "cannot record step" in (logs / "worker.log").read_text(), 20, "the mission to wait"
        )
        for name in ("web", "worker", "beat"):
            stack._alive(name)

        private_postgres.start()
        wait_until(lambda: _answers(web + "/readyz"), 30, "web ready again")
        assert get(web + "/api/v1/jobs", headers=AUTH).status_code == 200
        accepted = requests.post(
            web + "/api/v1/heartbeats/billing", headers=AUTH, json={"status": "ok"}, timeout=5
        )
        assert accepted.status_code == 201
        wait_until(lambda: len(target.requests_to("/ok")) >= fired_during + 3, 30, "the job to fire again")
        for name in ("web", "worker", "beat"):
            stack._alive(name)
        engine = make_engine(private_postgres.url)
        # The worker held the slow request's outcome through the outage and recorded it after.
        wait_until(
            lambda: runs_of(engine, "slow")[-1].status == "succeeded", 30, "the slow run to be recorded"
        )
        assert runs_of(engine, "slow")[-1].attempt_count == 1
        wait_until(lambda: get(web + "/api/v1/missions/m-slow", headers=AUTH).json()["status"] == "completed",
                   30, "the mission's step to be recorded")  # fmt: skip
        mission = get(web + "/api/v1/missions/m-slow", headers=AUTH).json()
        assert [a["status"] for a in mission["attempts"]] == ["succeeded"]
        wait_until(lambda: all(r.status not in ("queued", "running") for r in runs_of(engine, "tick")[:-3]),
                   30, "runs queued during the outage to finish")  # fmt: skip
    finally:
        stack.stop_all()
        engine.dispose()


def _answers(url: str) -> bool:
    try:
        return get(url).status_code == 200
    except requests.RequestException:
        return False
