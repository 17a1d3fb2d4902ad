"""Celery tasks: thin shells over the executor, the reconciler and retention (no logic lives here).

Beat imports this module too (Celery loads ``include`` everywhere) but only sends these tasks by
name, so what they need is imported when they run: the beat process stays small.

The periodic housekeeping tasks (``beat_schedule.py``) come every few seconds, when a probe finds them
work (``runtime/housekeeping.py``), and may still find nothing to do. Celery's own lines about them are
DEBUG (:class:`HousekeepingAtDebug`, installed in every process that imports this module: worker and
beat); each logs one line of what it did, at INFO if it changed something, else at DEBUG. They send
no task events either (``send_events=False``), so Flower's task list holds the runs, not 15 housekeeping
passes out of every 22 tasks; the worker's own counters (Flower's worker page) still count them.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from mission_control.runtime.app import app
from mission_control.runtime.context import get_runtime
from mission_control.runtime.logs import HousekeepingAtDebug
from mission_control.scheduling.queueing import MISSION_TASK, TRIGGER_TASK, enqueue_runs

log = logging.getLogger(__name__)

RECONCILE_TASK = "mission_control.reconcile"
PRUNE_TASK = "mission_control.prune_runs"
CHECK_SERVICES_TASK = "mission_control.check_services"
REPEAT_NOTICES_TASK = "mission_control.repeat_notices"
# The tasks beat_schedule.py sends on a period: quiet at INFO unless they did something.
HOUSEKEEPING_TASKS = (RECONCILE_TASK, PRUNE_TASK, CHECK_SERVICES_TASK, REPEAT_NOTICES_TASK)
HousekeepingAtDebug(HOUSEKEEPING_TASKS).install()


def _outcome(task: str, did_something: bool, summary: str, *args: Any) -> None:
    """One line per housekeeping pass: INFO if it changed anything, else DEBUG."""
    log.log(logging.INFO if did_something else logging.DEBUG, "%s: " + summary, task, *args)


def _some(items: list[Any], shown: int = 10) -> str:
    """A list for a log line: the first few items, and how many more (a pass handles up to 1,000)."""
    if not items:
        return "none"
    text = ", ".join(str(item) for item in items[:shown])
    return text + (f" and {len(items) - shown} more" if len(items) > shown else "")


class RunFailed(Exception):
    """A run ended failed or timed out: the trigger task is a FAILURE in task events (Flower), no more.

    Why an exception, listed in the task's ``throws``: it is the one way a task without a result backend
    ends as FAILURE in the ``task-failed`` event Flower reads (``update_state`` writes to a result backend,
    which there is none of; ``Reject`` shows as REJECTED, not failed). ``throws`` makes it an *expected*
    error: Celery logs one INFO line without a traceback (``celery.app.trace``'s ``log_policy_expected``),
    not an ERROR with one, because a failing target is normal operation and the run row is the record
    (the executor has logged the outcome already). Nothing retries it: the task has no ``autoretry_for``,
    and a failed task's message is acknowledged (``task_acks_on_failure_or_timeout``, on by default).
    """


FAILED_RUN_STATUSES = frozenset({"failed", "timed_out"})


@shared_task(
    name=TRIGGER_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    throws=(RunFailed,),
)
def trigger(run_id: int) -> str:
    """Execute one attempt of a run; duplicates and stale deliveries are no-ops. Raises
    :class:`RunFailed` if the run ended failed or timed out (after the attempt is recorded)."""
    from mission_control.execution.executor import execute_run

    status = execute_run(run_id, get_runtime().execution_context())
    if status in FAILED_RUN_STATUSES:
        raise RunFailed(f"run {run_id} {status}")
    return status


@shared_task(name=MISSION_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def advance_mission(mission_id: str) -> str:
    """Move one mission on as far as it goes without waiting; duplicates find nothing to do."""
    import uuid

    from mission_control.execution.executor import WORKER_NAME
    from mission_control.missions.engine import advance_mission as advance

    runtime = get_runtime()
    return advance(
        runtime.mission_store(),
        runtime.step_runner(),
        mission_id,
        owner=f"{WORKER_NAME}/{uuid.uuid4().hex[:12]}",  # unique per call: a restarted pid is not us
        lease_margin_s=runtime.settings.lease_margin_s,
    )


@shared_task(name=RECONCILE_TASK, ignore_result=True, send_events=False)
def reconcile_runs() -> dict[str, Any]:
    """Re-enqueue overdue queued runs; retry or fail runs whose worker was lost; flag late starts."""
    from mission_control.scheduling.reconciler import reconcile

    runtime = get_runtime()
    settings = runtime.settings
    result = reconcile(
        runtime.engine,
        runtime.clock.now(),
        requeue_after_s=settings.requeue_after_s,
        grace_s=settings.misfire_grace_s,
        job_series=settings.metrics_job_series,
    )
    enqueue_runs(app, result.requeue)
    if result.alerts:
        from mission_control.runtime.notify import send_notices

        send_notices(app, result.alerts)
    counts = {"requeued": len(result.requeue), "retried": len(result.retried), "failed": len(result.failed)}
    _outcome(
        "reconcile",
        any(counts.values()) or bool(result.alerts),
        "runs requeued %s, retried %s and failed %s after a lost worker; %d alerts opened",
        _some(result.requeue),
        _some(result.retried),
        _some(result.failed),
        len(result.alerts),
    )
    return counts


FLIPS_KEPT_PER_SERVICE = 1000


@shared_task(name=PRUNE_TASK, ignore_result=True, send_events=False)
def prune_old_runs() -> int:
    """Apply the retention settings to finished runs and missions (MC_RUN_RETENTION_DAYS) and to the
    audit trail (MC_AUDIT_RETENTION_DAYS); keep each service's last 1,000 state changes."""
    from mission_control.db.audit import prune as prune_audit
    from mission_control.jobs.history import prune_runs
    from mission_control.monitoring.services import ServiceRegistry

    runtime = get_runtime()
    pruned = prune_runs(
        runtime.engine,
        runtime.clock.now(),
        max_age_days=runtime.settings.run_retention_days,
        keep_per_job=runtime.settings.run_retention_per_job,
    )
    flips = ServiceRegistry(runtime.engine, runtime.clock).prune_flips(
        keep_per_service=FLIPS_KEPT_PER_SERVICE
    )
    missions = runtime.mission_store().prune(
        runtime.clock.now(), max_age_days=runtime.settings.run_retention_days
    )
    audited = prune_audit(
        runtime.engine, runtime.clock.now(), retention_days=runtime.settings.audit_retention_days
    )
    _outcome(
        "prune_runs",
        bool(pruned or flips or missions or audited),
        "%d runs, %d missions, %d service state changes and %d audit rows pruned",
        pruned,
        missions,
        flips,
        audited,
    )
    return pruned


@shared_task(name=CHECK_SERVICES_TASK, ignore_result=True, send_events=False)
def check_services() -> dict[str, Any]:
    """Flag services whose heartbeat deadline passed (up -> late -> down) and open their alerts."""
    from mission_control.monitoring.services import ServiceRegistry
    from mission_control.runtime.notify import send_notices

    runtime = get_runtime()
    result = ServiceRegistry(runtime.engine, runtime.clock).check_stale()
    send_notices(app, result.changes)
    _outcome(
        "check_services",
        bool(result.flipped),
        "%d services past their deadline, changed: %s",
        result.examined,
        _some([f"{name} -> {state}" for name, state in sorted(result.flipped.items())]),
    )
    return {"examined": result.examined, "flipped": len(result.flipped)}


@shared_task(name="mission_control.route_alerts", acks_late=True, ignore_result=True)
def route_alerts(changes: list[list[Any]]) -> int:
    """Turn alert changes into notices per matching channel; each channel's are delivered together."""
    from mission_control.monitoring.notifications.notices import group_by_channel, route
    from mission_control.runtime.notify import send_deliveries

    runtime = get_runtime()
    notice_ids = route(
        runtime.engine, [(int(alert_id), str(event)) for alert_id, event in changes], runtime.clock.now()
    )
    return send_deliveries(app, group_by_channel(runtime.engine, notice_ids))


NOTICE_RETRIES = 5


@shared_task(
    name="mission_control.deliver_notices",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=NOTICE_RETRIES,
)
def deliver_notices(self: Any, notice_ids: list[int]) -> str:
    """One delivery attempt of one channel's notices; transient failures retry with backoff (5 s .. 5 min)."""
    from mission_control.monitoring.notifications.notices import deliver

    runtime = get_runtime()
    final = self.request.retries >= NOTICE_RETRIES
    result = deliver(runtime.engine, notice_ids, runtime.delivery_context(), runtime.clock.now(), final=final)
    if result.outcome == "transient" and not final:
        raise self.retry(countdown=min(300, 5 * 2**self.request.retries))
    return result.outcome


@shared_task(name=REPEAT_NOTICES_TASK, ignore_result=True, send_events=False)
def repeat_notices() -> int:
    """Notify again about alerts still open and unacknowledged past their channel's repeat interval,
    and route alerts whose first notice was lost to a broker outage."""
    from mission_control.monitoring.notifications.notices import due_repeats, group_by_channel
    from mission_control.runtime.notify import send_deliveries

    runtime = get_runtime()
    sent = send_deliveries(
        app, group_by_channel(runtime.engine, due_repeats(runtime.engine, runtime.clock.now()))
    )
    _outcome("repeat_notices", bool(sent), "%d deliveries of repeated or late notices sent", sent)
    return sent
