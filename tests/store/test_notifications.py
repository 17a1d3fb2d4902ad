"""Routing alert changes to channels and delivering notices to a real webhook receiver and SMTP server."""

from __future__ import annotations

import json
import threading
import time

import pytest
from aiosmtpd.controller import Controller

from mission_control.db.alerts import AlertKind, open_alert, resolve_alerts
from mission_control.monitoring.notifications.notices import (
    ChannelSpec,
    DeliveryContext,
    add_test_notice,
    create_channel,
    deliver,
    due_repeats,
    list_notices,
    route,
)
from mission_control.monitoring.notifications.senders import SmtpServer
from mission_control.outbound.sender import make_session
from tests.conftest import SIGNING_SECRET, free_port


class Inbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []
        self.refuse_with: str | None = None
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_with:
            return self.refuse_with
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode()))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


@pytest.fixture
def delivery(smtp):
    controller, _ = smtp
    session = make_session()
    yield DeliveryContext(
        session=session,
        smtp=SmtpServer("127.0.0.1", controller.port, None, None, False),
        smtp_from="mc@example.test",
        signing_secret=SIGNING_SECRET,
    )
    session.close()


def channel(engine, clock, name, kind, target, **overrides):
    spec = ChannelSpec(
        name=name,
        kind=kind,
        target=target,
        alert_kinds=overrides.pop("alert_kinds", None),
        subject_pattern=overrides.pop("subject_pattern", "*"),
        repeat_interval_s=overrides.pop("repeat_interval_s", None),
        enabled=overrides.pop("enabled", True),
    )
    return create_channel(engine, spec, clock.now())


def open_one(engine, clock, kind=AlertKind.SERVICE_DOWN, subject="billing"):
    with engine.begin() as conn:
        return open_alert(conn, kind, subject, clock.now(), f"{subject} is down", {"service": subject})


def test_an_alert_reaches_webhook_slack_and_email_with_the_right_formats(
    engine, clock, target, smtp, delivery
):
    _, inbox = smtp
    channel(engine, clock, "ops-hook", "webhook", {"url": f"{target.url}/echo?ch=hook"})
    channel(engine, clock, "ops-slack", "slack", {"url": f"{target.url}/echo?ch=slack"})
    channel(engine, clock, "ops-mail", "email", {"to": ["oncall@example.test"]})
    change = open_one(engine, clock)

    notice_ids = route(engine, [(change.alert_id, "opened")], clock.now())
    assert len(notice_ids) == 3
    outcomes = [deliver(engine, [n], delivery, clock.now(), final=False).outcome for n in notice_ids]
    assert outcomes == ["sent", "sent", "sent"]

    [hook] = target.requests_to("/echo?ch=hook")
    [document] = hook.json()["notices"]
    assert document["event"] == "opened" and document["alert"]["subject"] == "billing"
    assert document["alert"]["opened_at"].endswith("Z")
    # Signed with the wall clock, as the receiver checks freshness against its own.
    assert hook.signed_by(SIGNING_SECRET, now=time.time())
    [slack] = target.requests_to("/echo?ch=slack")
    assert set(slack.json()) == {"text"} and "OPEN: service_down billing" in slack.json()["text"]
    [(sender, recipients, content)] = inbox.messages
    assert sender == "mc@example.test" and recipients == ["oncall@example.test"]
    assert "Subject: [Mission Control] OPEN: service_down billing" in content

    # Routing the same change again (a redelivered task) notifies nobody twice.
    assert route(engine, [(change.alert_id, "opened")], clock.now()) == []
    assert deliver(engine, [notice_ids[0]], delivery, clock.now(), final=False).outcome == "skipped"


def test_routing_by_kind_and_subject_pattern(engine, clock, target):
    channel(
        engine,
        clock,
        "billing-only",
        "webhook",
        {"url": f"{target.url}/echo?ch=a"},
        subject_pattern="billing-*",
    )
    channel(
        engine, clock, "jobs-only", "webhook", {"url": f"{target.url}/echo?ch=b"}, alert_kinds=["job_failed"]
    )
    channel(engine, clock, "off", "webhook", {"url": f"{target.url}/echo?ch=c"}, enabled=False)
    svc = open_one(engine, clock, subject="billing-api")
    job = open_one(engine, clock, kind=AlertKind.JOB_FAILED, subject="search-index")
    assert len(route(engine, [(svc.alert_id, "opened")], clock.now())) == 1
    assert len(route(engine, [(job.alert_id, "opened")], clock.now())) == 1


def test_transient_errors_stay_pending_permanent_ones_fail_and_all_attempts_are_logged(
    engine, clock, target, delivery
):
    flaky = channel(engine, clock, "flaky", "webhook", {"url": f"{target.url}/sequence/hook/503,200"})
    broken = channel(engine, clock, "broken", "webhook", {"url": f"{target.url}/status/404"})
    change = open_one(engine, clock)
    ids = dict(
        zip(["flaky", "broken"], route(engine, [(change.alert_id, "opened")], clock.now()), strict=True)
    )

    assert deliver(engine, [ids["flaky"]], delivery, clock.now(), final=False).outcome == "transient"
    assert deliver(engine, [ids["flaky"]], delivery, clock.now(), final=False).outcome == "sent"
    assert deliver(engine, [ids["broken"]], delivery, clock.now(), final=False).outcome == "permanent"

    [flaky_notice] = list_notices(engine, flaky["id"])
    assert flaky_notice["status"] == "sent" and flaky_notice["attempts"] == 2
    assert [a["outcome"] for a in flaky_notice["delivery_attempts"]] == ["transient", "sent"]
    assert flaky_notice["delivery_attempts"][0]["detail"] == "HTTP 503"
    [broken_notice] = list_notices(engine, broken["id"])
    assert broken_notice["status"] == "failed" and broken_notice["error_kind"] == "permanent"
    assert target.url not in json.dumps(broken_notice, default=str)  # no URL in the log


def test_a_transient_failure_on_the_last_try_fails_the_notice(engine, clock, target, delivery):
    channel(engine, clock, "down-hook", "webhook", {"url": f"http://127.0.0.1:{free_port()}/nothing"})
    change = open_one(engine, clock)
    [notice_id] = route(engine, [(change.alert_id, "opened")], clock.now())
    assert deliver(engine, [notice_id], delivery, clock.now(), final=True).outcome == "transient"
    assert deliver(engine, [notice_id], delivery, clock.now(), final=False).outcome == "skipped"


def test_smtp_refusals_are_told_apart(engine, clock, smtp, delivery):
    _, inbox = smtp
    channel(engine, clock, "mail", "email", {"to": ["oncall@example.test"]})
    inbox.refuse_with = "451 try again later"
    first = open_one(engine, clock, subject="a")
    [n1] = route(engine, [(first.alert_id, "opened")], clock.now())
    assert deliver(engine, [n1], delivery, clock.now(), final=False).outcome == "transient"
    inbox.refuse_with = "554 no thanks"
    second = open_one(engine, clock, subject="b")
    [n2] = route(engine, [(second.alert_id, "opened")], clock.now())
    assert deliver(engine, [n2], delivery, clock.now(), final=False).outcome == "permanent"


def test_repeats_follow_the_interval_until_acknowledged_or_resolved(engine, clock, target):
    channel(engine, clock, "loud", "webhook", {"url": f"{target.url}/echo?ch=r"}, repeat_interval_s=600)
    change = open_one(engine, clock)
    route(engine, [(change.alert_id, "opened")], clock.now())

    clock.advance(599)
    assert due_repeats(engine, clock.now()) == []
    clock.advance(1)
    assert len(due_repeats(engine, clock.now())) == 1
    assert due_repeats(engine, clock.now()) == []  # a second sweep (another beat) adds nothing
    clock.advance(600)
    assert len(due_repeats(engine, clock.now())) == 1

    from mission_control.db.alerts import acknowledge

    acknowledge(engine, change.alert_id, clock.now(), "mine")
    clock.advance(3600)
    assert due_repeats(engine, clock.now()) == []  # acknowledged: no more repeats
    with engine.begin() as conn:
        [resolved] = resolve_alerts(conn, [AlertKind.SERVICE_DOWN], "billing", clock.now())
    assert len(route(engine, [(resolved.alert_id, "resolved")], clock.now())) == 1


def test_a_test_notice_needs_no_alert(engine, clock, target, delivery):
    hook = channel(engine, clock, "hook", "webhook", {"url": f"{target.url}/echo?ch=t"})
    notice_id = add_test_notice(engine, hook["id"], clock.now())
    assert deliver(engine, [notice_id], delivery, clock.now(), final=False).outcome == "sent"
    assert target.requests_to("/echo?ch=t")[0].json() == {"notices": [{"event": "test", "alert": None}]}
    assert add_test_notice(engine, 10**9, clock.now()) is None


def test_many_alerts_at_once_become_one_message_per_channel(engine, clock, target, smtp, delivery):
    from mission_control.monitoring.notifications.notices import group_by_channel

    _, inbox = smtp
    channel(engine, clock, "hook", "webhook", {"url": f"{target.url}/echo?ch=many"})
    channel(engine, clock, "mail", "email", {"to": ["oncall@example.test"]})
    changes = [open_one(engine, clock, subject=f"svc-{i:03d}") for i in range(150)]
    notice_ids = route(engine, [(c.alert_id, "opened") for c in changes], clock.now())
    assert len(notice_ids) == 300
    groups = group_by_channel(engine, notice_ids)
    assert sorted(len(g) for g in groups) == [50, 50, 100, 100]  # at most 100 notices per message
    for group in groups:
        assert deliver(engine, group, delivery, clock.now(), final=False).outcome == "sent"
    posts = target.requests_to("/echo?ch=many")
    assert sorted(len(p.json()["notices"]) for p in posts) == [50, 100]
    assert len(inbox.messages) == 2
    assert "100 alert changes: 100 OPEN" in inbox.messages[0][2] + inbox.messages[1][2]
    assert "… and 80 more" in inbox.messages[0][2] + inbox.messages[1][2]


def test_an_alert_whose_routing_was_lost_is_routed_by_the_sweep(engine, clock, target):
    from mission_control.monitoring.notifications.notices import unrouted

    channel(engine, clock, "hook", "webhook", {"url": f"{target.url}/echo?ch=late"})
    change = open_one(engine, clock)  # opened, but its routing task never reached a worker
    assert unrouted(engine, clock.now()) == []  # too recent: its routing task may still be coming
    clock.advance(31)
    [notice_id] = unrouted(engine, clock.now())
    assert unrouted(engine, clock.now()) == []  # routed once: last_notified_at is set
    assert route(engine, [(change.alert_id, "opened")], clock.now()) == []  # and never twice
    assert notice_id


def test_a_slack_notice_escapes_what_the_service_sent(engine, clock, target, delivery):
    channel(engine, clock, "ops-slack", "slack", {"url": f"{target.url}/echo?ch=slack"})
    with engine.begin() as conn:
        change = open_alert(
            conn,
            AlertKind.SERVICE_DOWN,
            "billing",
            clock.now(),
            "<!channel> <https://evil.example|click> & run",
        )
    [notice_id] = route(engine, [(change.alert_id, "opened")], clock.now())

    assert deliver(engine, [notice_id], delivery, clock.now(), final=False).outcome == "sent"

    [slack] = target.requests_to("/echo?ch=slack")
    text = slack.json()["text"]
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; run" in text
    assert "<" not in text and ">" not in text
