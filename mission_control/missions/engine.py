"""Driving one durable mission forward on a worker: fire what is due, run its steps, commit each.

One call runs the mission as far as it can go without waiting: each step's attempt is leased and
committed before its request goes out, and its outcome is committed (together with leasing the next
step) before the next request. A process killed anywhere in between leaves a committed state that
the next look (a redelivered message, or the beat tick when ``wake_at`` comes) resumes from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError

from mission_control.missions import machine
from mission_control.missions.definition import MissionDefinition
from mission_control.missions.machine import StepOutcome, StepRequest
from mission_control.missions.steps import StepRunner
from mission_control.missions.store import MissionNotFound, MissionStore

log = logging.getLogger(__name__)
T = TypeVar("T")


def advance_mission(
    store: MissionStore, runner: StepRunner, mission_id: str, *, owner: str, lease_margin_s: float
) -> str:
    """Run ``mission_id`` until it waits, ends or another worker holds its step; returns its status."""
    request: StepRequest | None = None
    outcome: StepOutcome | None = None
    known: dict[str, Any] | None = None  # the document as this call last wrote it
    leased_at = 0.0
    while True:

        def change(
            doc: dict[str, Any],
            definition: MissionDefinition,
            now: Any,
            done: StepRequest | None = request,
            result: StepOutcome | None = outcome,
        ) -> StepRequest | None:
            if done is not None and result is not None:
                machine.finish_attempt(doc, definition, done, owner, result, now)
            machine.wake(doc, definition, now)
            return machine.begin_attempt(doc, definition, now, owner, lease_margin_s)

        try:
            if request is None:
                doc, request = store.transition(mission_id, change, known=known)
            else:  # an outcome exists only in this worker's memory: wait out an outage for it
                deadline = leased_at + request.timeout_s + lease_margin_s
                doc, request = _recording(store, mission_id, change, known, deadline)
        except MissionNotFound:
            log.warning("mission %s no longer exists", mission_id, extra={"mission_id": mission_id})
            return "missing"
        if request is None:
            return str(doc["status"])
        log.info(
            "mission %s: step %s attempt %d",
            mission_id,
            request.step,
            request.attempt,
            extra={"mission_id": mission_id, "step": request.step, "attempt": request.attempt},
        )
        leased_at = time.monotonic()
        outcome = runner.run(request)
        known = doc


RECORD_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 5.0)


def _recording(
    store: MissionStore,
    mission_id: str,
    change: Callable[[dict[str, Any], MissionDefinition, Any], T],
    known: dict[str, Any] | None,
    deadline: float,
) -> tuple[dict[str, Any], T]:
    """Record a step's outcome, retried with backoff while the database is unreachable and the
    step's lease (``deadline``, monotonic) lasts; after that the lease is over, the step counts as
    lost, and the mission's next look retries it. A retry reads the document again: the failed try
    may have changed the copy in hand before its write failed."""
    failures = 0
    while True:
        try:
            return store.transition(mission_id, change, known=known if failures == 0 else None)
        except OperationalError as exc:
            wait_s = RECORD_BACKOFF_S[min(failures, len(RECORD_BACKOFF_S) - 1)]
            failures += 1
            if time.monotonic() + wait_s >= deadline:
                raise
            log.warning("cannot record a step's outcome (%s); retrying in %.1f s", type(exc).__name__, wait_s)
            time.sleep(wait_s)
