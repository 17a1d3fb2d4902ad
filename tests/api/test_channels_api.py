"""Notification channels over HTTP: validation, secrets kept out of answers, test notices, the log."""

from __future__ import annotations

import pytest

from tests.api.conftest import AUTH

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
def client(app):
    return app.test_client()


def test_channels_are_created_listed_tested_and_removed(client, delivered):
    secret_url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
    created = client.post(
        "/api/v1/channels",
        headers=AUTH,
        json={"name": "ops", "kind": "slack", "url": secret_url, "alert_kinds": ["service_down"],
              "subject_pattern": "billing-*", "repeat_interval_s": 900},
    )  # fmt: skip
    assert created.status_code == 201, created.get_json()
    channel = created.get_json()
    assert channel["destination"] == "https://hooks.slack.com/…"
    listing = client.get("/api/v1/channels", headers=AUTH)
    assert "SECRET" not in listing.get_data(as_text=True)

    again = client.post(
        "/api/v1/channels", headers=AUTH, json={"name": "ops", "kind": "email", "to": ["a@b.test"]}
    )
    assert again.status_code == 409

    test = client.post(f"/api/v1/channels/{channel['id']}/test", headers=AUTH)
    assert test.status_code == 202
    notice = test.get_json()
    assert notice["event"] == "test" and notice["status"] == "pending"
    assert delivered == [[notice["id"]]]
    log = client.get(f"/api/v1/channels/{channel['id']}/notices", headers=AUTH).get_json()["notices"]
    assert [n["id"] for n in log] == [notice["id"]]

    assert client.delete(f"/api/v1/channels/{channel['id']}", headers=AUTH).status_code == 204
    assert client.get(f"/api/v1/channels/{channel['id']}", headers=AUTH).status_code == 404
    assert client.post(f"/api/v1/channels/{channel['id']}/test", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "kind": "email"}, "to"),
        ({"name": "x", "kind": "email", "to": ["not-an-address"]}, "to.0"),
        ({"name": "x", "kind": "webhook"}, "url"),
        ({"name": "x", "kind": "webhook", "url": "ftp://host/x"}, "url"),
        ({"name": "x", "kind": "slack", "url": "http://hooks.slack.com/x"}, "url"),
        ({"name": "x", "kind": "pager", "url": "https://x"}, "kind"),
        (
            {"name": "x", "kind": "webhook", "url": "https://x", "alert_kinds": ["everything"]},
            "alert_kinds.0",
        ),
        ({"name": "x", "kind": "webhook", "url": "https://x", "repeat_interval_s": 1}, "repeat_interval_s"),
        ({"name": "Bad Name", "kind": "webhook", "url": "https://x"}, "name"),
    ],
)
def test_bad_channels_are_422_naming_the_field(client, body, field):
    response = client.post("/api/v1/channels", headers=AUTH, json=body)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["field"] == field or field in error["message"], error
    assert client.get("/api/v1/channels", headers=AUTH).get_json()["channels"] == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.com?token=SECRET", "https://hooks.example.com/…"),
        ("https://h.example?x=1&t=SECRET#frag", "https://h.example/…"),
        ("https://user:SECRET@h.example:8443#SECRET", "https://h.example:8443/…"),
        ("https://[2001:db8::1]?SECRET", "https://[2001:db8::1]/…"),
    ],
)
def test_a_channel_url_without_a_path_is_shown_to_its_host_only(client, url, shown):
    # Creating a channel sends nothing; these hosts are never contacted.
    created = client.post(
        "/api/v1/channels", headers=AUTH, json={"name": "ops", "kind": "webhook", "url": url}
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["destination"] == shown
    channel_id = created.get_json()["id"]
    for answer in (
        created,
        client.get("/api/v1/channels", headers=AUTH),
        client.get(f"/api/v1/channels/{channel_id}", headers=AUTH),
    ):
        assert "SECRET" not in answer.get_data(as_text=True)
