"""Local fakes of the services channels deliver to: PagerDuty's Events API v2 and an Apprise target.

:class:`FakePagerDuty` speaks Events API v2 as PagerDuty documents it: ``POST /v2/enqueue`` with a
JSON event answers 202 ``{"status": "success", "dedup_key": ...}``; an event without a valid
``routing_key``, ``event_action`` or (for a trigger) ``payload.summary``/``source``/``severity``
answers 400; answers queued with :meth:`FakeService.answer_next` (429, 503...) come first. It keeps
incidents by dedup key (``triggered``, ``acknowledged``, ``resolved``), as PagerDuty's alerts do.
Every request to any path is recorded, so the same server plays an Apprise ``json://`` target.
Listens on 127.0.0.1 (or another loopback address) only; stop() closes it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SEVERITIES = {"critical", "error", "warning", "info"}


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeService:
    def __init__(self, host: str = "127.0.0.1", routing_key: str = "R" * 32) -> None:
        self.routing_key = routing_key
        self.received: list[Received] = []
        self.incidents: dict[str, dict[str, Any]] = {}
        self._accepted: list[dict[str, Any]] = []
        self.redirect_to: str | None = None  # answer every request 307 to there
        self._queued: list[int] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, answer = fake._answer(self.command, self.path, dict(self.headers), body)
                raw = json.dumps(answer).encode()
                self.send_response(status)
                if status == 307:
                    self.send_header("Location", answer["location"])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def answer_next(self, *statuses: int) -> None:
        with self._lock:
            self._queued.extend(statuses)

    def requests_to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def events(self) -> list[dict[str, Any]]:
        """The accepted PagerDuty events, in order."""
        with self._lock:
            return list(self._accepted)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> FakeService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        with self._lock:
            self.received.append(Received(method, path, headers, body))
            if self.redirect_to is not None:
                return 307, {"location": self.redirect_to}
            if self._queued:
                status = self._queued.pop(0)
                return status, {"status": "unavailable" if status >= 500 else "throttled"}
            if path != "/v2/enqueue":
                return 200, {"ok": True}
            return self._enqueue(body)

    def _enqueue(self, body: bytes) -> tuple[int, Any]:
        try:
            event = json.loads(body)
        except ValueError:
            return 400, {"status": "invalid event", "message": "Event object is invalid"}
        errors = []
        if event.get("routing_key") != self.routing_key:
            errors.append("routing_key is invalid")
        action = event.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("event_action is invalid")
        key = event.get("dedup_key")
        if action in ("acknowledge", "resolve") and not key:
            errors.append("dedup_key is required")
        if action == "trigger":
            payload = event.get("payload") or {}
            if not payload.get("summary") or not payload.get("source"):
                errors.append("payload.summary and payload.source are required")
            if payload.get("severity") not in SEVERITIES:
                errors.append("payload.severity is invalid")
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        self._accepted.append(event)
        if action == "trigger":
            incident = self.incidents.setdefault(key, {"status": "triggered", "events": 0})
            if incident["status"] == "resolved":
                incident["status"] = "triggered"
            incident["events"] += 1
        elif key in self.incidents:
            self.incidents[key]["status"] = "acknowledged" if action == "acknowledge" else "resolved"
        return 202, {"status": "success", "message": "Event processed", "dedup_key": key}


FakePagerDuty = FakeService
