"""How one mission moves: pure transitions of its JSON document, given a definition and ``now``.

Both engines keep a mission as one JSON document and change it only through these functions, inside
whatever makes the change atomic for them (a row lock and a transaction for the durable engine, a
plain dict for the testing kit). No I/O and no clock here: the step's own work (an HTTP request, a
Python call) happens between :func:`begin_attempt`, which leases the step, and
:func:`finish_attempt`, which records what it produced.

Lifecycle: ``running`` -> ``waiting`` <-> ``running`` -> ``completed`` | ``failed`` | ``cancelled``.
A mission waits for one thing at a time (``waiting``): a signal (maybe with a deadline), a timer (a
``sleep`` step) or a retry. Every change appends to ``history`` with its time.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from mission_control.missions import templates
from mission_control.missions.bounds import MAX_MESSAGE_CHARS, MAX_REQUEST_CHARS, MAX_URL_CHARS, bounded
from mission_control.missions.definition import (
    CallStep,
    HttpStep,
    MissionDefinition,
    SleepStep,
    WaitForStep,
    parse_instant,
    schema_errors,
)

Status = Literal["running", "waiting", "completed", "failed", "cancelled"]
TERMINAL = frozenset({"completed", "failed", "cancelled"})
STATUSES = ("running", "waiting", "completed", "failed", "cancelled")
MAX_SIGNALS_KEPT = 100


class MissionConflict(Exception):
    """The mission is not in a state where this is possible (answered 409)."""

    def __init__(self, message: str, code: str = "conflict") -> None:
        super().__init__(message)
        self.code = code


class PayloadInvalid(Exception):
    """An input or signal payload does not match its schema (answered 422); nothing was changed."""

    def __init__(self, message: str, field: str) -> None:
        message = bounded(message)  # it may quote the payload, and is recorded and answered
        super().__init__(f"{field}: {message}")
        self.message = message
        self.field = field


@dataclass(frozen=True)
class StepRequest:
    """One attempt of an ``http`` or ``call`` step, with its templates filled in."""

    mission_id: str
    step: str
    kind: Literal["http", "call"]
    attempt: int
    timeout_s: float
    idempotency_key: str
    url: str = ""
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    function: str = ""
    args: Any = None


@dataclass(frozen=True)
class StepOutcome:
    """What an attempt produced. ``retryable`` failures follow the step's retry policy."""

    ok: bool
    output: Any = None
    retryable: bool = False
    code: str = "step_failed"
    message: str = ""
    http_status: int | None = None
    duration_ms: float | None = None
    retry_after_s: float | None = None


def ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def create(
    definition: MissionDefinition, version: int, mission_id: str, data: Any, now: datetime
) -> dict[str, Any]:
    """A new mission document, already advanced to its first step that needs a worker or a wait."""
    problems = schema_errors(definition.input_schema, data)
    if problems:
        path, message = problems[0]
        raise PayloadInvalid(message, f"input.{path}" if path else "input")
    stamp = ts(now)
    doc: dict[str, Any] = {
        "id": mission_id,
        "definition": definition.name,
        "version": version,
        "status": "running",
        "input": data,
        "step_index": 0,
        "cursor": definition.steps[0].name,
        "attempt": 0,
        "waiting": None,
        "lease": None,
        "error": None,
        "cancel_reason": None,
        "steps": [
            {"name": step.name, "kind": step.kind, "status": "pending", "output": None, "attempts": 0}
            for step in definition.steps
        ],
        "history": [],
        "attempts": [],
        "signals": [],
        "timers": [],
        "created_at": stamp,
        "updated_at": stamp,
        "finished_at": None,
    }
    _event(doc, now, "created")
    _event(doc, now, "started")
    _advance(doc, definition, now)
    return doc


def needs_worker(doc: dict[str, Any], definition: MissionDefinition, now: datetime) -> bool:
    """True when the mission sits at an ``http``/``call`` step that nobody holds a live lease on."""
    if doc["status"] != "running" or doc["step_index"] >= len(definition.steps):
        return False
    if not isinstance(definition.steps[doc["step_index"]], HttpStep | CallStep):
        return False
    lease = doc["lease"]
    return lease is None or at(lease["until"]) <= now


def begin_attempt(
    doc: dict[str, Any], definition: MissionDefinition, now: datetime, owner: str, lease_margin_s: float
) -> StepRequest | None:
    """Lease the current step for one attempt, or None if there is nothing to run now.

    A lease that expired without a result means the worker died mid-attempt: that attempt counts as
    failed (``worker_lost``) and the retry policy decides, exactly as for a failed request.
    """
    if doc["status"] == "running" and doc["lease"] is not None and at(doc["lease"]["until"]) <= now:
        _finish(
            doc,
            definition,
            now,
            StepOutcome(
                ok=False,
                retryable=True,
                code="worker_lost",
                message="the worker running this attempt was lost",
            ),
        )
    if not needs_worker(doc, definition, now):
        return None
    step = definition.steps[doc["step_index"]]
    assert isinstance(step, HttpStep | CallStep)
    scope = scope_of(doc)
    attempt = doc["attempt"] + 1
    doc["attempt"] = attempt
    state = doc["steps"][doc["step_index"]]
    state["attempts"] = attempt
    state["status"] = "running"
    record = {
        "step": step.name,
        "attempt": attempt,
        "started_at": ts(now),
        "finished_at": None,
        "status": "running",
        "error": None,
        "http_status": None,
        "duration_ms": None,
    }
    doc["attempts"].append(record)
    try:
        request = _request(doc, step, attempt, scope)
    except templates.TemplateTooLarge as exc:  # the same data would build the same request again
        doc["lease"] = {"owner": owner, "attempt": attempt, "until": ts(now)}
        _finish(doc, definition, now, StepOutcome(ok=False, code="request_too_large", message=str(exc)))
        return None
    except templates.TemplateError as exc:
        doc["lease"] = {"owner": owner, "attempt": attempt, "until": ts(now)}
        _finish(doc, definition, now, StepOutcome(ok=False, code="template_error", message=str(exc)))
        return None
    doc["lease"] = {
        "owner": owner,
        "attempt": attempt,
        "until": ts(now + timedelta(seconds=step.timeout_s + lease_margin_s)),
    }
    _touch(doc, now)
    return request


def _request(
    doc: dict[str, Any], step: HttpStep | CallStep, attempt: int, scope: dict[str, Any]
) -> StepRequest:
    """The attempt's request with its templates filled in, within :data:`MAX_REQUEST_CHARS` in all."""
    budget = templates.Budget(MAX_REQUEST_CHARS, f"the request of step {step.name!r}")
    common = {
        "mission_id": doc["id"],
        "step": step.name,
        "attempt": attempt,
        "timeout_s": step.timeout_s,
        "idempotency_key": f"mission:{doc['id']}:{step.name}",
    }
    if isinstance(step, CallStep):
        return StepRequest(
            kind="call", function=step.function, args=templates.render(step.args, scope, budget), **common
        )
    url = templates.render(step.url, scope, budget)
    if isinstance(url, str) and len(url) > MAX_URL_CHARS:
        raise templates.TemplateTooLarge(
            f"the URL of step {step.name!r} would be longer than {MAX_URL_CHARS} characters "
            "once its templates are filled in"
        )
    headers = {}
    for name, value in step.headers.items():
        budget.spend(len(name))
        headers[name] = str(templates.render(value, scope, budget))
    return StepRequest(
        kind="http",
        url=url,
        method=step.method,
        headers=headers,
        body=templates.render(step.body, scope, budget),
        **common,
    )


def finish_attempt(
    doc: dict[str, Any],
    definition: MissionDefinition,
    request: StepRequest,
    owner: str,
    outcome: StepOutcome,
    now: datetime,
) -> bool:
    """Record an attempt's outcome; False (nothing changed) if the lease is no longer this attempt's,
    as when the mission was cancelled meanwhile or the lease expired and the step moved on."""
    lease = doc["lease"]
    if (
        doc["status"] != "running"
        or lease is None
        or lease["owner"] != owner
        or lease["attempt"] != request.attempt
        or doc["cursor"] != request.step
    ):
        return False
    _finish(doc, definition, now, outcome)
    return True


def _finish(doc: dict[str, Any], definition: MissionDefinition, now: datetime, outcome: StepOutcome) -> None:
    index = doc["step_index"]
    step = definition.steps[index]
    assert isinstance(step, HttpStep | CallStep)
    attempt = doc["attempt"]
    doc["lease"] = None
    # Messages can quote a response, an exception, a payload: recorded bounded, wherever they came from.
    outcome = replace(outcome, message=bounded(outcome.message, MAX_MESSAGE_CHARS - 40))
    record = doc["attempts"][-1] if doc["attempts"] else None
    if record is not None and record["step"] == step.name and record["attempt"] == attempt:
        record.update(
            finished_at=ts(now),
            status="succeeded" if outcome.ok else "failed",
            error=None if outcome.ok else {"code": outcome.code, "message": outcome.message},
            http_status=outcome.http_status,
            duration_ms=outcome.duration_ms,
        )
    state = doc["steps"][index]
    if outcome.ok:
        state["status"] = "succeeded"
        state["output"] = outcome.output
        _event(doc, now, "step_succeeded", step=step.name, attempt=attempt)
        _next_step(doc, definition, now)
        return
    _event(
        doc, now, "step_failed", step=step.name, attempt=attempt, code=outcome.code, message=outcome.message
    )
    if outcome.retryable and attempt < step.retry.max_attempts:
        delay = step.retry.delay_for(attempt)
        if outcome.retry_after_s:
            delay = max(delay, min(outcome.retry_after_s, step.retry.backoff_max_s))
        due = now + timedelta(seconds=delay)
        doc["status"] = "waiting"
        doc["waiting"] = {"kind": "retry", "step": step.name, "until": ts(due), "attempt": attempt + 1}
        state["status"] = "waiting"
        doc["timers"].append(
            {"kind": "retry", "step": step.name, "due_at": ts(due), "status": "scheduled", "fired_at": None}
        )
        _event(doc, now, "retry_scheduled", step=step.name, attempt=attempt + 1, due_at=ts(due))
        return
    state["status"] = "failed"
    exhausted = outcome.retryable and attempt >= step.retry.max_attempts
    message = outcome.message + (f" (after {attempt} attempts)" if exhausted and attempt > 1 else "")
    _fail(doc, now, outcome.code, message, step.name)


def wake(doc: dict[str, Any], definition: MissionDefinition, now: datetime) -> bool:
    """Fire what is due: a timer, a retry, a signal's deadline. True if anything changed."""
    waiting = doc["waiting"]
    if doc["status"] != "waiting" or waiting is None or waiting.get("until") is None:
        return False
    if at(waiting["until"]) > now:
        return False
    _fire_timer(doc, now, waiting)
    step = waiting["step"]
    if waiting["kind"] == "signal":
        doc["steps"][doc["step_index"]]["status"] = "failed"
        _fail(
            doc, now, "signal_timeout", f"no {waiting['signal']!r} signal arrived by {waiting['until']}", step
        )
        return True
    doc["status"] = "running"
    doc["waiting"] = None
    if waiting["kind"] == "timer":
        doc["steps"][doc["step_index"]]["status"] = "succeeded"
        _next_step(doc, definition, now)
    else:  # a retry: the step is ready for its next attempt
        doc["steps"][doc["step_index"]]["status"] = "pending"
        _touch(doc, now)
    return True


def signal(
    doc: dict[str, Any], definition: MissionDefinition, name: str, payload: Any, now: datetime
) -> None:
    """Deliver a signal; raises MissionConflict or PayloadInvalid without changing the document."""
    waiting = doc["waiting"]
    if doc["status"] != "waiting" or waiting is None or waiting["kind"] != "signal":
        what = doc["status"] if doc["status"] != "waiting" else f"waiting for a {waiting['kind']}"
        raise MissionConflict(f"mission {doc['id']!r} is {what}, not waiting for a signal", "not_waiting")
    if waiting["signal"] != name:
        raise MissionConflict(
            f"mission {doc['id']!r} waits for signal {waiting['signal']!r}, not {name!r}", "wrong_signal"
        )
    step = definition.steps[doc["step_index"]]
    assert isinstance(step, WaitForStep)
    problems = schema_errors(step.schema_, payload)
    if problems:
        path, message = problems[0]
        raise PayloadInvalid(message, f"payload.{path}" if path else "payload")
    for timer in doc["timers"]:
        if timer["status"] == "scheduled" and timer["step"] == step.name:
            timer["status"] = "cancelled"
    doc["signals"].append({"name": name, "step": step.name, "payload": payload, "received_at": ts(now)})
    del doc["signals"][:-MAX_SIGNALS_KEPT]
    state = doc["steps"][doc["step_index"]]
    state["status"] = "succeeded"
    state["output"] = payload
    doc["status"] = "running"
    doc["waiting"] = None
    _event(doc, now, "signal_received", step=step.name, signal=name)
    _next_step(doc, definition, now)


def cancel(doc: dict[str, Any], reason: str, now: datetime) -> None:
    if doc["status"] in TERMINAL:
        raise MissionConflict(f"mission {doc['id']!r} is already {doc['status']}", "finished")
    for timer in doc["timers"]:
        if timer["status"] == "scheduled":
            timer["status"] = "cancelled"
    if doc["step_index"] < len(doc["steps"]):
        state = doc["steps"][doc["step_index"]]
        if state["status"] in ("running", "waiting", "pending"):
            state["status"] = "cancelled"
    doc["status"] = "cancelled"
    doc["waiting"] = None
    doc["lease"] = None
    doc["cancel_reason"] = reason
    doc["finished_at"] = ts(now)
    _event(doc, now, "cancelled", reason=reason)


def wake_at(doc: dict[str, Any]) -> datetime | None:
    """When the engine must look at this mission again on its own (None: only a signal moves it)."""
    if doc["status"] == "waiting" and doc["waiting"] and doc["waiting"].get("until"):
        return at(doc["waiting"]["until"])
    if doc["status"] == "running" and doc["lease"] is not None:
        return at(doc["lease"]["until"])
    return None


def scope_of(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "input": doc["input"],
        "steps": {s["name"]: s["output"] for s in doc["steps"] if s["status"] == "succeeded"},
        "mission": {"id": doc["id"]},
    }


def copy_doc(doc: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(doc)


def _next_step(doc: dict[str, Any], definition: MissionDefinition, now: datetime) -> None:
    doc["step_index"] += 1
    doc["attempt"] = 0
    _advance(doc, definition, now)


def _advance(doc: dict[str, Any], definition: MissionDefinition, now: datetime) -> None:
    """Move through steps that need no worker (waits, sleeps already due) until one does, or the end."""
    while doc["status"] == "running":
        index = doc["step_index"]
        if index >= len(definition.steps):
            doc["cursor"] = None
            doc["status"] = "completed"
            doc["finished_at"] = ts(now)
            _event(doc, now, "completed")
            return
        step = definition.steps[index]
        doc["cursor"] = step.name
        if isinstance(step, WaitForStep):
            until = now + timedelta(seconds=step.timeout_s) if step.timeout_s is not None else None
            doc["status"] = "waiting"
            doc["waiting"] = {
                "kind": "signal",
                "step": step.name,
                "signal": step.signal_name,
                "until": ts(until) if until else None,
            }
            doc["steps"][index]["status"] = "waiting"
            _event(
                doc,
                now,
                "waiting_for_signal",
                step=step.name,
                signal=step.signal_name,
                until=ts(until) if until else None,
            )
            if until is not None:
                doc["timers"].append(
                    {
                        "kind": "timeout",
                        "step": step.name,
                        "due_at": ts(until),
                        "status": "scheduled",
                        "fired_at": None,
                    }
                )
            return
        if isinstance(step, SleepStep):
            try:
                due = _sleep_until(step, doc, now)
            except (templates.TemplateError, ValueError) as exc:
                doc["steps"][index]["status"] = "failed"
                _fail(doc, now, "template_error", str(exc), step.name)
                return
            timer = {
                "kind": "sleep",
                "step": step.name,
                "due_at": ts(due),
                "status": "scheduled",
                "fired_at": None,
            }
            doc["timers"].append(timer)
            _event(doc, now, "timer_scheduled", step=step.name, due_at=ts(due))
            if due <= now:
                _fire_timer(doc, now, {"kind": "timer", "step": step.name})
                doc["steps"][index]["status"] = "succeeded"
                doc["step_index"] += 1
                doc["attempt"] = 0
                continue
            doc["status"] = "waiting"
            doc["waiting"] = {"kind": "timer", "step": step.name, "until": ts(due)}
            doc["steps"][index]["status"] = "waiting"
            return
        doc["steps"][index]["status"] = "pending"
        _touch(doc, now)
        return  # an http or call step: a worker takes it from here


def _sleep_until(step: SleepStep, doc: dict[str, Any], now: datetime) -> datetime:
    if step.seconds is not None:
        return now + timedelta(seconds=step.seconds)
    assert step.until is not None
    value = templates.render(step.until, scope_of(doc))
    if not isinstance(value, str):
        raise ValueError(f"until rendered to {value!r}, not an ISO-8601 instant")
    return parse_instant(value).astimezone(UTC)


def _fire_timer(doc: dict[str, Any], now: datetime, waiting: dict[str, Any]) -> None:
    kind = {"timer": "sleep", "retry": "retry", "signal": "timeout"}[waiting["kind"]]
    for timer in reversed(doc["timers"]):
        if timer["status"] == "scheduled" and timer["step"] == waiting["step"] and timer["kind"] == kind:
            timer["status"] = "fired"
            timer["fired_at"] = ts(now)
            _event(doc, now, "timer_fired", step=waiting["step"], timer=kind, due_at=timer["due_at"])
            return


def _fail(doc: dict[str, Any], now: datetime, code: str, message: str, step: str | None) -> None:
    for timer in doc["timers"]:
        if timer["status"] == "scheduled":
            timer["status"] = "cancelled"
    message = bounded(message)
    doc["status"] = "failed"
    doc["waiting"] = None
    doc["lease"] = None
    doc["error"] = {"code": code, "message": message, "at": ts(now), "step": step}
    doc["finished_at"] = ts(now)
    _event(doc, now, "failed", step=step, code=code, message=message)


def _event(doc: dict[str, Any], now: datetime, event: str, **detail: Any) -> None:
    entry = {"at": ts(now), "event": event}
    entry.update({key: value for key, value in detail.items() if value is not None})
    doc["history"].append(entry)
    _touch(doc, now)


def _touch(doc: dict[str, Any], now: datetime) -> None:
    """Every change passes here: ``revision`` tells a store whether a transition changed anything."""
    doc["updated_at"] = ts(now)
    doc["revision"] = doc.get("revision", 0) + 1
