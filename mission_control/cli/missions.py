"""``mission-control missions define|start|show|signal|cancel|list``: missions over the HTTP API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from mission_control.cli.jobs import DEFAULT_URL, _api, _table
from mission_control.client import MissionControl

STATUSES = ["running", "waiting", "completed", "failed", "cancelled"]


def _json_arg(value: str | None, what: str) -> Any:
    """JSON given inline, or ``@file`` (``@-`` for stdin)."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        text = sys.stdin.read() if value == "@-" else Path(value[1:]).read_text()
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"{what} is not valid JSON: {exc}") from None


@click.group()
@click.option(
    "--url", envvar="MC_URL", default=DEFAULT_URL, show_default=True, help="API base URL [env: MC_URL]"
)
@click.option("--token", envvar="MC_ADMIN_TOKEN", required=True, help="Admin token [env: MC_ADMIN_TOKEN]")
@click.pass_context
def missions(ctx: click.Context, url: str, token: str) -> None:
    """Durable multi-step flows: register definitions, start, signal, cancel and inspect missions."""
    ctx.obj = MissionControl(url, token)


@missions.command()
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.pass_obj
def define(client: MissionControl, path: str) -> None:
    """Register a definition from a YAML or JSON file (- for stdin)."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise click.ClickException(f"{path}: cannot parse: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise click.ClickException(f"{path}: expected a mission definition with a name")
    record, created = _api(lambda: client.put_mission_definition(data))
    click.echo(f"{record['name']} version {record['version']} {'registered' if created else 'unchanged'}")


@missions.command()
@click.argument("definition")
@click.option("--input", "input_json", help="The input as JSON, or @FILE (@- for stdin).")
@click.option("--id", "mission_id", help="A unique id of your choosing (generated when omitted).")
@click.pass_obj
def start(client: MissionControl, definition: str, input_json: str | None, mission_id: str | None) -> None:
    """Start a mission of DEFINITION; prints its id and status."""
    data = _json_arg(input_json, "--input")
    doc = _api(lambda: client.start_mission(definition, data, id=mission_id))
    click.echo(f"{doc['id']} {_state(doc)}")


@missions.command()
@click.argument("mission_id")
@click.option("--json", "as_json", is_flag=True, help="Print the whole inspection document.")
@click.pass_obj
def show(client: MissionControl, mission_id: str, as_json: bool) -> None:
    """Show a mission: state, steps and their outputs, history."""
    doc = _api(lambda: client.mission(mission_id))
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"{doc['id']}  {doc['definition']} v{doc['version']}  {_state(doc)}")
    if doc.get("error"):
        error = doc["error"]
        click.echo(f"error: {error['code']} at {error['at']}: {error['message']}")
    if doc.get("cancel_reason"):
        click.echo(f"cancelled: {doc['cancel_reason']}")
    steps = [
        (s["name"], s["kind"], s["status"], str(s["attempts"]), _short(s["output"])) for s in doc["steps"]
    ]
    click.echo(_table(("STEP", "KIND", "STATUS", "ATTEMPTS", "OUTPUT"), steps))
    click.echo("")
    history = [(e["at"], e["event"], e.get("step", ""), _detail(e)) for e in doc["history"]]
    click.echo(_table(("AT (UTC)", "EVENT", "STEP", "DETAIL"), history))


@missions.command()
@click.argument("mission_id")
@click.argument("name")
@click.option("--payload", help="The signal's payload as JSON, or @FILE (@- for stdin).")
@click.pass_obj
def signal(client: MissionControl, mission_id: str, name: str, payload: str | None) -> None:
    """Deliver signal NAME to a waiting mission."""
    data = _json_arg(payload, "--payload")
    doc = _api(lambda: client.signal(mission_id, name, data))
    click.echo(f"{doc['id']} {_state(doc)}")


@missions.command()
@click.argument("mission_id")
@click.option("--reason", "-m", default="cancelled", show_default=True, help="Why; kept with the mission.")
@click.pass_obj
def cancel(client: MissionControl, mission_id: str, reason: str) -> None:
    """Cancel a mission that has not finished."""
    doc = _api(lambda: client.cancel_mission(mission_id, reason))
    click.echo(f"{doc['id']} {_state(doc)}")


@missions.command(name="list")
@click.option("--status", type=click.Choice(STATUSES), help="Only missions in this status.")
@click.option("--definition", help="Only missions of this definition.")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def list_missions(
    client: MissionControl, status: str | None, definition: str | None, limit: int, as_json: bool
) -> None:
    """List missions, newest first."""
    found = _api(lambda: client.missions(status=status, definition=definition, limit=limit))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    rows = [(m["id"], m["definition"], str(m["version"]), _state(m), m["created_at"]) for m in found]
    click.echo(_table(("ID", "DEFINITION", "VERSION", "STATE", "CREATED (UTC)"), rows))


def _state(doc: dict[str, Any]) -> str:
    waiting = doc.get("waiting")
    if doc["status"] == "waiting" and waiting:
        what = f"signal {waiting['signal']}" if waiting["kind"] == "signal" else waiting["kind"]
        until = f" until {waiting['until']}" if waiting.get("until") else ""
        return f"waiting for {what} at {waiting['step']}{until}"
    if doc["status"] == "running":
        return f"running {doc.get('cursor')}"
    return str(doc["status"])


def _short(value: Any, width: int = 60) -> str:
    if value is None:
        return "-"
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


def _detail(event: dict[str, Any]) -> str:
    skip = {"at", "event", "step"}
    return ", ".join(f"{k}={v}" for k, v in event.items() if k not in skip)
