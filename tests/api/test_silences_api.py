"""Silences over HTTP and on the dashboard: create (who made it is the token), list by state, expire;
422 naming the field for bad input, with nothing created; scopes as alerts'."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.api.conftest import AUTH
from tests.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
def client(app):
    return app.test_client()


def later(clock, **delta):
    return (clock.now() + timedelta(**delta)).isoformat()


def test_silences_are_created_listed_and_expired(client, clock):
    made = client.post(
        "/api/v1/silences",
        headers=AUTH,
        json={"alert_kinds": ["service_down"], "subject_pattern": "billing-*",
              "ends_at": later(clock, hours=2), "comment": "database migration"},
    )  # fmt: skip
    assert made.status_code == 201, made.get_json()
    silence = made.get_json()
    assert silence["state"] == "active" and silence["created_by"] == "MC_ADMIN_TOKEN"
    assert silence["tag_pattern"] is None
    tagged = client.post(
        "/api/v1/silences",
        headers=AUTH,
        json={"tag_pattern": "tier:*", "ends_at": later(clock, minutes=5), "comment": "tiered"},
    )
    assert tagged.status_code == 201 and tagged.get_json()["tag_pattern"] == "tier:*"
    client.delete(f"/api/v1/silences/{tagged.get_json()['id']}", headers=AUTH)
    assert silence["starts_at"].startswith(clock.now().isoformat()[:19])
    pending = client.post(
        "/api/v1/silences",
        headers=AUTH,
        json={"starts_at": later(clock, hours=1), "ends_at": later(clock, hours=3), "comment": "later"},
    ).get_json()
    assert pending["state"] == "pending"

    def ids(state=None):
        path = "/api/v1/silences" + (f"?state={state}" if state else "")
        return [s["id"] for s in client.get(path, headers=AUTH).get_json()["silences"]]

    assert ids() == [pending["id"], tagged.get_json()["id"], silence["id"]]
    assert ids("active") == [silence["id"]] and ids("pending") == [pending["id"]]
    assert ids("expired") == [tagged.get_json()["id"]]

    expired = client.delete(f"/api/v1/silences/{silence['id']}", headers=AUTH)
    assert expired.status_code == 200 and expired.get_json()["state"] == "expired"
    assert expired.get_json()["expired_at"] is not None
    assert ids("expired") == [tagged.get_json()["id"], silence["id"]]
    assert client.get(f"/api/v1/silences/{silence['id']}", headers=AUTH).get_json()["state"] == "expired"
    assert client.delete("/api/v1/silences/999999", headers=AUTH).status_code == 404
    assert client.get("/api/v1/silences?state=bogus", headers=AUTH).status_code == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"comment": "x"}, "ends_at"),
        ({"ends_at": "2999-01-01T00:00:00Z"}, "comment"),
        ({"ends_at": "2999-01-01T00:00:00", "comment": "x"}, "ends_at"),  # no timezone
        ({"ends_at": "2000-01-01T00:00:00Z", "comment": "x"}, "ends_at"),  # past
        ({"starts_at": "2999-01-02T00:00:00Z", "ends_at": "2999-01-01T00:00:00Z", "comment": "x"}, "ends_at"),
        ({"ends_at": "2999-01-01T00:00:00Z", "comment": "x", "alert_kinds": ["nope"]}, "alert_kinds.0"),
        ({"ends_at": "2999-01-01T00:00:00Z", "comment": "x", "subject_pattern": ""}, "subject_pattern"),
        ({"ends_at": "2999-01-01T00:00:00Z", "comment": "x", "tags": ["team:a"]}, "tags"),
        ({"ends_at": "2999-01-01T00:00:00Z", "comment": "x", "tag_pattern": "Team A"}, "tag_pattern"),
    ],
)
def test_bad_silences_are_422_naming_the_field_and_change_nothing(client, body, field):
    answer = client.post("/api/v1/silences", headers=AUTH, json=body)
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["error"]["field"] == field
    assert client.get("/api/v1/silences", headers=AUTH).get_json()["silences"] == []


def test_silences_need_the_alerts_scopes(client, clock):
    def token(*scopes):
        made = client.post(
            "/api/v1/tokens",
            headers=AUTH,
            json={"name": "-".join(scopes).replace(":", "-"), "scopes": scopes},
        )
        return {"Authorization": f"Bearer {made.get_json()['token']}"}

    body = {"ends_at": later(clock, hours=1), "comment": "x"}
    reader, writer, jobs = token("read"), token("alerts:write"), token("jobs:write")
    assert client.get("/api/v1/silences", headers=reader).status_code == 200
    assert client.post("/api/v1/silences", headers=reader, json=body).status_code == 403
    assert client.get("/api/v1/silences", headers=jobs).status_code == 403
    made = client.post("/api/v1/silences", headers=writer, json=body)
    assert made.status_code == 201 and made.get_json()["created_by"] == "alerts-write"
    assert client.delete(f"/api/v1/silences/{made.get_json()['id']}", headers=reader).status_code == 403
    assert client.delete(f"/api/v1/silences/{made.get_json()['id']}", headers=writer).status_code == 200


def test_the_dashboard_lists_silences_and_expires_one_with_csrf(app, client, clock):
    made = client.post(
        "/api/v1/silences", headers=AUTH, json={"ends_at": later(clock, hours=1), "comment": "deploy window"}
    ).get_json()
    browser = app.test_client()
    assert browser.post("/login", data={"token": ADMIN_TOKEN}).status_code == 302
    page = browser.get("/silences").get_data(as_text=True)
    assert "deploy window" in page and f"/silences/{made['id']}/expire" in page
    assert browser.post(f"/silences/{made['id']}/expire", data={"csrf": "forged"}).status_code == 400
    assert client.get(f"/api/v1/silences/{made['id']}", headers=AUTH).get_json()["state"] == "active"
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)[1]
    assert browser.post(f"/silences/{made['id']}/expire", data={"csrf": csrf}).status_code == 302
    assert client.get(f"/api/v1/silences/{made['id']}", headers=AUTH).get_json()["state"] == "expired"
    after = browser.get("/silences").get_data(as_text=True)
    assert f"silence {made['id']} expired" in after and f"/silences/{made['id']}/expire" not in after
