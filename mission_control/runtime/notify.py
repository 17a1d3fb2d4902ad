"""Handing alert changes and notices to the workers as Celery tasks (never raising: alerting goes on).

Alert rows are committed before this is called. If the broker is down the routing task is lost
(logged), never the alert: the repeat sweep routes any unresolved alert that has no notice yet
(``notices.unrouted``), so its channels hear of it once the broker is back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import Celery

from mission_control.db.alerts import AlertChange

log = logging.getLogger(__name__)

ROUTE_TASK = "mission_control.route_alerts"
DELIVER_TASK = "mission_control.deliver_notices"
ROUTE_BATCH = 1000


def send_notices(app: Celery, changes: Sequence[AlertChange]) -> int:
    """One routing task per batch of alert changes (a check may flip hundreds of services at once)."""
    pairs = [[change.alert_id, change.event] for change in changes]
    return _send(app, ROUTE_TASK, [[pairs[i : i + ROUTE_BATCH]] for i in range(0, len(pairs), ROUTE_BATCH)])


def send_deliveries(app: Celery, groups: Sequence[Sequence[int]]) -> int:
    """One delivery task per group of notices of one channel (see ``notices.group_by_channel``)."""
    return _send(app, DELIVER_TASK, [[list(group)] for group in groups])


def notify(changes: Sequence[AlertChange]) -> int:
    """``send_notices`` through this process's Celery app: what web and worker hand alert changes to."""
    from mission_control.runtime.app import app

    return send_notices(app, changes)


def deliver(groups: Sequence[Sequence[int]]) -> int:
    """``send_deliveries`` through this process's Celery app."""
    from mission_control.runtime.app import app

    return send_deliveries(app, groups)


def _send(app: Celery, task: str, arg_lists: list[list[object]]) -> int:
    if not arg_lists:
        return 0  # the common case (a steady heartbeat): no producer, no broker round trip
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for args in arg_lists:
                app.send_task(task, args=args, queue="default", producer=producer)
                sent += 1
    except Exception as exc:  # the broker is down
        log.warning("could not send %d %s task(s) (%s)", len(arg_lists) - sent, task, type(exc).__name__)
    return sent
