"""The reconciler and retention, on SQLite and PostgreSQL, with a pinned clock."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from mission_control.db.tables import attempts, runs
from mission_control.jobs.history import prune_runs
from mission_control.jobs.registry import JobRegistry
from mission_control.scheduling.claiming import claim_due_slots, create_manual_run
from mission_control.scheduling.reconciler import reconcile
from tests.conftest import T0
from tests.factories import job_spec


def set_run(engine, run_id, **values):
    with engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(**values))


def get_run(engine, run_id):
    with engine.connect() as conn:
        return conn.execute(select(runs).where(runs.c.id == run_id)).one()


def test_queued_runs_whose_message_is_overdue_are_enqueued_again(engine, clock):
    JobRegistry(engine, clock).put(job_spec(concurrency="allow"))
    old = create_manual_run(engine, "nightly-report", T0)
    fresh = create_manual_run(engine, "nightly-report", T0 + timedelta(seconds=25))
    result = reconcile(engine, T0 + timedelta(seconds=31), requeue_after_s=30)
    assert result.requeue == [old]
    assert get_run(engine, old).enqueued_at == T0 + timedelta(seconds=31)
    assert (
        reconcile(engine, T0 + timedelta(seconds=32), requeue_after_s=30).requeue == []
    )  # not again at once
    assert fresh not in reconcile(engine, T0 + timedelta(seconds=50), requeue_after_s=30).requeue


def test_a_run_whose_lease_expired_is_retried_or_failed_worker_lost(engine, clock):
    JobRegistry(engine, clock).put(job_spec(concurrency="allow", retry={"max_attempts": 2}))
    retried = create_manual_run(engine, "nightly-report", T0)
    exhausted = create_manual_run(engine, "nightly-report", T0 + timedelta(seconds=1))
    live = create_manual_run(engine, "nightly-report", T0 + timedelta(seconds=2))
    for run_id, made in ((retried, 1), (exhausted, 2), (live, 1)):
        set_run(engine, run_id, status="running", attempt_count=made, lease_owner=f"w{run_id}")
        with engine.begin() as conn:
            conn.execute(
                attempts.insert().values(run_id=run_id, number=made, status="running", started_at=T0)
            )
    set_run(engine, retried, leased_until=T0 + timedelta(seconds=40))
    set_run(engine, exhausted, leased_until=T0 + timedelta(seconds=40))
    set_run(engine, live, leased_until=T0 + timedelta(seconds=90))

    result = reconcile(engine, T0 + timedelta(seconds=41), requeue_after_s=30)
    assert (result.retried, result.failed) == ([retried], [exhausted])
    assert (get_run(engine, retried).status, get_run(engine, retried).next_attempt_at) == (
        "retrying",
        T0 + timedelta(seconds=41),
    )
    assert (get_run(engine, exhausted).status, get_run(engine, exhausted).reason) == ("failed", "worker_lost")
    [alert] = result.alerts
    assert (alert.kind, alert.subject, alert.event) == ("job_failed", "nightly-report", "opened")
    assert get_run(engine, live).status == "running"
    with engine.connect() as conn:
        closed = conn.execute(
            select(attempts.c.run_id, attempts.c.error_class).order_by(attempts.c.run_id)
        ).all()
    assert [(row.run_id, row.error_class) for row in closed] == [
        (retried, "WorkerLost"),
        (exhausted, "WorkerLost"),
        (live, None),
    ]


def test_retention_prunes_old_and_surplus_finished_runs_but_never_unfinished_ones(engine, clock):
    JobRegistry(engine, clock).put(job_spec(schedule={"every_s": 60}, concurrency="allow"))
    for minute in range(1, 8):
        claim_due_slots(engine, T0 + timedelta(minutes=minute), batch=10, grace_s=15)
    with engine.connect() as conn:
        ids = list(conn.execute(select(runs.c.id).order_by(runs.c.id)).scalars())
    with engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id.in_(ids[:6])).values(status="succeeded", finished_at=T0))
        conn.execute(attempts.insert().values(run_id=ids[0], number=1, status="succeeded", started_at=T0))
        conn.execute(update(runs).where(runs.c.id == ids[0]).values(created_at=T0 - timedelta(days=40)))

    pruned = prune_runs(engine, T0 + timedelta(minutes=10), max_age_days=30, keep_per_job=3)
    with engine.connect() as conn:
        left = list(conn.execute(select(runs.c.id).order_by(runs.c.id)).scalars())
        orphans = conn.execute(select(attempts)).all()
    assert pruned == 3  # the 40-day-old one, then the oldest finished beyond the newest three
    assert left == ids[3:]  # three finished kept, the unfinished (queued) one kept
    assert orphans == []  # attempts go with their run


def test_a_scheduled_run_not_started_within_the_grace_opens_job_missed_once(engine, clock):
    from mission_control.scheduling.claiming import claim_due_slots

    JobRegistry(engine, clock).put(job_spec(schedule={"every_s": 60}))
    claim_due_slots(engine, T0 + timedelta(seconds=60), batch=10, grace_s=15)  # queued, nobody runs it
    assert reconcile(engine, T0 + timedelta(seconds=74), requeue_after_s=30, grace_s=15).alerts == []
    [missed] = reconcile(engine, T0 + timedelta(seconds=76), requeue_after_s=30, grace_s=15).alerts
    assert (missed.kind, missed.subject, missed.event) == ("job_missed", "nightly-report", "opened")
    assert reconcile(engine, T0 + timedelta(seconds=81), requeue_after_s=30, grace_s=15).alerts == []
