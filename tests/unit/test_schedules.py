"""Example-based tests for mission_control.base.schedules.

Every expected instant is a literal UTC datetime worked out by hand from the zone's rules; the
comment next to it says which local time it is and why.
"""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from mission_control.base.schedules import (
    CRON_ALIASES,
    CronSchedule,
    IntervalSchedule,
    OneShotSchedule,
    ScheduleError,
    load_timezone,
    parse_cron,
    schedule_from_dict,
    schedule_to_dict,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fire_times(schedule: CronSchedule | IntervalSchedule, after: datetime, count: int) -> list[datetime]:
    times = []
    for _ in range(count):
        following = schedule.next_after(after)
        assert following is not None
        times.append(following)
        after = following
    return times


# --------------------------------------------------------------------------- errors and zones


def test_schedule_error_is_a_value_error_that_names_the_field() -> None:
    error = ScheduleError("bad", "cron")
    assert isinstance(error, ValueError)
    assert (str(error), error.field) == ("bad", "cron")


def test_schedule_error_keeps_its_field_through_pickling() -> None:
    # Celery ships exceptions between processes by pickling them.
    error = pickle.loads(pickle.dumps(ScheduleError("bad timezone", "timezone")))
    assert (str(error), error.field) == ("bad timezone", "timezone")


def test_load_timezone_returns_the_iana_zone() -> None:
    assert load_timezone("Europe/Riga") == ZoneInfo("Europe/Riga")


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Mars/Olympus_Mons",
        "europe/riga",  # IANA names are case-sensitive
        "localtime",  # whatever the host is set to: two beat processes could disagree
        "posixrules",
        "Factory",
        "/etc/localtime",
        "/usr/share/zoneinfo/Europe/Riga",
        "../../etc/passwd",
        "Europe/../Europe/Riga",
        "America",  # a directory, not a zone
        "Europe/Riga ",
        "UTC\x00",
        "x" * 300,
    ],
)
def test_load_timezone_refuses_unknown_and_host_dependent_names(name: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        load_timezone(name)
    assert caught.value.field == "timezone"


@pytest.mark.parametrize("name", [None, 3, b"UTC"])
def test_load_timezone_refuses_non_strings(name: object) -> None:
    with pytest.raises(ScheduleError) as caught:
        load_timezone(name)  # type: ignore[arg-type]
    assert caught.value.field == "timezone"


def test_cron_with_unknown_timezone_is_rejected_on_the_timezone_field() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_cron("0 0 * * *", "Europe/Atlantis")
    assert caught.value.field == "timezone"


# --------------------------------------------------------------------------- cron parsing


def test_aliases_expand_to_the_usual_five_field_expressions() -> None:
    assert CRON_ALIASES == {
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    }


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("@yearly", utc(2026, 1, 1)),
        ("@annually", utc(2026, 1, 1)),
        ("@monthly", utc(2025, 2, 1)),
        ("@weekly", utc(2025, 1, 5)),  # 1 Jan 2025 is a Wednesday; the next Sunday is the 5th
        ("@daily", utc(2025, 1, 2)),
        ("@midnight", utc(2025, 1, 2)),
        ("@hourly", utc(2025, 1, 1, 13)),
    ],
)
def test_aliases_fire_like_their_expansion(alias: str, expected: datetime) -> None:
    schedule = parse_cron(alias, "UTC")
    assert schedule.expr == alias  # kept as the user wrote it
    assert schedule.next_after(utc(2025, 1, 1, 12, 0, 0)) == expected


def test_alias_is_evaluated_in_the_schedule_timezone() -> None:
    # Midnight in Riga in winter (EET, UTC+2) is 22:00 UTC the evening before.
    assert parse_cron("@daily", "Europe/Riga").next_after(utc(2025, 1, 1, 12)) == utc(2025, 1, 1, 22)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("@reboot", "reboot"),
        ("@fortnightly", "unknown cron alias"),
        ("", "5 fields"),
        ("   ", "5 fields"),
        ("0 0 * *", "5 fields"),
        ("0 0 0 * * *", "6-field"),  # seconds field
        ("0 0 0 * * * 2025", "7-field"),  # year field
        ("0 0 L * *", "'L'"),
        ("0 0 LW * *", "'L'"),
        ("0 0 15W * *", "'W'"),
        ("0 0 * * 5L", "'L'"),
        ("0 0 * * MON#2", "'#'"),
        ("0 0 ? * MON", "'\\?'"),
        ("60 * * * *", "outside 0-59"),
        ("0 24 * * *", "outside 0-23"),
        ("0 0 0 * *", "outside 1-31"),
        ("0 0 32 * *", "outside 1-31"),
        ("0 0 * 13 *", "outside 1-12"),
        ("0 0 * * 8", "outside 0-7"),
        ("5-1 * * * *", "backwards"),
        ("0 0 * * SAT-SUN", "backwards"),
        ("*/0 * * * *", "at least 1"),
        ("5/15 * * * *", "needs '\\*' or a range"),
        ("0 0 MON * *", "not a number"),
        ("0 0 * * FOO", "unknown value"),
        ("0 0 * JAN-FOO *", "unknown value"),
        ("1,,2 * * * *", "cannot parse"),
        ("*-5 * * * *", "cannot parse"),
        ("-1 * * * *", "cannot parse"),
        ("0 0 31 2 *", "never fire"),
        ("0 0 30 2 *", "never fire"),
        ("0 0 31 4,6,9,11 *", "never fire"),
        ("0 0 " + ",".join(["1"] * 130) + " * *", "longer than 256"),
    ],
)
def test_invalid_cron_expressions_are_rejected_on_the_cron_field(expr: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message) as caught:
        parse_cron(expr, "UTC")
    assert caught.value.field == "cron"


@pytest.mark.parametrize("expr", [None, 5, ["0", "0", "*", "*", "*"]])
def test_non_string_cron_is_rejected_on_the_cron_field(expr: object) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_cron(expr, "UTC")  # type: ignore[arg-type]
    assert caught.value.field == "cron"


@pytest.mark.parametrize(
    "expr",
    [
        "0 0 29 2 *",  # leap years only, but it does fire
        "0 0 31 2 1",  # both day fields restricted: Mondays in February OR the 31st
        "*/15 9-17 * * MON-FRI",
        "0 9 * jan-mar mon,wed,fri",
        "0-59/20 0-23/6 1-31/2 * 0-7/7",
        "  0 0 * * *  ",
        "5 4 * * 7",
    ],
)
def test_standard_expressions_are_accepted(expr: str) -> None:
    assert parse_cron(expr, "Europe/Riga").expr == expr


def test_cron_schedule_validates_when_built_directly() -> None:
    with pytest.raises(ScheduleError) as caught:
        CronSchedule("0 0 L * *", "UTC")
    assert caught.value.field == "cron"


def test_cron_schedules_compare_by_expression_and_timezone() -> None:
    assert parse_cron("0 0 * * *", "UTC") == CronSchedule("0 0 * * *", "UTC")
    assert parse_cron("0 0 * * *", "UTC") != CronSchedule("0 0 * * *", "Europe/Riga")
    assert len({parse_cron("@daily", "UTC"), parse_cron("@daily", "UTC")}) == 1


def test_cron_schedule_survives_pickling_and_replace() -> None:
    # Task queues pickle schedules; dataclasses.replace must re-derive the cached parse.
    schedule = parse_cron("30 3 * * *", "Europe/Riga")
    assert pickle.loads(pickle.dumps(schedule)).next_after(utc(2025, 1, 1)) == utc(2025, 1, 1, 1, 30)
    moved = dataclasses.replace(schedule, timezone="UTC")
    assert moved.next_after(utc(2025, 1, 1)) == utc(2025, 1, 1, 3, 30)


def test_cron_describe_uses_words_and_names_the_timezone() -> None:
    assert parse_cron("30 3 * * *", "Europe/Riga").describe() == "At 03:30 every day (Europe/Riga)"
    assert parse_cron("@hourly", "UTC").describe() == "At the start of every hour (UTC)"


# --------------------------------------------------------------------------- cron in UTC


def test_cron_next_is_strictly_after_even_when_after_is_a_fire_time() -> None:
    schedule = parse_cron("*/15 * * * *", "UTC")
    assert schedule.next_after(utc(2025, 1, 1, 12, 15)) == utc(2025, 1, 1, 12, 30)
    assert schedule.next_after(utc(2025, 1, 1, 12, 14, 59) + timedelta(microseconds=999_999)) == utc(
        2025, 1, 1, 12, 15
    )


def test_cron_results_are_whole_seconds_in_utc_whatever_the_input_zone() -> None:
    after = datetime(2025, 1, 1, 14, 7, 30, 500_000, tzinfo=timezone(timedelta(hours=2)))
    following = parse_cron("*/15 * * * *", "UTC").next_after(after)
    assert following == utc(2025, 1, 1, 12, 15)  # after is 12:07:30.5 UTC
    assert following is not None and following.tzinfo is UTC and following.microsecond == 0


def test_both_day_fields_restricted_means_either_may_match() -> None:
    # Debian/cronie rule: "10th OR Friday". From Sunday 1 June 2025: Fri 6th, Tue 10th, Fri 13th.
    assert fire_times(parse_cron("0 0 10 * 5", "UTC"), utc(2025, 6, 1), 3) == [
        utc(2025, 6, 6),
        utc(2025, 6, 10),
        utc(2025, 6, 13),
    ]


def test_a_day_field_starting_with_a_star_means_both_must_match() -> None:
    # "*/2" starts with '*', so it is AND-ed: odd days that are Fridays -> 13 and 27 June 2025.
    assert fire_times(parse_cron("0 0 */2 * FRI", "UTC"), utc(2025, 6, 1), 2) == [
        utc(2025, 6, 13),
        utc(2025, 6, 27),
    ]


def test_day_of_week_seven_is_sunday() -> None:
    assert parse_cron("0 0 * * 7", "UTC").next_after(utc(2025, 6, 2)) == utc(2025, 6, 8)  # Sunday


def test_one_value_range_with_a_step_means_that_value() -> None:
    # cronsim alone reads "0-0/1" as "0-23/1"; it must stay "hour 0 only".
    schedule = parse_cron("0 0-0/1 * * *", "UTC")
    assert fire_times(schedule, utc(2025, 1, 1), 2) == [utc(2025, 1, 2), utc(2025, 1, 3)]


def test_leap_day_schedule_waits_for_the_next_leap_year() -> None:
    assert parse_cron("0 0 29 2 *", "UTC").next_after(utc(2025, 1, 1)) == utc(2028, 2, 29)


def test_cron_with_no_fire_time_before_year_9999_returns_none() -> None:
    assert parse_cron("0 0 1 1 *", "UTC").next_after(datetime(9999, 6, 1, tzinfo=UTC)) is None


# --------------------------------------------------------------------------- naive input


@pytest.mark.parametrize(
    "schedule",
    [
        CronSchedule("0 0 * * *", "UTC"),
        CronSchedule("* * * * *", "Europe/Riga"),
        IntervalSchedule(60),
        OneShotSchedule(utc(2030, 1, 1)),
    ],
)
def test_next_after_refuses_naive_datetimes(
    schedule: CronSchedule | IntervalSchedule | OneShotSchedule,
) -> None:
    with pytest.raises(ValueError, match="naive"):
        schedule.next_after(datetime(2025, 1, 1))


# --------------------------------------------------------------------------- DST: Europe/Riga
# EET (UTC+2) / EEST (UTC+3). 2025: spring forward Sun 30 March 03:00 -> 04:00 local (01:00 UTC),
# fall back Sun 26 October 04:00 -> 03:00 local (01:00 UTC); 03:00-03:59 happens twice then.


def test_fixed_time_in_spring_gap_fires_right_after_the_gap_in_riga() -> None:
    schedule = parse_cron("30 3 * * *", "Europe/Riga")
    assert fire_times(schedule, utc(2025, 3, 29, 23, 0), 2) == [
        utc(2025, 3, 30, 1, 0),  # 03:30 does not exist: runs at 04:00 EEST, the first instant after the gap
        utc(2025, 3, 31, 0, 30),  # back to 03:30, now EEST
    ]


def test_fixed_time_matches_skipped_by_the_gap_coalesce_into_one_run() -> None:
    schedule = parse_cron("0,15,30,45 3 * * *", "Europe/Riga")
    assert fire_times(schedule, utc(2025, 3, 29, 23, 0), 2) == [
        utc(2025, 3, 30, 1, 0),  # 03:00, 03:15, 03:30 and 03:45 all skipped: one run at 04:00 EEST
        utc(2025, 3, 31, 0, 0),  # 03:00 EEST next day
    ]


def test_fixed_time_just_before_the_gap_still_gets_its_run() -> None:
    schedule = parse_cron("30 3 * * *", "Europe/Riga")
    # 02:59:59.5 EET, half a second before the clocks jump.
    assert schedule.next_after(utc(2025, 3, 30, 0, 59, 59) + timedelta(microseconds=500_000)) == utc(
        2025, 3, 30, 1, 0
    )
    # From the very instant of the jump the coalesced run is not "after" any more.
    assert schedule.next_after(utc(2025, 3, 30, 1, 0)) == utc(2025, 3, 31, 0, 30)


def test_wildcard_never_fires_in_the_spring_gap_in_riga() -> None:
    schedule = parse_cron("*/30 3 * * *", "Europe/Riga")
    # No 03:xx on 30 March; next is 03:00 EEST on the 31st.
    assert schedule.next_after(utc(2025, 3, 29, 23, 0)) == utc(2025, 3, 31, 0, 0)


def test_hourly_wildcard_follows_elapsed_time_across_the_spring_gap_in_riga() -> None:
    schedule = parse_cron("30 * * * *", "Europe/Riga")
    assert fire_times(schedule, utc(2025, 3, 30, 0, 0), 2) == [
        utc(2025, 3, 30, 0, 30),  # 02:30 EET
        utc(2025, 3, 30, 1, 30),  # 04:30 EEST: 03:30 never happened
    ]


def test_fixed_time_in_repeated_hour_fires_on_the_first_pass_only_in_riga() -> None:
    schedule = parse_cron("30 3 * * *", "Europe/Riga")
    assert fire_times(schedule, utc(2025, 10, 25, 22, 0), 2) == [
        utc(2025, 10, 26, 0, 30),  # 03:30 EEST, first pass
        utc(2025, 10, 27, 1, 30),  # 03:30 EET the next day; the second pass (01:30 UTC) is skipped
    ]


def test_fixed_time_asked_from_the_second_pass_does_not_return_the_first_pass() -> None:
    # 01:10 UTC on 26 Oct 2025 is 03:10 EET, the *second* 03:10 (fold=1). Re-attaching the
    # wall-clock match 03:30 with fold=0 gives 00:30 UTC, which is before `after`; cronsim
    # returns exactly that. The answer must be strictly later: 03:30 EET on the 27th.
    after = utc(2025, 10, 26, 1, 10)
    assert after.astimezone(ZoneInfo("Europe/Riga")).fold == 1
    assert parse_cron("30 3 * * *", "Europe/Riga").next_after(after) == utc(2025, 10, 27, 1, 30)


def test_fixed_time_later_in_the_day_is_unaffected_by_the_second_pass() -> None:
    # From 03:10 EET (second pass), 05:00 EET is the same day's run.
    assert parse_cron("0 5 * * *", "Europe/Riga").next_after(utc(2025, 10, 26, 1, 10)) == utc(
        2025, 10, 26, 3, 0
    )


def test_wildcard_in_repeated_hour_fires_on_both_passes_in_riga() -> None:
    schedule = parse_cron("*/30 3 * * *", "Europe/Riga")
    assert fire_times(schedule, utc(2025, 10, 25, 23, 50), 5) == [
        utc(2025, 10, 26, 0, 0),  # 03:00 EEST
        utc(2025, 10, 26, 0, 30),  # 03:30 EEST
        utc(2025, 10, 26, 1, 0),  # 03:00 EET, second pass
        utc(2025, 10, 26, 1, 30),  # 03:30 EET, second pass
        utc(2025, 10, 27, 1, 0),  # 03:00 EET next day
    ]


def test_hourly_wildcard_runs_every_real_hour_across_fall_back_in_riga() -> None:
    schedule = parse_cron("30 * * * *", "Europe/Riga")
    assert fire_times(schedule, utc(2025, 10, 26, 0, 0), 3) == [
        utc(2025, 10, 26, 0, 30),  # 03:30 EEST
        utc(2025, 10, 26, 1, 30),  # 03:30 EET
        utc(2025, 10, 26, 2, 30),  # 04:30 EET
    ]


# --------------------------------------------------------------------------- DST: America/New_York
# EST (UTC-5) / EDT (UTC-4). 2025: spring forward Sun 9 March 02:00 -> 03:00 local (07:00 UTC),
# fall back Sun 2 November 02:00 -> 01:00 local (06:00 UTC); 01:00-01:59 happens twice.


def test_fixed_time_in_spring_gap_fires_right_after_the_gap_in_new_york() -> None:
    schedule = parse_cron("30 2 * * *", "America/New_York")
    assert fire_times(schedule, utc(2025, 3, 9, 6, 0), 2) == [
        utc(2025, 3, 9, 7, 0),  # 02:30 does not exist: runs at 03:00 EDT
        utc(2025, 3, 10, 6, 30),  # 02:30 EDT next day
    ]


def test_wildcard_never_fires_in_the_spring_gap_in_new_york() -> None:
    schedule = parse_cron("*/20 2 * * *", "America/New_York")
    assert schedule.next_after(utc(2025, 3, 9, 6, 0)) == utc(2025, 3, 10, 6, 0)  # 02:00 EDT on the 10th


def test_fixed_time_in_repeated_hour_fires_on_the_first_pass_only_in_new_york() -> None:
    schedule = parse_cron("30 1 * * *", "America/New_York")
    assert fire_times(schedule, utc(2025, 11, 2, 4, 0), 2) == [
        utc(2025, 11, 2, 5, 30),  # 01:30 EDT, first pass
        utc(2025, 11, 3, 6, 30),  # 01:30 EST on the 3rd; 01:30 EST on the 2nd (06:30 UTC) is skipped
    ]


def test_fixed_time_asked_from_the_second_pass_in_new_york() -> None:
    after = utc(2025, 11, 2, 6, 20)  # 01:20 EST, second pass
    assert after.astimezone(ZoneInfo("America/New_York")).fold == 1
    assert parse_cron("30 1 * * *", "America/New_York").next_after(after) == utc(2025, 11, 3, 6, 30)


def test_wildcard_in_repeated_hour_fires_on_both_passes_in_new_york() -> None:
    schedule = parse_cron("15 * * * *", "America/New_York")
    assert fire_times(schedule, utc(2025, 11, 2, 5, 0), 3) == [
        utc(2025, 11, 2, 5, 15),  # 01:15 EDT
        utc(2025, 11, 2, 6, 15),  # 01:15 EST
        utc(2025, 11, 2, 7, 15),  # 02:15 EST
    ]


# --------------------------------------------------------------------------- DST: Australia/Adelaide
# ACST (UTC+9:30) / ACDT (UTC+10:30), southern hemisphere. 2025: fall back Sun 6 April
# 03:00 -> 02:00 local (16:30 UTC on the 5th); spring forward Sun 5 October 02:00 -> 03:00 local
# (16:30 UTC on the 4th).


def test_fixed_time_in_spring_gap_fires_right_after_the_gap_in_adelaide() -> None:
    schedule = parse_cron("30 2 * * *", "Australia/Adelaide")
    assert fire_times(schedule, utc(2025, 10, 4, 15, 0), 2) == [
        utc(2025, 10, 4, 16, 30),  # 02:30 skipped: runs at 03:00 ACDT
        utc(2025, 10, 5, 16, 0),  # 02:30 ACDT on the 6th
    ]


def test_wildcard_never_fires_in_the_spring_gap_in_adelaide() -> None:
    schedule = parse_cron("*/20 2 * * *", "Australia/Adelaide")
    assert schedule.next_after(utc(2025, 10, 4, 15, 0)) == utc(2025, 10, 5, 15, 30)  # 02:00 ACDT on the 6th


def test_fixed_time_in_repeated_hour_fires_on_the_first_pass_only_in_adelaide() -> None:
    schedule = parse_cron("30 2 * * *", "Australia/Adelaide")
    assert fire_times(schedule, utc(2025, 4, 5, 15, 0), 2) == [
        utc(2025, 4, 5, 16, 0),  # 02:30 ACDT, first pass
        utc(2025, 4, 6, 17, 0),  # 02:30 ACST on the 7th; the second pass (17:00 UTC on the 5th) is skipped
    ]


def test_wildcard_in_repeated_hour_fires_on_both_passes_in_adelaide() -> None:
    schedule = parse_cron("30 * * * *", "Australia/Adelaide")
    assert fire_times(schedule, utc(2025, 4, 5, 15, 30), 3) == [
        utc(2025, 4, 5, 16, 0),  # 02:30 ACDT
        utc(2025, 4, 5, 17, 0),  # 02:30 ACST, second pass
        utc(2025, 4, 5, 18, 0),  # 03:30 ACST
    ]


# --------------------------------------------------------------------------- DST: Australia/Lord_Howe
# LHST (UTC+10:30) / LHDT (UTC+11): a 30-minute shift. 2025: fall back Sun 6 April
# 02:00 -> 01:30 local (15:00 UTC on the 5th), so 01:30-01:59 happens twice; spring forward
# Sun 5 October 02:00 -> 02:30 local (15:30 UTC on the 4th), so 02:00-02:29 never happens.


def test_fixed_time_in_spring_gap_fires_right_after_the_gap_in_lord_howe() -> None:
    schedule = parse_cron("15 2 * * *", "Australia/Lord_Howe")
    assert fire_times(schedule, utc(2025, 10, 4, 15, 0), 2) == [
        utc(2025, 10, 4, 15, 30),  # 02:15 skipped: runs at 02:30 LHDT
        utc(2025, 10, 5, 15, 15),  # 02:15 LHDT on the 6th
    ]


def test_wildcard_skips_only_the_missing_half_hour_in_lord_howe() -> None:
    # cronsim alone answers 16:45 UTC here: it steps over 02:45, which does exist.
    schedule = parse_cron("45 * * * *", "Australia/Lord_Howe")
    assert fire_times(schedule, utc(2025, 10, 4, 15, 15), 2) == [
        utc(2025, 10, 4, 15, 45),  # 02:45 LHDT, right after the gap
        utc(2025, 10, 4, 16, 45),  # 03:45 LHDT
    ]
    # 02:15 falls in the gap, so the "15" job goes from 01:15 LHST straight to 03:15 LHDT.
    assert parse_cron("15 * * * *", "Australia/Lord_Howe").next_after(utc(2025, 10, 4, 14, 45)) == utc(
        2025, 10, 4, 16, 15
    )


def test_wildcard_minutes_of_a_half_skipped_hour_start_after_the_gap_in_lord_howe() -> None:
    schedule = parse_cron("* 2 * * *", "Australia/Lord_Howe")
    assert fire_times(schedule, utc(2025, 10, 4, 15, 0), 2) == [
        utc(2025, 10, 4, 15, 30),  # 02:30 LHDT, the first 02:xx that exists
        utc(2025, 10, 4, 15, 31),
    ]


def test_wildcard_after_the_spring_gap_stays_on_the_right_minutes_all_day_in_lord_howe() -> None:
    # cronsim alone answers 06:50 UTC (17:50): after the 30-minute jump it stays half an hour off.
    schedule = parse_cron("0,50 */17 * * *", "Australia/Lord_Howe")
    assert schedule.next_after(utc(2025, 10, 4, 15, 30)) == utc(2025, 10, 5, 6, 0)  # 17:00 LHDT


def test_fixed_time_in_repeated_half_hour_fires_on_the_first_pass_only_in_lord_howe() -> None:
    schedule = parse_cron("45 1 * * *", "Australia/Lord_Howe")
    assert fire_times(schedule, utc(2025, 4, 5, 14, 0), 2) == [
        utc(2025, 4, 5, 14, 45),  # 01:45 LHDT, first pass
        utc(2025, 4, 6, 15, 15),  # 01:45 LHST on the 7th; the second pass (15:15 UTC on the 5th) is skipped
    ]


def test_fixed_time_asked_from_the_second_pass_in_lord_howe() -> None:
    after = utc(2025, 4, 5, 15, 10)  # 01:40 LHST, second pass
    assert after.astimezone(ZoneInfo("Australia/Lord_Howe")).fold == 1
    assert parse_cron("50 1 * * *", "Australia/Lord_Howe").next_after(after) == utc(2025, 4, 6, 15, 20)


def test_wildcard_in_repeated_half_hour_fires_on_both_passes_in_lord_howe() -> None:
    # cronsim alone answers 16:15 UTC: it jumps over the second 01:45.
    schedule = parse_cron("45 * * * *", "Australia/Lord_Howe")
    assert fire_times(schedule, utc(2025, 4, 5, 14, 45), 2) == [
        utc(2025, 4, 5, 15, 15),  # 01:45 LHST, second pass
        utc(2025, 4, 5, 16, 15),  # 02:45 LHST
    ]


def test_wildcard_hour_after_fall_back_starts_on_the_hour_in_lord_howe() -> None:
    # cronsim alone answers 17:00 UTC (03:30 LHST): stepping by real hours from 01:00 LHDT lands
    # on half hours after the 30-minute fall-back.
    schedule = parse_cron("* 3 * * *", "Australia/Lord_Howe")
    assert schedule.next_after(utc(2025, 4, 5, 13, 0)) == utc(2025, 4, 5, 16, 30)  # 03:00 LHST


# --------------------------------------------------------------------------- intervals


def test_interval_slots_are_aligned_to_the_unix_epoch() -> None:
    # 1 Jan 2025 00:00 UTC is 1_735_689_600 s after the epoch = 7 * 247_955_657 + 1, so the
    # last 7-second slot was one second earlier and the next is 6 seconds later.
    assert IntervalSchedule(7).next_after(utc(2025, 1, 1)) == utc(2025, 1, 1, 0, 0, 6)


def test_interval_after_exactly_on_a_slot_returns_the_next_slot() -> None:
    assert IntervalSchedule(3600).next_after(utc(2025, 3, 30, 1, 0)) == utc(2025, 3, 30, 2, 0)


def test_interval_just_past_a_slot_waits_for_the_next_one() -> None:
    assert IntervalSchedule(60).next_after(utc(2025, 1, 1, 0, 1) + timedelta(microseconds=1)) == utc(
        2025, 1, 1, 0, 2
    )


def test_interval_ignores_dst_and_its_timezone() -> None:
    # Hourly in Riga across spring-forward: every real hour, same slots as in UTC.
    riga = IntervalSchedule(3600, "Europe/Riga")
    assert fire_times(riga, utc(2025, 3, 30, 0, 30), 3) == [
        utc(2025, 3, 30, 1, 0),
        utc(2025, 3, 30, 2, 0),
        utc(2025, 3, 30, 3, 0),
    ]
    assert riga.next_after(utc(2025, 3, 30, 0, 30)) == IntervalSchedule(3600).next_after(
        utc(2025, 3, 30, 0, 30)
    )


def test_interval_before_the_epoch_still_uses_epoch_slots() -> None:
    assert IntervalSchedule(3600).next_after(utc(1969, 12, 31, 22, 30)) == utc(1969, 12, 31, 23, 0)


@pytest.mark.parametrize(
    ("every_s", "words"),
    [
        (1, "every second"),
        (30, "every 30 seconds"),
        (60, "every minute"),
        (90, "every 90 seconds"),
        (300, "every 5 minutes"),
        (3600, "every hour"),
        (7200, "every 2 hours"),
        (5400, "every 90 minutes"),
        (86_400, "every day"),
        (172_800, "every 2 days"),
    ],
)
def test_interval_describe_uses_the_largest_whole_unit(every_s: int, words: str) -> None:
    assert IntervalSchedule(every_s).describe() == words


@pytest.mark.parametrize("every_s", [0, -1, 31_536_001, True, 1.5, "60", None])
def test_invalid_intervals_are_rejected_on_the_every_s_field(every_s: object) -> None:
    with pytest.raises(ScheduleError) as caught:
        IntervalSchedule(every_s)  # type: ignore[arg-type]
    assert caught.value.field == "every_s"
    with pytest.raises(ScheduleError) as caught:
        schedule_from_dict({"every_s": every_s})
    assert caught.value.field == "every_s"


def test_interval_of_a_year_is_the_longest_allowed() -> None:
    assert IntervalSchedule(31_536_000).every_s == 31_536_000


# --------------------------------------------------------------------------- one-shot


def test_one_shot_fires_once_at_its_instant() -> None:
    schedule = OneShotSchedule(utc(2025, 6, 1, 12))
    assert schedule.next_after(utc(2025, 6, 1, 11, 59, 59)) == utc(2025, 6, 1, 12)
    assert schedule.next_after(utc(2025, 6, 1, 12)) is None  # not strictly after
    assert schedule.next_after(utc(2025, 6, 2)) is None


def test_one_shot_is_stored_in_utc_whole_seconds() -> None:
    at = datetime(2025, 6, 1, 15, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=3)))
    assert OneShotSchedule(at).at == utc(2025, 6, 1, 12, 0, 0)  # rounded down, never early-by-rounding-up


def test_one_shot_refuses_a_naive_at() -> None:
    with pytest.raises(ScheduleError) as caught:
        OneShotSchedule(datetime(2025, 6, 1, 12))
    assert caught.value.field == "at"


def test_one_shot_describe_shows_local_time_with_offset_and_zone() -> None:
    schedule = OneShotSchedule(utc(2025, 10, 26, 0, 30), "Europe/Riga")
    assert schedule.describe() == "once at 2025-10-26 03:30:00+03:00 (Europe/Riga)"


# --------------------------------------------------------------------------- dict form


def test_schedule_from_dict_builds_each_kind_with_utc_by_default() -> None:
    assert schedule_from_dict({"cron": "0 0 * * *"}) == CronSchedule("0 0 * * *", "UTC")
    assert schedule_from_dict({"every_s": 60, "timezone": "Europe/Riga"}) == IntervalSchedule(
        60, "Europe/Riga"
    )
    assert schedule_from_dict({"at": "2025-06-01T12:00:00Z"}) == OneShotSchedule(utc(2025, 6, 1, 12))


def test_at_without_offset_is_wall_time_in_the_schedule_timezone() -> None:
    schedule = schedule_from_dict({"at": "2025-03-30T04:30:00", "timezone": "Europe/Riga"})
    assert schedule == OneShotSchedule(utc(2025, 3, 30, 1, 30), "Europe/Riga")  # 04:30 EEST


def test_at_naive_datetime_is_wall_time_in_the_schedule_timezone() -> None:
    schedule = schedule_from_dict({"at": datetime(2025, 7, 4, 9, 0), "timezone": "America/New_York"})
    assert isinstance(schedule, OneShotSchedule)
    assert schedule.at == utc(2025, 7, 4, 13, 0)  # 09:00 EDT


def test_ambiguous_at_means_the_first_occurrence() -> None:
    schedule = schedule_from_dict({"at": "2025-10-26T03:30:00", "timezone": "Europe/Riga"})
    assert isinstance(schedule, OneShotSchedule)
    assert schedule.at == utc(2025, 10, 26, 0, 30)  # 03:30 EEST, not 03:30 EET (01:30 UTC)


def test_at_in_a_dst_gap_is_rejected() -> None:
    with pytest.raises(ScheduleError, match="does not exist") as caught:
        schedule_from_dict({"at": "2025-03-30T03:30:00", "timezone": "Europe/Riga"})
    assert caught.value.field == "at"


def test_at_with_an_explicit_offset_keeps_its_instant() -> None:
    schedule = schedule_from_dict({"at": "2025-06-01T12:00:00+05:30", "timezone": "Europe/Riga"})
    assert isinstance(schedule, OneShotSchedule)
    assert schedule.at == utc(2025, 6, 1, 6, 30)


def test_at_is_rounded_down_to_whole_seconds() -> None:
    schedule = schedule_from_dict({"at": "2025-06-01T12:00:00.999999Z"})
    assert isinstance(schedule, OneShotSchedule)
    assert schedule.at == utc(2025, 6, 1, 12, 0, 0)


@pytest.mark.parametrize(
    "at", ["tomorrow", "2025-13-01T00:00:00", "", "2025-06-01T12:00:00 UTC", 1_700_000_000, None]
)
def test_unparsable_at_is_rejected_on_the_at_field(at: object) -> None:
    with pytest.raises(ScheduleError) as caught:
        schedule_from_dict({"at": at})
    assert caught.value.field == "at"


def test_a_date_is_not_a_datetime_for_at() -> None:
    with pytest.raises(ScheduleError) as caught:
        schedule_from_dict({"at": date(2025, 6, 1)})
    assert caught.value.field == "at"


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"timezone": "UTC"},
        {"cron": "0 0 * * *", "every_s": 60},
        {"cron": "0 0 * * *", "at": "2025-06-01T12:00:00Z"},
        {"cron": "0 0 * * *", "every_s": 60, "at": "2025-06-01T12:00:00Z"},
    ],
)
def test_spec_needs_exactly_one_kind_of_schedule(spec: dict[str, object]) -> None:
    with pytest.raises(ScheduleError) as caught:
        schedule_from_dict(spec)
    assert caught.value.field == ""


def test_unknown_keys_are_rejected_by_name() -> None:
    with pytest.raises(ScheduleError) as caught:
        schedule_from_dict({"cron": "0 0 * * *", "jitter_s": 5})
    assert caught.value.field == "jitter_s"


def test_non_mapping_spec_is_rejected() -> None:
    with pytest.raises(ScheduleError) as caught:
        schedule_from_dict(["cron", "0 0 * * *"])  # type: ignore[arg-type]
    assert caught.value.field == ""


@pytest.mark.parametrize("timezone_value", ["Nowhere/Special", "", None, 2])
def test_bad_timezone_in_spec_is_rejected_on_the_timezone_field(timezone_value: object) -> None:
    for spec in ({"cron": "0 0 * * *"}, {"every_s": 60}, {"at": "2025-06-01T12:00:00"}):
        with pytest.raises(ScheduleError) as caught:
            schedule_from_dict({**spec, "timezone": timezone_value})
        assert caught.value.field == "timezone"


def test_cron_errors_from_a_spec_point_at_the_cron_field() -> None:
    with pytest.raises(ScheduleError) as caught:
        schedule_from_dict({"cron": "0 0 * * * *", "timezone": "Europe/Riga"})
    assert caught.value.field == "cron"


def test_schedule_to_dict_writes_the_stored_form() -> None:
    assert schedule_to_dict(parse_cron("@daily", "Europe/Riga")) == {
        "cron": "@daily",
        "timezone": "Europe/Riga",
    }
    assert schedule_to_dict(IntervalSchedule(300)) == {"every_s": 300, "timezone": "UTC"}
    assert schedule_to_dict(OneShotSchedule(utc(2025, 3, 30, 1, 30), "Europe/Riga")) == {
        "at": "2025-03-30T01:30:00+00:00",
        "timezone": "Europe/Riga",
    }


def test_schedule_to_dict_round_trips_through_schedule_from_dict() -> None:
    for schedule in (
        parse_cron("*/5 9-17 * * MON-FRI", "America/New_York"),
        IntervalSchedule(90, "Asia/Kolkata"),
        OneShotSchedule(utc(2025, 10, 26, 1, 30), "Europe/Riga"),  # second-pass 03:30 survives as UTC
    ):
        assert schedule_from_dict(schedule_to_dict(schedule)) == schedule


def test_schedule_to_dict_refuses_other_objects() -> None:
    with pytest.raises(TypeError):
        schedule_to_dict("0 0 * * *")  # type: ignore[arg-type]
