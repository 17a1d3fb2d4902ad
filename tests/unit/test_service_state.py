"""The service state machine at the edges of interval and grace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mission_control.monitoring.service_state import ServiceState, health_at

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
