"""The registry's contract, run against SQLite and a real PostgreSQL (the `engine` fixture is both)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from mission_control.base.clock import FrozenClock
from mission_control.db.tables import jobs
from mission_control.jobs.registry import JobExists, JobNotFound, JobRegistry
from mission_control.jobs.spec import SpecError
from tests.conftest import T0
from tests.factories import job_spec


@pytest.fixture
def registry(engine, clock) -> JobRegistry:
    return JobRegistry(engine, clock)


def test_put_creates_then_replaces_and_says_which(registry):
    record, created = registry.put(job_spec())
    assert created
    assert record.revision == 1

    changed, created = registry.put(job_spec(timeout_s=45))
    assert not created
    assert changed.id == record.id
    assert changed.revision == 2
    assert registry.get("nightly-report").spec.timeout_s == 45


def test_put_of_the_stored_spec_changes_nothing(registry, clock):
    first, _ = registry.put(job_spec())
    clock.advance(3600)
    again, created = registry.put(job_spec())
    assert not created
    assert again == first  # same revision, same updated_at, same next_run_at


def test_first_slot_is_the_next_one_after_now_in_the_jobs_timezone(registry):
    record, _ = registry.put(job_spec(schedule={"cron": "30 2 * * *", "timezone": "Europe/Riga"}))
    # T0 is 2026-03-01 12:00 UTC = 14:00 in Riga (EET, UTC+2); next 02:30 Riga is 00:30 UTC on Mar 2.
    assert record.next_run_at == datetime(2026, 3, 2, 0, 30, tzinfo=UTC)


def test_reregistering_an_unchanged_schedule_keeps_the_next_slot(registry, clock):
    record, _ = registry.put(job_spec(schedule={"every_s": 3600}))
    clock.advance(7200)  # the stored slot is now in the past: the scheduler owns it, not the registry
    changed, _ = registry.put(job_spec(schedule={"every_s": 3600}, timeout_s=5))
    assert changed.revision == 2
    assert changed.next_run_at == record.next_run_at


def test_changing_the_schedule_recomputes_the_next_slot_from_now(registry, clock):
    registry.put(job_spec(schedule={"every_s": 3600}))
    clock.set(T0 + timedelta(minutes=10))
    changed, _ = registry.put(job_spec(schedule={"every_s": 60}))
    assert changed.next_run_at == T0 + timedelta(minutes=11)


def test_pausing_clears_the_next_slot_and_resuming_picks_the_next_one_after_now(registry, clock):
    registry.put(job_spec(schedule={"every_s": 300}))
    paused = registry.set_enabled("nightly-report", False)
    assert not paused.spec.enabled
    assert paused.next_run_at is None

    clock.set(T0 + timedelta(minutes=17))
    resumed = registry.set_enabled("nightly-report", True)
    assert resumed.spec.enabled
    assert resumed.next_run_at == T0 + timedelta(minutes=20)  # no catch-up of the missed slots


def test_a_paused_job_registered_as_disabled_has_no_slot(registry):
    record, _ = registry.put(job_spec(enabled=False))
    assert record.next_run_at is None


def test_create_refuses_a_taken_name(registry):
    registry.create(job_spec())
    with pytest.raises(JobExists):
        registry.create(job_spec(timeout_s=3))
    assert registry.get("nightly-report").spec.timeout_s == 20


def test_the_database_enforces_unique_names(registry, engine):
    registry.put(job_spec())
    row = {key: value for key, value in _row(engine, "nightly-report").items() if key != "id"}
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(jobs).values(row))


def test_unknown_names_raise_not_found(registry):
    with pytest.raises(JobNotFound):
        registry.get("nope")
    with pytest.raises(JobNotFound):
        registry.delete("nope")
    with pytest.raises(JobNotFound):
        registry.set_enabled("nope", False)


def test_delete_removes_the_job(registry):
    registry.put(job_spec())
    registry.delete("nightly-report")
    with pytest.raises(JobNotFound):
        registry.get("nightly-report")


def test_list_filters_by_service_and_state_and_pages_by_name(registry):
    for name, service in [
        ("c-job", "billing"),
        ("a-job", "billing"),
        ("b-job", "search"),
        ("d-job", "billing"),
    ]:
        registry.put(job_spec(name, service=service))
    registry.set_enabled("d-job", False)

    assert [r.name for r in registry.list()] == ["a-job", "b-job", "c-job", "d-job"]
    assert [r.name for r in registry.list(service="billing")] == ["a-job", "c-job", "d-job"]
    assert [r.name for r in registry.list(service="billing", enabled=True)] == ["a-job", "c-job"]
    assert [r.name for r in registry.list(enabled=False)] == ["d-job"]
    assert [r.name for r in registry.list(limit=2)] == ["a-job", "b-job"]
    assert [r.name for r in registry.list(after="b-job", limit=2)] == ["c-job", "d-job"]


def test_a_one_shot_in_the_past_is_refused_unless_it_is_the_stored_one(registry, clock):
    at = (T0 + timedelta(hours=1)).isoformat()
    record, _ = registry.put(job_spec(schedule={"at": at}))
    assert record.next_run_at == T0 + timedelta(hours=1)

    clock.advance(2 * 3600)
    same, created = registry.put(job_spec(schedule={"at": at}, timeout_s=7))  # a redeploy: still fine
    assert not created and same.spec.timeout_s == 7

    with pytest.raises(SpecError) as excinfo:
        registry.put(job_spec(schedule={"at": (T0 + timedelta(minutes=90)).isoformat()}))
    assert excinfo.value.field == "schedule.at"
    with pytest.raises(SpecError):
        registry.create(job_spec("other", schedule={"at": at}))


def test_a_failed_change_writes_nothing(registry):
    registry.put(job_spec())

    def explode(record):
        raise RuntimeError("validation failed")

    with pytest.raises(RuntimeError):
        registry.update("nightly-report", explode)
    assert registry.get("nightly-report").revision == 1


def test_timestamps_come_back_as_aware_utc(registry, engine):
    registry.put(job_spec())
    row = _row(engine, "nightly-report")
    for column in ("created_at", "updated_at", "next_run_at"):
        assert row[column].tzinfo is not None
        assert row[column].utcoffset() == timedelta(0)
    assert row["created_at"] == T0


def test_naive_datetimes_are_never_stored(engine):
    from sqlalchemy import update

    with pytest.raises(Exception, match="naive"), engine.begin() as conn:
        conn.execute(update(jobs).values(next_run_at=datetime(2026, 1, 1)))


def test_concurrent_registrations_of_one_new_name_create_one_job(engine):
    clock = FrozenClock(T0)
    registries = [JobRegistry(engine, clock) for _ in range(8)]
    outcomes: list[bool] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(registries))

    def register(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            _, created = registries[index].put(job_spec(timeout_s=10 + index))
            outcomes.append(created)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(len(registries))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(outcomes) == [False] * 7 + [True]
    with engine.connect() as conn:
        assert len(conn.execute(select(jobs.c.id)).all()) == 1


def _row(engine, name: str) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(jobs).where(jobs.c.name == name)).one()._mapping)
