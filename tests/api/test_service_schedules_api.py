"""PUT /api/v1/services/{name} with a cron schedule instead of interval_s, and fail_threshold: what
is accepted, the 422 naming the field otherwise, and the service as answered."""

from __future__ import annotations

import pytest

from tests.api.conftest import AUTH

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
def client(app):
    return app.test_client()


def put(client, body, name="backup"):
    return client.put(f"/api/v1/services/{name}", headers=AUTH, json=body)


def test_a_cron_service_is_registered_and_answered_with_its_schedule_and_deadline(client, clock):
    body = {
        "schedule": {"cron": "30 2 * * *", "timezone": "Europe/Riga"},
        "grace_s": 900,
        "fail_threshold": 2,
    }
    created = put(client, body)
    assert created.status_code == 201, created.get_json()
    service = created.get_json()
    assert service["schedule"] == {"cron": "30 2 * * *", "timezone": "Europe/Riga"}
    assert (service["interval_s"], service["grace_s"], service["state"]) == (None, 900, "new")
    assert (service["fail_threshold"], service["fail_count"]) == (2, 0)

    beat = client.post("/api/v1/heartbeats/backup", headers=AUTH)
    assert beat.status_code == 200
    # T0 is 2026-03-01 12:00 UTC (14:00 in Riga): the next 02:30 there is 00:30 UTC the next day.
    assert beat.get_json()["deadline_at"] == "2026-03-02T00:30:00Z"
    listed = client.get("/api/v1/services", headers=AUTH).get_json()["services"]
    assert listed[0]["schedule"]["cron"] == "30 2 * * *"

    back = put(client, {"interval_s": 60})
    assert back.status_code == 200 and back.get_json()["schedule"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"grace_s": 10}, "interval_s"),
        ({"interval_s": 60, "schedule": {"cron": "* * * * *"}}, "schedule"),
        ({"schedule": {"cron": "61 * * * *", "timezone": "UTC"}}, "schedule.cron"),
        ({"schedule": {"cron": "every day"}}, "schedule.cron"),
        ({"schedule": {"cron": "30 2 * * *", "timezone": "Mars/Olympus"}}, "schedule.timezone"),
        ({"schedule": {"timezone": "UTC"}}, "schedule.cron"),
        ({"schedule": {"cron": "* * * * *", "every_s": 5}}, "schedule.every_s"),
        ({"interval_s": 60, "fail_threshold": 0}, "fail_threshold"),
    ],
)
def test_bad_schedules_are_422_naming_the_field(client, body, field):
    response = put(client, body)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["field"] == field
    assert client.get("/api/v1/services/backup", headers=AUTH).status_code == 404


def test_an_early_heartbeat_opens_service_early_listed_by_kind_and_channels_may_route_it(client, clock):
    created = put(client, {"interval_s": 60, "early_tolerance_s": 10})
    assert created.get_json()["early_tolerance_s"] == 10
    channel = client.post(
        "/api/v1/channels",
        headers=AUTH,
        json={
            "name": "early",
            "kind": "webhook",
            "url": "http://127.0.0.1:9/x",
            "alert_kinds": ["service_early"],
        },
    )
    assert channel.status_code == 201, channel.get_json()
    client.post("/api/v1/heartbeats/backup", headers=AUTH)
    clock.advance(5)
    client.post("/api/v1/heartbeats/backup", headers=AUTH)
    found = client.get("/api/v1/alerts", headers=AUTH, query_string={"kind": "service_early"}).get_json()
    [alert] = found["alerts"]
    assert (alert["subject"], alert["state"]) == ("backup", "open")
    service = client.get("/api/v1/services/backup", headers=AUTH).get_json()
    assert service["state"] == "up" and service["expected_at"] == "2026-03-01T12:01:05Z"
