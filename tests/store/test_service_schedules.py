"""Cron-scheduled services and fail thresholds in the registry, on SQLite and PostgreSQL: the stored
deadline the staleness check walks is the cron slot's (cronie's DST rules), set by every heartbeat
path, and service_down waits for fail_threshold failures in a row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mission_control.db.alerts import AlertFilter, list_alerts
from mission_control.monitoring.services import ServiceConfig, ServiceRegistry

RIGA = ZoneInfo("Europe/Riga")
NIGHTLY = ServiceConfig(interval_s=None, grace_s=900, cron="30 3 * * *", timezone="Europe/Riga")


def riga(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=RIGA, fold=fold).astimezone(UTC)


@pytest.fixture
def registry(engine, clock):
    return ServiceRegistry(engine, clock, log_size=5)


def beat(registry, name="backup", status="ok", **kwargs):
    return registry.record_heartbeat(name, status=status, message=None, truncated=False, **kwargs)


@pytest.mark.parametrize("via", ["put", "heartbeat"])
def test_a_cron_service_skipped_by_spring_forward_is_late_after_the_gap_then_down(
    engine, registry, clock, via
):
    clock.set(riga(2026, 3, 28, 3, 31))
    if via == "put":
        registry.put("backup", NIGHTLY)
        beaten = beat(registry).service  # the plain heartbeat: one statement on PostgreSQL, plus one
    else:
        beaten = beat(registry, register=NIGHTLY).service
    after_gap = riga(2026, 3, 29, 4, 0)  # 03:30 does not exist on 2026-03-29 in Riga
    assert (beaten["state"], beaten["deadline_at"], beaten["expected_at"]) == ("up", after_gap, after_gap)
    assert registry.get("backup")["deadline_at"] == after_gap
    assert (registry.get("backup")["interval_s"], registry.get("backup")["schedule_cron"]) == (
        None,
        "30 3 * * *",
    )

    clock.set(after_gap - timedelta(seconds=1))
    assert registry.check_stale().examined == 0
    clock.set(after_gap)
    assert registry.check_stale().flipped == {"backup": "late"}
    clock.set(after_gap + timedelta(seconds=900))
    check = registry.check_stale()
    assert check.flipped == {"backup": "down"}
    [opened] = check.changes
    assert (opened.kind, opened.event) == ("service_down", "opened")

    clock.set(after_gap + timedelta(hours=2))
    back = beat(registry)
    assert back.service["state"] == "up" and [c.event for c in back.changes] == ["resolved"]
    assert registry.get("backup")["deadline_at"] == riga(2026, 3, 30, 3, 30)


def test_a_cron_service_owes_nothing_on_the_second_pass_of_a_repeated_hour(registry, clock):
    clock.set(riga(2026, 10, 25, 3, 31))  # first pass of 03:30 (EEST) just happened
    beat(registry, register=NIGHTLY)
    next_day = riga(2026, 10, 26, 3, 30)
    assert registry.get("backup")["deadline_at"] == next_day
    clock.set(riga(2026, 10, 25, 3, 59, fold=1) + timedelta(seconds=900))  # past the second pass + grace
    assert registry.check_stale().examined == 0
    assert registry.get("backup")["state"] == "up"


def test_switching_between_interval_and_cron_moves_the_deadline(registry, clock):
    clock.set(riga(2026, 5, 10, 12, 0))
    registry.put("backup", ServiceConfig(interval_s=60, grace_s=0))
    beat(registry)
    assert registry.get("backup")["deadline_at"] == clock.now() + timedelta(seconds=60)
    registry.put("backup", NIGHTLY)
    row = registry.get("backup")
    assert (row["deadline_at"], row["interval_s"], row["schedule_timezone"]) == (
        riga(2026, 5, 11, 3, 30),
        None,
        "Europe/Riga",
    )
    registry.put("backup", ServiceConfig(interval_s=120, grace_s=0))
    row = registry.get("backup")
    assert (row["deadline_at"], row["schedule_cron"]) == (clock.now() + timedelta(seconds=120), None)


@pytest.mark.parametrize("exit_codes", [False, True])
def test_service_down_waits_for_fail_threshold_failures_in_a_row(engine, registry, clock, exit_codes):
    registry.put("backup", ServiceConfig(interval_s=60, grace_s=30, fail_threshold=3))

    def fail():
        if exit_codes:
            return beat(registry, status="fail", exit_code=2)
        return beat(registry, status="fail")

    beat(registry)
    for _ in range(2):
        clock.advance(10)
        result = fail()
        assert result.service["state"] == "up" and result.changes == []
        assert result.service["deadline_at"] == clock.now() + timedelta(seconds=60)
    clock.advance(10)
    beat(registry)  # a success resets the count
    assert registry.get("backup")["fail_count"] == 0
    for _ in range(2):
        clock.advance(10)
        assert fail().service["state"] == "up"
    clock.advance(10)
    third = fail()
    assert third.service["state"] == "down" and third.service["fail_count"] == 3
    [opened] = third.changes
    assert opened.kind == "service_down"
    [alert] = list_alerts(engine, AlertFilter(state="open"))
    assert "3 times in a row" in alert["message"]
    clock.advance(10)
    assert [c.event for c in beat(registry).changes] == ["resolved"]


# --- too early: service_early -------------------------------------------------------------------------


def test_an_interval_heartbeat_before_its_tolerance_opens_service_early_and_a_clean_interval_resolves(
    engine, registry, clock
):
    registry.put("backup", ServiceConfig(interval_s=60, grace_s=30, early_tolerance_s=10))
    assert beat(registry).changes == []  # the first heartbeat: nothing was expected yet
    clock.advance(50)  # expected at 60, tolerance 10: on time
    assert beat(registry).changes == []
    clock.advance(49.9)  # more than 10 s before the next (due 60 s after the last)
    early = beat(registry)
    assert [(c.kind, c.event) for c in early.changes] == [("service_early", "opened")]
    assert early.service["state"] == "up"  # early is not down
    clock.advance(60)
    assert beat(registry).changes == []  # on time, but the one before it was early
    clock.advance(60)
    assert [(c.kind, c.event) for c in beat(registry).changes] == [("service_early", "resolved")]
    [alert] = list_alerts(engine, AlertFilter(kind="service_early"))
    assert alert["state"] == "resolved" and "more than 10 s before it was expected" in alert["message"]


def test_a_duplicate_crontab_line_is_early_for_a_cron_service(engine, registry, clock):
    registry.put("backup", ServiceConfig(interval_s=None, grace_s=900, cron="30 2 * * *",
                                         timezone="Europe/Riga", early_tolerance_s=300))  # fmt: skip
    clock.set(riga(2026, 5, 10, 2, 30, 5))
    assert beat(registry).changes == []
    clock.advance(1)  # the same slot answered twice: the next is expected tomorrow at 02:30
    [opened] = beat(registry).changes
    assert (opened.kind, opened.event) == ("service_early", "opened")
    clock.set(riga(2026, 5, 11, 2, 26))  # within the tolerance of tomorrow's slot: on time
    assert beat(registry).changes == []
    clock.set(riga(2026, 5, 12, 2, 30, 5))
    assert [(c.kind, c.event) for c in beat(registry).changes] == [("service_early", "resolved")]


def test_no_tolerance_no_early_and_pausing_resolves_it(engine, registry, clock):
    registry.put("backup", ServiceConfig(interval_s=60, grace_s=30))
    beat(registry)
    clock.advance(1)
    assert beat(registry).changes == []
    registry.put("backup", ServiceConfig(interval_s=60, grace_s=30, early_tolerance_s=5))
    clock.advance(1)
    assert [c.kind for c in beat(registry).changes] == ["service_early"]
    registry.set_paused("backup", True)
    [alert] = list_alerts(engine, AlertFilter(kind="service_early"))
    assert alert["state"] == "resolved"
