"""Driving one durable mission forward on a worker: fire what is due, run its steps, commit each.

One call runs the mission as far as it can go without waiting: each step's attempt is leased and
committed before its request goes out, and its outcome is committed (together with leasing the next
step) before the next request. A process killed anywhere in between leaves a committed state that
the next look (a redelivered message, or the beat tick when ``wake_at`` comes) resumes from.
"""

from __future__ import annotations

import logging
import time
from typing import Any, TypeVar

from mission_control.db.outage import retry_while_unreachable
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
                # A retry reads the document again: the failed try may have changed this copy.
                tries = iter([known])
                doc, request = retry_while_unreachable(
                    lambda tries=tries: store.transition(mission_id, change, known=next(tries, None)),
                    budget_s=leased_at + request.timeout_s + lease_margin_s - time.monotonic(),
                    what=f"record step {request.step} of mission {mission_id}",
                    extra={"mission_id": mission_id, "step": request.step},
                )
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
