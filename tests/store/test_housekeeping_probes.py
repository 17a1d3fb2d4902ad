"""Housekeeping is sent only when its probe finds work, and a probe never misses work its task would do.

Each probe is checked against its task on SQLite and PostgreSQL: at every step of a service's life (up,
late, down, back) the services probe says "work" exactly when the staleness check has rows to examine;
the runs probe finds queued and running runs and nothing else; the alerts probe finds unresolved alerts.
Then the registry scheduler: an entry with no work is not sent but counts as run (the others still
come), and beat's idle ticks stay few (no registry read between its passes, no waking early to spin).
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from celery import Celery
from celery.beat import Scheduler
from sqlalchemy import insert

from mission_control.db.alerts import AlertKind, acknowledge, open_alert, resolve_alerts
from mission_control.db.tables import runs
from mission_control.monitoring.services import ServiceConfig, ServiceRegistry
from mission_control.runtime import beat, housekeeping
from mission_control.runtime.beat import RegistryScheduler
from mission_control.runtime.housekeeping import WhenDue, alerts_unresolved, runs_unfinished, services_due
from tests.conftest import T0


def _services_probe(engine, clock) -> bool:
    with engine.connect() as conn:
        return services_due(conn, clock.now())


def test_the_services_probe_finds_work_exactly_when_the_staleness_check_examines_rows(engine, clock):
    registry = ServiceRegistry(engine, clock)
    assert not _services_probe(engine, clock)  # no service at all
    registry.record_heartbeat(
        "billing",
        status="ok",
        message=None,
        truncated=False,
        register=ServiceConfig(interval_s=60, grace_s=30),
    )
    for step_s in (0, 59, 1, 29, 1, 600):  # up; still up; late; still late; down; down stays down
        clock.advance(step_s)
        probe = _services_probe(engine, clock)
        assert probe == (registry.check_stale().examined > 0), step_s
    registry.record_heartbeat("billing", status="ok", message=None, truncated=False)  # back up
    assert not _services_probe(engine, clock)
    clock.advance(60)
    assert _services_probe(engine, clock)


@pytest.mark.parametrize(
    ("status", "found"),
    [("queued", True), ("running", True), ("retrying", False), ("succeeded", False), ("failed", False)],
)
def test_the_runs_probe_finds_queued_and_running_runs_only(engine, clock, status, found):
    # The reconciler requeues overdue queued runs, flags late queued ones and recovers running ones
    # whose lease expired; retries are claimed by beat itself.
    with engine.begin() as conn:
        assert not runs_unfinished(conn, clock.now())
        conn.execute(
            insert(runs).values(
                job_name="billing.report",
                scheduled_for=T0,
                trigger="schedule",
                status=status,
                max_attempts=1,
                created_at=T0,
            )
        )
    with engine.connect() as conn:
        assert runs_unfinished(conn, clock.now()) is found


def test_the_alerts_probe_finds_open_and_acknowledged_alerts_not_resolved_ones(engine, clock):
    with engine.connect() as conn:
        assert not alerts_unresolved(conn, clock.now())
    with engine.begin() as conn:
        change = open_alert(conn, AlertKind.SERVICE_DOWN, "billing", clock.now(), "billing is down", {})
    assert change is not None
    with engine.connect() as conn:
        assert alerts_unresolved(conn, clock.now())
    acknowledge(engine, change.alert_id, clock.now(), "looking")
    with engine.connect() as conn:
        assert alerts_unresolved(conn, clock.now())
    with engine.begin() as conn:
        resolve_alerts(conn, [AlertKind.SERVICE_DOWN], "billing", clock.now() + timedelta(seconds=1))
    with engine.connect() as conn:
        assert not alerts_unresolved(conn, clock.now())


def _scheduler(beat_schedule: dict[str, dict[str, object]]) -> RegistryScheduler:
    """A registry scheduler with these housekeeping entries, on no database (its registry pass and
    sending are replaced by the tests)."""
    app = Celery("housekeeping-test", set_as_current=False)
    app.conf.result_expires = None
    app.conf.beat_schedule = beat_schedule
    runtime = SimpleNamespace(settings=SimpleNamespace(database_url="sqlite://"), engine=None)
    return RegistryScheduler(app=app, runtime=runtime)  # type: ignore[arg-type]


def test_a_due_entry_with_no_work_is_not_sent_yet_counts_as_run_and_the_others_still_run(monkeypatch):
    scheduler = _scheduler(
        {
            "check-services": {"task": "hk.check_services", "schedule": WhenDue(1.0, "services_due")},
            "reconcile-runs": {"task": "hk.reconcile", "schedule": WhenDue(5.0, "runs_unfinished")},
            "prune-runs": {"task": "hk.prune_runs", "schedule": 5.0},
        }
    )
    sent: list[str] = []
    scheduler.apply_async = lambda entry, *args, **kwargs: sent.append(entry.task)  # type: ignore[method-assign]
    monkeypatch.setattr(housekeeping, "work_found", lambda probe: probe == "runs_unfinished")
    long_ago = scheduler.app.now() - timedelta(hours=1)
    for entry in scheduler.schedule.values():
        entry.last_run_at = long_ago  # every entry is due
    scheduler._heap = None
    for _ in range(5):
        Scheduler.tick(scheduler)  # the housekeeping half of RegistryScheduler.tick
    assert sorted(sent) == ["hk.prune_runs", "hk.reconcile"]  # no service due: check_services not sent
    assert all(entry.last_run_at > long_ago for entry in scheduler.schedule.values())  # all counted as run


def test_ticks_between_registry_passes_do_not_read_the_registry(monkeypatch):
    scheduler = _scheduler({})
    passes: list[float] = []
    now = [1000.0]
    monkeypatch.setattr(beat, "time", SimpleNamespace(monotonic=lambda: now[0], perf_counter=lambda: 0.0))
    monkeypatch.setattr(scheduler, "tick_registry", lambda: passes.append(now[0]) or 0.5)
    monkeypatch.setattr(Scheduler, "tick", lambda self, *args, **kwargs: 0)  # Celery: "an entry went"
    assert [scheduler.tick() for _ in range(5)] == [0, 0, 0, 0, 0]
    assert passes == [1000.0]  # one pass: it asked for the next in 0.5 s
    monkeypatch.setattr(Scheduler, "tick", lambda self, *args, **kwargs: 2.0)  # nothing due for 2 s
    now[0] += 0.2
    assert scheduler.tick() == pytest.approx(0.3)  # sleeps until the registry's next pass, not 2 s
    now[0] += 0.3
    scheduler.tick()
    assert passes == [1000.0, 1000.5]


def test_beat_sleeps_until_a_housekeeping_entry_is_due_instead_of_waking_early_to_spin():
    assert _scheduler({}).adjust(0.004) == 0.004  # Celery's own would answer -0.006: tick again at once


def test_a_probe_that_fails_counts_as_work(monkeypatch):
    def broken(conn, now):
        raise RuntimeError("database unreachable")

    monkeypatch.setitem(housekeeping.PROBES, "services_due", broken)
    assert housekeeping.work_found("services_due") is True


def test_an_unknown_probe_is_refused_when_the_schedule_is_written():
    with pytest.raises(ValueError, match="unknown probe"):
        WhenDue(1.0, "services_overdue")
