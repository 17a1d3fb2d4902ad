"""``mission-control audit``: who changed what, newest first, through ``GET /api/v1/audit``.

It follows the API's cursor up to ``--limit`` rows; filters pass through unchanged (``--subject`` takes
``kind:name``, e.g. ``job:billing.sync``, or a bare name). ``--json`` prints the rows with their change.
"""

from __future__ import annotations

import json
from datetime import datetime

import click

from mission_control.cli.common import ApiCommand, api_client, output, table

INSTANT = click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"])


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat() if value.tzinfo else value.isoformat() + "Z"


def _change(change: dict | None, width: int = 60) -> str:
    text = json.dumps(change, separators=(",", ":")) if change else "-"
    return text if len(text) <= width else text[: width - 1] + "…"


@click.command(cls=ApiCommand)
@click.option("--subject", help="kind:name (job:billing.sync, service:billing, token:deployer) or a name.")
@click.option(
    "--actor", help='Only changes by this actor (a token name, "MC_ADMIN_TOKEN", "dashboard: NAME").'
)
@click.option("--action", help="Only this action (job.put, job.pause, run.trigger, token.create, ...).")
@click.option(
    "--since", type=INSTANT, help="At or after this instant (ISO-8601, UTC unless a zone is given)."
)
@click.option("--until", type=INSTANT, help="Before this instant.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
def audit(
    subject: str | None,
    actor: str | None,
    action: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> None:
    """The audit trail, newest first: when, who, from where, what, and the change."""
    found = api_client().audit(
        subject=subject, actor=actor, action=action, since=_iso(since), until=_iso(until), limit=limit
    )
    rows = [
        (
            e["at"],
            e["actor"],
            e["client_address"] or "-",
            e["action"],
            f"{e['subject_kind']}:{e['subject_name']}",
            _change(e["change"]),
        )
        for e in found
    ]
    output(found, lambda: table(("AT (UTC)", "ACTOR", "FROM", "ACTION", "SUBJECT", "CHANGE"), rows))
