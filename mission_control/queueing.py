"""Putting committed runs on the broker: the only place that sends trigger messages."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import Celery

log = logging.getLogger(__name__)

TRIGGER_TASK = "mission_control.trigger"
TRIGGER_QUEUE = "triggers"
# Messages per broker round trip: kombu's Redis transport buffers a batch in one pipeline (other
# transports publish each message at once). Small enough that a failed flush leaves little unsent.
PUBLISH_BATCH = 250


def enqueue_runs(app: Celery, run_ids: Sequence[int]) -> int:
    """Send one trigger message per run id over one producer, in pipelined batches; returns how many
    were sent for certain.

    A failure to send is logged, not raised: the run rows are already committed, and the reconciler
    enqueues any queued run whose message is overdue, so a broker outage delays runs but loses none.
    """
    if not run_ids:
        return 0
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for start in range(0, len(run_ids), PUBLISH_BATCH):
                chunk = run_ids[start : start + PUBLISH_BATCH]
                with producer.batch():
                    for run_id in chunk:
                        app.send_task(TRIGGER_TASK, args=[run_id], queue=TRIGGER_QUEUE, producer=producer)
                sent += len(chunk)
    except Exception as exc:  # the broker is down or unreachable
        log.warning(
            "could not enqueue %d of %d runs (%s); the reconciler will retry",
            len(run_ids) - sent,
            len(run_ids),
            type(exc).__name__,
        )
    return sent
