"""What a notice says, per channel kind: a JSON document, a Slack message, an email."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

EVENT_WORDS = {"opened": "OPEN", "resolved": "RESOLVED", "repeat": "STILL OPEN", "test": "TEST"}


def payload(event: str, alert: dict[str, Any] | None) -> dict[str, Any]:
    """The webhook body: the event and the alert as the API shows it (times in ISO 8601 UTC)."""
    return {"event": event, "alert": None if alert is None else {k: _plain(v) for k, v in alert.items()}}


def headline(event: str, alert: dict[str, Any] | None) -> str:
    if alert is None:
        return "[Mission Control] TEST: this channel works"
    return f"[Mission Control] {EVENT_WORDS.get(event, event.upper())}: {alert['kind']} {alert['subject']}"


def text(event: str, alert: dict[str, Any] | None) -> str:
    if alert is None:
        return "A test notice from Mission Control. If you can read this, the channel is configured."
    lines = [alert["message"], f"opened {_plain(alert['opened_at'])}, seen {alert['occurrences']} time(s)"]
    if alert.get("resolved_at"):
        lines.append(f"resolved {_plain(alert['resolved_at'])}")
    if alert.get("ack_comment"):
        lines.append(f"acknowledged: {alert['ack_comment']}")
    return "\n".join(lines)


def slack(event: str, alert: dict[str, Any] | None) -> dict[str, Any]:
    """Slack's incoming-webhook format: ``text`` is required; blocks are optional and kept simple."""
    return {"text": f"{headline(event, alert)}\n{text(event, alert)}"}


def email(event: str, alert: dict[str, Any] | None, sender: str, to: list[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = headline(event, alert)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message.set_content(text(event, alert))
    return message


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    return value
