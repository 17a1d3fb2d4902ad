"""PagerDuty and Apprise channels over HTTP: what they take, what 422 names, and that their secrets (a
routing key, an Apprise URL) are never answered; acknowledging an alert tells PagerDuty channels."""

from __future__ import annotations

import pytest

from mission_control.db.alerts import AlertKind, open_alert
from tests.api.conftest import AUTH

pytestmark = pytest.mark.usefixtures("engine")
KEY = "Rk3y" * 8


@pytest.fixture
def client(app):
    return app.test_client()


def test_a_pagerduty_channel_takes_a_routing_key_and_never_shows_it(client):
    made = client.post(
        "/api/v1/channels", headers=AUTH, json={"name": "pd", "kind": "pagerduty", "routing_key": KEY}
    )
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["destination"] == "https://events.pagerduty.com/…"
    local = client.post(
        "/api/v1/channels",
        headers=AUTH,
        json={"name": "pd-local", "kind": "pagerduty", "routing_key": KEY,
              "events_url": "http://127.0.0.1:9/v2/enqueue"},
    )  # fmt: skip
    assert local.get_json()["destination"] == "http://127.0.0.1:9/…"
    for answer in (made, local, client.get("/api/v1/channels", headers=AUTH)):
        assert KEY not in answer.get_data(as_text=True)


def test_an_apprise_channel_is_shown_by_scheme_and_a_real_host_only(client):
    ntfy = client.post(
        "/api/v1/channels",
        headers=AUTH,
        json={"name": "ntfy", "kind": "apprise", "url": "ntfys://user:pass@ntfy.example.com/topic-secret"},
    )
    assert ntfy.status_code == 201, ntfy.get_json()
    assert ntfy.get_json()["destination"] == "ntfys://ntfy.example.com/…"
    telegram = client.post(
        "/api/v1/channels",
        headers=AUTH,
        json={"name": "tg", "kind": "apprise", "url": "tgram://123456789:AAbbCCddSECRET/-100200300"},
    )
    assert telegram.status_code == 201, telegram.get_json()
    assert telegram.get_json()["destination"] == "tgram://…"
    listing = client.get("/api/v1/channels", headers=AUTH).get_data(as_text=True)
    assert "SECRET" not in listing and "topic-secret" not in listing and "pass" not in listing


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "kind": "pagerduty"}, "routing_key"),
        ({"name": "x", "kind": "pagerduty", "routing_key": "short"}, "routing_key"),
        ({"name": "x", "kind": "pagerduty", "routing_key": KEY, "events_url": "ftp://h/x"}, "events_url"),
        ({"name": "x", "kind": "pagerduty", "routing_key": KEY, "url": "https://h/x"}, "url"),
        ({"name": "x", "kind": "webhook", "url": "https://h/x", "routing_key": KEY}, "routing_key"),
        ({"name": "x", "kind": "webhook", "url": "ntfy://h/x"}, "url"),
        ({"name": "x", "kind": "apprise"}, "url"),
        ({"name": "x", "kind": "apprise", "url": "nosuchservice://h/x"}, "url"),
    ],
)
def test_bad_channels_are_422_naming_the_field_and_change_nothing(client, body, field):
    answer = client.post("/api/v1/channels", headers=AUTH, json=body)
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["error"]["field"] == field
    assert client.get("/api/v1/channels", headers=AUTH).get_json()["channels"] == []


def test_acknowledging_an_alert_hands_the_acknowledgement_to_the_channels(client, engine, clock, notified):
    with engine.begin() as conn:
        change = open_alert(conn, AlertKind.SERVICE_DOWN, "billing", clock.now(), "down")
    answer = client.post(f"/api/v1/alerts/{change.alert_id}/acknowledge", headers=AUTH, json={})
    assert answer.status_code == 200
    assert [(c.alert_id, c.event) for c in notified] == [(change.alert_id, "acknowledged")]
