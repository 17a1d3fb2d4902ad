"""The scheduler's per-job decision, as plain data: which runs a due job gets, and its next slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mission_control.base.schedules import CronSchedule, IntervalSchedule, OneShotSchedule
from mission_control.jobs.runstate import Reason, RunStatus, Trigger
from mission_control.jobs.slots import plan_due_slots

NOW = datetime(2026, 3, 1, 12, 0, 0, 300_000, tzinfo=UTC)
EVERY_SECOND = IntervalSchedule(1)
HOURLY = CronSchedule("0 * * * *", "UTC")


def plan(schedule, first_due, now=NOW, *, misfire="run_once", grace_s=15, forbid=False, busy=False):
    return plan_due_slots(
        schedule,
        first_due,
        now,
        misfire=misfire,
        grace_s=grace_s,
        forbid_overlap=forbid,
        has_unfinished_run=busy,
    )


def at(h: int, m: int = 0, s: int = 0) -> datetime:
    return datetime(2026, 3, 1, h, m, s, tzinfo=UTC)


def test_a_due_slot_fires_once_and_the_next_slot_follows():
    result = plan(HOURLY, at(12))
    assert [(r.scheduled_for, r.status, r.trigger) for r in result.runs] == [
        (at(12), RunStatus.QUEUED, Trigger.SCHEDULE)
    ]
    assert result.next_run_at == at(13)


def test_a_slot_not_yet_due_plans_nothing():
    result = plan(HOURLY, at(13))
    assert result.runs == ()
    assert result.next_run_at == at(13)


def test_a_lagging_scheduler_still_fires_every_timely_slot_individually():
    # A busy beat that last ticked 3 s ago: slots :57, :58, :59 and 12:00:00 are all within grace.
    result = plan(EVERY_SECOND, at(11, 59, 57))
    assert [r.scheduled_for for r in result.fired] == [at(11, 59, 57), at(11, 59, 58), at(11, 59, 59), at(12)]
    assert all(r.trigger is Trigger.SCHEDULE and r.missed_count == 0 for r in result.runs)
    assert result.next_run_at == at(12, 0, 1)


def test_run_once_fires_one_catch_up_for_slots_missed_while_no_beat_ran():
    # Beat was down from 09:30 to 12:00:00.3: slots 10:00, 11:00 are late; 12:00 is timely.
    result = plan(HOURLY, at(10))
    assert [(r.scheduled_for, r.status, r.trigger, r.missed_count) for r in result.runs] == [
        (at(11), RunStatus.QUEUED, Trigger.CATCH_UP, 2),
        (at(12), RunStatus.QUEUED, Trigger.SCHEDULE, 0),
    ]
    assert result.next_run_at == at(13)


def test_skip_records_the_missed_slots_as_one_skipped_run_and_moves_on():
    result = plan(HOURLY, at(10), misfire="skip")
    assert [(r.scheduled_for, r.status, r.reason, r.missed_count) for r in result.runs] == [
        (at(10), RunStatus.SKIPPED, Reason.MISFIRE, 2),
        (at(12), RunStatus.QUEUED, None, 0),
    ]


def test_a_two_minute_outage_of_a_one_second_job_costs_a_bounded_number_of_rows():
    result = plan(EVERY_SECOND, at(11, 58))
    # Now is 12:00:00.3, so the grace starts at 11:59:45.3: 11:58:00 .. 11:59:45 are late (106
    # slots, one catch-up run); 11:59:46 .. 12:00:00 are timely (15 runs).
    catch_up, *timely = result.runs
    assert (catch_up.trigger, catch_up.scheduled_for, catch_up.missed_count) == (
        Trigger.CATCH_UP,
        at(11, 59, 45),
        106,
    )
    assert [r.scheduled_for for r in timely] == [at(11, 59, 46) + timedelta(seconds=i) for i in range(15)]
    assert result.next_run_at == at(12, 0, 1)


def test_a_day_long_outage_is_counted_not_listed():
    result = plan(EVERY_SECOND, at(12) - timedelta(days=1), misfire="skip")
    skipped, *timely = result.runs
    assert skipped.missed_count + len(timely) == 86_401  # every slot from 12:00 yesterday to 12:00 today
    assert len(timely) == 15


def test_forbid_skips_a_slot_while_a_run_is_unfinished():
    result = plan(HOURLY, at(12), forbid=True, busy=True)
    assert [(r.status, r.reason) for r in result.runs] == [(RunStatus.SKIPPED, Reason.OVERLAP)]
    assert result.next_run_at == at(13)


def test_forbid_lets_only_the_first_of_several_due_slots_fire():
    result = plan(EVERY_SECOND, at(11, 59, 58), forbid=True)
    assert [(r.status, r.reason) for r in result.runs] == [
        (RunStatus.QUEUED, None),
        (RunStatus.SKIPPED, Reason.OVERLAP),
        (RunStatus.SKIPPED, Reason.OVERLAP),
    ]


def test_allow_fires_despite_an_unfinished_run():
    assert plan(HOURLY, at(12), forbid=False, busy=True).fired


def test_a_one_shot_fires_once_and_is_exhausted():
    result = plan(OneShotSchedule(at(12)), at(12))
    assert [r.scheduled_for for r in result.fired] == [at(12)]
    assert result.next_run_at is None
    assert result.exhausted


def test_a_late_one_shot_follows_the_misfire_policy():
    assert plan(OneShotSchedule(at(9)), at(9)).runs[0].trigger is Trigger.CATCH_UP
    skipped = plan(OneShotSchedule(at(9)), at(9), misfire="skip")
    assert [(r.status, r.reason) for r in skipped.runs] == [(RunStatus.SKIPPED, Reason.MISFIRE)]
    assert skipped.exhausted


def test_cron_slots_follow_the_timezone_across_a_dst_gap():
    # 02:30 Riga does not exist on 2026-03-29 (03:00 -> 04:00 EEST); cronie fires right after the gap.
    riga = CronSchedule("30 3 * * *", "Europe/Riga")
    gap_end = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 04:00 EEST
    result = plan(riga, gap_end, now=gap_end + timedelta(seconds=0.5))
    assert [r.scheduled_for for r in result.fired] == [gap_end]
    assert result.next_run_at == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)
