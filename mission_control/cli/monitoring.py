"""``mission-control services | alerts | heartbeat``: services, their tokens and alerts over the HTTP API.

``services tokens list|create|revoke SERVICE`` manages a service's heartbeat tokens one by one, so a
leaked token is revoked without touching the others; ``services signing-secrets list|rotate|revoke
SERVICE`` the secrets its jobs' requests are signed with.
"""

from __future__ import annotations

import json

import click

from mission_control.cli.jobs import DEFAULT_URL, _api, _table
from mission_control.client import MissionControl

_URL = click.option(
    "--url", envvar="MC_URL", default=DEFAULT_URL, show_default=True, help="API base URL [env: MC_URL]"
)
_ADMIN = click.option(
    "--token", envvar="MC_ADMIN_TOKEN", required=True, help="Admin token [env: MC_ADMIN_TOKEN]"
)


@click.group(invoke_without_command=True)
@_URL
@_ADMIN
@click.option("--state", type=click.Choice(["new", "up", "late", "down", "paused"]), help="Only this state.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def services(ctx: click.Context, url: str, token: str, state: str | None, as_json: bool) -> None:
    """List services with their state and last heartbeat; `services tokens` manages their tokens."""
    ctx.obj = MissionControl(url, token)
    if ctx.invoked_subcommand is not None:
        return
    found = _api(lambda: list(ctx.obj.services(state=state)))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    rows = [
        (s["name"], s["state"], s["last_seen_at"] or "-", f"{s['interval_s']:g} s", f"{s['grace_s']:g} s")
        for s in found
    ]
    click.echo(_table(("SERVICE", "STATE", "LAST SEEN (UTC)", "INTERVAL", "GRACE"), rows))


@services.group()
def tokens() -> None:
    """A service's heartbeat tokens: list them, create one, revoke one by id."""


@tokens.command("list")
@click.argument("service")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_tokens(ctx: click.Context, service: str, as_json: bool) -> None:
    """List SERVICE's tokens: id, label and creation time (the tokens themselves are never shown again)."""
    client: MissionControl = ctx.find_object(MissionControl)
    found = _api(lambda: client.service_tokens(service))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    rows = [(str(t["id"]), t["label"] or "-", t["created_at"]) for t in found]
    click.echo(_table(("ID", "LABEL", "CREATED (UTC)"), rows))


@tokens.command("create")
@click.argument("service")
@click.option("--label", help="Where the token will be used, for people.")
@click.pass_context
def create_token(ctx: click.Context, service: str, label: str | None) -> None:
    """Create a token that may send SERVICE's heartbeats only; printed once, on stdout."""
    client: MissionControl = ctx.find_object(MissionControl)
    created = _api(lambda: client.create_service_token(service, label))
    click.echo(f"token {created['id']} for {created['service']} (shown once):", err=True)
    click.echo(created["token"])


@tokens.command("revoke")
@click.argument("service")
@click.argument("token_id", type=int)
@click.pass_context
def revoke_token(ctx: click.Context, service: str, token_id: int) -> None:
    """Revoke SERVICE's token TOKEN_ID: its next heartbeat is refused."""
    client: MissionControl = ctx.find_object(MissionControl)
    _api(lambda: client.revoke_service_token(service, token_id))
    click.echo(f"token {token_id} of {service} is revoked")


@services.group("signing-secrets")
def signing_secrets() -> None:
    """A service's own signing secrets: list them, rotate (issue a new one), revoke one by id."""


@signing_secrets.command("list")
@click.argument("service")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_signing_secrets(ctx: click.Context, service: str, as_json: bool) -> None:
    """List the secrets signing SERVICE's requests now (none: MC_SIGNING_SECRET signs them)."""
    client: MissionControl = ctx.find_object(MissionControl)
    found = _api(lambda: client.signing_secrets(service))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    rows = [(str(s["id"]), s["kind"], s["created_at"], s["expires_at"] or "current") for s in found]
    click.echo(_table(("ID", "KIND", "CREATED (UTC)", "SIGNS UNTIL (UTC)"), rows))


@signing_secrets.command("rotate")
@click.argument("service")
@click.option(
    "--overlap", "overlap_s", type=click.FloatRange(0, 30 * 86_400), default=None,
    help="Seconds the secrets it replaces keep signing (default: a day).",
)  # fmt: skip
@click.pass_context
def rotate_signing_secret(ctx: click.Context, service: str, overlap_s: float | None) -> None:
    """Issue SERVICE a new signing secret; printed once, on stdout. Give it to the service's receivers
    before the overlap ends."""
    client: MissionControl = ctx.find_object(MissionControl)
    issued = _api(lambda: client.rotate_signing_secret(service, overlap_s=overlap_s))
    click.echo(
        f"signing secret {issued['id']} for {issued['service']} (shown once); the previous ones sign "
        f"until {issued['previous_expire_at']}:",
        err=True,
    )
    click.echo(issued["secret"])


@signing_secrets.command("revoke")
@click.argument("service")
@click.argument("secret_id", type=int)
@click.pass_context
def revoke_signing_secret(ctx: click.Context, service: str, secret_id: int) -> None:
    """Stop signing SERVICE's requests with secret SECRET_ID at once."""
    client: MissionControl = ctx.find_object(MissionControl)
    _api(lambda: client.revoke_signing_secret(service, secret_id))
    click.echo(f"signing secret {secret_id} of {service} is revoked")


@click.group(invoke_without_command=True)
@_URL
@_ADMIN
@click.option("--open", "only_open", is_flag=True, help="Only unresolved alerts (open or acknowledged).")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def alerts(ctx: click.Context, url: str, token: str, only_open: bool, limit: int, as_json: bool) -> None:
    """List alerts, newest first; `alerts ack ID` acknowledges one."""
    ctx.obj = MissionControl(url, token)
    if ctx.invoked_subcommand is not None:
        return
    found = _api(lambda: ctx.obj.alerts(state="unresolved" if only_open else None, limit=limit))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    rows = [
        (
            str(a["id"]),
            a["state"],
            a["kind"],
            a["subject"],
            a["opened_at"],
            str(a["occurrences"]),
            a["message"][:60],
        )
        for a in found
    ]
    click.echo(_table(("ID", "STATE", "KIND", "SUBJECT", "OPENED (UTC)", "SEEN", "MESSAGE"), rows))


@alerts.command()
@click.argument("alert_id", type=int)
@click.option("--comment", "-m", help="What is being done about it.")
@click.pass_context
def ack(ctx: click.Context, alert_id: int, comment: str | None) -> None:
    """Acknowledge an alert (stops its repeat notices)."""
    alert = _api(lambda: ctx.obj.acknowledge(alert_id, comment))
    click.echo(f"alert {alert['id']} ({alert['kind']} {alert['subject']}) is {alert['state']}")


@click.command()
@click.argument("service")
@_URL
@click.option(
    "--token",
    envvar=["MC_SERVICE_TOKEN", "MC_ADMIN_TOKEN"],
    required=True,
    help="This service's token or the admin token [env: MC_SERVICE_TOKEN, MC_ADMIN_TOKEN]",
)
@click.option("--fail", is_flag=True, help="Report failure: the service is down at once.")
@click.option("--message", "-m", help="Kept with the heartbeat (cut past 10 KiB).")
def heartbeat(service: str, url: str, token: str, fail: bool, message: str | None) -> None:
    """Send one heartbeat, as a service's own cron line would (exit status 1 if it was not accepted)."""
    result = _api(
        lambda: MissionControl(url, token, timeout_s=5).heartbeat(
            service, status="fail" if fail else "ok", message=message
        )
    )
    click.echo(f"{result['service']}: {result['state']}")
