"""Putting committed runs on the broker: the only place that sends trigger messages."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from celery import Celery

log = logging.getLogger(__name__)

TRIGGER_TASK = "mission_control.trigger"
TRIGGER_QUEUE = "triggers"
MISSION_TASK = "mission_control.advance_mission"
# Messages per broker round trip: kombu's Redis transport buffers a batch in one pipeline (other
# transports publish each message at once). Small enough that a failed flush leaves little unsent.
PUBLISH_BATCH = 250


def enqueue_runs(app: Celery, run_ids: Sequence[int], job_names: Mapping[int, str] | None = None) -> int:
    """Ask workers to trigger these runs. ``job_names`` (run id -> job), where the caller has them, name
    the job in the message's ``argsrepr``: what Flower and Celery's log lines show instead of ``[116]``."""
    names = job_names or {}
    return _enqueue(
        app,
        TRIGGER_TASK,
        run_ids,
        "runs",
        lambda run_id: f"(run {run_id}, job {names[run_id]})" if run_id in names else f"(run {run_id})",
    )


def enqueue_missions(app: Celery, mission_ids: Sequence[str]) -> int:
    """Ask workers to move these missions on; a lost message costs a delay (``wake_at``), not a mission."""
    return _enqueue(app, MISSION_TASK, mission_ids, "missions", lambda mission_id: f"(mission {mission_id})")


def _enqueue(
    app: Celery,
    task: str,
    ids: Sequence[int] | Sequence[str],
    what: str,
    argsrepr: Callable[[Any], str],
) -> int:
    """Send one message per id over one producer, in pipelined batches; returns how many were sent
    for certain.

    A failure to send is logged, not raised: the rows are already committed, and whatever is overdue is
    sent again (queued runs by the reconciler, missions by their ``wake_at``), so a broker outage delays
    work but loses none.
    """
    if not ids:
        return 0
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for start in range(0, len(ids), PUBLISH_BATCH):
                chunk = ids[start : start + PUBLISH_BATCH]
                with producer.batch():
                    for item in chunk:
                        app.send_task(
                            task, args=[item], argsrepr=argsrepr(item), queue=TRIGGER_QUEUE, producer=producer
                        )
                sent += len(chunk)
    except Exception as exc:  # the broker is down or unreachable
        log.warning(
            "could not enqueue %d of %d %s (%s); they will be sent again when overdue",
            len(ids) - sent,
            len(ids),
            what,
            type(exc).__name__,
        )
    return sent
