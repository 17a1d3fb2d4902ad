"""Claiming due work from the database: the transactional core of every scheduler tick.

One tick is one short transaction: lock the due jobs (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
several beats take disjoint rows; SQLite's single writer serialises them), write a run row per slot,
advance ``next_run_at``, commit. Only the caller enqueues, and only after the commit: a run exists
before its message does (the outbox of DESIGN.md invariant 1), and ``runs`` is unique on
``(job_id, scheduled_for)`` so a slot can be recorded once (invariant 2). Due work is found through the
index on ``next_run_at``: a tick with nothing due is one indexed query (invariant 5).

Nothing here reads the clock or touches Celery; tests call these functions with a pinned ``now``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from mission_control.base.schedules import cached_schedule
from mission_control.db.alerts import AlertChange, AlertKind, open_alert
from mission_control.db.audit import AuditEntry
from mission_control.db.audit import write as write_audit
from mission_control.db.tables import jobs, runs
from mission_control.jobs.runstate import UNFINISHED, RunStatus, Trigger
from mission_control.jobs.slots import PlannedRun, plan_due_slots
from mission_control.scheduling.wakeups import NEXT_MISSION_WAKE


class RunInProgress(Exception):
    """A job that forbids overlap already has an unfinished run."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"run {run_id} is still unfinished")
        self.run_id = run_id


@dataclass(frozen=True)
class Claimed:
    """What one claim committed: run ids to enqueue now, and whether the batch limit was hit."""

    run_ids: list[int]
    batch_full: bool
    slots: int = 0  # runs written, fired or skipped
    alerts: list[AlertChange] = field(default_factory=list)  # job_missed alerts opened by this claim
    job_names: dict[int, str] = field(default_factory=dict)  # run id -> its job, for the task's argsrepr


def claim_due_slots(engine: Engine, now: datetime, *, batch: int, grace_s: float) -> Claimed:
    """Turn every slot due at ``now`` (up to ``batch`` jobs) into committed run rows."""
    with engine.begin() as conn:
        due = conn.execute(
            select(
                jobs.c.id,
                jobs.c.name,
                jobs.c.schedule,
                jobs.c.concurrency,
                jobs.c.misfire,
                jobs.c.retry,
                jobs.c.next_run_at,
            )
            .where(jobs.c.next_run_at <= now)
            .order_by(jobs.c.next_run_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        if not due:
            return Claimed([], batch_full=False)

        forbidding = [row.id for row in due if row.concurrency == "forbid"]
        busy = _jobs_with_unfinished_runs(conn, forbidding) if forbidding else set()

        new_runs: list[dict[str, Any]] = []
        advances: list[dict[str, Any]] = []
        for row in due:
            plan = plan_due_slots(
                cached_schedule(row.schedule),
                row.next_run_at,
                now,
                misfire=row.misfire,
                grace_s=grace_s,
                forbid_overlap=row.concurrency == "forbid",
                has_unfinished_run=row.id in busy,
            )
            new_runs.extend(_run_row(row, planned, now) for planned in plan.runs)
            advances.append({"b_id": row.id, "b_next": plan.next_run_at, "b_enabled": not plan.exhausted})

        conn.execute(
            update(jobs)
            .where(jobs.c.id == bindparam("b_id"))
            .values(next_run_at=bindparam("b_next"), enabled=bindparam("b_enabled")),
            advances,
        )
        inserted = insert_runs(conn, new_runs)
        changes = _missed_alerts(conn, due, new_runs, now)
    queued = [(run_id, job) for run_id, status, job in inserted if status == RunStatus.QUEUED]
    return Claimed(
        [run_id for run_id, _ in queued],
        batch_full=len(due) >= batch,
        slots=len(inserted),
        alerts=changes,
        job_names=dict(queued),
    )


def _missed_alerts(
    conn: Connection, due: Sequence[Any], new_runs: list[dict[str, Any]], now: datetime
) -> list[AlertChange]:
    """Open ``job_missed`` for each job whose slots were missed (no scheduler ran within the grace)."""
    names = {row.id: row.name for row in due}
    missed: dict[int, int] = {}
    for run in new_runs:
        if run["missed_count"]:
            missed[run["job_id"]] = missed.get(run["job_id"], 0) + run["missed_count"]
    changes = []
    for job_id, count in missed.items():
        name = names[job_id]
        text = f"job {name} missed {count} slot(s): no scheduler claimed them within the misfire grace"
        change = open_alert(conn, AlertKind.JOB_MISSED, name, now, text, {"job": name, "missed": count})
        if change is not None:
            changes.append(change)
    return changes


def claim_due_retries(engine: Engine, now: datetime, *, batch: int) -> list[int]:
    """Move runs whose backoff has elapsed from ``retrying`` back to ``queued``; returns their ids."""
    with engine.begin() as conn:
        ids = list(
            conn.execute(
                select(runs.c.id)
                .where(runs.c.status == RunStatus.RETRYING, runs.c.next_attempt_at <= now)
                .order_by(runs.c.next_attempt_at)
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        if ids:
            conn.execute(
                update(runs)
                .where(runs.c.id.in_(ids), runs.c.status == RunStatus.RETRYING)
                .values(status=RunStatus.QUEUED, enqueued_at=now, next_attempt_at=None)
            )
    return ids


# Built once: this is the statement of every idle tick.
_NEXT_WAKEUP = select(
    select(func.min(jobs.c.next_run_at)).scalar_subquery().label("slot"),
    select(func.min(runs.c.next_attempt_at))
    .where(runs.c.status == RunStatus.RETRYING)
    .scalar_subquery()
    .label("retry"),
    NEXT_MISSION_WAKE.scalar_subquery().label("mission"),
)


def next_wakeup(engine: Engine) -> datetime | None:
    """The earliest instant anything becomes due: a job's slot, a run's retry or a mission's wake-up.

    One statement answered from three indexes: this is the whole cost of a tick with nothing due
    (DESIGN.md invariant 5). Beat passes an engine created with ``isolation_level="AUTOCOMMIT"``
    (see :func:`mission_control.db.engine.make_autocommit_engine`), so no transaction is opened.
    """
    with engine.connect() as conn:
        row = conn.execute(_NEXT_WAKEUP).one()
    candidates = [value for value in (row.slot, row.retry, row.mission) if value is not None]
    return min(candidates) if candidates else None


def create_manual_run(
    engine: Engine, job_name: str, now: datetime, *, audit: AuditEntry | None = None
) -> int | None:
    """Record a run of ``job_name`` for right now; None if there is no such job.

    ``audit``: the trigger is recorded (``run.trigger`` on the job) in the run's own transaction.

    Raises RunInProgress when the job forbids overlap and a run is unfinished, so a trigger button
    cannot start what the schedule itself would have skipped.
    """
    with engine.begin() as conn:
        job = conn.execute(
            select(jobs.c.id, jobs.c.name, jobs.c.service, jobs.c.concurrency, jobs.c.retry)
            .where(jobs.c.name == job_name)
            .with_for_update()
        ).first()
        if job is None:
            return None
        if job.concurrency == "forbid":
            unfinished = conn.execute(
                select(runs.c.id).where(runs.c.job_id == job.id, runs.c.status.in_(UNFINISHED)).limit(1)
            ).scalar()
            if unfinished is not None:
                raise RunInProgress(unfinished)
        planned = PlannedRun(now, RunStatus.QUEUED, Trigger.MANUAL)
        [(run_id, _, _)] = insert_runs(conn, [_run_row(job, planned, now)])
        write_audit(
            conn,
            audit,
            at=now,
            subject_kind="job",
            subject_name=job.name,
            service=job.service,
            after={"run_id": run_id, "trigger": Trigger.MANUAL.value},
        )
    return run_id


def insert_runs(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[tuple[int, str, str]]:
    """Insert run rows, ignoring any whose (job, slot) is already recorded; returns (id, status, job)."""
    if not rows:
        return []
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        dialect_insert(runs)
        .on_conflict_do_nothing(index_elements=[runs.c.job_id, runs.c.scheduled_for])
        .returning(runs.c.id, runs.c.status, runs.c.job_name)
    )
    return [(row.id, row.status, row.job_name) for row in conn.execute(statement, list(rows))]


def _jobs_with_unfinished_runs(conn: Connection, job_ids: list[int]) -> set[int]:
    return set(
        conn.execute(
            select(runs.c.job_id).distinct().where(runs.c.job_id.in_(job_ids), runs.c.status.in_(UNFINISHED))
        ).scalars()
    )


def _run_row(job: Any, planned: PlannedRun, now: datetime) -> dict[str, Any]:
    queued = planned.status is RunStatus.QUEUED
    return {
        "job_id": job.id,
        "job_name": job.name,
        "scheduled_for": planned.scheduled_for,
        "trigger": planned.trigger.value,
        "status": planned.status.value,
        "reason": planned.reason.value if planned.reason else None,
        "missed_count": planned.missed_count,
        "attempt_count": 0,
        "max_attempts": int(job.retry["max_attempts"]),
        "created_at": now,
        "enqueued_at": now if queued else None,
        "finished_at": None if queued else now,
        "slow": False,
    }
