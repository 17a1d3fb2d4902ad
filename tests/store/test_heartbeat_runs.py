"""Measured runs (issue 17): starts paired with their ends, overlapping runs by rid, service_hung.

On SQLite and PostgreSQL, with the clock injected: a run's duration, Healthchecks' pairing rules, a
run that hangs past max_runtime_s (found by the staleness check through the service's deadline), and
the alert resolving when that run ends, restarts, or a later run succeeds.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mission_control.db.alerts import AlertFilter, list_alerts
from mission_control.db.tables import heartbeat_runs
from mission_control.monitoring.services import ServiceConfig, ServiceRegistry
from tests.conftest import T0

CONFIG = ServiceConfig(interval_s=3600, grace_s=60, max_runtime_s=120)
RID_A = "0d7c2a55-1b7e-4c1e-9d61-3b7b0c6d9a01"
RID_B = "5f1a8e0e-9c0c-4ab8-8f5b-0a2a4d7e6c02"


@pytest.fixture
def registry(engine, clock):
    registry = ServiceRegistry(engine, clock, log_size=20)
    registry.put("backup", CONFIG)
    return registry


def signal(registry, status, rid=None, exit_code=None, message=None):
    return registry.record_heartbeat(
        "backup", status=status, message=message, truncated=False, rid=rid, exit_code=exit_code
    )


def hung_alerts(engine, state=None):
    found = list_alerts(engine, AlertFilter(kind="service_hung"))
    return [a for a in found if state is None or a["state"] == state]


def test_a_start_then_a_plain_success_records_the_duration(registry, clock):
    started = signal(registry, "start")
    assert started.service["open_runs"] == 1
    assert started.service["state"] == "new"  # a start is no proof of life
    assert started.service["last_seen_at"] is None
    clock.advance(42.5)
    ended = signal(registry, "ok")
    assert ended.duration_s == 42.5
    assert ended.service["open_runs"] == 0 and ended.service["state"] == "up"
    events = registry.events("backup")
    assert [(e["status"], e["duration_s"]) for e in events] == [("ok", 42.5), ("start", None)]


def test_runs_with_rids_overlap_and_pair_with_their_own_end(registry, clock):
    signal(registry, "start", rid=RID_A)
    clock.advance(10)
    signal(registry, "start", rid=RID_B)
    clock.advance(5)
    b = signal(registry, "ok", rid=RID_B)
    assert b.duration_s == 5 and b.service["open_runs"] == 1
    clock.advance(5)
    a = signal(registry, "fail", rid=RID_A, exit_code=3)
    assert a.duration_s == 20 and a.service["open_runs"] == 0
    assert a.service["state"] == "down"
    newest = registry.events("backup", limit=1)[0]
    assert (newest["rid"], newest["exit_code"], newest["duration_s"]) == (RID_A, 3, 20)


def test_an_end_without_rid_does_not_close_a_run_with_one(registry, clock):
    signal(registry, "start", rid=RID_A)
    clock.advance(3)
    plain = signal(registry, "ok")
    assert plain.duration_s is None and plain.service["open_runs"] == 1
    clock.advance(3)
    assert signal(registry, "ok", rid=RID_A).duration_s == 6


def test_an_end_with_an_unknown_rid_measures_nothing(registry, clock):
    signal(registry, "start")
    clock.advance(3)
    other = signal(registry, "ok", rid=RID_B)
    assert other.duration_s is None and other.service["open_runs"] == 1


def test_a_log_changes_no_state_and_no_run(registry, clock):
    signal(registry, "ok")
    before = registry.get("backup")
    clock.advance(30)
    logged = signal(registry, "log", message="50% done")
    assert logged.service["state"] == "up"
    assert logged.service["last_seen_at"] == before["last_seen_at"]
    assert logged.service["deadline_at"] == before["deadline_at"]
    assert registry.events("backup", limit=1)[0]["message"] == "50% done"


def test_a_run_past_max_runtime_opens_service_hung_which_its_end_resolves(engine, registry, clock):
    signal(registry, "ok")
    signal(registry, "start", rid=RID_A)
    row = registry.get("backup")
    assert row["deadline_at"] == T0 + timedelta(seconds=120)  # the run's, earlier than the heartbeat's

    clock.advance(119)
    assert registry.check_stale().examined == 0
    clock.advance(1)
    check = registry.check_stale()
    [opened] = check.changes
    assert (opened.kind, opened.subject, opened.event) == ("service_hung", "backup", "opened")
    assert check.flipped == {}  # the service itself is still up
    row = registry.get("backup")
    assert row["state"] == "up" and row["deadline_at"] == T0 + timedelta(seconds=3600)
    assert registry.check_stale().examined == 0  # a hung run is flagged once
    [alert] = hung_alerts(engine, "open")
    assert "run " + RID_A in alert["message"] and alert["details"]["rid"] == RID_A

    clock.advance(30)
    ended = signal(registry, "fail", rid=RID_A)
    assert ended.duration_s == 150
    assert [(c.kind, c.event) for c in ended.changes] == [
        ("service_down", "opened"),
        ("service_hung", "resolved"),
    ]
    assert hung_alerts(engine, "open") == []


def test_a_later_run_that_succeeds_resolves_service_hung(engine, registry, clock):
    signal(registry, "start", rid=RID_A)
    clock.advance(121)
    registry.check_stale()
    assert len(hung_alerts(engine, "open")) == 1
    signal(registry, "start", rid=RID_B)
    clock.advance(1)
    later = signal(registry, "ok", rid=RID_B)
    assert [(c.kind, c.event) for c in later.changes] == [("service_hung", "resolved")]
    assert later.service["open_runs"] == 0  # the hung run is over too
    assert hung_alerts(engine, "open") == []


def test_a_plain_success_after_a_hung_run_resolves_it(engine, registry, clock):
    signal(registry, "start")
    clock.advance(121)
    registry.check_stale()
    assert len(hung_alerts(engine, "open")) == 1
    later = signal(registry, "ok")
    assert later.duration_s == 121
    assert [(c.kind, c.event) for c in later.changes] == [("service_hung", "resolved")]


def test_two_hung_runs_are_one_alert_and_it_resolves_when_both_ended(engine, registry, clock):
    signal(registry, "start", rid=RID_A)
    signal(registry, "start", rid=RID_B)
    clock.advance(121)
    check = registry.check_stale()
    assert len(check.changes) == 1
    [alert] = hung_alerts(engine, "open")
    assert alert["occurrences"] == 2
    first = signal(registry, "fail", rid=RID_A)
    assert [c.kind for c in first.changes] == ["service_down"]  # RID_B still hangs
    assert len(hung_alerts(engine, "open")) == 1
    assert [(c.kind, c.event) for c in signal(registry, "fail", rid=RID_B).changes] == [
        ("service_hung", "resolved")
    ]
    assert hung_alerts(engine, "open") == []


def test_without_max_runtime_a_run_never_hangs(engine, registry, clock):
    registry.put("backup", ServiceConfig(interval_s=3600, grace_s=60))
    signal(registry, "ok")
    signal(registry, "start")
    assert registry.get("backup")["deadline_at"] == T0 + timedelta(seconds=3600)
    clock.advance(3000)
    assert registry.check_stale().examined == 0
    assert hung_alerts(engine) == []


def test_a_paused_service_never_hangs_and_pausing_resolves_service_hung(engine, registry, clock):
    signal(registry, "start")
    clock.advance(121)
    registry.check_stale()
    assert len(hung_alerts(engine, "open")) == 1
    registry.set_paused("backup", True)
    assert hung_alerts(engine, "open") == []
    signal(registry, "start", rid=RID_A)
    assert registry.get("backup")["deadline_at"] is None
    clock.advance(500)
    assert registry.check_stale().examined == 0


def test_starts_that_never_end_are_bounded(engine, registry, clock):
    for _ in range(105):
        signal(registry, "start", rid=str(uuid.uuid4()))
        clock.advance(1)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(heartbeat_runs)).scalar() == 100
    assert registry.get("backup")["open_runs"] == 100


def test_events_page_by_number_newest_first(registry, clock):
    for i in range(7):
        signal(registry, "log", message=f"m{i}")
    first = registry.events("backup", limit=3)
    assert [e["message"] for e in first] == ["m6", "m5", "m4"]
    rest = registry.events("backup", before=first[-1]["number"], limit=10)
    assert [e["message"] for e in rest] == ["m3", "m2", "m1", "m0"]


def test_a_plain_heartbeat_reusing_a_ring_slot_drops_the_older_event_s_run_columns(engine, clock):
    registry = ServiceRegistry(engine, clock, log_size=2)
    registry.put("backup", CONFIG)
    signal(registry, "start", rid=RID_A)
    signal(registry, "fail", rid=RID_A, exit_code=7)  # slots 1 and 0 hold run columns
    signal(registry, "ok")
    signal(registry, "ok")
    assert [(e["rid"], e["exit_code"], e["duration_s"]) for e in registry.events("backup")] == [
        (None, None, None),
        (None, None, None),
    ]


def test_the_beat_s_probe_finds_a_run_about_to_hang(engine, registry, clock):
    from mission_control.runtime.housekeeping import services_due

    signal(registry, "ok")
    signal(registry, "start")
    clock.advance(120)
    with engine.connect() as conn:
        assert services_due(conn, clock.now())  # beat sends check_services: the run's deadline is due


def test_service_hung_opens_and_resolves_notices_on_a_channel_routed_by_kind(engine, registry, clock):
    from mission_control.monitoring.notifications.notices import ChannelSpec, create_channel, route

    def spec(name, kinds):
        target = {"url": f"http://127.0.0.1:9/{name}"}
        return ChannelSpec(name, "webhook", target, kinds, "*", None, True)

    create_channel(engine, spec("hung-only", ["service_hung"]), clock.now())
    create_channel(engine, spec("down-only", ["service_down"]), clock.now())
    signal(registry, "start")
    clock.advance(121)
    [opened] = registry.check_stale().changes
    assert len(route(engine, [(opened.alert_id, opened.event)], clock.now())) == 1  # hung-only's
    [resolved] = signal(registry, "ok").changes
    assert (resolved.alert_id, resolved.event) == (opened.alert_id, "resolved")
    assert len(route(engine, [(resolved.alert_id, resolved.event)], clock.now())) == 1
