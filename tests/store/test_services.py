"""Services, heartbeats, the staleness check and the alerts they open, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mission_control.db.alerts import AlertFilter, acknowledge, list_alerts, summarize
from mission_control.db.tables import alerts, heartbeats, service_flips
from mission_control.monitoring.services import ServiceConfig, ServiceNotFound, ServiceRegistry
from tests.conftest import T0

CONFIG = ServiceConfig(interval_s=60, grace_s=30)


@pytest.fixture
def registry(engine, clock):
    return ServiceRegistry(engine, clock, log_size=5)


def beat(registry, name="billing", status="ok", message=None, **kwargs):
    kwargs.setdefault("register", CONFIG)
    return registry.record_heartbeat(name, status=status, message=message, truncated=False, **kwargs)


def test_an_unknown_service_is_not_created_without_registration(registry):
    with pytest.raises(ServiceNotFound):
        registry.record_heartbeat("ghost", status="ok", message=None, truncated=False)
    assert registry.get("ghost") is None


def test_up_late_down_then_recovery_opens_and_resolves_one_alert(engine, registry, clock):
    result = beat(registry)
    assert result.created and result.service["state"] == "up"
    assert result.service["deadline_at"] == T0 + timedelta(seconds=60)

    clock.advance(59)
    assert registry.check_stale().examined == 0  # nothing due: the index is not even matched

    clock.advance(1)
    check = registry.check_stale()
    assert check.flipped == {"billing": "late"} and check.changes == []

    clock.advance(30)
    check = registry.check_stale()
    assert check.flipped == {"billing": "down"}
    [opened] = check.changes
    assert (opened.kind, opened.subject, opened.event) == ("service_down", "billing", "opened")
    assert registry.check_stale().examined == 0  # down has no deadline: checked once, not forever

    clock.advance(600)
    back = beat(registry)
    assert back.service["state"] == "up"
    [resolved] = back.changes
    assert (resolved.alert_id, resolved.event) == (opened.alert_id, "resolved")
    [alert] = list_alerts(engine, AlertFilter())
    assert alert["state"] == "resolved"
    assert alert["resolved_at"] - alert["opened_at"] == timedelta(seconds=600)
    assert [f["to_state"] for f in reversed(registry.flips(["billing"])["billing"])] == [
        "up",
        "late",
        "down",
        "up",
    ]


def test_a_fail_heartbeat_is_down_at_once_and_repeats_count_on_the_same_alert(engine, registry, clock):
    beat(registry)
    first = beat(registry, status="fail", message="disk full")
    assert first.service["state"] == "down"
    assert [c.event for c in first.changes] == ["opened"]
    clock.advance(5)
    again = beat(registry, status="fail", message="disk still full")
    assert again.changes == []  # still down: no new alert, no flip
    [alert] = list_alerts(engine, AlertFilter(state="open"))
    assert alert["kind"] == "service_down" and "disk full" in alert["message"]


def test_the_heartbeat_log_is_a_ring_of_fixed_size(engine, registry, clock):
    for i in range(12):
        clock.advance(1)
        beat(registry, message=f"beat {i}")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(heartbeats)).scalar() == 5
    recent = registry.recent_heartbeats(["billing"])["billing"]
    assert [h["message"] for h in recent] == [f"beat {i}" for i in (11, 10, 9, 8, 7)]
    assert registry.get("billing")["heartbeat_count"] == 12


def test_pause_silences_and_resume_recomputes(engine, registry, clock):
    beat(registry)
    clock.advance(200)
    registry.check_stale()
    assert registry.get("billing")["state"] == "down"

    paused = registry.set_paused("billing", True)
    assert paused["state"] == "paused" and paused["deadline_at"] is None
    assert list_alerts(engine, AlertFilter(state="unresolved")) == []  # pausing resolves service_down
    beat(registry)
    assert registry.get("billing")["state"] == "paused"  # a heartbeat does not unpause

    clock.advance(10)
    resumed = registry.set_paused("billing", False)
    assert resumed["state"] == "up"  # the heartbeat sent while paused counts


def test_reconfiguring_interval_moves_the_deadline(registry, clock):
    beat(registry)
    row, created = registry.put("billing", ServiceConfig(interval_s=300, grace_s=0))
    assert not created and row["deadline_at"] == T0 + timedelta(seconds=300)
    clock.advance(301)
    assert registry.check_stale().flipped == {"billing": "down"}


def test_tokens_are_stored_as_digests_and_name_their_service(engine, registry):
    registry.put("billing", CONFIG)
    token = registry.create_token("billing", label="cron on host-1").token
    assert token.startswith("mcs_") and len(token) > 40
    found = registry.tokens.lookup(token)
    assert found["service"] == "billing" and list(found["scopes"]) == ["heartbeats:write"]
    assert registry.tokens.lookup(token + "x") is None
    assert registry.tokens.lookup("not-a-token") is None
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT digest FROM api_tokens").scalars().all()
    assert token not in stored and len(stored[0]) == 64
    with pytest.raises(ServiceNotFound):
        registry.create_token("ghost")


def test_concurrent_checkers_flip_once_and_open_one_alert(backend_url, engine, clock):
    """Several checkers over the same due services: one flip per service, one alert per service."""
    from mission_control.db.engine import make_engine

    first = ServiceRegistry(engine, clock)
    for i in range(40):
        first.record_heartbeat(f"svc-{i:02d}", status="ok", message=None, truncated=False, register=CONFIG)
    clock.advance(120)  # all past interval + grace: straight to down

    engines = [make_engine(backend_url) for _ in range(4)]
    results = []
    barrier = threading.Barrier(len(engines))

    def check(e):
        barrier.wait()
        results.append(ServiceRegistry(e, clock).check_stale(batch=7))

    try:
        for _ in range(10):  # enough rounds for batches of 7 to cover 40 services
            threads = [threading.Thread(target=check, args=(e,)) for e in engines]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        for e in engines:
            e.dispose()

    flipped = [name for r in results for name in r.flipped]
    assert sorted(flipped) == [f"svc-{i:02d}" for i in range(40)]
    opened = [c for r in results for c in r.changes if c.event == "opened"]
    assert len(opened) == 40
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(alerts)).scalar() == 40
        assert (
            conn.execute(select(func.count()).select_from(service_flips)).scalar() == 80
        )  # new->up, up->down


def test_acknowledge_and_the_pattern_summary(engine, registry, clock):
    beat(registry)
    beat(registry, status="fail")
    [alert] = list_alerts(engine, AlertFilter())
    clock.advance(30)
    acked = acknowledge(engine, alert["id"], clock.now(), "looking into it")
    assert acked["state"] == "acknowledged" and acked["ack_comment"] == "looking into it"
    clock.advance(90)
    beat(registry)  # recovers: acknowledged alerts resolve too
    clock.advance(10)
    beat(registry, status="fail")  # a second incident, still open
    clock.advance(50)

    [pattern] = summarize(engine, clock.now())
    assert (pattern.kind, pattern.subject) == ("service_down", "billing")
    assert (pattern.alerts, pattern.resolved, pattern.unresolved) == (2, 1, 1)
    assert pattern.mean_time_to_recovery_s == 120
    assert pattern.total_open_s == 120 + 50
    assert acknowledge(engine, 10**9, clock.now(), None) is None


def test_prune_flips_keeps_the_newest_per_service(registry, clock):
    for name in ("a-svc", "b-svc"):
        for _ in range(3):
            beat(registry, name)
            beat(registry, name, status="fail")
    assert len(registry.flips(["a-svc"])["a-svc"]) == 6
    assert registry.prune_flips(keep_per_service=2) == 8
    assert [f["to_state"] for f in registry.flips(["a-svc"])["a-svc"]] == ["down", "up"]
    assert len(registry.flips(["b-svc"])["b-svc"]) == 2


def test_recent_heartbeats_of_many_services_come_in_one_read_newest_first(registry, clock):
    for i in range(4):
        clock.advance(1)
        beat(registry, "a-svc", message=f"a{i}")
        beat(registry, "b-svc", message=f"b{i}")
    newest = registry.recent_heartbeats(["a-svc", "b-svc", "silent"], limit=2)
    assert {name: [h["message"] for h in beats] for name, beats in newest.items()} == {
        "a-svc": ["a3", "a2"],
        "b-svc": ["b3", "b2"],
        "silent": [],
    }
