"""``mission-control tokens create|list|revoke``: named API tokens with scopes (admin only).

A token is printed once, on stdout, when created (``--json``: with its id, scopes and service); lists
never show one. Revoking takes effect on the token's next request.
"""

from __future__ import annotations

from datetime import datetime

import click

from mission_control.base.scopes import SCOPES
from mission_control.cli.common import ApiGroup, api_client, output, table, wants_json


@click.group(cls=ApiGroup)
def tokens() -> None:
    """Named API tokens: create one with scopes (optionally bound to one service), list, revoke."""


@tokens.command("create")
@click.argument("name")
@click.option(
    "--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES), help="Repeatable."
)
@click.option("--service", help="Bind the token to this service: it acts on that service's objects only.")
@click.option("--expires-at", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"]),
              help="When it stops working (ISO-8601, UTC unless a zone is given).")  # fmt: skip
def create(name: str, scopes: tuple[str, ...], service: str | None, expires_at: datetime | None) -> None:
    """Create token NAME; printed once on stdout (--json: with its id, scopes and service)."""
    when = None
    if expires_at is not None:
        when = expires_at.isoformat() if expires_at.tzinfo else expires_at.isoformat() + "Z"
    created = api_client().create_token(name, list(scopes), service=service, expires_at=when)
    if not wants_json():
        bound = f" for {created['service']}" if created["service"] else ""
        click.echo(f"token {created['id']} {created['name']}{bound} (shown once):", err=True)
    output(created, created["token"])


@tokens.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked tokens.")
def list_(include_revoked: bool) -> None:
    """List tokens: id, name, scopes, service, times (never the tokens themselves)."""
    found = api_client().tokens(include_revoked=include_revoked)
    rows = [
        (
            str(t["id"]),
            t["name"],
            ",".join(t["scopes"]),
            t["service"] or "-",
            t["last_used_at"] or "-",
            t["expires_at"] or "-",
            t["revoked_at"] or "-",
        )
        for t in found
    ]
    headers = ("ID", "NAME", "SCOPES", "SERVICE", "LAST USED", "EXPIRES", "REVOKED")
    output(found, lambda: table(headers, rows))


@tokens.command("revoke")
@click.argument("token_id", type=int)
def revoke(token_id: int) -> None:
    """Revoke token TOKEN_ID: its next request is refused."""
    api_client().revoke_token(token_id)
    output({"ok": True, "token_id": token_id}, f"token {token_id} is revoked")
