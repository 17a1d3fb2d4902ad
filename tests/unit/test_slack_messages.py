"""Slack notices carry what services sent (names, heartbeat and error messages, comments) as literal
text: Slack's control sequences (``<!channel>``, ``<https://evil|click>``) are escaped, other kinds of
channel get the text unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mission_control.monitoring.notifications import messages

OPENED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
HOSTILE = "<!channel> <https://evil.example/login|click here> & <@U012AB3CD> <!subteam^S1|ops>"


def alert(**overrides: Any) -> dict[str, Any]:
    return {
        "id": 7,
        "kind": "service_down",
        "subject": "billing",
        "message": "billing is down",
        "state": "acknowledged",
        "opened_at": OPENED,
        "resolved_at": None,
        "occurrences": 1,
        "ack_comment": None,
        **overrides,
    }


@pytest.mark.parametrize(
    "items",
    [
        [("opened", alert(subject=HOSTILE))],  # a service or job name
        [("opened", alert(message=HOSTILE))],  # a heartbeat or error message
        [("repeat", alert(ack_comment=HOSTILE))],  # an acknowledgement comment
        [("resolved", alert(resolved_at=OPENED, message=HOSTILE))],
        [("opened", alert(subject=HOSTILE)), ("opened", alert(message=HOSTILE))],  # the list form
        [("opened", alert(message=HOSTILE))] * (messages.LISTED + 3),  # with "and N more"
    ],
    ids=["subject", "message", "comment", "resolved", "list", "long-list"],
)
def test_control_sequences_from_services_reach_slack_as_literal_text(items: list[messages.Item]) -> None:
    text = messages.slack(items)["text"]

    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt;" in text
    assert "&lt;https://evil.example/login|click here&gt;" in text
    assert " &amp; " in text and "&lt;@U012AB3CD&gt;" in text


def test_our_own_words_are_unchanged_in_slack() -> None:
    text = messages.slack([("opened", alert())])["text"]
    assert text.startswith("[Mission Control] OPEN: service_down billing\nbilling is down\n")
    assert messages.slack([("test", None)])["text"] == (
        "[Mission Control] TEST: this channel works\n"
        "A test notice from Mission Control. If you can read this, the channel is configured."
    )


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a & b", "a &amp; b"),
        ("&amp;", "&amp;amp;"),  # an escape typed by a service stays what it typed
        ("<!here>", "&lt;!here&gt;"),
        ("x > y < z", "x &gt; y &lt; z"),
        ("plain *bold* _it_", "plain *bold* _it_"),
    ],
)
def test_slack_escape(raw: str, escaped: str) -> None:
    assert messages.slack_escape(raw) == escaped


def test_webhook_documents_and_emails_keep_the_text_as_sent() -> None:
    items: list[messages.Item] = [("opened", alert(subject=HOSTILE, message=HOSTILE))]
    assert messages.payload(items)["notices"][0]["alert"]["message"] == HOSTILE
    email = messages.email(items, "mc@example.test", ["oncall@example.test"])
    assert HOSTILE in email.get_content()
