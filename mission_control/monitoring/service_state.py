"""A service's health as a pure function of its last heartbeat and ``now``.

Stored states change only through conditional UPDATEs (see :mod:`mission_control.monitoring.services`),
but what the state *should* be is decided here, once, so the heartbeat handler, the staleness check and
the dashboard can never disagree.

A service expects its heartbeats either every ``interval_s`` seconds or on a cron ``schedule`` (with
the jobs' cronie DST rules, :mod:`mission_control.base.schedules`); see :func:`expected_after`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mission_control.base.schedules import CronSchedule, cached_schedule


class ServiceState(StrEnum):
    NEW = "new"  # registered, never heard from: nothing to be late for yet
    UP = "up"  # beat within its interval
    LATE = "late"  # past its interval, within its grace
    DOWN = "down"  # past interval + grace, or said "fail" fail_threshold times in a row
    PAUSED = "paused"  # an operator silenced it


@dataclass(frozen=True)
class Health:
    state: ServiceState
    deadline_at: datetime | None  # when this state next changes by itself; None if only an event can


def cron_schedule(cron: str | None, timezone: str | None) -> CronSchedule | None:
    """The service's cron schedule (parsed once per process), or None for an interval service."""
    if cron is None:
        return None
    schedule = cached_schedule({"cron": cron, "timezone": timezone or "UTC"})
    assert isinstance(schedule, CronSchedule)
    return schedule


def expected_after(
    last_seen_at: datetime, *, interval_s: float | None, schedule: CronSchedule | None = None
) -> datetime | None:
    """When the heartbeat after one received at ``last_seen_at`` is expected.

    * An interval service: ``last_seen_at + interval_s``.
    * A cron service (Healthchecks' cron checks): the first scheduled instant strictly after
      ``last_seen_at``, walked with the jobs' cronie DST rules (a fixed time skipped by spring-forward
      is expected right after the gap, a repeated one on its first pass only). A ping answers the slot
      it follows, so a job scheduled at 02:30 that pings at 02:31 is next expected tomorrow at 02:30;
      one that pinged at 02:29 (before its slot) still owes the 02:30 slot.

    None only for a cron schedule with no instant left (cron never runs out; kept for the type).
    """
    if schedule is not None:
        return schedule.next_after(last_seen_at)
    assert interval_s is not None, "a service has an interval or a cron schedule"
    return last_seen_at + timedelta(seconds=interval_s)


def health_at(
    now: datetime,
    *,
    last_seen_at: datetime | None,
    last_status: str | None,
    interval_s: float | None,
    grace_s: float,
    paused: bool,
    schedule: CronSchedule | None = None,
    fail_count: int | None = None,
    fail_threshold: int = 1,
) -> Health:
    """The state at ``now`` and when it next changes by itself.

    Up until the expected heartbeat (:func:`expected_after` the last one), late for ``grace_s`` after
    it, then down. A ``fail`` heartbeat is down only once ``fail_count`` (consecutive failures, the
    last included; None: as many as needed) reaches ``fail_threshold``; a failure below the threshold
    is proof of life like a success.
    """
    if paused:
        return Health(ServiceState.PAUSED, None)
    if last_seen_at is None:
        return Health(ServiceState.NEW, None)
    if last_status == "fail" and (fail_count is None or fail_count >= fail_threshold):
        return Health(ServiceState.DOWN, None)
    due = expected_after(last_seen_at, interval_s=interval_s, schedule=schedule)
    if due is None:
        return Health(ServiceState.UP, None)
    if now < due:
        return Health(ServiceState.UP, due)
    down_at = due + timedelta(seconds=grace_s)
    if now < down_at:
        return Health(ServiceState.LATE, down_at)
    return Health(ServiceState.DOWN, None)


def is_early(now: datetime, *, expected_at: datetime | None, early_tolerance_s: float | None) -> bool:
    """Whether a heartbeat (``ok`` or ``fail``) received at ``now`` is too early (``service_early``).

    ``expected_at`` is when the service's previous heartbeat said the next one is due
    (:func:`expected_after` it): for an interval service the previous heartbeat + ``interval_s``; for
    a cron service the first scheduled instant after the previous heartbeat, so a second heartbeat
    for a slot already answered (a duplicated crontab line, a restart loop) is early until the next
    slot comes near. A heartbeat is early when it arrives more than ``early_tolerance_s`` before that:
    ``now < expected_at - early_tolerance_s``. Never early without a tolerance set or before the
    first heartbeat (nothing is expected yet). Starts and logs are never early.

    The alert resolves after a clean period: at the first heartbeat on time whose predecessor was on
    time too, i.e. once one whole interval (or slot) has passed without an early heartbeat
    (:func:`early_resolves`). The plain heartbeat's single SQL statement computes the same.
    """
    if early_tolerance_s is None or expected_at is None:
        return False
    return now < expected_at - timedelta(seconds=early_tolerance_s)


def early_resolves(*, early_at: datetime | None, previous_seen_at: datetime | None, early: bool) -> bool:
    """Whether a heartbeat ends an open ``service_early``: it is on time, and so was the one before it
    (the last early heartbeat, ``early_at``, came before the previous heartbeat)."""
    return not early and early_at is not None and previous_seen_at is not None and early_at < previous_seen_at
