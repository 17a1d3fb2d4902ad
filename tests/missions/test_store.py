"""The durable store's own duties: wake-ups under clock skew, retention, concurrent definition PUTs."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from mission_control.base.clock import FrozenClock
from mission_control.db.tables import mission_definitions, missions
from mission_control.missions import mission
from mission_control.missions.engine import advance_mission
from mission_control.missions.store import MissionNotFound, MissionStore
from mission_control.scheduling.wakeups import claim_due
from tests.conftest import T0


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, mission_databases: dict[str, Any]) -> Any:
    engine = mission_databases[request.param]
    yield engine
    with engine.begin() as conn:
        conn.execute(delete(missions))
        conn.execute(delete(mission_definitions))


def wake_at(db: Any, mission_id: str) -> Any:
    with db.connect() as conn:
        return conn.execute(select(missions.c.wake_at).where(missions.c.id == mission_id)).scalar()


def test_a_beat_whose_clock_runs_ahead_does_not_make_a_timer_late(db: Any) -> None:
    worker_clock = FrozenClock(T0)
    store = MissionStore(db, worker_clock, requeue_after_s=30)
    store.put_definition(mission("nap").sleep("nap", seconds=10).end())
    store.start("nap", {}, "m-skew")
    due = T0 + timedelta(seconds=10)
    assert wake_at(db, "m-skew") == due
    # The beat's clock is 5 ms ahead: it claims the mission, pushing wake_at 30 s on.
    assert claim_due(db, due + timedelta(milliseconds=5), batch=10, requeue_after_s=30) == ["m-skew"]
    assert wake_at(db, "m-skew") == due + timedelta(seconds=30, milliseconds=5)
    worker_clock.set(due - timedelta(milliseconds=5))  # the worker, 5 ms behind, finds nothing due
    assert advance_mission(store, None, "m-skew", owner="w", lease_margin_s=1) == "waiting"  # type: ignore[arg-type]
    assert wake_at(db, "m-skew") == due  # the real instant is back, not 30 s later


def test_finished_missions_are_pruned_after_the_retention_days(db: Any) -> None:
    clock = FrozenClock(T0)
    store = MissionStore(db, clock)
    store.put_definition(mission("quick").sleep("nap", seconds=0).end())
    store.put_definition(mission("slow").wait_for("forever").end())
    for i in range(3):
        store.start("quick", {}, f"done-{i}")
    store.start("slow", {}, "waiting")
    clock.advance(86_400 * 31)
    store.start("quick", {}, "recent")
    assert store.prune(clock.now(), max_age_days=30, batch=2) == 3
    store.get("waiting")  # unfinished missions are never pruned
    store.get("recent")
    with pytest.raises(MissionNotFound):
        store.get("done-0")


def test_concurrent_puts_of_new_versions_both_land(db: Any) -> None:
    store = MissionStore(db, FrozenClock(T0))
    results: list[int] = []

    def put(seconds: int) -> None:
        record, created = store.put_definition(mission("raced").sleep("nap", seconds=seconds).end())
        assert created
        results.append(record.version)

    threads = [threading.Thread(target=put, args=(s,)) for s in (1, 2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [1, 2, 3, 4]
