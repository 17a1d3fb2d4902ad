"""The load of the chaos run: the job mix fired at the target fleet, and the services that beat.

Every job name says what its target does (``ok-3``, ``fail-1``, ...), so the reconciliation can tell
from a name alone which runs must succeed and which must open a ``job_failed`` alert. Timeouts are
short on purpose: a run whose worker is killed mid-attempt waits out its lease (``timeout_s`` +
``MC_LEASE_MARGIN_S``) before the reconciler retries it, and the settle phase must cover that.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

#: (kind, share of the jobs, target path, extra spec fields). ``fail`` and ``never`` must alert.
JOB_KINDS: list[tuple[str, float, str, dict[str, Any]]] = [
    ("ok", 0.50, "/ok", {}),
    ("slow", 0.12, "/sleep/0.5", {}),
    ("minute", 0.10, "/ok", {"schedule": {"cron": "* * * * *"}}),
    ("echo", 0.08, "/echo", {}),
    ("big", 0.08, "/big/200000", {}),
    ("fail", 0.06, "/status/500", {"retry": {"max_attempts": 2, "backoff_s": 0.5, "backoff_max_s": 1}}),
    ("never", 0.06, "/never", {"timeout_s": 1, "retry": {"max_attempts": 1}}),
]
#: Paths the target answers 2xx: a request to one of them is a delivered success.
SUCCESS_PATHS = ("/ok", "/sleep/", "/echo", "/big/")
ALERTING_KINDS = ("fail", "never")


def job_specs(count: int, target: str, seed: int) -> list[dict[str, Any]]:
    """``count`` job bodies (the API's shape) in the proportions of ``JOB_KINDS``; deterministic per seed."""
    rng = random.Random(seed)
    specs: list[dict[str, Any]] = []
    for kind, share, path, extra in JOB_KINDS:
        n = max(1, round(count * share)) if kind != "ok" else 0
        specs += [_spec(kind, i, target + path, extra, rng) for i in range(n)]
    # Whatever is left over is plain /ok, so the total is exactly ``count``.
    specs += [_spec("ok", i, target + "/ok", {}, rng) for i in range(count - len(specs))]
    return specs


def _spec(kind: str, i: int, url: str, extra: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"{kind}-{i}",
        "service": "chaos",
        "target": {"url": url, "body": {"kind": kind}},
        "schedule": {"every_s": rng.randint(1, 5)},
        "timeout_s": 5,
        "retry": {"max_attempts": 3, "backoff_s": 0.5, "backoff_max_s": 2},
    }
    body.update(extra)
    return body


def kind_of(job_name: str) -> str:
    return job_name.rsplit("-", 1)[0]


@dataclass
class HeartbeatSenders:
    """Services beating through the web app with the admin token, as many deployments would.

    A few threads share a heap of (next due instant, service), so 200 services do not need 200
    threads. ``accepted`` counts the 2xx answers the senders saw: each of those promises a recorded
    heartbeat. Services in ``silent`` stop beating between ``silence_from`` and ``silence_until``
    (wall-clock seconds), so ``service_down`` must open for them and resolve when they resume.
    """

    web_url: str
    token: str
    services: list[str]
    silent: set[str]
    silence_from: float
    silence_until: float
    interval_s: float = 6.0
    grace_s: float = 4.0
    threads: int = 8
    seed: int = 0
    accepted: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # non-2xx answers, by status
    errors: Counter[str] = field(default_factory=Counter)  # no answer, by exception class
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _heap: list[tuple[float, str]] = field(default_factory=list)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        rng = random.Random(self.seed)
        now = time.time()
        self._heap = [(now + rng.random(), name) for name in self.services]
        heapq.heapify(self._heap)
        self._rng = rng
        for i in range(self.threads):
            thread = threading.Thread(target=self._run, name=f"beats-{i}", daemon=True)
            thread.start()
            self._workers.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout=15)

    def _run(self) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {self.token}"}
        body = {"status": "ok", "interval_s": self.interval_s, "grace_s": self.grace_s}
        while not self._stop.is_set():
            with self._lock:
                due, name = heapq.heappop(self._heap)
            wait = due - time.time()
            if wait > 0 and self._stop.wait(wait):
                return
            now = time.time()
            if not (name in self.silent and self.silence_from <= now < self.silence_until):
                self._send(session, name, headers, body)
            with self._lock:
                heapq.heappush(self._heap, (time.time() + 1 + self._rng.random(), name))

    def _send(self, session: requests.Session, name: str, headers: dict[str, str], body: Any) -> None:
        try:
            answer = session.post(
                f"{self.web_url}/api/v1/heartbeats/{name}", json=body, headers=headers, timeout=5
            )
        except requests.RequestException as exc:
            with self._lock:
                self.errors[type(exc).__name__] += 1
            session.close()  # a killed web leaves dead keep-alive connections behind
            return
        with self._lock:
            if 200 <= answer.status_code < 300:
                self.accepted[name] += 1
            else:
                self.refused[str(answer.status_code)] += 1
