"""Putting committed runs on the broker: the only place that sends trigger messages."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import Celery

log = logging.getLogger(__name__)

TRIGGER_TASK = "mission_control.trigger"
TRIGGER_QUEUE = "triggers"


def enqueue_runs(app: Celery, run_ids: Sequence[int]) -> int:
    """Send one trigger message per run id over one producer; returns how many were sent.

    A failure to send is logged, not raised: the run rows are already committed, and the reconciler
    enqueues any queued run whose message is overdue, so a broker outage delays runs but loses none.
    """
    if not run_ids:
        return 0
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for run_id in run_ids:
                app.send_task(TRIGGER_TASK, args=[run_id], queue=TRIGGER_QUEUE, producer=producer)
                sent += 1
    except Exception as exc:  # the broker is down or unreachable
        log.warning(
            "could not enqueue %d of %d runs (%s); the reconciler will retry",
            len(run_ids) - sent,
            len(run_ids),
            type(exc).__name__,
        )
    return sent
