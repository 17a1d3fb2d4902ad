"""``mission-control services | alerts | heartbeat``: services and alerts over the HTTP API."""

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


@click.command()
@_URL
@_ADMIN
@click.option("--state", type=click.Choice(["new", "up", "late", "down", "paused"]), help="Only this state.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def services(url: str, token: str, state: str | None, as_json: bool) -> None:
    """List services with their state and last heartbeat."""
    found = _api(lambda: list(MissionControl(url, token).services(state=state)))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    rows = [
        (s["name"], s["state"], s["last_seen_at"] or "-", f"{s['interval_s']:g} s", f"{s['grace_s']:g} s")
        for s in found
    ]
    click.echo(_table(("SERVICE", "STATE", "LAST SEEN (UTC)", "INTERVAL", "GRACE"), rows))


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
