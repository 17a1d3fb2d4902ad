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
