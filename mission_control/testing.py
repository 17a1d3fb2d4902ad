"""An in-memory mission engine for unit tests: same definitions, same transitions, no servers.

``MissionTestEngine`` keeps missions in a dict and runs them with the same pure transitions as the
durable engine (:mod:`mission_control.missions.machine`), against a clock that moves only when the
test says so. HTTP steps are answered by a function the test supplies, ``call`` steps run registered
Python callables in-process::

    engine = MissionTestEngine(http=lambda call: HttpReply(200, {"id": 7}))
    engine.register(definition)
    m = engine.start("approval", {"email": "a@example.com"}, id="m1")
    engine.signal("m1", "receive-approval", {"approved": True})
    engine.advance(60)                     # the cool-off sleep fires at exactly +60 s
    assert engine.show("m1")["status"] == "completed"
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mission_control.base.clock import FrozenClock
from mission_control.missions import machine
from mission_control.missions.callables import StepCallable, registered
from mission_control.missions.definition import MissionDefinition, check_definition
from mission_control.missions.machine import MissionConflict, PayloadInvalid, StepOutcome, StepRequest
from mission_control.missions.steps import http_outcome, run_callable
from mission_control.missions.store import (
    DefinitionNotFound,
    DuplicateMission,
    MissionNotFound,
    digest_of,
    public_view,
)

OWNER = "testing"
LEASE_MARGIN_S = 10.0
DEFAULT_START = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class HttpCall:
    """The request an ``http`` step would send, templates filled in."""

    mission_id: str
    step: str
    attempt: int
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    idempotency_key: str


@dataclass(frozen=True)
class HttpReply:
    """What the fake target answers: a status and a JSON body (or text)."""

    status: int = 200
    json: Any = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


HttpHandler = Callable[[HttpCall], HttpReply]


def _no_http(call: HttpCall) -> HttpReply:
    raise ConnectionError(f"no http handler given to MissionTestEngine for {call.method} {call.url}")


class MissionTestEngine:
    def __init__(
        self,
        *,
        clock: FrozenClock | None = None,
        http: HttpHandler | None = None,
        functions: Mapping[str, StepCallable] | None = None,
    ) -> None:
        self.clock = clock or FrozenClock(DEFAULT_START)
        self.http = http or _no_http
        self.functions = functions
        self.calls: list[HttpCall] = []
        self._definitions: dict[str, list[MissionDefinition]] = {}
        self._missions: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    # -- the same operations as the API --------------------------------------------------------------

    def register(self, definition: MissionDefinition) -> int:
        """Add a definition; returns its version (unchanged definitions keep theirs)."""
        check_definition(definition)
        versions = self._definitions.setdefault(definition.name, [])
        if versions and digest_of(versions[-1]) == digest_of(definition):
            return len(versions)
        versions.append(definition)
        return len(versions)

    def start(self, definition: str, input: Any = None, *, id: str | None = None) -> dict[str, Any]:
        versions = self._definitions.get(definition)
        if not versions:
            raise DefinitionNotFound(definition)
        mission_id = id or f"mission-{next(self._ids)}"
        if mission_id in self._missions:
            raise DuplicateMission(f"a mission with id {mission_id!r} already exists")
        doc = machine.create(versions[-1], len(versions), mission_id, _json(input), self.clock.now())
        self._missions[mission_id] = doc
        self.run_until_idle()
        return self.show(mission_id)

    def signal(self, mission_id: str, name: str, payload: Any = None) -> dict[str, Any]:
        self._change(mission_id, lambda doc, d, now: machine.signal(doc, d, name, _json(payload), now))
        self.run_until_idle()
        return self.show(mission_id)

    def cancel(self, mission_id: str, reason: str = "cancelled") -> dict[str, Any]:
        self._change(mission_id, lambda doc, d, now: machine.cancel(doc, reason, now))
        return self.show(mission_id)

    def show(self, mission_id: str) -> dict[str, Any]:
        if mission_id not in self._missions:
            raise MissionNotFound(mission_id)
        return json.loads(json.dumps(public_view(self._missions[mission_id])))

    def list(self, *, status: str | None = None, definition: str | None = None) -> list[dict[str, Any]]:
        return [
            self.show(mid)
            for mid, doc in self._missions.items()
            if (status is None or doc["status"] == status)
            and (definition is None or doc["definition"] == definition)
        ]

    # -- time ----------------------------------------------------------------------------------------

    def advance(self, seconds: float) -> datetime:
        """Move the clock ``seconds`` ahead, stopping at every due timer on the way, in order."""
        target = self.clock.now() + timedelta(seconds=seconds)
        while True:
            due = [w for w in (machine.wake_at(doc) for doc in self._missions.values()) if w is not None]
            upcoming = min((w for w in due if w <= target), default=None)
            if upcoming is None:
                break
            if upcoming > self.clock.now():
                self.clock.set(upcoming)
            if not self.run_until_idle():
                break
        self.clock.set(target)
        self.run_until_idle()
        return target

    def run_until_idle(self) -> bool:
        """Fire what is due and run every step that can run now; True if anything moved."""
        moved = False
        progress = True
        while progress:
            progress = False
            for mission_id in list(self._missions):
                progress |= self._run(mission_id)
            moved |= progress
        return moved

    # -- internals -----------------------------------------------------------------------------------

    def _run(self, mission_id: str) -> bool:
        doc = self._missions[mission_id]
        definition = self._definition_of(doc)
        now = self.clock.now()
        moved = machine.wake(doc, definition, now)
        while True:
            request = machine.begin_attempt(doc, definition, now, OWNER, LEASE_MARGIN_S)
            if request is None:
                return moved
            moved = True
            machine.finish_attempt(doc, definition, request, OWNER, self._execute(request), now)

    def _execute(self, request: StepRequest) -> StepOutcome:
        if request.kind == "call":
            return run_callable(request, self.functions if self.functions is not None else registered())
        call = HttpCall(
            mission_id=request.mission_id,
            step=request.step,
            attempt=request.attempt,
            method=request.method,
            url=request.url,
            headers=dict(request.headers),
            body=request.body,
            idempotency_key=request.idempotency_key,
        )
        self.calls.append(call)
        try:
            reply = self.http(call)
        except Exception as exc:  # a handler's exception stands for a connection error
            return StepOutcome(
                ok=False, retryable=True, code="connection_error", message=f"{type(exc).__name__}: {exc}"
            )
        text = (
            reply.text if reply.text is not None else ("" if reply.json is None else json.dumps(reply.json))
        )
        retry_after = reply.headers.get("Retry-After")
        return http_outcome(reply.status, text, False, 0.0, float(retry_after) if retry_after else None)

    def _change(
        self, mission_id: str, change: Callable[[dict[str, Any], MissionDefinition, datetime], Any]
    ) -> None:
        if mission_id not in self._missions:
            raise MissionNotFound(mission_id)
        doc = machine.copy_doc(self._missions[mission_id])
        change(doc, self._definition_of(doc), self.clock.now())  # raises before anything is kept
        self._missions[mission_id] = doc

    def _definition_of(self, doc: dict[str, Any]) -> MissionDefinition:
        return self._definitions[doc["definition"]][doc["version"] - 1]


def _json(value: Any) -> Any:
    """What the API would have received: a JSON round trip, so tests cannot pass what JSON cannot hold."""
    return json.loads(json.dumps(value, allow_nan=False))


__all__ = [
    "DefinitionNotFound",
    "DuplicateMission",
    "HttpCall",
    "HttpReply",
    "MissionConflict",
    "MissionNotFound",
    "MissionTestEngine",
    "PayloadInvalid",
]
