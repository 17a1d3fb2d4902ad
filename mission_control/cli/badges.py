"""``mission-control badges create|list|revoke``: status badges for READMEs.

A badge shows one service's, one job's or one tag's state at ``/badge/<key>.svg`` without a token. Its
key is printed once, as the image's full URL, when the badge is created (``--json``: with its id and
both URLs); lists never show one. Revoking makes the URL answer 404 at once.
"""

from __future__ import annotations

import click

from mission_control.cli.common import ApiGroup, api_client, output, table, wants_json


@click.group(cls=ApiGroup)
def badges() -> None:
    """Status badges (SVG, no token) for a service, a job or a tag: create, list, revoke."""


@badges.command("create")
@click.option("--service", help="The badge shows this service's state.")
@click.option("--job", help="The badge shows this job's state.")
@click.option("--tag", help="The badge shows the worst state of everything carrying this tag.")
def create(service: str | None, job: str | None, tag: str | None) -> None:
    """Create a badge for exactly one of --service, --job, --tag; prints its image URL once."""
    if sum(value is not None for value in (service, job, tag)) != 1:
        raise click.UsageError("give exactly one of --service, --job and --tag")
    client = api_client()
    created = client.create_badge(service=service, job=job, tag=tag)
    created = {
        **created,
        "svg_url": client.badge_url(created["svg_url"]),
        "json_url": client.badge_url(created["json_url"]),
    }
    if not wants_json():
        click.echo(
            f"badge {created['id']} for {created['kind']} {created['subject']} (shown once):", err=True
        )
    output(created, created["svg_url"])


@badges.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked badges.")
def list_(include_revoked: bool) -> None:
    """List badges: id, kind, subject, who made them and when (never their keys)."""
    found = api_client().badges(include_revoked=include_revoked)
    rows = [
        (str(b["id"]), b["kind"], b["subject"], b["created_by"], b["created_at"], b["revoked_at"] or "-")
        for b in found
    ]
    output(found, lambda: table(("ID", "KIND", "SUBJECT", "CREATED BY", "CREATED", "REVOKED"), rows))


@badges.command("revoke")
@click.argument("badge_id", type=int)
def revoke(badge_id: int) -> None:
    """Revoke badge BADGE_ID: its URL answers 404 from now on."""
    api_client().revoke_badge(badge_id)
    output({"ok": True, "revoked": badge_id}, f"badge {badge_id} revoked")
