"""``mission-control silences list|add|expire``: mute alerts' notices for a while, over the HTTP API.

A silence matches alerts by kind (``--alert-kind``, repeatable; default every kind), subject
(``--subjects``, the fnmatch pattern channels use) and optionally tag (``--tags team:billing``), from
``--start`` (default now) for ``--duration`` (``90m``, ``2h``, ``1d``) or until ``--end``. Matching
alerts still open and are recorded; their notices are kept as silenced instead of sent. ``expire``
ends one now.

They call the client library's silence methods (``silences``, ``add_silence``, ``expire_silence``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import click

from mission_control.cli.common import ApiGroup, api_client, output, table
from mission_control.cli.monitoring import alert_kinds_option, subjects_option

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    found = _DURATION.match(value.strip())
    if not found:
        raise click.BadParameter("expected a number and a unit: 30m, 2h, 1d", ctx, param)
    return timedelta(seconds=float(found[1]) * _UNIT_S[found[2]])


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("expected an ISO-8601 time, e.g. 2026-12-24T18:00:00Z", ctx, param) from None
    if moment.tzinfo is None:
        raise click.BadParameter("give a timezone (Z or +02:00): a silence is an instant", ctx, param)
    return moment


@click.group(cls=ApiGroup)
def silences() -> None:
    """Silences: alerts they match still open and are recorded, but notify nobody."""


@silences.command("list")
@click.option(
    "--state", type=click.Choice(["active", "pending", "expired"]), default=None, help="Only these."
)
def list_silences(state: str | None) -> None:
    """List silences, newest first (--json: the silences)."""
    found = api_client().silences(state)
    rows = [
        (
            s["id"],
            s["state"],
            ",".join(s["alert_kinds"] or ["all"]),
            s["subject_pattern"] + (f" [{s['tag_pattern']}]" if s.get("tag_pattern") else ""),
            s["starts_at"],
            s["ends_at"],
            s["created_by"],
            s["comment"][:50],
        )
        for s in found
    ]
    output(
        found,
        lambda: table(("ID", "STATE", "ALERTS", "SUBJECTS", "FROM (UTC)", "UNTIL", "BY", "COMMENT"), rows),
    )


@silences.command()
@click.option("-m", "--comment", required=True, help="Why: a maintenance, a known outage.")
@alert_kinds_option
@subjects_option
@click.option("--tags", "tag_pattern", help="Only alerts whose service or job has a tag matching this.")
@click.option("--start", callback=_moment, help="When it begins (ISO-8601 with a timezone; default now).")
@click.option("--duration", callback=_duration, help="How long: 30m, 2h, 1d.")
@click.option("--end", callback=_moment, help="When it ends (ISO-8601 with a timezone); or --duration.")
def add(
    comment: str,
    alert_kinds: Sequence[str],
    subject_pattern: str,
    tag_pattern: str | None,
    start: datetime | None,
    duration: timedelta | None,
    end: datetime | None,
) -> None:
    """Add a silence: give --duration or --end (--json: the silence)."""
    if (duration is None) == (end is None):
        raise click.UsageError("give --duration or --end (one of them)")
    ends_at = end if end is not None else (start or datetime.now(UTC)) + (duration or timedelta())
    silence = api_client().add_silence(
        ends_at=ends_at,
        comment=comment,
        alert_kinds=alert_kinds or None,
        subject_pattern=subject_pattern,
        tag_pattern=tag_pattern,
        starts_at=start,
    )
    output(silence, f"silence {silence['id']} ({silence['state']}) until {silence['ends_at']}")


@silences.command()
@click.argument("silence_ids", nargs=-1, required=True, type=int)
def expire(silence_ids: Sequence[int]) -> None:
    """End silences now (--json: the silences)."""
    client = api_client()
    done = [client.expire_silence(silence_id) for silence_id in silence_ids]
    output(done, lambda: "\n".join(f"silence {s['id']}: expired" for s in done))
