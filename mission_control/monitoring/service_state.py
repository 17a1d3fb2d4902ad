"""A service's health as a pure function of its last heartbeat and ``now``.

Stored states change only through conditional UPDATEs (see :mod:`mission_control.monitoring.services`),
but what the state *should* be is decided here, once, so the heartbeat handler, the staleness check and
the dashboard can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class ServiceState(StrEnum):
    NEW = "new"  # registered, never heard from: nothing to be late for yet
    UP = "up"  # beat within its interval
    LATE = "late"  # past its interval, within its grace
    DOWN = "down"  # past interval + grace, or said "fail"
    PAUSED = "paused"  # an operator silenced it


@dataclass(frozen=True)
class Health:
    state: ServiceState
    deadline_at: datetime | None  # when this state next changes by itself; None if only an event can


def health_at(
    now: datetime,
    *,
    last_seen_at: datetime | None,
    last_status: str | None,
    interval_s: float,
    grace_s: float,
    paused: bool,
) -> Health:
    if paused:
        return Health(ServiceState.PAUSED, None)
    if last_seen_at is None:
        return Health(ServiceState.NEW, None)
    if last_status == "fail":
        return Health(ServiceState.DOWN, None)
    due = last_seen_at + timedelta(seconds=interval_s)
    if now < due:
        return Health(ServiceState.UP, due)
    down_at = due + timedelta(seconds=grace_s)
    if now < down_at:
        return Health(ServiceState.LATE, down_at)
    return Health(ServiceState.DOWN, None)
