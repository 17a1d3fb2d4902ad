"""``mission-control channels list|show|add|rm|test|notices``: where alert notices go, over the HTTP API.

A channel is addressed by its id, as in the API. ``add`` creates one and refuses a name already taken
(exit status 6), as ``POST /api/v1/channels`` does: the API has no update, so a channel is changed by
removing it and adding it again. A channel's URL carries a credential and is never shown again, only
its host (``destination``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from mission_control.cli.common import ApiGroup, api_client, fields, output, table
from mission_control.cli.monitoring import alert_kinds_option, subjects_option


@click.group(cls=ApiGroup)
def channels() -> None:
    """Notification channels (webhook, Slack, email, PagerDuty, Apprise): list, show, add, remove, test."""


@channels.command("list")
def list_channels() -> None:
    """List the channels."""
    found = api_client().channels()
    rows = [
        (
            c["id"],
            c["name"],
            c["kind"],
            c["destination"],
            ",".join(c["alert_kinds"] or ["all"]),
            c["subject_pattern"],
            "yes" if c["enabled"] else "no",
        )
        for c in found
    ]
    output(found, lambda: table(("ID", "NAME", "KIND", "DESTINATION", "ALERTS", "SUBJECTS", "ENABLED"), rows))


@channels.command()
@click.argument("channel_id", type=int)
def show(channel_id: int) -> None:
    """Show channel CHANNEL_ID."""
    channel = api_client().channel(channel_id)
    output(channel, lambda: _channel_fields(channel))


def _channel_fields(channel: dict[str, Any]) -> str:
    repeat = channel["repeat_interval_s"]
    return fields(
        [
            ("id", channel["id"]),
            ("name", channel["name"]),
            ("kind", channel["kind"]),
            ("destination", channel["destination"]),
            ("alerts", ", ".join(channel["alert_kinds"] or ["all kinds"])),
            ("subjects", channel["subject_pattern"]),
            ("tags", channel.get("tag_pattern") or "any"),
            ("repeat", "never" if repeat is None else f"every {repeat:g} s while open"),
            ("enabled", "yes" if channel["enabled"] else "no"),
            ("created", channel["created_at"]),
        ]
    )


@channels.command()
@click.argument("name")
@click.option(
    "--kind", type=click.Choice(["webhook", "slack", "email", "pagerduty", "apprise"]), required=True,
    help="Where notices go.",
)  # fmt: skip
@click.option(
    "--webhook-url", "--apprise-url", "target_url", metavar="URL",
    help="The webhook's or Slack incoming webhook's URL, or an Apprise URL (ntfy://…, tgram://…).",
)  # fmt: skip
@click.option("--to", "recipients", multiple=True, help="An email recipient (repeat for several).")
@click.option(
    "--routing-key", metavar="KEY|-",
    help="PagerDuty: the Events API v2 integration key; - reads it from stdin (kept off the command line).",
)  # fmt: skip
@click.option("--events-url", help="PagerDuty: where events go (default PagerDuty's own).")
@alert_kinds_option
@subjects_option
@click.option(
    "--tags", "tag_pattern", default=None,
    help="Only alerts whose service or job has a tag matching this pattern (e.g. team:billing, tier:*).",
)  # fmt: skip
@click.option(
    "--repeat", "repeat_interval_s", type=click.FloatRange(60, 7 * 86_400), default=None,
    help="Notify again this many seconds apart while an alert is open and unacknowledged.",
)  # fmt: skip
@click.option("--disabled", is_flag=True, help="Add it switched off.")
def add(
    name: str,
    kind: str,
    target_url: str | None,
    recipients: Sequence[str],
    routing_key: str | None,
    events_url: str | None,
    alert_kinds: Sequence[str],
    subject_pattern: str,
    tag_pattern: str | None,
    repeat_interval_s: float | None,
    disabled: bool,
) -> None:
    """Add channel NAME: a webhook or Slack channel takes --webhook-url, an Apprise channel
    --apprise-url, an email channel --to, a PagerDuty channel --routing-key (--json: the channel)."""
    spec: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "subject_pattern": subject_pattern,
        "enabled": not disabled,
    }
    if target_url is not None:
        spec["url"] = target_url
    if recipients:
        spec["to"] = list(recipients)
    if routing_key == "-":
        routing_key = sys.stdin.readline().strip()
    if routing_key is not None:
        spec["routing_key"] = routing_key
    if events_url is not None:
        spec["events_url"] = events_url
    if alert_kinds:
        spec["alert_kinds"] = list(alert_kinds)
    if repeat_interval_s is not None:
        spec["repeat_interval_s"] = repeat_interval_s
    if tag_pattern is not None:
        spec["tag_pattern"] = tag_pattern
    channel = api_client().add_channel(spec)
    output(
        channel,
        f"channel {channel['id']} ({channel['name']}, {channel['kind']} to {channel['destination']}) added",
    )


@channels.command()
@click.argument("channel_ids", nargs=-1, required=True, type=int)
def rm(channel_ids: Sequence[int]) -> None:
    """Remove channels (--json: {"ok": true, "removed": [ids]})."""
    client = api_client()
    for channel_id in channel_ids:
        client.delete_channel(channel_id)
    output(
        {"ok": True, "removed": list(channel_ids)},
        lambda: "\n".join(f"channel {channel_id}: removed" for channel_id in channel_ids),
    )


@channels.command("test")
@click.argument("channel_id", type=int)
def send_test(channel_id: int) -> None:
    """Send a test notice through channel CHANNEL_ID; `channels notices ID` shows how it went (--json:
    the notice)."""
    notice = api_client().send_test_notice(channel_id)
    output(notice, f"test notice {notice['id']} for channel {channel_id}: {notice['status']}")


@channels.command()
@click.argument("channel_id", type=int)
def notices(channel_id: int) -> None:
    """List channel CHANNEL_ID's recent notices and how their delivery went."""
    found = api_client().channel_notices(channel_id)
    rows = [
        (
            n["id"],
            n["event"],
            "-" if n["alert_id"] is None else n["alert_id"],
            n["status"],
            n["attempts"],
            n["created_at"],
            (n["last_error"] or "")[:60],
        )
        for n in found
    ]
    output(
        found,
        lambda: table(("ID", "EVENT", "ALERT", "STATUS", "ATTEMPTS", "CREATED (UTC)", "LAST ERROR"), rows),
    )
