"""Apprise channels against a local Apprise target (``json://127.0.0.1:PORT/…``, Apprise's JSON
service, played by a local fake) and under the outbound policy: a denied address is refused before
anything is sent, by the URL's host check and, failing that, at the socket Apprise connects."""

from __future__ import annotations

import ipaddress
import json
import threading

import pytest
import requests

from mission_control.db.alerts import AlertKind, open_alert
from mission_control.monitoring.notifications import apprise_channel
from mission_control.monitoring.notifications.notices import (
    ChannelSpec,
    DeliveryContext,
    create_channel,
    deliver,
    list_notices,
    route,
)
from mission_control.monitoring.notifications.senders import SmtpServer
from mission_control.outbound.policy import DestinationRefused, OutboundPolicy
from mission_control.outbound.secretbox import SecretBox
from mission_control.outbound.sender import make_session
from mission_control.outbound.socket_guard import guarded
from tests.conftest import SIGNING_SECRET
from tests.notification_fakes import FakeService

DENY_127_0_0_2 = OutboundPolicy.with_defaults(deny=[ipaddress.ip_network("127.0.0.2/32")])


@pytest.fixture
def receiver():
    with FakeService() as fake:
        yield fake


@pytest.fixture
def forbidden_receiver():
    with FakeService(host="127.0.0.2") as fake:
        yield fake


@pytest.fixture
def box():
    return SecretBox([], SIGNING_SECRET)


def deliver_one(engine, notice_id, box, clock):
    """One delivery of one notice through a fresh delivery context, closed afterwards."""
    ctx = context(box)
    try:
        return deliver(engine, [notice_id], ctx, clock.now(), final=False)
    finally:
        ctx.session.close()


def context(box, policy=DENY_127_0_0_2):
    return DeliveryContext(
        session=make_session(policy=policy),
        smtp=SmtpServer(None, 25, None, None),
        smtp_from="mc@example.test",
        signing_secret=SIGNING_SECRET,
        box=box,
        policy=policy,
    )


def apprise_channel_to(engine, clock, box, url, name="ntfy"):
    spec = ChannelSpec(name, "apprise", {"url": url}, None, "*", None, True)
    return create_channel(engine, spec, clock.now(), box)


def opened(engine, clock, subject="billing"):
    with engine.begin() as conn:
        change = open_alert(conn, AlertKind.SERVICE_DOWN, subject, clock.now(), f"{subject} is down")
    return route(engine, [(change.alert_id, "opened")], clock.now())


def test_an_alert_reaches_an_apprise_target(engine, clock, box, receiver):
    row = apprise_channel_to(engine, clock, box, f"json://127.0.0.1:{receiver.port}/hook?token=s3cret")
    [notice_id] = opened(engine, clock)
    result = deliver_one(engine, notice_id, box, clock)
    assert result.outcome == "sent", result
    [received] = receiver.requests_to("/hook")
    document = received.json()
    assert "OPEN: service_down billing" in document["title"] and "billing is down" in document["message"]
    [notice] = list_notices(engine, row["id"])
    assert notice["status"] == "sent" and "s3cret" not in json.dumps(notice, default=str)


@pytest.mark.parametrize(("status", "outcome"), [(503, "transient"), (429, "transient"), (404, "permanent")])
def test_apprise_failures_are_classified_by_the_answer(engine, clock, box, receiver, status, outcome):
    apprise_channel_to(engine, clock, box, f"json://127.0.0.1:{receiver.port}/hook")
    [notice_id] = opened(engine, clock)
    receiver.answer_next(*[status] * 10)  # Apprise may try more than once
    result = deliver_one(engine, notice_id, box, clock)
    assert (result.outcome, result.detail) == (outcome, f"HTTP {status}")


def test_a_denied_address_is_refused_and_sent_nothing(engine, clock, box, forbidden_receiver):
    row = apprise_channel_to(engine, clock, box, f"json://127.0.0.2:{forbidden_receiver.port}/hook")
    [notice_id] = opened(engine, clock)
    result = deliver_one(engine, notice_id, box, clock)
    assert result.outcome == "permanent" and "denied by the outbound policy" in result.detail
    assert forbidden_receiver.received == []
    [notice] = list_notices(engine, row["id"])
    assert notice["status"] == "failed" and notice["error_kind"] == "permanent"


def test_the_socket_guard_holds_apprise_without_the_host_check(monkeypatch, forbidden_receiver):
    # Apprise's own request, with nothing judging the URL beforehand: refused where it connects.
    monkeypatch.setattr(apprise_channel, "check_host", lambda host, port, policy: None)
    result = apprise_channel.send(
        f"json://127.0.0.2:{forbidden_receiver.port}/hook", [("test", None)], DENY_127_0_0_2
    )
    assert result.outcome == "permanent" and "127.0.0.2 is denied" in result.detail
    assert forbidden_receiver.received == []


def test_a_redirect_to_a_denied_address_is_not_followed(receiver, forbidden_receiver):
    receiver.redirect_to = f"http://127.0.0.2:{forbidden_receiver.port}/hook"
    result = apprise_channel.send(f"json://127.0.0.1:{receiver.port}/hook", [("test", None)], DENY_127_0_0_2)
    assert result.outcome == "permanent"
    assert forbidden_receiver.received == []


def test_the_guard_is_scoped_to_its_context_and_follows_copied_contexts(forbidden_receiver):
    url = f"{forbidden_receiver.url}/x"
    with guarded(DENY_127_0_0_2) as record:
        with pytest.raises(DestinationRefused):
            requests.post(url, json={}, timeout=5)
        # Another thread started meanwhile, without the context, is not judged.
        outside: list[int] = []
        thread = threading.Thread(target=lambda: outside.append(requests.post(url, timeout=5).status_code))
        thread.start()
        thread.join(10)
    assert outside == [200]
    assert [str(r.host) for r in record.refused] == ["127.0.0.2"]
    assert requests.post(url, timeout=5).status_code == 200  # after the block: untouched
    assert len(forbidden_receiver.received) == 2


def test_a_url_apprise_does_not_know_is_permanent():
    result = apprise_channel.send("nosuchservice://h/x", [("test", None)])
    assert result.outcome == "permanent"
