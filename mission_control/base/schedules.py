"""When a job fires: the pure part of the scheduler.

Everything here is a function of its arguments. The current instant is always handed in
(``next_after(after)``), never read, so the beat process, the API and the tests all get the same
answer for the same question, and a test can pin any instant without sleeping.

Cron expressions are parsed and walked by cronsim; this module decides what we accept and owns
the daylight-saving semantics, because cronsim's tz-aware mode is not safe to use as-is:

* Users expect cronie/vixie cron behaviour. A *fixed-time* job (neither the minute nor the hour
  field starts with ``*``) is about a wall-clock time: if spring-forward skips that time the job
  runs once, at the first instant after the gap; if fall-back repeats it, the job runs on the
  first pass only. A *wildcard* job is about elapsed time: it fires whenever the local wall clock
  matches, so on both passes of a repeated hour and never inside a gap.
* For fixed-time jobs cronsim walks the naive wall clock and re-attaches the zone with ``fold=0``.
  When ``after`` lies in the second pass of a repeated hour that can yield an instant *before*
  ``after``; we keep walking until the result is strictly later.
* For wildcard jobs cronsim jumps by "wall-clock minutes to the target" measured in real time,
  which assumes every offset change is a whole number of hours. In Australia/Lord_Howe (a
  30-minute shift) it lands on the wrong half hour: ``45 * * * *`` skips the second 01:45 at
  fall-back and the 02:45 right after spring-forward, and ``* 3 * * *`` on fall-back day first
  fires at 03:30 instead of 03:00. We therefore use cronsim only on naive wall-clock times and do
  the zone arithmetic ourselves, one constant-offset stretch at a time.
"""

from __future__ import annotations

import dataclasses
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from cronsim import CronSim, CronSimError

__all__ = [
    "CRON_ALIASES",
    "CronSchedule",
    "IntervalSchedule",
    "OneShotSchedule",
    "Schedule",
    "ScheduleError",
    "cached_schedule",
    "load_timezone",
    "parse_cron",
    "schedule_from_dict",
    "schedule_to_dict",
]


class ScheduleError(ValueError):
    """Invalid schedule; ``.field`` names the offending key so an API can point at it.

    ``field`` is ``'cron'``, ``'timezone'``, ``'every_s'``, ``'at'``, an unknown key's name, or
    ``''`` when the problem is the shape of the whole spec.
    """

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __reduce__(self) -> tuple[type[ScheduleError], tuple[str, str]]:
        # Task queues pickle exceptions; the default reduce would drop ``field``.
        return (type(self), (self.message, self.field))


CRON_ALIASES: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

MAX_CRON_LENGTH = 256
MAX_INTERVAL_S = 31_536_000  # 365 days: anything rarer is a one-shot or a cron expression.

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# cronsim needs a start instant even to validate or explain; a constant keeps this module clock-free.
_REFERENCE_WALL = datetime(2000, 1, 1)
_ONE_SECOND = timedelta(seconds=1)
# Offset changes are found by probing at this spacing, then bisecting. A change and a change back
# could hide between two probes only if they were closer than this; in tzdata 2026 the closest
# pair is about four days apart (Africa/Freetown, 1939), and seven days since 1970.
_PROBE_STEP_S = 6 * 3600


# --------------------------------------------------------------------------- time zones

_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*")
# Present in the zoneinfo directory on many hosts but they mean "whatever this machine is set to"
# (or "unknown"), so two beat processes could disagree about them.
_HOST_DEPENDENT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1)
def _known_zone_names() -> frozenset[str]:
    # Looking the name up in the catalogue (rather than trusting ZoneInfo to fail) keeps paths,
    # directories like "America" and stray files under /usr/share/zoneinfo out.
    return frozenset(zoneinfo.available_timezones())


def load_timezone(name: str) -> zoneinfo.ZoneInfo:
    """Turn a user-supplied IANA name into a zone, refusing anything host-dependent or path-like."""
    if not isinstance(name, str) or not name:
        raise ScheduleError("timezone must be a non-empty IANA name such as 'Europe/Riga'", "timezone")
    if (
        len(name) > 64
        or not _ZONE_NAME.fullmatch(name)
        or name in _HOST_DEPENDENT_ZONES
        or name not in _known_zone_names()
    ):
        raise ScheduleError(f"unknown timezone {name!r}; use an IANA name such as 'Europe/Riga'", "timezone")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ScheduleError(f"unknown timezone {name!r}", "timezone") from exc


# --------------------------------------------------------------------------- cron validation


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_start: int = 0


_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_FIELD_SPECS = (
    _FieldSpec("minute", 0, 59),
    _FieldSpec("hour", 0, 23),
    _FieldSpec("day-of-month", 1, 31),
    _FieldSpec("month", 1, 12, _MONTH_NAMES, 1),
    _FieldSpec("day-of-week", 0, 7, _DAY_NAMES, 0),
)
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February can have a 29th.
_ITEM = re.compile(
    r"(?:(?P<star>\*)|(?P<start>[0-9A-Za-z]+)(?:-(?P<end>[0-9A-Za-z]+))?)"  # '*', 'a' or 'a-b'
    r"(?:/(?P<step>[0-9]+))?"  # optional '/n'
)
_QUARTZ_LW = re.compile(r"[0-9]*(?:L|W|LW)", re.IGNORECASE)


def _cron_error(message: str) -> ScheduleError:
    return ScheduleError(message, "cron")


def _field_value(token: str, spec: _FieldSpec, text: str) -> int:
    if token.isdigit() and token.isascii():
        value = int(token)
    elif token.upper() in spec.names:
        value = spec.names.index(token.upper()) + spec.names_start
    elif _QUARTZ_LW.fullmatch(token):
        raise _cron_error(
            f"{spec.name} field {text!r}: 'L'/'W' (last day, nearest weekday) are non-standard "
            "cron extensions and are not supported"
        )
    elif spec.names:
        raise _cron_error(f"{spec.name} field {text!r}: unknown value {token!r}")
    else:
        raise _cron_error(f"{spec.name} field {text!r}: {token!r} is not a number")
    if not spec.low <= value <= spec.high:
        raise _cron_error(f"{spec.name} field {text!r}: {value} is outside {spec.low}-{spec.high}")
    return value


def _parse_field(text: str, spec: _FieldSpec) -> tuple[set[int], str]:
    """Check one field against standard (cronie) syntax; return its values and cronsim's spelling.

    cronsim is more permissive than cronie, so we gate its input: what we accept must mean the
    same thing to any cron a user has used before. We also respell each term with numbers only,
    because cronsim misreads a one-value range with a step: it takes ``0-0/1`` to mean ``0-max/1``.
    Terms starting with ``*`` are kept as they are, since that star decides the day-of-month /
    day-of-week rule.
    """
    if "?" in text:
        raise _cron_error(f"{spec.name} field {text!r}: '?' is a Quartz extension; use '*'")
    if "#" in text:
        raise _cron_error(f"{spec.name} field {text!r}: '#' (n-th weekday) is a non-standard extension")
    values: set[int] = set()
    terms: list[str] = []
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            raise _cron_error(f"{spec.name} field {text!r}: cannot parse {item!r}")
        step = 1
        if match["step"] is not None:
            step = int(match["step"])
            if step < 1:
                raise _cron_error(f"{spec.name} field {text!r}: a step must be at least 1")
            if match["star"] is None and match["end"] is None:
                # cronie rejects "5/15"; cronsim reads it as "5-max/15". Refuse the ambiguity.
                raise _cron_error(
                    f"{spec.name} field {text!r}: a step needs '*' or a range before it, "
                    f"e.g. '{match['start']}-{spec.high}/{step}'"
                )
        if match["star"] is not None:
            start, end = spec.low, spec.high
            terms.append(item)
        else:
            start = _field_value(match["start"], spec, text)
            end = start if match["end"] is None else _field_value(match["end"], spec, text)
            if end < start:
                raise _cron_error(f"{spec.name} field {text!r}: range {item!r} runs backwards")
            if start == end:
                terms.append(str(start))
            else:
                terms.append(f"{start}-{end}" if step == 1 else f"{start}-{end}/{step}")
        values.update(range(start, end + 1, step))
    return values, ",".join(terms)


def _expand_cron(expr: str) -> str:
    """Validate ``expr`` and return the 5-field form cronsim should see."""
    if not isinstance(expr, str):
        raise _cron_error("cron expression must be a string")
    if len(expr) > MAX_CRON_LENGTH:
        raise _cron_error(f"cron expression is longer than {MAX_CRON_LENGTH} characters")
    stripped = expr.strip()
    if stripped.startswith("@"):
        if stripped == "@reboot":
            raise _cron_error("@reboot runs when a cron daemon starts, which has no meaning here")
        if stripped not in CRON_ALIASES:
            raise _cron_error(f"unknown cron alias {stripped!r}; known: {', '.join(CRON_ALIASES)}")
        return CRON_ALIASES[stripped]

    parts = stripped.split()
    if len(parts) in (6, 7):
        raise _cron_error(
            f"{len(parts)}-field cron expressions (seconds/year) are not supported; "
            "use 5 fields: minute hour day-of-month month day-of-week"
        )
    if len(parts) != 5:
        raise _cron_error(
            f"a cron expression needs 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    parsed = [_parse_field(text, spec) for text, spec in zip(parts, _FIELD_SPECS, strict=True)]
    selected = [values for values, _ in parsed]
    # Every minute, hour and weekday comes round again, so only a day-of-month that no selected
    # month has can make an expression dead. With the Debian rule the day-of-month only has to
    # hold on its own when it is AND-ed with day-of-week, i.e. when either field starts with '*'.
    days, months = selected[2], selected[3]
    days_and_weekdays = parts[2].startswith("*") or parts[4].startswith("*")
    if days_and_weekdays and not any(day <= _DAYS_IN_MONTH[month] for day in days for month in months):
        raise _cron_error(f"cron expression {expr!r} can never fire: no selected month has those days")

    canonical = " ".join(spelling for _, spelling in parsed)
    try:
        next(CronSim(canonical, _REFERENCE_WALL))
    except CronSimError as exc:
        raise _cron_error(f"invalid cron expression {expr!r}: {exc}") from exc
    except StopIteration as exc:
        raise _cron_error(f"cron expression {expr!r} can never fire") from exc
    return canonical


# --------------------------------------------------------------------------- instant helpers


def _require_aware(value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} is ambiguous; pass an aware datetime")
    return value.astimezone(UTC)


def _epoch_seconds(instant: datetime) -> int:
    """Whole seconds since the epoch, rounded down (transitions and fire times are whole seconds)."""
    delta = instant - _EPOCH
    return delta.days * 86_400 + delta.seconds


def _from_epoch_seconds(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


def _offset_at(zone: zoneinfo.ZoneInfo, seconds: int) -> timedelta | None:
    return _from_epoch_seconds(seconds).astimezone(zone).utcoffset()


def _first_offset_change(zone: zoneinfo.ZoneInfo, start: datetime, end: datetime) -> datetime | None:
    """The first instant in ``(start, end]`` whose UTC offset differs from the one at ``start``.

    zoneinfo does not expose its transition table, so probe and bisect. Working in whole epoch
    seconds is exact because tzdata transitions happen on whole seconds.
    """
    low = _epoch_seconds(start)
    last = _epoch_seconds(end)
    base = _offset_at(zone, low)
    while low < last:
        probe = min(low + _PROBE_STEP_S, last)
        if _offset_at(zone, probe) == base:
            low = probe
            continue
        high = probe  # invariant: offset(low) == base != offset(high)
        while high - low > 1:
            middle = (low + high) // 2
            if _offset_at(zone, middle) == base:
                low = middle
            else:
                high = middle
        return _from_epoch_seconds(high)
    return None


def _first_pass_instant(wall: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The instant a fixed-time job runs for a matching naive wall time (cronie rules).

    A repeated wall time maps to its first occurrence (``fold=0``); a wall time skipped by a
    forward jump maps to the first instant after the gap.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap, fold=0 and fold=1 use the offsets on either side of the jump, so the two
    # readings bracket the transition instant.
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = min(first, second), max(first, second)
    change = _first_offset_change(zone, low, high)
    if change is None:  # pragma: no cover - a wall time is only missing around an offset change
        return high
    return change


def _next_fixed_time(fields: str, zone: zoneinfo.ZoneInfo, after: datetime) -> datetime | None:
    # Walk naive wall-clock matches from the wall time of ``after``. Matches earlier than that
    # wall time can only map to instants <= after, but a later wall time can too: when ``after``
    # is in the second pass of a repeated hour, the first pass of 03:30 precedes it. Hence the loop.
    wall = after.astimezone(zone).replace(tzinfo=None)
    for match in CronSim(fields, wall):
        instant = _first_pass_instant(match, zone)
        if instant > after:
            return instant
    return None


def _next_wildcard(fields: str, zone: zoneinfo.ZoneInfo, after: datetime) -> datetime | None:
    # Within a stretch of constant UTC offset, wall time is UTC shifted by that offset, so a naive
    # cronsim walk gives exact answers there. Take its first match; if an offset change comes
    # first, restart the walk from the change with the new offset.
    segment_start = after
    offset = after.astimezone(zone).utcoffset()
    assert offset is not None
    wall = (after + offset).replace(tzinfo=None)
    while True:
        match = next(CronSim(fields, wall))
        candidate = (match - offset).replace(tzinfo=UTC)
        change = _first_offset_change(zone, segment_start, candidate)
        if change is None:
            return candidate
        segment_start = change
        offset = change.astimezone(zone).utcoffset()
        assert offset is not None
        # One second early, because cronsim returns matches strictly after its start.
        wall = (change + offset).replace(tzinfo=None) - _ONE_SECOND


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class CronSchedule:
    """A 5-field cron expression (or alias) evaluated on the wall clock of ``timezone``."""

    expr: str
    timezone: str
    _fields: str = dataclasses.field(init=False, repr=False, compare=False)
    _zone: zoneinfo.ZoneInfo = dataclasses.field(init=False, repr=False, compare=False)
    _fixed_time: bool = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Validating here makes an invalid CronSchedule unrepresentable, however it was built.
        fields = _expand_cron(self.expr)
        object.__setattr__(self, "_fields", fields)
        object.__setattr__(self, "_zone", load_timezone(self.timezone))
        minute, hour = fields.split()[:2]
        object.__setattr__(self, "_fixed_time", not minute.startswith("*") and not hour.startswith("*"))

    def next_after(self, after: datetime) -> datetime | None:
        """First fire time strictly after ``after`` (aware UTC, whole seconds), or None if never."""
        start = _require_aware(after)
        try:
            if self._fixed_time:
                return _next_fixed_time(self._fields, self._zone, start)
            return _next_wildcard(self._fields, self._zone, start)
        except (StopIteration, OverflowError):
            # cronsim gives up after 50 years without a match; datetime gives up at year 9999.
            return None

    def describe(self) -> str:
        """Words for a UI, so users need not read cron syntax; the zone is part of the meaning."""
        return f"{CronSim(self._fields, _REFERENCE_WALL).explain()} ({self.timezone})"


@dataclass(frozen=True)
class IntervalSchedule:
    """Every ``every_s`` seconds, on slots aligned to the Unix epoch.

    Epoch alignment (not "since the last run") lets every beat process compute the same slots
    independently, and makes the schedule immune to DST: ``timezone`` is informational only.
    """

    every_s: int
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        _check_every_s(self.every_s)
        load_timezone(self.timezone)

    def next_after(self, after: datetime) -> datetime | None:
        """The first slot strictly after ``after``, so a run at a slot never re-triggers itself."""
        seconds = _epoch_seconds(_require_aware(after))
        try:
            return _from_epoch_seconds((seconds // self.every_s + 1) * self.every_s)
        except OverflowError:
            return None

    def describe(self) -> str:
        """Largest whole unit reads best: "every 2 hours" rather than "every 7200 seconds"."""
        for size, unit in ((86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second")):
            if self.every_s % size == 0:
                count = self.every_s // size
                return f"every {unit}" if count == 1 else f"every {count} {unit}s"
        raise AssertionError("unreachable: every integer is a whole number of seconds")


@dataclass(frozen=True)
class OneShotSchedule:
    """A single run at ``at``, normalised to whole seconds in UTC so comparisons are exact."""

    at: datetime
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if not isinstance(self.at, datetime):
            raise ScheduleError("at must be a datetime", "at")
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ScheduleError("at must be timezone-aware", "at")
        try:
            normalised = self.at.astimezone(UTC).replace(microsecond=0)
        except OverflowError as exc:
            raise ScheduleError(f"at {self.at.isoformat()} is out of range", "at") from exc
        object.__setattr__(self, "at", normalised)
        load_timezone(self.timezone)

    def next_after(self, after: datetime) -> datetime | None:
        """``at`` while it is still ahead of ``after``; afterwards the schedule is exhausted."""
        return self.at if self.at > _require_aware(after) else None

    def describe(self) -> str:
        """Local time with its offset, so a repeated wall time is still unambiguous to a reader."""
        local = self.at.astimezone(load_timezone(self.timezone))
        return f"once at {local.isoformat(sep=' ')} ({self.timezone})"


Schedule = CronSchedule | IntervalSchedule | OneShotSchedule


def _check_every_s(every_s: object) -> None:
    # bool is an int subclass, but ``True`` seconds is a bug in the caller, not a schedule.
    if isinstance(every_s, bool) or not isinstance(every_s, int):
        raise ScheduleError("every_s must be an integer number of seconds", "every_s")
    if not 1 <= every_s <= MAX_INTERVAL_S:
        raise ScheduleError(f"every_s must be between 1 and {MAX_INTERVAL_S} seconds", "every_s")


def parse_cron(expr: str, timezone: str) -> CronSchedule:
    """Build a validated cron schedule; raises ScheduleError (field 'cron' or 'timezone')."""
    return CronSchedule(expr, timezone)


# --------------------------------------------------------------------------- dict round trip

_KINDS = ("cron", "every_s", "at")
_ALLOWED_KEYS = frozenset({*_KINDS, "timezone"})


def _parse_at(value: object, zone: zoneinfo.ZoneInfo, zone_name: str) -> datetime:
    """Read ``at``; a wall time without an offset means wall time in the schedule's zone."""
    if isinstance(value, str):
        if len(value) > 64:
            raise ScheduleError("at is too long to be an ISO-8601 date-time", "at")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ScheduleError(f"at {value!r} is not an ISO-8601 date-time", "at") from exc
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise ScheduleError("at must be an ISO-8601 string or a datetime", "at")
    if parsed.tzinfo is not None and parsed.utcoffset() is not None:
        return parsed
    wall = parsed.replace(tzinfo=None)
    local = wall.replace(tzinfo=zone, fold=0)  # fold=0: an ambiguous wall time means its first occurrence
    try:
        exists = local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall
    except OverflowError as exc:
        raise ScheduleError(f"at {wall.isoformat()} is out of range", "at") from exc
    if not exists:
        raise ScheduleError(
            f"at {wall.isoformat()} does not exist in {zone_name} (skipped by a clock change)", "at"
        )
    return local


def schedule_from_dict(spec: Mapping[str, Any]) -> Schedule:
    """Build a schedule from its stored/API form, naming the offending key on error."""
    if not isinstance(spec, Mapping):
        raise ScheduleError("a schedule must be a mapping", "")
    for key in spec:
        if key not in _ALLOWED_KEYS:
            raise ScheduleError(f"unknown schedule key {key!r}", str(key))
    kinds = [kind for kind in _KINDS if kind in spec]
    if len(kinds) != 1:
        found = ", ".join(kinds) or "none"
        raise ScheduleError(f"a schedule needs exactly one of 'cron', 'every_s' or 'at' (found: {found})", "")
    timezone = spec.get("timezone", "UTC")
    zone = load_timezone(timezone)
    kind = kinds[0]
    if kind == "cron":
        return parse_cron(spec["cron"], timezone)
    if kind == "every_s":
        return IntervalSchedule(spec["every_s"], timezone)
    return OneShotSchedule(_parse_at(spec["at"], zone, timezone), timezone)


def cached_schedule(spec: Mapping[str, Any]) -> Schedule:
    """:func:`schedule_from_dict` for specs already validated, memoised by their content.

    A scheduler tick plans thousands of jobs and a job listing describes every job on a page, yet
    they share few distinct schedules; parsing each cron expression once per process is enough.
    """
    return _cached_schedule(
        (spec.get("cron"), spec.get("every_s"), spec.get("at"), spec.get("timezone", "UTC"))
    )


@lru_cache(maxsize=65_536)
def _cached_schedule(key: tuple[Any, Any, Any, str]) -> Schedule:
    cron, every_s, at, timezone = key
    kind = {"cron": cron} if cron is not None else {"every_s": every_s} if every_s is not None else {"at": at}
    return schedule_from_dict({**kind, "timezone": timezone})


def schedule_to_dict(schedule: Schedule) -> dict[str, Any]:
    """Inverse of :func:`schedule_from_dict`; ``at`` is written as ISO-8601 in UTC."""
    if isinstance(schedule, CronSchedule):
        return {"cron": schedule.expr, "timezone": schedule.timezone}
    if isinstance(schedule, IntervalSchedule):
        return {"every_s": schedule.every_s, "timezone": schedule.timezone}
    if isinstance(schedule, OneShotSchedule):
        return {"at": schedule.at.isoformat(), "timezone": schedule.timezone}
    raise TypeError(f"not a schedule: {schedule!r}")
