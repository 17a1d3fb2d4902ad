"""``mission-control missions define|start|show|signal|cancel|list``: missions over the HTTP API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from mission_control.cli.common import (
    ApiGroup,
    CliFailure,
    ExitCode,
    api_client,
    output,
    read_document,
    table,
)

STATUSES = ["running", "waiting", "completed", "failed", "cancelled"]


def _json_arg(value: str | None, what: str) -> Any:
    """JSON given inline, or ``@file`` (``@-`` for stdin)."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        try:
            text = sys.stdin.read() if value == "@-" else Path(value[1:]).read_text()
        except OSError as exc:
            raise click.BadParameter(f"{what}: cannot read {value[1:]}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"{what} is not valid JSON: {exc}") from None


@click.group(cls=ApiGroup)
def missions() -> None:
    """Durable multi-step flows: register definitions, start, signal, cancel and inspect missions."""


@missions.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
def define(path: str) -> None:
    """Register a definition from a YAML or JSON file (- for stdin); --json: the stored definition."""
    data = read_document(path)
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise CliFailure(
            f"{path}: expected a mission definition with a name", ExitCode.REFUSED, code="invalid_file"
        )
    record, created = api_client().put_mission_definition(data)
    output(record, f"{record['name']} version {record['version']} {'registered' if created else 'unchanged'}")


@missions.command()
@click.argument("definition")
@click.option("--input", "input_json", help="The input as JSON, or @FILE (@- for stdin).")
@click.option("--id", "mission_id", help="A unique id of your choosing (generated when omitted).")
def start(definition: str, input_json: str | None, mission_id: str | None) -> None:
    """Start a mission of DEFINITION; prints its id and status (--json: the mission)."""
    data = _json_arg(input_json, "--input")
    doc = api_client().start_mission(definition, data, id=mission_id)
    output(doc, f"{doc['id']} {_state(doc)}")


@missions.command()
@click.argument("mission_id")
def show(mission_id: str) -> None:
    """Show a mission: state, steps and their outputs, history (--json: the whole inspection document)."""
    doc = api_client().mission(mission_id)
    output(doc, lambda: _mission_text(doc))


def _mission_text(doc: dict[str, Any]) -> str:
    lines = [f"{doc['id']}  {doc['definition']} v{doc['version']}  {_state(doc)}"]
    if doc.get("error"):
        error = doc["error"]
        lines.append(f"error: {error['code']} at {error['at']}: {error['message']}")
    if doc.get("cancel_reason"):
        lines.append(f"cancelled: {doc['cancel_reason']}")
    steps = [
        (s["name"], s["kind"], s["status"], str(s["attempts"]), _short(s["output"])) for s in doc["steps"]
    ]
    lines.append(table(("STEP", "KIND", "STATUS", "ATTEMPTS", "OUTPUT"), steps))
    lines.append("")
    history = [(e["at"], e["event"], e.get("step", ""), _detail(e)) for e in doc["history"]]
    lines.append(table(("AT (UTC)", "EVENT", "STEP", "DETAIL"), history))
    return "\n".join(lines)


@missions.command()
@click.argument("mission_id")
@click.argument("name")
@click.option("--payload", help="The signal's payload as JSON, or @FILE (@- for stdin).")
def signal(mission_id: str, name: str, payload: str | None) -> None:
    """Deliver signal NAME to a waiting mission (--json: the mission)."""
    data = _json_arg(payload, "--payload")
    doc = api_client().signal(mission_id, name, data)
    output(doc, f"{doc['id']} {_state(doc)}")


@missions.command()
@click.argument("mission_id")
@click.option("--reason", "-m", default="cancelled", show_default=True, help="Why; kept with the mission.")
def cancel(mission_id: str, reason: str) -> None:
    """Cancel a mission that has not finished (--json: the mission)."""
    doc = api_client().cancel_mission(mission_id, reason)
    output(doc, f"{doc['id']} {_state(doc)}")


@missions.command(name="list")
@click.option("--status", type=click.Choice(STATUSES), help="Only missions in this status.")
@click.option("--definition", help="Only missions of this definition.")
@click.option("--limit", type=int, default=50, show_default=True)
def list_missions(status: str | None, definition: str | None, limit: int) -> None:
    """List missions, newest first."""
    found = api_client().missions(status=status, definition=definition, limit=limit)
    rows = [(m["id"], m["definition"], str(m["version"]), _state(m), m["created_at"]) for m in found]
    output(found, lambda: table(("ID", "DEFINITION", "VERSION", "STATE", "CREATED (UTC)"), rows))


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
