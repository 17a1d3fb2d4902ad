"""Heartbeats, services and alerts over HTTP: tokens and scopes, registration, bad input, history."""

from __future__ import annotations

import pytest

from tests.api.conftest import AUTH

pytestmark = pytest.mark.usefixtures("engine")


def hb(client, name, *, token=None, method="post", **kwargs):
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return getattr(client, method)(f"/api/v1/heartbeats/{name}", headers=headers, **kwargs)


@pytest.fixture
def client(app):
    return app.test_client()


def service_token(client, name):
    response = client.post(f"/api/v1/services/{name}/tokens", headers=AUTH, json={"label": "cron"})
    assert response.status_code == 201, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()["token"]


def test_admin_heartbeat_registers_with_query_config_then_beats(client, clock):
    first = hb(client, "billing", headers=AUTH, query_string={"interval_s": "300", "grace_s": "60"})
    assert first.status_code == 201
    body = first.get_json()
    assert body["created"] is True and body["state"] == "up"
    assert body["deadline_at"] == "2026-03-01T12:05:00Z"

    clock.advance(10)
    again = hb(client, "billing", headers=AUTH, json={"status": "ok", "message": "nightly import done"})
    assert again.status_code == 200 and again.get_json()["created"] is False

    service = client.get("/api/v1/services/billing", headers=AUTH).get_json()
    assert service["interval_s"] == 300 and service["grace_s"] == 60
    assert service["heartbeat_count"] == 2
    assert [h["message"] for h in service["heartbeats"]] == ["nightly import done", None]
    assert [f["to_state"] for f in service["flips"]] == ["up"]


def test_service_tokens_beat_only_for_their_own_service(client):
    client.put("/api/v1/services/billing", headers=AUTH, json={"interval_s": 60, "grace_s": 10})
    client.put("/api/v1/services/search", headers=AUTH, json={"interval_s": 60})
    token = service_token(client, "billing")

    assert hb(client, "billing", token=token).status_code == 200
    assert hb(client, "billing", method="get", query_string={"token": token}).status_code == 200
    assert hb(client, "billing", method="head", token=token).status_code == 200

    other = hb(client, "search", token=token)
    assert other.status_code == 403 and other.get_json()["error"]["field"] == "service"
    unknown = hb(client, "brand-new", token=token)
    assert unknown.status_code == 403
    assert client.get("/api/v1/services/brand-new", headers=AUTH).status_code == 404  # nothing created

    # A service token reads and changes nothing else: it is known (not 401) but lacks the scope (403).
    scoped = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/services", headers=scoped).status_code == 403
    assert client.get("/api/v1/alerts", headers=scoped).status_code == 403
    assert client.post("/api/v1/services/billing/pause", headers=scoped).status_code == 403


def test_missing_or_wrong_tokens_are_401_and_the_admin_token_stays_out_of_urls(client, app):
    assert hb(client, "billing").status_code == 401
    assert hb(client, "billing", token="mcs_nope").status_code == 401
    from tests.conftest import ADMIN_TOKEN

    in_url = hb(client, "billing", method="get", query_string={"token": ADMIN_TOKEN})
    assert in_url.status_code == 401 and in_url.get_json()["error"]["field"] == "token"


def test_a_fail_heartbeat_opens_an_alert_that_a_good_one_resolves(client, notified, clock):
    hb(client, "billing", headers=AUTH)
    down = hb(client, "billing", headers=AUTH, json={"status": "fail", "message": "disk full"})
    assert down.get_json()["state"] == "down"
    assert [(c.kind, c.event) for c in notified] == [("service_down", "opened")]

    alerts = client.get("/api/v1/alerts", headers=AUTH, query_string={"state": "open"}).get_json()["alerts"]
    [alert] = alerts
    assert alert["subject"] == "billing" and "disk full" in alert["message"]

    clock.advance(45)
    ack = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", headers=AUTH, json={"comment": "on it"})
    assert ack.status_code == 200 and ack.get_json()["state"] == "acknowledged"

    clock.advance(15)
    hb(client, "billing", headers=AUTH)
    assert [(c.kind, c.event) for c in notified][-1] == ("service_down", "resolved")
    resolved = client.get(f"/api/v1/alerts/{alert['id']}", headers=AUTH).get_json()
    assert resolved["state"] == "resolved" and resolved["duration_s"] == 60
    again = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", headers=AUTH)
    assert again.status_code == 409

    [pattern] = client.get("/api/v1/alerts/summary", headers=AUTH).get_json()["patterns"]
    assert pattern["mean_time_to_recovery_s"] == 60 and pattern["alerts"] == 1


def test_long_messages_are_cut_and_marked_never_refused(client, app):
    assert app.extensions["mission_control"].settings.heartbeat_message_bytes == 10 * 1024
    long_json = hb(client, "billing", headers=AUTH, json={"message": "é" * 20_000})
    assert long_json.status_code == 201 and long_json.get_json()["truncated"] is True
    text = hb(client, "billing", headers={**AUTH, "Content-Type": "text/plain"}, data=b"x" * 3_000_000)
    assert text.status_code == 200 and text.get_json()["truncated"] is True
    stored = client.get("/api/v1/services/billing", headers=AUTH).get_json()["heartbeats"]
    assert [len(h["message"].encode()) for h in stored] == [10 * 1024, 10 * 1024]
    assert all(h["truncated"] for h in stored)
    binary = hb(client, "billing", headers={**AUTH, "Content-Type": "text/plain"}, data=b"\xff\xfe\x00ok")
    assert binary.status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "status", "field"),
    [
        ({"json": {"status": "maybe"}}, 422, "status"),
        ({"json": {"status": "ok", "extra": 1}}, 422, "extra"),
        ({"json": ["ok"]}, 422, None),
        ({"data": "{not json", "content_type": "application/json"}, 400, None),
        ({"query_string": {"interval_s": "-5"}}, 422, "interval_s"),
        ({"query_string": {"nonsense": "1"}}, 422, "nonsense"),
    ],
)
def test_bad_heartbeats_are_json_errors_that_change_nothing(client, kwargs, status, field):
    response = hb(client, "billing", headers=AUTH, **kwargs)
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] and error["message"]
    if field:
        assert error["field"] == field
    assert client.get("/api/v1/services/billing", headers=AUTH).status_code == 404


def test_services_crud_pause_resume_and_listing(client, clock):
    assert client.put("/api/v1/services/b-svc", headers=AUTH, json={"interval_s": 60}).status_code == 201
    created = client.put("/api/v1/services/a-svc", headers=AUTH, json={"interval_s": 30, "grace_s": 5})
    assert created.status_code == 201
    assert client.put("/api/v1/services/a-svc", headers=AUTH, json={"interval_s": 0}).status_code == 422
    assert client.put("/api/v1/services/Bad Name", headers=AUTH, json={"interval_s": 1}).status_code == 422
    listing = client.get("/api/v1/services", headers=AUTH, query_string={"limit": 1}).get_json()
    assert [s["name"] for s in listing["services"]] == ["a-svc"] and listing["next_cursor"] == "a-svc"
    rest = client.get("/api/v1/services", headers=AUTH, query_string={"cursor": "a-svc"}).get_json()
    assert [s["name"] for s in rest["services"]] == ["b-svc"]

    paused = client.post("/api/v1/services/a-svc/pause", headers=AUTH).get_json()
    assert paused["state"] == "paused" and paused["paused"] is True
    assert (
        client.get("/api/v1/services", headers=AUTH, query_string={"state": "paused"}).get_json()["services"][
            0
        ]["name"]
        == "a-svc"
    )
    assert client.post("/api/v1/services/a-svc/resume", headers=AUTH).get_json()["state"] == "new"
    assert client.delete("/api/v1/services/a-svc", headers=AUTH).status_code == 204
    assert client.delete("/api/v1/services/a-svc", headers=AUTH).status_code == 404
    assert client.post("/api/v1/services/a-svc/tokens", headers=AUTH).status_code == 404


def test_registration_config_may_come_in_the_body(client):
    created = hb(client, "reports", headers=AUTH, json={"interval_s": 3600, "grace_s": 600, "message": "hi"})
    assert created.status_code == 201
    service = client.get("/api/v1/services/reports", headers=AUTH).get_json()
    assert (service["interval_s"], service["grace_s"], service["last_message"]) == (3600, 600, "hi")
