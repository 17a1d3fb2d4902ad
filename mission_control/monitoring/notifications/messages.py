"""What a notice says, per channel kind: a JSON document, a Slack message, an email.

A message carries one or more notices of one channel (alerts that changed together are sent together),
each an (event, alert) pair; a test notice has no alert.

Alert subjects and messages are whatever services and their tokens sent (service and job names,
heartbeat messages, error messages, acknowledgement comments). Slack reads ``<...>`` in a message as a
control sequence (``<!channel>`` pings everyone, ``<https://evil|click>`` disguises a link), so every
such string is escaped for Slack as its "Escaping text" documentation says (``&``, ``<``, ``>``);
webhook documents and emails carry them as they are.
"""

from __future__ import annotations

from collections import Counter
from email.message import EmailMessage
from typing import Any

EVENT_WORDS = {
    "opened": "OPEN",
    "resolved": "RESOLVED",
    "repeat": "STILL OPEN",
    "acknowledged": "ACKNOWLEDGED",
    "test": "TEST",
}
Item = tuple[str, dict[str, Any] | None]
LISTED = 20  # lines a Slack message or email lists before "and N more"


def payload(items: list[Item]) -> dict[str, Any]:
    """The webhook body: every notice with its event and the alert as the API shows it (UTC ISO times)."""
    return {"notices": [{"event": event, "alert": _document(alert)} for event, alert in items]}


def headline(items: list[Item]) -> str:
    if len(items) == 1:
        event, alert = items[0]
        if alert is None:
            return "[Mission Control] TEST: this channel works"
        return (
            f"[Mission Control] {EVENT_WORDS.get(event, event.upper())}: {alert['kind']} {alert['subject']}"
        )
    counts = Counter(EVENT_WORDS.get(event, event.upper()) for event, _ in items)
    summary = ", ".join(f"{n} {word}" for word, n in sorted(counts.items()))
    return f"[Mission Control] {len(items)} alert changes: {summary}"


def text(items: list[Item]) -> str:
    if len(items) == 1:
        return _detail(*items[0])
    lines = [_line(event, alert) for event, alert in items[:LISTED]]
    if len(items) > LISTED:
        lines.append(f"… and {len(items) - LISTED} more")
    return "\n".join(lines)


def slack(items: list[Item]) -> dict[str, Any]:
    """Slack's incoming-webhook format: ``text`` is required; one message, however many changes.

    The whole text is escaped: our own words hold no ``&``, ``<`` or ``>``, and everything else in it
    came from outside. A deliberate link of ours would be added after escaping, as ``<url|label>`` with
    the label escaped.
    """
    return {"text": slack_escape(f"{headline(items)}\n{text(items)}")}


def slack_escape(value: str) -> str:
    """``value`` as literal text in a Slack message: no mention, link or other control sequence."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def email(items: list[Item], sender: str, to: list[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = headline(items)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message.set_content(text(items))
    return message


def _detail(event: str, alert: dict[str, Any] | None) -> str:
    if alert is None:
        return "A test notice from Mission Control. If you can read this, the channel is configured."
    lines = [alert["message"], f"opened {plain(alert['opened_at'])}, seen {alert['occurrences']} time(s)"]
    if alert.get("resolved_at"):
        lines.append(f"resolved {plain(alert['resolved_at'])}")
    if alert.get("ack_comment"):
        lines.append(f"acknowledged: {alert['ack_comment']}")
    return "\n".join(lines)


def _line(event: str, alert: dict[str, Any] | None) -> str:
    if alert is None:
        return "TEST: this channel works"
    return f"• {EVENT_WORDS.get(event, event.upper())} {alert['kind']} {alert['subject']}: {alert['message']}"


def _document(alert: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if alert is None else {key: plain(value) for key, value in alert.items()}


def plain(value: Any) -> Any:
    """A value as a JSON document carries it: times as UTC ISO-8601 with ``Z``, the rest as it is."""
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    return value
