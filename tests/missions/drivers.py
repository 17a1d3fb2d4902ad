"""Two ways to run the same mission behaviour suite: the in-memory testing kit and the durable engine.

The durable driver keeps missions in a real database (SQLite or PostgreSQL) through
:class:`MissionStore`, sends ``http`` steps over real sockets to a local server that answers with the
suite's handler, and plays the worker and the beat tick in-process so the injected clock decides when
timers fire. Real worker, beat and web processes are the end-to-end tests' business.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from mission_control.base.clock import FrozenClock
from mission_control.db.tables import missions
from mission_control.missions.callables import StepCallable
from mission_control.missions.definition import MissionDefinition
from mission_control.missions.engine import advance_mission
from mission_control.missions.steps import StepRunner
from mission_control.missions.store import MissionStore, public_view
from mission_control.outbound.sender import make_session
from mission_control.scheduling.wakeups import NEXT_MISSION_WAKE, claim_due
from mission_control.testing import HttpCall, HttpReply, MissionTestEngine

Handler = Callable[[HttpCall], HttpReply]
SECRET = "test-signing-secret-0123456789abcdef"


class MemoryDriver:
    base_url = "http://targets.test"

    def __init__(self, clock: FrozenClock, handler: Handler, functions: Mapping[str, StepCallable]) -> None:
        self.engine = MissionTestEngine(clock=clock, http=handler, functions=functions)
        self.clock = clock

    @property
    def calls(self) -> list[HttpCall]:
        return self.engine.calls

    def register(self, definition: MissionDefinition) -> int:
        return self.engine.register(definition)

    def start(self, name: str, data: Any = None, *, id: str | None = None) -> dict[str, Any]:
        return self.engine.start(name, data, id=id)

    def signal(self, mission_id: str, name: str, payload: Any = None) -> dict[str, Any]:
        return self.engine.signal(mission_id, name, payload)

    def cancel(self, mission_id: str, reason: str) -> dict[str, Any]:
        return self.engine.cancel(mission_id, reason)

    def show(self, mission_id: str) -> dict[str, Any]:
        return self.engine.show(mission_id)

    def advance(self, seconds: float) -> None:
        self.engine.advance(seconds)

    def close(self) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    handler: Handler
    calls: list[HttpCall]


class _Request(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        call = HttpCall(
            mission_id=self.headers.get("X-Mission-Control-Mission", ""),
            step=self.headers.get("X-Mission-Control-Step", ""),
            attempt=int(self.headers.get("X-Mission-Control-Attempt", "0")),
            method=self.command,
            url=f"{DurableDriver.base_url_of(self.server)}{self.path}",
            headers={k: v for k, v in self.headers.items()},
            body=json.loads(raw) if raw else None,
            idempotency_key=self.headers.get("Idempotency-Key", ""),
        )
        self.server.calls.append(call)
        reply = self.server.handler(call)
        text = (
            reply.text if reply.text is not None else ("" if reply.json is None else json.dumps(reply.json))
        )
        data = text.encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class DurableDriver:
    def __init__(
        self, db: Engine, clock: FrozenClock, handler: Handler, functions: Mapping[str, StepCallable]
    ) -> None:
        self.db = db
        self.clock = clock
        self.store = MissionStore(db, clock, requeue_after_s=30)
        self.server = _Server(("127.0.0.1", 0), _Request)
        self.server.handler = handler
        self.server.calls = []
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        self.base_url = self.base_url_of(self.server)
        self.session = make_session()
        self.runner = StepRunner(
            session=self.session, signing_secret=SECRET, clock=clock, callables=lambda: functions
        )

    @staticmethod
    def base_url_of(server: ThreadingHTTPServer) -> str:
        return f"http://127.0.0.1:{server.server_address[1]}"

    @property
    def calls(self) -> list[HttpCall]:
        return self.server.calls

    def register(self, definition: MissionDefinition) -> int:
        record, _ = self.store.put_definition(definition)
        return record.version

    def start(self, name: str, data: Any = None, *, id: str | None = None) -> dict[str, Any]:
        doc = self.store.start(name, json.loads(json.dumps(data)), id)
        return self._worked(doc["id"])

    def signal(self, mission_id: str, name: str, payload: Any = None) -> dict[str, Any]:
        self.store.signal(mission_id, name, payload)
        return self._worked(mission_id)

    def cancel(self, mission_id: str, reason: str) -> dict[str, Any]:
        self.store.cancel(mission_id, reason)
        return self.show(mission_id)

    def show(self, mission_id: str) -> dict[str, Any]:
        return json.loads(json.dumps(public_view(self.store.get(mission_id))))

    def advance(self, seconds: float) -> None:
        """The beat tick and the workers, with the clock stopping at every wake-up on the way."""
        target = self.clock.now() + timedelta(seconds=seconds)
        while True:
            with self.db.connect() as conn:
                due = conn.execute(NEXT_MISSION_WAKE).scalar()
            if due is None or due > target:
                break
            if due > self.clock.now():
                self.clock.set(due)
            for mission_id in claim_due(self.db, self.clock.now(), batch=1000, requeue_after_s=30):
                self._work(mission_id)
        self.clock.set(target)

    def _worked(self, mission_id: str) -> dict[str, Any]:
        with self.db.connect() as conn:
            status = conn.execute(select(missions.c.status).where(missions.c.id == mission_id)).scalar()
        if status == "running":  # the API enqueues a worker message exactly then
            self._work(mission_id)
        return self.show(mission_id)

    def _work(self, mission_id: str) -> None:
        advance_mission(self.store, self.runner, mission_id, owner="test-worker", lease_margin_s=10)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.session.close()
