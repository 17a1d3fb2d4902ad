"""Claiming due slots in the database, on SQLite and PostgreSQL, with a pinned clock."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from mission_control.db.tables import jobs, runs
from mission_control.jobs.registry import JobRegistry
from mission_control.scheduling.claiming import (
    RunInProgress,
    claim_due_retries,
    claim_due_slots,
    create_manual_run,
    next_wakeup,
)
from tests.conftest import T0
from tests.factories import job_spec


@pytest.fixture
def registry(engine, clock) -> JobRegistry:
    return JobRegistry(engine, clock)


def claim(engine, now, batch=1000, grace_s=15):
    return claim_due_slots(engine, now, batch=batch, grace_s=grace_s)


def all_runs(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(runs).order_by(runs.c.scheduled_for, runs.c.id)).all()


def test_a_due_slot_becomes_one_queued_run_and_the_job_moves_to_its_next_slot(engine, registry):
    registry.put(job_spec(schedule={"every_s": 60}))  # first slot 12:01
    assert claim(engine, T0 + timedelta(seconds=59)).run_ids == []

    claimed = claim(engine, T0 + timedelta(seconds=60.2))
    [run] = all_runs(engine)
    assert claimed.run_ids == [run.id]
    assert (run.status, run.trigger, run.scheduled_for) == ("queued", "schedule", T0 + timedelta(minutes=1))
    assert run.enqueued_at == T0 + timedelta(seconds=60.2)
    assert run.max_attempts == 3
    assert registry.get("nightly-report").next_run_at == T0 + timedelta(minutes=2)

    assert claim(engine, T0 + timedelta(seconds=61)).run_ids == []  # the same slot is never claimed twice


def test_the_batch_limit_caps_one_claim_and_says_so(engine, registry):
    for index in range(5):
        registry.put(job_spec(f"job-{index}", schedule={"every_s": 60}))
    first = claim(engine, T0 + timedelta(seconds=61), batch=3)
    assert len(first.run_ids) == 3 and first.batch_full
    second = claim(engine, T0 + timedelta(seconds=61), batch=3)
    assert len(second.run_ids) == 2 and not second.batch_full


def test_forbid_records_the_overlapping_slot_as_skipped(engine, registry):
    registry.put(job_spec(schedule={"every_s": 60}, concurrency="forbid"))
    claim(engine, T0 + timedelta(seconds=60))
    claimed = claim(engine, T0 + timedelta(seconds=120))  # the first run is still queued
    assert claimed.run_ids == []
    assert [(r.status, r.reason) for r in all_runs(engine)] == [("queued", None), ("skipped", "overlap")]


def test_allow_fires_despite_an_unfinished_run(engine, registry):
    registry.put(job_spec(schedule={"every_s": 60}, concurrency="allow"))
    claim(engine, T0 + timedelta(seconds=60))
    assert len(claim(engine, T0 + timedelta(seconds=120)).run_ids) == 1


def test_misfire_run_once_fires_one_catch_up_that_counts_the_missed_slots(engine, registry):
    registry.put(job_spec(schedule={"every_s": 60}, misfire="run_once"))
    claimed = claim(engine, T0 + timedelta(minutes=10, seconds=30))  # beat was down for ten minutes
    [catch_up] = all_runs(engine)
    assert claimed.run_ids == [catch_up.id]
    assert (catch_up.trigger, catch_up.missed_count) == ("catch_up", 10)
    assert catch_up.scheduled_for == T0 + timedelta(minutes=10)


def test_misfire_skip_records_the_missed_slots_as_skipped(engine, registry):
    registry.put(job_spec(schedule={"every_s": 60}, misfire="skip"))
    assert claim(engine, T0 + timedelta(minutes=10, seconds=30)).run_ids == []
    [skipped] = all_runs(engine)
    assert (skipped.status, skipped.reason, skipped.missed_count) == ("skipped", "misfire", 10)
    assert skipped.finished_at == T0 + timedelta(minutes=10, seconds=30)


def test_a_paused_job_fires_nothing_and_resumes_at_its_next_slot(engine, registry, clock):
    registry.put(job_spec(schedule={"every_s": 60}))
    registry.set_enabled("nightly-report", False)
    assert claim(engine, T0 + timedelta(minutes=5)).run_ids == []
    clock.set(T0 + timedelta(minutes=5, seconds=10))
    registry.set_enabled("nightly-report", True)
    assert claim(engine, T0 + timedelta(minutes=5, seconds=30)).run_ids == []
    assert len(claim(engine, T0 + timedelta(minutes=6)).run_ids) == 1
    assert [r.scheduled_for for r in all_runs(engine)] == [T0 + timedelta(minutes=6)]


def test_a_one_shot_fires_once_and_disables_itself(engine, registry):
    registry.put(job_spec(schedule={"at": (T0 + timedelta(minutes=1)).isoformat()}))
    assert len(claim(engine, T0 + timedelta(minutes=1)).run_ids) == 1
    record = registry.get("nightly-report")
    assert record.next_run_at is None
    assert not record.spec.enabled
    assert claim(engine, T0 + timedelta(days=1)).run_ids == []


def test_retries_due_return_to_the_queue_once(engine, registry):
    registry.put(job_spec(schedule={"every_s": 60}))
    [run_id] = claim(engine, T0 + timedelta(minutes=1)).run_ids
    with engine.begin() as conn:
        conn.execute(
            update(runs).values(status="retrying", next_attempt_at=T0 + timedelta(minutes=1, seconds=4))
        )
    assert claim_due_retries(engine, T0 + timedelta(minutes=1, seconds=3), batch=100) == []
    assert claim_due_retries(engine, T0 + timedelta(minutes=1, seconds=4), batch=100) == [run_id]
    assert claim_due_retries(engine, T0 + timedelta(minutes=1, seconds=5), batch=100) == []
    assert all_runs(engine)[0].status == "queued"


def test_next_wakeup_reads_outside_any_transaction_on_its_autocommit_engine(engine, registry):
    from mission_control.db.engine import make_autocommit_engine

    registry.put(job_spec(schedule={"every_s": 60}))
    peek = make_autocommit_engine(engine.url.render_as_string(hide_password=False))
    try:
        assert next_wakeup(peek) == T0 + timedelta(minutes=1)
        # A writer is not blocked by the reader (SQLite would block on a held BEGIN IMMEDIATE).
        with engine.begin() as conn:
            conn.execute(update(jobs).values(next_run_at=T0 + timedelta(minutes=2)))
        assert next_wakeup(peek) == T0 + timedelta(minutes=2)
    finally:
        peek.dispose()


def test_next_wakeup_is_the_earliest_slot_or_retry(engine, registry):
    assert next_wakeup(engine) is None
    registry.put(job_spec(schedule={"every_s": 60}))
    assert next_wakeup(engine) == T0 + timedelta(minutes=1)
    claim(engine, T0 + timedelta(minutes=1))
    with engine.begin() as conn:
        conn.execute(update(runs).values(status="retrying", next_attempt_at=T0 + timedelta(seconds=70)))
    assert next_wakeup(engine) == T0 + timedelta(seconds=70)


def test_a_manual_run_is_recorded_for_now_and_respects_forbid(engine, registry):
    registry.put(job_spec(schedule={"every_s": 3600}, concurrency="forbid"))
    run_id = create_manual_run(engine, "nightly-report", T0)
    [run] = all_runs(engine)
    assert (run.id, run.trigger, run.status, run.scheduled_for) == (run_id, "manual", "queued", T0)
    with pytest.raises(RunInProgress):
        create_manual_run(engine, "nightly-report", T0 + timedelta(seconds=1))
    assert create_manual_run(engine, "missing", T0) is None


def test_concurrent_claimers_record_each_slot_exactly_once(engine, registry):
    for index in range(40):
        registry.put(job_spec(f"job-{index:02d}", schedule={"every_s": 1}, concurrency="allow"))
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def beat(offset_ms: int) -> None:
        try:
            start.wait(timeout=10)
            for second in range(1, 31):
                claim(engine, T0 + timedelta(seconds=second, milliseconds=offset_ms), batch=7)
                claim(engine, T0 + timedelta(seconds=second, milliseconds=offset_ms), batch=7)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=beat, args=(offset,)) for offset in (0, 100, 200, 300)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    # Drain what any beat left behind, then count: every job, every second 1..30, exactly once.
    for _ in range(20):
        claim(engine, T0 + timedelta(seconds=30, milliseconds=400), batch=1000)
    slots = [(r.job_name, r.scheduled_for) for r in all_runs(engine)]
    assert len(slots) == len(set(slots))
    expected = {(f"job-{i:02d}", T0 + timedelta(seconds=s)) for i in range(40) for s in range(1, 31)}
    assert set(slots) == expected
    with engine.connect() as conn:
        assert set(conn.execute(select(jobs.c.next_run_at)).scalars()) == {T0 + timedelta(seconds=31)}


def test_missed_slots_open_one_job_missed_alert_per_job(engine, registry):
    from mission_control.db.alerts import AlertFilter, list_alerts

    registry.put(job_spec("catch-up", schedule={"every_s": 60}, misfire="run_once"))
    registry.put(job_spec("skipper", schedule={"every_s": 60}, misfire="skip"))
    registry.put(job_spec("on-time", schedule={"every_s": 3600}))
    claimed = claim(engine, T0 + timedelta(minutes=10, seconds=30))
    assert sorted((c.kind, c.subject, c.event) for c in claimed.alerts) == [
        ("job_missed", "catch-up", "opened"),
        ("job_missed", "skipper", "opened"),
    ]
    [alert] = list_alerts(engine, AlertFilter(subject="skipper"))
    assert alert["details"] == {"job": "skipper", "missed": 10}
    assert claim(engine, T0 + timedelta(minutes=10, seconds=31)).alerts == []  # on time again: nothing
