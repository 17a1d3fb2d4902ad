"""Missions with real processes: web, worker and beat on PostgreSQL and Redis, HTTP steps to a real
target, and every process killed -9 and restarted while missions wait, sleep and retry."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any

import pytest
import requests

from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET, free_port, wait_until

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Web:
    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.stack.start(
            "web", "-m", "mission_control", "web", "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", "1", command=(sys.executable,),
        )  # fmt: skip

        def ready() -> bool:
            self.stack._alive("web")
            try:
                return requests.get(self.url + "/readyz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, 30, "web to answer /readyz")

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, self.url + "/api/v1" + path, headers=AUTH, timeout=10, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    def mission(self, mission_id: str) -> dict[str, Any]:
        return self.call("GET", f"/missions/{mission_id}")

    def wait_status(self, mission_id: str, status: str, timeout_s: float = 30) -> dict[str, Any]:
        wait_until(lambda: self.mission(mission_id)["status"] == status, timeout_s, f"{mission_id} {status}")
        return self.mission(mission_id)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_approval_flow_with_real_processes(stack: Any, target: Any) -> None:
    web = Web(stack)
    web.start()
    stack.worker()
    stack.beat()
    web.call("PUT", "/mission-definitions/approval", json={
        "input_schema": {"type": "object", "required": ["email"]},
        "steps": [
            {"name": "send-email", "kind": "http", "url": f"{target.url}/echo",
             "body": {"to": "{{ input.email }}"}},
            {"name": "receive-approval", "kind": "wait_for",
             "schema": {"type": "object", "required": ["approved"]}, "timeout_s": 600},
            {"name": "cool-off", "kind": "sleep", "seconds": 2},
            {"name": "archive", "kind": "http", "url": f"{target.url}/ok",
             "body": {"approved": "{{ steps.receive-approval.output.approved }}"}},
        ],
    })  # fmt: skip
    web.call(
        "POST",
        "/missions",
        json={"definition": "approval", "input": {"email": "a@example.com"}, "id": "m-e2e"},
    )
    waiting = web.wait_status("m-e2e", "waiting", 20)
    assert waiting["waiting"]["kind"] == "signal"
    [sent] = target.requests_to("/echo")
    assert sent.json() == {"to": "a@example.com"}
    assert sent.headers["Idempotency-Key"] == "mission:m-e2e:send-email"
    assert sent.headers["X-Mission-Control-Mission"] == "m-e2e"
    assert sent.signed_by(SIGNING_SECRET, now=time.time())
    assert waiting["steps"][0]["output"]["method"] == "POST"  # the echoed JSON became the output

    web.call("POST", "/missions/m-e2e/signals/receive-approval", json={"approved": True})
    done = web.wait_status("m-e2e", "completed", 20)
    [archived] = target.requests_to("/ok")
    assert archived.json() == {"approved": True}
    sleep = next(t for t in done["timers"] if t["kind"] == "sleep")
    assert 0 <= (at(sleep["fired_at"]) - at(sleep["due_at"])).total_seconds() < 1.5


def test_every_process_killed_and_restarted_mid_flow_resumes_each_mission(stack: Any, target: Any) -> None:
    stack.extra_env.update({"MC_LEASE_MARGIN_S": "1", "MC_REQUEUE_AFTER_S": "3"})
    web = Web(stack)
    web.start()
    stack.worker()
    stack.beat()
    done = {"name": "done", "kind": "http", "url": f"{target.url}/ok"}
    definitions = {
        "waits": [{"name": "approve", "kind": "wait_for"}, done],
        "sleeps": [{"name": "nap", "kind": "sleep", "seconds": 8}, done],
        "retries": [{"name": "flaky", "kind": "http", "url": f"{target.url}/sequence/flaky/503,200",
                     "retry": {"max_attempts": 3, "backoff_s": 8}}],
        "in-flight": [{"name": "slow", "kind": "http", "url": f"{target.url}/sleep/30", "timeout_s": 2,
                       "retry": {"max_attempts": 2, "backoff_s": 0}}],
    }  # fmt: skip
    for name, steps in definitions.items():
        web.call("PUT", f"/mission-definitions/{name}", json={"steps": steps})
        web.call("POST", "/missions", json={"definition": name, "id": f"m-{name}"})
    web.wait_status("m-waits", "waiting")
    sleeping = web.wait_status("m-sleeps", "waiting")
    retrying = web.wait_status("m-retries", "waiting")
    assert retrying["waiting"]["kind"] == "retry"
    target.wait_for(1, "/sleep/30", timeout_s=20)  # the in-flight step is out: kill everything now

    for name in ("web", "worker", "beat"):
        stack.kill(name)
    time.sleep(1)  # down for a moment while the sleep and the retry come closer
    web.start()
    stack.worker()
    stack.beat()

    assert web.mission("m-waits")["status"] == "waiting"
    web.call("POST", "/missions/m-waits/signals/approve", json={"ok": 1})
    web.wait_status("m-waits", "completed")

    slept = web.wait_status("m-sleeps", "completed")
    nap = next(t for t in slept["timers"] if t["kind"] == "sleep")
    assert nap["due_at"] == sleeping["waiting"]["until"]  # the original due time, not one re-armed
    assert 0 <= (at(nap["fired_at"]) - at(nap["due_at"])).total_seconds() < 2

    retried = web.wait_status("m-retries", "completed")
    second = retried["attempts"][1]
    assert second["status"] == "succeeded"
    assert 0 <= (at(second["started_at"]) - at(retrying["waiting"]["until"])).total_seconds() < 2

    lost = web.wait_status("m-in-flight", "failed", 40)
    assert [a["error"]["code"] for a in lost["attempts"]] == ["worker_lost", "timeout"]
