"""``mission-control services | alerts | heartbeat``: services, their tokens and alerts over the HTTP API.

``services put|pause|resume|rm NAME`` registers and silences services; ``services events NAME`` lists
its kept events; ``services tokens list|create|revoke SERVICE`` manages a service's heartbeat tokens
one by one, so a leaked token is revoked without touching the others; ``services signing-secrets
list|rotate|revoke SERVICE`` the secrets its jobs' requests are signed with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from mission_control.cli.common import (
    SERVICE_TOKEN_ENV,
    ApiCommand,
    ApiGroup,
    api_client,
    fields,
    output,
    table,
    wants_json,
)
from mission_control.db.alerts import AlertKind

SERVICE_STATES = ["new", "up", "late", "down", "paused"]
ALERT_KINDS = sorted(kind.value for kind in AlertKind)

# The matchers channels and silences share (same names, same defaults, same help).
alert_kinds_option = click.option(
    "--alert-kind", "alert_kinds", multiple=True, type=click.Choice(ALERT_KINDS),
    help="Only alerts of this kind (repeat for several; default: all).",
)  # fmt: skip
subjects_option = click.option(
    "--subjects", "subject_pattern", default="*", show_default=True,
    help="Only alerts about services or jobs matching this pattern (e.g. billing-*).",
)  # fmt: skip


def _state_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--state", type=click.Choice(SERVICE_STATES), help="Only this state.")(command)


@click.group(cls=ApiGroup, invoke_without_command=True)
@_state_option
@click.pass_context
def services(ctx: click.Context, state: str | None) -> None:
    """List services (as `services list`); register, show, pause, resume and remove them, and manage
    their tokens and signing secrets."""
    if ctx.invoked_subcommand is None:
        _list_services(state)


@services.command("list")
@_state_option
@click.option("--tag", "tags", multiple=True, help="Only services carrying this tag (repeat: all of them).")
def list_services(state: str | None, tags: tuple[str, ...]) -> None:
    """List services with their state and last heartbeat."""
    _list_services(state, tags)


def _list_services(state: str | None, tags: tuple[str, ...] = ()) -> None:
    found = list(api_client().services(state=state, tags=tags))
    rows = [
        (s["name"], s["state"], s["last_seen_at"] or "-", _expects(s), f"{s['grace_s']:g} s") for s in found
    ]
    output(found, lambda: table(("SERVICE", "STATE", "LAST SEEN (UTC)", "INTERVAL", "GRACE"), rows))


@services.command()
@click.argument("name")
def show(name: str) -> None:
    """Show a service with its recent heartbeats and state changes."""
    service = api_client().service(name)
    output(service, lambda: _service_text(service))


@services.command()
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
def events(name: str, limit: int) -> None:
    """List NAME's newest kept events (heartbeats, run starts and ends, logs), newest first (--json: the
    events)."""
    found = api_client().events(name, limit=limit)
    rows = [
        (
            e["received_at"],
            e["status"],
            e.get("rid") or "-",
            f"{e['duration_s']:g} s" if e.get("duration_s") is not None else "-",
            e["exit_code"] if e.get("exit_code") is not None else "-",
            (e["message"] or "")[:60],
        )
        for e in found
    ]
    output(found, lambda: table(("TIME (UTC)", "EVENT", "RID", "DURATION", "EXIT", "MESSAGE"), rows))


def _expects(service: dict[str, Any]) -> str:
    """A service's interval, or its cron schedule and zone."""
    schedule = service.get("schedule")
    if schedule:
        return f"cron {schedule['cron']} ({schedule['timezone']})"
    return f"{service['interval_s']:g} s"


def _service_text(service: dict[str, Any]) -> str:
    summary = fields(
        [
            ("name", service["name"]),
            ("state", service["state"] + (" (paused)" if service["paused"] else "")),
            ("interval", _expects(service)),
            ("grace", f"{service['grace_s']:g} s"),
            ("last seen", service["last_seen_at"] or "-"),
            ("last status", service["last_status"] or "-"),
            ("last message", service["last_message"] or "-"),
            ("next change", service["deadline_at"] or "-"),
            ("heartbeats", service["heartbeat_count"]),
            ("tags", ", ".join(service.get("tags") or []) or "-"),
        ]
    )
    parts = [summary]
    if service.get("heartbeats"):
        beats = [
            (b["number"], b["received_at"], b["status"], (b["message"] or "")[:60])
            for b in service["heartbeats"]
        ]
        parts.append(table(("HEARTBEAT", "RECEIVED (UTC)", "STATUS", "MESSAGE"), beats))
    if service.get("flips"):
        flips = [(f["at"], f"{f['from_state']} -> {f['to_state']}", f["reason"]) for f in service["flips"]]
        parts.append(table(("CHANGED (UTC)", "STATE", "REASON"), flips))
    return "\n\n".join(parts)


@services.command()
@click.argument("name")
@click.option(
    "--interval", "interval_s", type=click.FloatRange(min=0, min_open=True), default=None,
    help="Seconds between expected heartbeats (or --cron).",
)  # fmt: skip
@click.option("--cron", default=None, help="Cron line a heartbeat is expected after each instant of.")
@click.option(
    "--timezone", default="UTC", show_default=True, help="IANA timezone the --cron line is read in."
)
@click.option(
    "--fail-threshold", type=click.IntRange(1, 1000), default=1, show_default=True,
    help="Failures in a row before the service is down.",
)  # fmt: skip
@click.option(
    "--early-tolerance", "early_tolerance_s", type=click.FloatRange(min=0), default=None,
    help="Seconds before its expected time a heartbeat may come; earlier opens service_early.",
)  # fmt: skip
@click.option(
    "--grace", "grace_s", type=click.FloatRange(min=0), default=0, show_default=True,
    help="Seconds a service may be late before it is down.",
)  # fmt: skip
@click.option("--tag", "tags", multiple=True, help="A tag (team:billing, tier:1); repeat for several.")
def put(
    name: str,
    interval_s: float | None,
    cron: str | None,
    timezone: str,
    fail_threshold: int,
    early_tolerance_s: float | None,
    grace_s: float,
    tags: tuple[str, ...],
) -> None:
    """Register service NAME, or change its interval (or cron schedule) and grace (idempotent)."""
    if (interval_s is None) == (cron is None):
        raise click.UsageError("give exactly one of --interval and --cron")
    schedule = {"cron": cron, "timezone": timezone} if cron is not None else None
    service = api_client().put_service(
        name,
        interval_s=interval_s,
        schedule=schedule,
        grace_s=grace_s,
        fail_threshold=fail_threshold,
        early_tolerance_s=early_tolerance_s,
        tags=tags,
    )
    every = f"every {service['interval_s']:g} s" if interval_s is not None else f"after {_expects(service)}"
    grace = f"grace {service['grace_s']:g} s"
    output(service, f"{service['name']}: heartbeat {every}, {grace} ({service['state']})")


@services.command()
@click.argument("names", nargs=-1, required=True)
def pause(names: Sequence[str]) -> None:
    """Silence services: no staleness, no alerts until resumed (--json: the services, one array)."""
    client = api_client()
    paused = []
    for name in names:
        paused.append(client.pause_service(name))
        if not wants_json():
            click.echo(f"{name}: paused")
    output(paused, "")


@services.command()
@click.argument("names", nargs=-1, required=True)
def resume(names: Sequence[str]) -> None:
    """Watch paused services again (--json: the services, one array)."""
    client = api_client()
    resumed = []
    for name in names:
        service = client.resume_service(name)
        resumed.append(service)
        if not wants_json():
            click.echo(f"{name}: resumed ({service['state']})")
    output(resumed, "")


@services.command()
@click.argument("names", nargs=-1, required=True)
def rm(names: Sequence[str]) -> None:
    """Remove services with their tokens and history (--json: {"ok": true, "removed": [names]})."""
    client = api_client()
    for name in names:
        client.delete_service(name)
        if not wants_json():
            click.echo(f"{name}: removed")
    output({"ok": True, "removed": list(names)}, "")


@services.group()
def tokens() -> None:
    """A service's heartbeat tokens: list them, create one, revoke one by id."""


@tokens.command("list")
@click.argument("service")
def list_tokens(service: str) -> None:
    """List SERVICE's tokens: id, label and creation time (the tokens themselves are never shown again)."""
    found = api_client().service_tokens(service)
    rows = [(str(t["id"]), t["label"] or "-", t["created_at"]) for t in found]
    output(found, lambda: table(("ID", "LABEL", "CREATED (UTC)"), rows))


@tokens.command("create")
@click.argument("service")
@click.option("--label", help="Where the token will be used, for people.")
def create_token(service: str, label: str | None) -> None:
    """Create a token that may send SERVICE's heartbeats only; printed once, on stdout (--json: with its
    id)."""
    created = api_client().create_service_token(service, label)
    if not wants_json():
        click.echo(f"token {created['id']} for {created['service']} (shown once):", err=True)
    output(created, created["token"])


@tokens.command("revoke")
@click.argument("service")
@click.argument("token_id", type=int)
def revoke_token(service: str, token_id: int) -> None:
    """Revoke SERVICE's token TOKEN_ID: its next heartbeat is refused."""
    api_client().revoke_service_token(service, token_id)
    output(
        {"ok": True, "service": service, "token_id": token_id}, f"token {token_id} of {service} is revoked"
    )


@services.group("signing-secrets")
def signing_secrets() -> None:
    """A service's own signing secrets: list them, rotate (issue a new one), revoke one by id."""


@signing_secrets.command("list")
@click.argument("service")
def list_signing_secrets(service: str) -> None:
    """List the secrets signing SERVICE's requests now (none: MC_SIGNING_SECRET signs them)."""
    found = api_client().signing_secrets(service)
    rows = [(str(s["id"]), s["kind"], s["created_at"], s["expires_at"] or "current") for s in found]
    output(found, lambda: table(("ID", "KIND", "CREATED (UTC)", "SIGNS UNTIL (UTC)"), rows))


@signing_secrets.command("rotate")
@click.argument("service")
@click.option(
    "--overlap", "overlap_s", type=click.FloatRange(0, 30 * 86_400), default=None,
    help="Seconds the secrets it replaces keep signing (default: a day).",
)  # fmt: skip
def rotate_signing_secret(service: str, overlap_s: float | None) -> None:
    """Issue SERVICE a new signing secret; printed once, on stdout. Give it to the service's receivers
    before the overlap ends."""
    issued = api_client().rotate_signing_secret(service, overlap_s=overlap_s)
    if not wants_json():
        click.echo(
            f"signing secret {issued['id']} for {issued['service']} (shown once); the previous ones sign "
            f"until {issued['previous_expire_at']}:",
            err=True,
        )
    output(issued, issued["secret"])


@signing_secrets.command("revoke")
@click.argument("service")
@click.argument("secret_id", type=int)
def revoke_signing_secret(service: str, secret_id: int) -> None:
    """Stop signing SERVICE's requests with secret SECRET_ID at once."""
    api_client().revoke_signing_secret(service, secret_id)
    output(
        {"ok": True, "service": service, "secret_id": secret_id},
        f"signing secret {secret_id} of {service} is revoked",
    )


def _alert_filters(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option(
                "--open", "only_open", is_flag=True, help="Only unresolved alerts (open or acknowledged)."
            ),
            click.option("--kind", type=click.Choice(ALERT_KINDS), help="Only alerts of this kind."),
            click.option("--subject", help="Only alerts about this service or job."),
            click.option("--limit", type=int, default=50, show_default=True),
        ]
    ):
        command = option(command)
    return command


@click.group(cls=ApiGroup, invoke_without_command=True)
@_alert_filters
@click.pass_context
def alerts(ctx: click.Context, only_open: bool, kind: str | None, subject: str | None, limit: int) -> None:
    """List alerts, newest first (as `alerts list`); `alerts show ID` shows one, `alerts ack ID`
    acknowledges it."""
    if ctx.invoked_subcommand is None:
        _list_alerts(only_open, kind, subject, limit)


@alerts.command("list")
@_alert_filters
def list_alerts(only_open: bool, kind: str | None, subject: str | None, limit: int) -> None:
    """List alerts, newest first."""
    _list_alerts(only_open, kind, subject, limit)


def _list_alerts(only_open: bool, kind: str | None, subject: str | None, limit: int) -> None:
    found = api_client().alerts(
        state="unresolved" if only_open else None, kind=kind, subject=subject, limit=limit
    )
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
    output(found, lambda: table(("ID", "STATE", "KIND", "SUBJECT", "OPENED (UTC)", "SEEN", "MESSAGE"), rows))


@alerts.command("show")
@click.argument("alert_id", type=int)
def show_alert(alert_id: int) -> None:
    """Show one alert."""
    alert = api_client().alert(alert_id)
    output(
        alert,
        lambda: fields(
            [
                ("id", alert["id"]),
                ("kind", alert["kind"]),
                ("subject", alert["subject"]),
                ("state", alert["state"]),
                ("message", alert["message"]),
                ("opened", alert["opened_at"]),
                ("last seen", alert["last_seen_at"]),
                ("seen", f"{alert['occurrences']} times"),
                ("acknowledged", alert["acknowledged_at"] or "-"),
                ("comment", alert["ack_comment"] or "-"),
                ("resolved", alert["resolved_at"] or "-"),
            ]
        ),
    )


@alerts.command()
@click.argument("alert_id", type=int)
@click.option("--comment", "-m", help="What is being done about it.")
def ack(alert_id: int, comment: str | None) -> None:
    """Acknowledge an alert (stops its repeat notices)."""
    alert = api_client().acknowledge(alert_id, comment)
    output(alert, f"alert {alert['id']} ({alert['kind']} {alert['subject']}) is {alert['state']}")


@click.command(
    cls=ApiCommand,
    token_env=SERVICE_TOKEN_ENV,
    token_help="This service's token or the admin token",
)
@click.argument("service")
@click.option("--fail", is_flag=True, help="Report failure: the service is down at once.")
@click.option("--message", "-m", help="Kept with the heartbeat (cut past 10 KiB).")
def heartbeat(service: str, fail: bool, message: str | None) -> None:
    """Send one heartbeat, as a service's own cron line would (exit status other than 0 if it was not
    accepted)."""
    result = api_client(timeout_s=5).heartbeat(service, status="fail" if fail else "ok", message=message)
    output(result, f"{result['service']}: {result['state']}")
