"""PagerDuty Events API v2 channels against a local fake of the API: trigger on open, acknowledge on
ack, resolve on resolve, one dedup key per alert, 429/5xx retried, 400 failed, the key sealed."""

from __future__ import annotations

import ipaddress
import json

import pytest
from sqlalchemy import select

from mission_control.db.alerts import AlertKind, acknowledge, open_alert, resolve_alerts
from mission_control.db.tables import channels
from mission_control.monitoring.notifications.notices import (
    ChannelSpec,
    DeliveryContext,
    add_test_notice,
    create_channel,
    deliver,
    destination,
    list_notices,
    route,
)
from mission_control.monitoring.notifications.pagerduty import DEFAULT_EVENTS_URL, dedup_key
from mission_control.monitoring.notifications.senders import SmtpServer
from mission_control.outbound.policy import OutboundPolicy
from mission_control.outbound.secretbox import SecretBox
from mission_control.outbound.sender import make_session
from tests.conftest import SIGNING_SECRET
from tests.notification_fakes import FakePagerDuty

KEY = "R" * 32


@pytest.fixture
def pagerduty():
    with FakePagerDuty(routing_key=KEY) as fake:
        yield fake


@pytest.fixture
def box():
    return SecretBox([], SIGNING_SECRET)


@pytest.fixture
def delivery(box):
    session = make_session()
    yield DeliveryContext(
        session=session,
        smtp=SmtpServer(None, 25, None, None),
        smtp_from="mc@example.test",
        signing_secret=SIGNING_SECRET,
        box=box,
    )
    session.close()


def pd_channel(engine, clock, box, pagerduty, name="pd", key=KEY):
    target = {"routing_key": key, "events_url": f"{pagerduty.url}/v2/enqueue"}
    return create_channel(
        engine, ChannelSpec(name, "pagerduty", target, None, "*", None, True), clock.now(), box
    )


def deliver_all(engine, ids, delivery, clock):
    return [deliver(engine, [n], delivery, clock.now(), final=False).outcome for n in ids]


def test_open_ack_and_resolve_follow_one_pagerduty_incident(engine, clock, box, pagerduty, delivery):
    pd_channel(engine, clock, box, pagerduty)
    with engine.begin() as conn:
        change = open_alert(conn, AlertKind.SERVICE_DOWN, "billing", clock.now(), "billing is down")
    opened = route(engine, [(change.alert_id, "opened")], clock.now())
    assert deliver_all(engine, opened, delivery, clock) == ["sent"]
    [trigger] = pagerduty.events()
    assert trigger["event_action"] == "trigger" and trigger["routing_key"] == KEY
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["source"] == "billing"
    assert "billing is down" in trigger["payload"]["summary"]
    assert trigger["payload"]["custom_details"]["alert_id"] == change.alert_id
    key = trigger["dedup_key"]
    assert pagerduty.incidents[key]["status"] == "triggered"

    acknowledge(engine, change.alert_id, clock.now(), "on it")
    ack_ids = route(engine, [(change.alert_id, "acknowledged")], clock.now())
    assert deliver_all(engine, ack_ids, delivery, clock) == ["sent"]
    assert route(engine, [(change.alert_id, "acknowledged")], clock.now()) == []  # a re-ack: once
    assert pagerduty.incidents[key]["status"] == "acknowledged"

    clock.advance(60)
    with engine.begin() as conn:
        [resolved] = resolve_alerts(conn, [AlertKind.SERVICE_DOWN], "billing", clock.now())
    closed = route(engine, [(resolved.alert_id, "resolved")], clock.now())
    assert deliver_all(engine, closed, delivery, clock) == ["sent"]
    assert [e["event_action"] for e in pagerduty.events()] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in pagerduty.events()} == {key}
    assert pagerduty.incidents[key]["status"] == "resolved"


def test_the_dedup_key_is_the_alerts_across_repeats_and_restarts(engine, clock):
    with engine.begin() as conn:
        change = open_alert(conn, AlertKind.JOB_FAILED, "export", clock.now(), "failed")
    alert = {"id": change.alert_id, "kind": "job_failed", "subject": "export"}
    assert dedup_key(alert) == f"mission-control/job_failed/export/{change.alert_id}"
    assert dedup_key(dict(alert)) == dedup_key(alert)  # a function of the stored alert only


def test_only_pagerduty_channels_hear_of_acknowledgements(engine, clock, box, pagerduty, target):
    pd_channel(engine, clock, box, pagerduty)
    create_channel(
        engine,
        ChannelSpec("hook", "webhook", {"url": f"{target.url}/echo"}, None, "*", None, True),
        clock.now(),
        box,
    )
    with engine.begin() as conn:
        change = open_alert(conn, AlertKind.SERVICE_DOWN, "billing", clock.now(), "down")
    assert len(route(engine, [(change.alert_id, "acknowledged")], clock.now())) == 1


def test_429_and_5xx_are_retried_400_fails_at_once(engine, clock, box, pagerduty, delivery):
    pd_channel(engine, clock, box, pagerduty)
    with engine.begin() as conn:
        first = open_alert(conn, AlertKind.SERVICE_DOWN, "a", clock.now(), "down")
    [notice_id] = route(engine, [(first.alert_id, "opened")], clock.now())
    pagerduty.answer_next(429, 503)
    assert deliver(engine, [notice_id], delivery, clock.now(), final=False).outcome == "transient"
    assert deliver(engine, [notice_id], delivery, clock.now(), final=False).outcome == "transient"
    assert deliver(engine, [notice_id], delivery, clock.now(), final=False).outcome == "sent"

    bad = pd_channel(engine, clock, box, pagerduty, name="wrong-key", key="W" * 32)
    with engine.begin() as conn:
        second = open_alert(conn, AlertKind.SERVICE_DOWN, "b", clock.now(), "down")
    ids = route(engine, [(second.alert_id, "opened")], clock.now())
    outcomes = {deliver(engine, [n], delivery, clock.now(), final=False).outcome for n in ids}
    assert outcomes == {"sent", "permanent"}
    [failed] = list_notices(engine, bad["id"])
    assert failed["status"] == "failed" and failed["delivery_attempts"][0]["detail"] == "trigger: HTTP 400"
    assert "W" * 32 not in json.dumps(failed, default=str)


def test_the_routing_key_is_sealed_and_never_shown(engine, clock, box, pagerduty):
    row = pd_channel(engine, clock, box, pagerduty)
    with engine.connect() as conn:
        stored = conn.execute(select(channels.c.target).where(channels.c.id == row["id"])).scalar_one()
    assert KEY not in json.dumps(stored)
    assert destination(stored) == f"{pagerduty.url}/…"
    assert DEFAULT_EVENTS_URL == "https://events.pagerduty.com/v2/enqueue"


def test_a_test_notice_triggers_and_resolves_at_once(engine, clock, box, pagerduty, delivery):
    row = pd_channel(engine, clock, box, pagerduty)
    notice_id = add_test_notice(engine, row["id"], clock.now())
    assert deliver(engine, [notice_id], delivery, clock.now(), final=False).outcome == "sent"
    trigger, resolve = pagerduty.events()
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert pagerduty.incidents[trigger["dedup_key"]]["status"] == "resolved"


def test_resealing_with_a_new_key_keeps_the_routing_key_usable(engine, clock, box, pagerduty, delivery):
    from mission_control.monitoring.notifications.notices import reseal_channels

    row = pd_channel(engine, clock, box, pagerduty)
    newer = SecretBox(["a-newer-secret-key-0123456789abcdef"], SIGNING_SECRET)
    assert reseal_channels(engine, newer) == 1
    with engine.connect() as conn:
        stored = conn.execute(select(channels.c.target).where(channels.c.id == row["id"])).scalar_one()
    assert KEY not in json.dumps(stored) and newer.open_value(stored["routing_key"]) == KEY
    only_newer = DeliveryContext(
        **{**vars(delivery), "box": SecretBox(["a-newer-secret-key-0123456789abcdef"], None)}
    )
    notice_id = add_test_notice(engine, row["id"], clock.now())
    assert deliver(engine, [notice_id], only_newer, clock.now(), final=False).outcome == "sent"


def test_an_events_url_at_a_denied_address_is_refused_and_hears_nothing(engine, clock, box):
    """events_url is the operator's to set, so it is an SSRF path like a webhook URL: the delivery
    session's outbound policy refuses a denied address (127.0.0.2 stands for one) before any byte."""
    policy = OutboundPolicy.with_defaults(deny=[ipaddress.ip_network("127.0.0.2/32")])
    session = make_session(policy=policy)
    guarded_delivery = DeliveryContext(
        session=session,
        smtp=SmtpServer(None, 25, None, None),
        smtp_from="mc@example.test",
        signing_secret=SIGNING_SECRET,
        box=box,
        policy=policy,
    )
    with FakePagerDuty(host="127.0.0.2", routing_key=KEY) as forbidden:
        pd_channel(engine, clock, box, forbidden, name="pd-denied")
        with engine.begin() as conn:
            change = open_alert(conn, AlertKind.SERVICE_DOWN, "a", clock.now(), "down")
        [notice_id] = route(engine, [(change.alert_id, "opened")], clock.now())
        try:
            result = deliver(engine, [notice_id], guarded_delivery, clock.now(), final=False)
        finally:
            session.close()
        assert result.outcome == "permanent", result
        assert forbidden.received == []
