"""Repairs what a lost message or a dead worker leaves behind, so no run waits forever.

Redis is only a transport (DESIGN.md invariant 1): a Redis restart drops queued messages, and a worker
killed mid-attempt leaves its run ``running`` with nobody to finish it. Both states are visible in the
database, so this periodic task finds them there: queued runs whose message is overdue are enqueued
again (the executor's claim makes a duplicate harmless), and running runs whose lease expired get their
attempt closed as lost and are retried, or failed ``worker_lost`` when no attempt is left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection, Engine

from mission_control.base import instruments as metrics
from mission_control.db.alerts import UNRESOLVED_STATES, AlertChange, AlertKind, open_alert
from mission_control.db.tables import alerts, runs
from mission_control.execution.executor import close_lost_attempts
from mission_control.jobs.runstate import Reason, RunStatus, Trigger


@dataclass(frozen=True)
class Reconciled:
    requeue: list[int]  # enqueue these again
    retried: list[int]  # lost mid-attempt, queued for another attempt
    failed: list[int]  # lost mid-attempt with no attempt left
    alerts: list[AlertChange] = field(default_factory=list)  # job_failed opened for those


def reconcile(
    engine: Engine,
    now: datetime,
    *,
    requeue_after_s: float,
    grace_s: float = 15,
    batch: int = 1000,
    job_series: int = 0,
) -> Reconciled:
    overdue = now - timedelta(seconds=requeue_after_s)
    with engine.begin() as conn:
        late = _late_starts(conn, now, grace_s)
        requeue = list(
            conn.execute(
                select(runs.c.id)
                .where(
                    runs.c.status == RunStatus.QUEUED,
                    or_(runs.c.enqueued_at.is_(None), runs.c.enqueued_at < overdue),
                )
                .order_by(runs.c.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        if requeue:
            conn.execute(
                update(runs)
                .where(runs.c.id.in_(requeue), runs.c.status == RunStatus.QUEUED)
                .values(enqueued_at=now)
            )

        lost = conn.execute(
            select(runs.c.id, runs.c.job_name, runs.c.attempt_count, runs.c.max_attempts, runs.c.lease_owner)
            .where(runs.c.status == RunStatus.RUNNING, runs.c.leased_until < now)
            .order_by(runs.c.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        retried: list[int] = []
        failed: list[int] = []
        changes: list[AlertChange] = []
        for run in lost:
            close_lost_attempts(conn, run.id, now)
            owned = update(runs).where(
                runs.c.id == run.id, runs.c.status == RunStatus.RUNNING, runs.c.lease_owner == run.lease_owner
            )
            if run.attempt_count < run.max_attempts:
                conn.execute(
                    owned.values(
                        status=RunStatus.RETRYING,
                        next_attempt_at=now,
                        lease_owner=None,
                        leased_until=None,
                        error="worker lost",
                    )
                )
                retried.append(run.id)
            else:
                conn.execute(
                    owned.values(
                        status=RunStatus.FAILED,
                        reason=Reason.WORKER_LOST,
                        finished_at=now,
                        lease_owner=None,
                        leased_until=None,
                        error="worker lost",
                    )
                )
                failed.append(run.id)
                metrics.count_run(run.job_name, RunStatus.FAILED.value, job_series)
                text = f"job {run.job_name} failed: its worker was lost during the last allowed attempt"
                details = {"job": run.job_name, "run_id": run.id, "attempts": run.attempt_count}
                change = open_alert(conn, AlertKind.JOB_FAILED, run.job_name, now, text, details)
                if change is not None:
                    changes.append(change)
    return Reconciled(requeue, retried, failed, late + changes)


def _late_starts(conn: Connection, now: datetime, grace_s: float) -> list[AlertChange]:
    """``job_missed`` for jobs with a scheduled slot still not started past the misfire grace
    (no worker free, or none running). Opened once: a job already alerting is not counted again."""
    waiting = select(runs.c.job_name, func.min(runs.c.scheduled_for).label("since")).where(
        runs.c.status == RunStatus.QUEUED,
        runs.c.trigger == Trigger.SCHEDULE,
        runs.c.scheduled_for < now - timedelta(seconds=grace_s),
    )
    waiting = waiting.group_by(runs.c.job_name).limit(1000)
    alerting = select(alerts.c.subject).where(
        alerts.c.kind == AlertKind.JOB_MISSED.value, alerts.c.state.in_(UNRESOLVED_STATES)
    )
    changes = []
    for row in conn.execute(waiting.where(runs.c.job_name.not_in(alerting))):
        text = f"job {row.job_name}: a slot due {row.since.isoformat()} has not started within {grace_s:g} s"
        change = open_alert(conn, AlertKind.JOB_MISSED, row.job_name, now, text, {"job": row.job_name})
        if change is not None:
            changes.append(change)
    return changes
