"""What to do with a job whose slot is due: the pure decision inside each scheduler tick.

Given the job's schedule and stored ``next_run_at``, and the instant ``now``, :func:`plan_due_slots`
says which runs to create (fired or skipped), and what ``next_run_at`` becomes. It reads no clock and no
database, so every policy here is tested as plain data.

A slot is *timely* while ``now - slot <= grace_s``: a scheduler that ticks every second and is merely
busy still fires each such slot, one run per slot, so a lagging beat loses nothing. Older slots were
missed while no scheduler ran; the job's misfire policy decides them: ``run_once`` fires one catch-up run
standing for all of them, ``skip`` records one skipped run counting them. Either way the run row says how
many slots it stands for (``missed_count``), so no slot vanishes silently and a day-long outage of a
one-second job still costs one row, not 86,400.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mission_control.base.schedules import IntervalSchedule, Schedule
from mission_control.jobs.runstate import Reason, RunStatus, Trigger

# Walking a cron schedule over a very long outage is capped; past it the count is a lower bound.
MAX_SLOTS_SCANNED = 100_000


@dataclass(frozen=True)
class PlannedRun:
    scheduled_for: datetime
    status: RunStatus  # QUEUED (to fire) or SKIPPED
    trigger: Trigger
    reason: Reason | None = None
    missed_count: int = 0


@dataclass(frozen=True)
class SlotPlan:
    runs: tuple[PlannedRun, ...]
    next_run_at: datetime | None
    exhausted: bool = field(default=False)  # nothing left to fire: a one-shot that has fired

    @property
    def fired(self) -> tuple[PlannedRun, ...]:
        return tuple(run for run in self.runs if run.status is RunStatus.QUEUED)


def plan_due_slots(
    schedule: Schedule,
    first_due: datetime,
    now: datetime,
    *,
    misfire: str,
    grace_s: float,
    forbid_overlap: bool,
    has_unfinished_run: bool,
) -> SlotPlan:
    """Decide the runs for every slot from ``first_due`` (the stored ``next_run_at``) up to ``now``."""
    due = _due_slots(schedule, first_due, now, cutoff=now - timedelta(seconds=grace_s))
    planned: list[PlannedRun] = []
    if due.late_count:
        assert due.first_late is not None and due.last_late is not None
        if misfire == "skip":
            planned.append(
                PlannedRun(
                    due.first_late, RunStatus.SKIPPED, Trigger.SCHEDULE, Reason.MISFIRE, due.late_count
                )
            )
        else:
            planned.append(
                PlannedRun(due.last_late, RunStatus.QUEUED, Trigger.CATCH_UP, missed_count=due.late_count)
            )
    planned.extend(PlannedRun(slot, RunStatus.QUEUED, Trigger.SCHEDULE) for slot in due.timely)
    if forbid_overlap:
        planned = _skip_overlaps(planned, busy=has_unfinished_run)
    return SlotPlan(tuple(planned), due.next_run_at, exhausted=due.next_run_at is None)


def _skip_overlaps(planned: list[PlannedRun], *, busy: bool) -> list[PlannedRun]:
    """Under ``forbid`` only one run may be unfinished: the first fire wins unless one already is."""
    result = []
    for run in planned:
        if run.status is RunStatus.QUEUED:
            if busy:
                run = PlannedRun(
                    run.scheduled_for, RunStatus.SKIPPED, run.trigger, Reason.OVERLAP, run.missed_count
                )
            busy = True
        result.append(run)
    return result


@dataclass(frozen=True)
class _DueSlots:
    late_count: int
    first_late: datetime | None
    last_late: datetime | None
    timely: list[datetime]
    next_run_at: datetime | None


def _due_slots(schedule: Schedule, first_due: datetime, now: datetime, *, cutoff: datetime) -> _DueSlots:
    """The slots in ``[first_due, now]``, split at ``cutoff`` into late (counted) and timely (listed).

    Only the timely ones are listed, and there are at most ``grace / period`` of them, so a long
    outage costs arithmetic (intervals) or a bounded walk (cron), never a list of every missed slot.
    """
    if first_due > now:
        return _DueSlots(0, None, None, [], first_due)
    if isinstance(schedule, IntervalSchedule):
        step = timedelta(seconds=schedule.every_s)
        count = (now - first_due) // step + 1
        late_count = 0 if first_due >= cutoff else min(count, -((first_due - cutoff) // step))
        return _DueSlots(
            late_count=late_count,
            first_late=first_due if late_count else None,
            last_late=first_due + step * (late_count - 1) if late_count else None,
            timely=[first_due + step * k for k in range(late_count, count)],
            next_run_at=first_due + step * count,
        )
    late_count, first_late, last_late, timely = 0, None, None, []
    slot: datetime | None = first_due
    scanned = 0
    while slot is not None and slot <= now:
        if slot < cutoff:
            late_count += 1
            first_late = first_late or slot
            last_late = slot
        else:
            timely.append(slot)
        scanned += 1
        if scanned >= MAX_SLOTS_SCANNED and slot < cutoff:
            # A walk this long means a months-long outage of a frequent cron job: stop counting
            # exactly and jump to the slots around now, which are all that decide what fires.
            slot = schedule.next_after(cutoff - timedelta(microseconds=1))
            continue
        slot = schedule.next_after(slot)
    return _DueSlots(late_count, first_late, last_late, timely, slot)
