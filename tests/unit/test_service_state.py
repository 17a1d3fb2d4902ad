"""The service state machine at the edges of interval and grace, cron schedules (DST included) and
fail thresholds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mission_control.monitoring.service_state import (
    Health,
    ServiceState,
    cron_schedule,
    expected_after,
    health_at,
)

SEEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float, **overrides):
    kwargs = {"last_seen_at": SEEN, "last_status": "ok", "interval_s": 60, "grace_s": 30, "paused": False}
    kwargs.update(overrides)
    return health_at(SEEN + timedelta(seconds=seconds), **kwargs)


@pytest.mark.parametrize(
    ("seconds", "state", "deadline_s"),
    [
        (0, ServiceState.UP, 60),
        (59.999, ServiceState.UP, 60),
        (60, ServiceState.LATE, 90),
        (89.999, ServiceState.LATE, 90),
        (90, ServiceState.DOWN, None),
        (86_400, ServiceState.DOWN, None),
    ],
)
def test_up_then_late_then_down(seconds, state, deadline_s):
    health = at(seconds)
    assert health.state == state
    expected = None if deadline_s is None else SEEN + timedelta(seconds=deadline_s)
    assert health.deadline_at == expected


def test_zero_grace_goes_straight_from_up_to_down():
    assert at(60, grace_s=0).state == ServiceState.DOWN


def test_a_fail_heartbeat_is_down_at_once_and_pause_wins_over_everything():
    assert at(0, last_status="fail").state == ServiceState.DOWN
    assert at(0, last_status="fail", paused=True).state == ServiceState.PAUSED
    assert at(10_000, paused=True).deadline_at is None


def test_a_service_never_heard_from_is_new_and_never_late():
    health = at(10**6, last_seen_at=None, last_status=None)
    assert health.state == ServiceState.NEW and health.deadline_at is None


# --- cron-scheduled services: Healthchecks' cron checks with the jobs' cronie DST rules ---------------

RIGA = ZoneInfo("Europe/Riga")


def riga(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=RIGA, fold=fold).astimezone(UTC)


def cron_health(cron: str, seen: datetime, now: datetime, grace_s: float = 900, **overrides):
    kwargs = {"last_seen_at": seen, "last_status": "ok", "interval_s": None, "grace_s": grace_s,
              "paused": False, "schedule": cron_schedule(cron, "Europe/Riga")}  # fmt: skip
    kwargs.update(overrides)
    return health_at(now, **kwargs)


def test_a_cron_service_is_due_at_the_first_instant_after_its_last_ping_then_late_for_its_grace():
    seen = riga(2026, 5, 10, 2, 31)  # the 02:30 run pinged a minute after its slot
    tomorrow = riga(2026, 5, 11, 2, 30)
    assert cron_health("30 2 * * *", seen, seen) == Health(ServiceState.UP, tomorrow)
    late = cron_health("30 2 * * *", seen, tomorrow)
    assert late == Health(ServiceState.LATE, tomorrow + timedelta(seconds=900))
    assert cron_health("30 2 * * *", seen, tomorrow + timedelta(seconds=900)).state == ServiceState.DOWN
    # A ping before its slot (a clock a little fast) still owes that slot, as in Healthchecks.
    early = riga(2026, 5, 10, 2, 29)
    assert cron_health("30 2 * * *", early, early).deadline_at == riga(2026, 5, 10, 2, 30)


def test_cron_02_30_across_both_riga_transitions_is_a_plain_wall_clock_time():
    # 2026-03-29 04:00 EEST follows 03:00 EET: 02:30 exists both days, 23 real hours apart.
    seen = riga(2026, 3, 29, 2, 31)
    assert seen == datetime(2026, 3, 29, 0, 31, tzinfo=UTC)
    assert expected_after(seen, interval_s=None, schedule=cron_schedule("30 2 * * *", "Europe/Riga")) == (
        datetime(2026, 3, 29, 23, 30, tzinfo=UTC)
    )
    seen = riga(2026, 10, 25, 2, 31)  # fall-back day: 02:30 happens once, before the repeated hour
    assert expected_after(seen, interval_s=None, schedule=cron_schedule("30 2 * * *", "Europe/Riga")) == (
        datetime(2026, 10, 26, 0, 30, tzinfo=UTC)
    )


def test_cron_03_30_skipped_by_spring_forward_is_expected_right_after_the_gap():
    # Riga skips 03:00-03:59 on 2026-03-29: cronie runs a fixed-time job at the first instant after.
    seen = riga(2026, 3, 28, 3, 31)
    after_gap = riga(2026, 3, 29, 4, 0)
    assert after_gap == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert cron_health("30 3 * * *", seen, seen) == Health(ServiceState.UP, after_gap)
    assert cron_health("30 3 * * *", seen, after_gap).state == ServiceState.LATE
    assert cron_health("30 3 * * *", seen, after_gap + timedelta(seconds=900)).state == ServiceState.DOWN


def test_cron_03_30_repeated_by_fall_back_is_expected_on_its_first_pass_only():
    first_pass = riga(2026, 10, 25, 3, 30)  # 03:30 EEST
    second_pass = riga(2026, 10, 25, 3, 30, fold=1)  # 03:30 EET, an hour later
    assert (first_pass, second_pass) == (
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    )
    before = riga(2026, 10, 24, 3, 31)
    assert cron_health("30 3 * * *", before, before).deadline_at == first_pass
    pinged = first_pass + timedelta(minutes=1)
    # The second pass owes nothing: next due the next day, still up an hour after the second pass.
    next_day = riga(2026, 10, 26, 3, 30)
    assert cron_health("30 3 * * *", pinged, second_pass + timedelta(hours=1)) == Health(
        ServiceState.UP, next_day
    )


def test_a_wildcard_cron_service_follows_elapsed_time_through_the_repeated_hour():
    # "*/30 * * * *" fires on both passes of the repeated hour, so a ping is owed on each.
    pinged = riga(2026, 10, 25, 3, 31)  # first pass, EEST
    assert cron_health("*/30 * * * *", pinged, pinged).deadline_at == riga(2026, 10, 25, 3, 0, fold=1)


# --- fail_threshold ---------------------------------------------------------------------------------


def test_failures_below_the_threshold_are_proof_of_life_and_the_threshold_makes_it_down():
    assert at(0, last_status="fail", fail_count=2, fail_threshold=3) == Health(
        ServiceState.UP, SEEN + timedelta(seconds=60)
    )
    assert at(0, last_status="fail", fail_count=3, fail_threshold=3).state == ServiceState.DOWN
    assert at(0, last_status="fail", fail_count=1, fail_threshold=1).state == ServiceState.DOWN
    # Below the threshold the silence still counts: late, then down, as after a success.
    assert at(90, last_status="fail", fail_count=1, fail_threshold=3).state == ServiceState.DOWN
