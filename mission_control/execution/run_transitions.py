"""The executor's hot run transitions, built once at import; on PostgreSQL one statement each.

Parameters are named ``p_<name>`` (a bare column name is reserved in SET clauses); :func:`params`
builds them.

A run costs the database two statements on PostgreSQL: one that claims it (lease the run, close an
attempt a dead worker left open, open the new attempt, and return the job's spec) and one that
records the attempt's end and the run's next state. PostgreSQL runs data-modifying CTEs of one
statement against one snapshot, so each transition stays atomic without a round trip per table.
The general claim in :mod:`mission_control.execution.executor` (SELECT, then conditional UPDATEs) handles
everything the one-statement claim declines: duplicates, paused or deleted jobs, and any other backend.
"""

from __future__ import annotations

from sqlalchemy import Interval, and_, bindparam, func, literal, literal_column, or_, select, update
from sqlalchemy.sql import Select, Update

from mission_control.db.tables import alerts, attempts, jobs, runs
from mission_control.db.types import UTCDateTime
from mission_control.jobs.registry import spec_columns
from mission_control.jobs.runstate import AttemptStatus, RunStatus, Trigger


def params(**values: object) -> dict[str, object]:
    """Statement parameters from plain names."""
    return {f"p_{name}": value for name, value in values.items()}


_NOW = bindparam("p_now", type_=UTCDateTime())
_ONE_SECOND = literal_column("interval '1 second'", type_=Interval())


def _build_claim() -> Select:
    """Lease a claimable run of a live job and open its next attempt; returns nothing otherwise."""
    claimed = (
        update(runs)
        .where(
            runs.c.id == bindparam("p_run_id"),
            runs.c.job_id == jobs.c.id,
            or_(
                runs.c.status == RunStatus.QUEUED.value,
                and_(runs.c.status == RunStatus.RUNNING.value, runs.c.leased_until < _NOW),
            ),
            or_(jobs.c.paused_at.is_(None), runs.c.trigger == Trigger.MANUAL.value),
        )
        .values(
            status=RunStatus.RUNNING.value,
            lease_owner=bindparam("p_lease_owner"),
            leased_until=_NOW + (jobs.c.timeout_s + bindparam("p_lease_margin_s")) * _ONE_SECOND,
            attempt_count=runs.c.attempt_count + 1,
            started_at=func.coalesce(runs.c.started_at, _NOW),
            next_attempt_at=None,
        )
        .returning(
            runs.c.id,
            runs.c.job_name,
            runs.c.trigger,
            runs.c.scheduled_for,
            runs.c.attempt_count,
            runs.c.max_attempts,
            runs.c.started_at,
            *spec_columns("spec_"),
        )
        .cte("claimed")
    )
    # Attempts a dead worker left open (the lease had expired). Same snapshot as the insert below,
    # so the attempt opened here is not among them.
    closed = (
        update(attempts)
        .where(attempts.c.run_id == claimed.c.id, attempts.c.status == AttemptStatus.RUNNING.value)
        .values(
            status=AttemptStatus.FAILED.value,
            finished_at=_NOW,
            error_class="WorkerLost",
            error_message="the worker running this attempt stopped before it finished",
        )
        .cte("closed")
    )
    opened = (
        attempts.insert()
        .from_select(
            ["run_id", "number", "status", "started_at", "worker"],
            select(
                claimed.c.id,
                claimed.c.attempt_count,
                literal(AttemptStatus.RUNNING.value),
                _NOW,
                bindparam("p_worker"),
            ).where(claimed.c.attempt_count <= claimed.c.max_attempts),
        )
        .cte("opened")
    )
    return select(claimed).add_cte(closed, opened)


_OWNED = and_(
    runs.c.id == bindparam("p_run_id"),
    runs.c.status == RunStatus.RUNNING.value,
    runs.c.lease_owner == bindparam("p_lease_owner"),
)

FINISH_ATTEMPT: Update = (
    update(attempts)
    .where(attempts.c.run_id == bindparam("p_run_id"), attempts.c.number == bindparam("p_attempt"))
    .values(
        status=bindparam("p_attempt_status"),
        finished_at=_NOW,
        duration_ms=bindparam("p_duration_ms"),
        http_status=bindparam("p_http_status"),
        response_headers=bindparam("p_response_headers"),
        response_excerpt=bindparam("p_response_excerpt"),
        response_truncated=bindparam("p_response_truncated"),
        error_class=bindparam("p_error_class"),
        error_message=bindparam("p_error_message"),
    )
)
"""Record how an attempt ended (by run and attempt number)."""

FINISH_RUN: Update = (
    update(runs)
    .where(_OWNED)
    .values(
        status=bindparam("p_status"),
        reason=bindparam("p_reason"),
        finished_at=bindparam("p_finished_at", type_=UTCDateTime()),
        next_attempt_at=bindparam("p_next_attempt_at", type_=UTCDateTime()),
        error=bindparam("p_error"),
        lease_owner=None,
        leased_until=None,
        http_status=bindparam("p_http_status"),
        slow=runs.c.slow | bindparam("p_slow"),
    )
)
"""Move the run on after an attempt, only while that attempt still holds the lease."""

FINISH_IN_ONE: Update = FINISH_RUN.add_cte(FINISH_ATTEMPT.cte("attempt_done")).returning(
    # Whether the job has an unresolved alert a success could resolve: answered by the same statement
    # (an index probe), so a healthy job's success costs no second round trip.
    select(alerts.c.id)
    .where(
        alerts.c.subject == runs.c.job_name,
        alerts.c.kind.in_(("job_failed", "job_slow", "job_missed")),
        alerts.c.state.in_(("open", "acknowledged")),
    )
    .exists()
    .label("alerting")
)
"""PostgreSQL: both of the above in one statement (the same parameters), returning ``alerting``."""

CLAIM_IN_ONE: Select = _build_claim()
"""PostgreSQL: lease a claimable run of a live job, close a lost attempt, open the next one."""
