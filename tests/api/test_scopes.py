"""What each scope allows and refuses, and the service boundary of service-bound tokens.

The first test is a table: for every scope, an unbound token with only that scope calls one
representative route of every kind; it must get through (any answer but 401/403) exactly where the
table says the scope grants it. The rest walk every route that names a job, run, service or mission
with a token bound to ``billing``: another service's objects answer 404 to reads and 403 to writes,
and a refused write changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from mission_control.web.api.scopes import SCOPES
from tests.api.conftest import AUTH
from tests.api.test_missions_api import APPROVAL
from tests.factories import job_body

pytestmark = pytest.mark.usefixtures("engine")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def issue(client: Any, name: str, scopes: list[str], service: str | None = None) -> str:
    response = client.post(
        "/api/v1/tokens", headers=AUTH, json={"name": name, "scopes": scopes, "service": service}
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["token"]


@pytest.fixture
def world(app: Any) -> dict[str, Any]:
    """Two services' jobs, runs, services and missions, made with the admin token."""
    client = app.test_client()
    for job, service in (("bill-job", "billing"), ("pay-job", "payments")):
        assert (
            client.put(f"/api/v1/jobs/{job}", headers=AUTH, json=job_body(job, service=service)).status_code
            == 201
        )
        assert (
            client.put(f"/api/v1/services/{service}", headers=AUTH, json={"interval_s": 60}).status_code
            == 201
        )
    runs = {
        job: client.post(f"/api/v1/jobs/{job}/trigger", headers=AUTH).get_json()["id"]
        for job in ("bill-job", "pay-job")
    }
    assert client.put("/api/v1/mission-definitions/approval", headers=AUTH, json=APPROVAL).status_code == 201
    for service, mission_id in (("billing", "bill-m"), ("payments", "pay-m")):
        starter = issue(client, f"{service}-starter", ["missions:write"], service)
        started = client.post(
            "/api/v1/missions",
            headers=bearer(starter),
            json={"definition": "approval", "input": {"email": "a@b.c"}, "id": mission_id},
        )
        assert started.status_code == 201, started.get_json()
    return {"client": client, "runs": runs}


# (method, path, body, the scopes that grant it besides admin)
def representative_routes(runs: dict[str, int]) -> list[tuple[str, str, Any, set[str]]]:
    return [
        ("GET", "/api/v1/jobs", None, {"read", "jobs:write"}),
        ("GET", "/api/v1/jobs/bill-job", None, {"read", "jobs:write"}),
        ("PUT", "/api/v1/jobs/new-job", job_body("new-job"), {"jobs:write"}),
        ("POST", "/api/v1/jobs/bill-job/pause", None, {"jobs:write"}),
        ("POST", "/api/v1/jobs/bill-job/trigger", None, {"runs:write"}),
        ("GET", "/api/v1/runs", None, {"read", "runs:read", "runs:write"}),
        ("GET", f"/api/v1/runs/{runs['bill-job']}", None, {"read", "runs:read", "runs:write"}),
        ("POST", "/api/v1/heartbeats/billing", None, {"heartbeats:write"}),
        ("GET", "/api/v1/services", None, {"read", "services:write"}),
        ("GET", "/api/v1/services/billing", None, {"read", "services:write"}),
        ("PUT", "/api/v1/services/billing", {"interval_s": 30}, {"services:write"}),
        ("GET", "/api/v1/alerts", None, {"read", "alerts:write"}),
        ("POST", "/api/v1/alerts/999999/acknowledge", None, {"alerts:write"}),
        ("GET", "/api/v1/channels", None, {"read", "channels:write"}),
        ("DELETE", "/api/v1/channels/999999", None, {"channels:write"}),
        ("GET", "/api/v1/mission-definitions", None, {"read", "missions:write"}),
        ("PUT", "/api/v1/mission-definitions/approval", APPROVAL, {"missions:write"}),
        ("GET", "/api/v1/missions", None, {"read", "missions:write"}),
        ("GET", "/api/v1/missions/bill-m", None, {"read", "missions:write"}),
        ("POST", "/api/v1/missions/bill-m/cancel", {"reason": "test"}, {"missions:write"}),
        ("GET", "/metrics", None, {"metrics"}),
        ("GET", "/api/v1/tokens", None, set()),
        ("GET", "/api/v1/services/billing/tokens", None, set()),
        ("GET", "/api/v1/services/billing/signing-secrets", None, set()),
    ]


@pytest.mark.parametrize("scope", SCOPES)
def test_each_scope_allows_exactly_what_it_grants(world: dict[str, Any], scope: str) -> None:
    client = world["client"]
    token = issue(client, f"only-{scope.replace(':', '-')}", [scope])
    for method, path, body, grants in representative_routes(world["runs"]):
        response = client.open(path, method=method, headers=bearer(token), json=body)
        allowed = scope == "admin" or scope in grants
        if allowed:
            assert response.status_code not in (401, 403), (scope, method, path, response.get_json())
        else:
            assert response.status_code == 403, (scope, method, path, response.status_code)
            assert response.get_json()["error"]["field"] == "scope"


# Every route naming a job, run, service or mission, aimed at payments' objects.
def foreign_routes(runs: dict[str, int]) -> list[tuple[str, str, Any, int]]:
    pay_run = runs["pay-job"]
    return [
        ("GET", "/api/v1/jobs/pay-job", None, 404),
        ("PUT", "/api/v1/jobs/pay-job", job_body("pay-job", service="billing"), 403),
        ("PATCH", "/api/v1/jobs/pay-job", {"timeout_s": 5}, 403),
        ("DELETE", "/api/v1/jobs/pay-job", None, 403),
        ("POST", "/api/v1/jobs/pay-job/pause", None, 403),
        ("POST", "/api/v1/jobs/pay-job/resume", None, 403),
        ("POST", "/api/v1/jobs/pay-job/trigger", None, 403),
        ("GET", f"/api/v1/runs/{pay_run}", None, 404),
        ("GET", "/api/v1/services/payments", None, 404),
        ("PUT", "/api/v1/services/payments", {"interval_s": 5}, 403),
        ("DELETE", "/api/v1/services/payments", None, 403),
        ("POST", "/api/v1/services/payments/pause", None, 403),
        ("POST", "/api/v1/services/payments/resume", None, 403),
        ("POST", "/api/v1/heartbeats/payments", None, 403),
        ("GET", "/api/v1/heartbeats/payments", None, 403),
        ("GET", "/api/v1/services/payments/tokens", None, 403),
        ("POST", "/api/v1/services/payments/tokens", None, 403),
        ("POST", "/api/v1/services/payments/signing-secrets", None, 403),
        ("GET", "/api/v1/missions/pay-m", None, 404),
        ("POST", "/api/v1/missions/pay-m/signals/receive-approval", {"approved": True}, 403),
        ("POST", "/api/v1/missions/pay-m/cancel", {"reason": "x"}, 403),
        # a body naming another service is refused too
        ("PUT", "/api/v1/jobs/sneaky", job_body("sneaky", service="payments"), 403),
        ("POST", "/api/v1/jobs", job_body("sneaky", service="payments"), 403),
        ("PATCH", "/api/v1/jobs/bill-job", {"service": "payments"}, 403),
        # fleet-wide resources need an unbound token
        ("GET", "/api/v1/alerts", None, 403),
        ("GET", "/api/v1/channels", None, 403),
        ("PUT", "/api/v1/mission-definitions/approval", APPROVAL, 403),
    ]


EVERYTHING_BUT_ADMIN = [scope for scope in SCOPES if scope != "admin"]


def snapshot(client: Any, runs: dict[str, int]) -> list[Any]:
    """What the admin sees of payments' objects (and whether 'sneaky' exists)."""
    paths = [
        "/api/v1/jobs/pay-job", "/api/v1/jobs/bill-job", f"/api/v1/runs/{runs['pay-job']}",
        "/api/v1/runs?job=pay-job", "/api/v1/services/payments", "/api/v1/missions/pay-m",
        "/api/v1/jobs/sneaky", "/api/v1/services/payments/tokens", "/api/v1/mission-definitions/approval",
    ]  # fmt: skip
    return [
        (client.get(path, headers=AUTH).status_code, client.get(path, headers=AUTH).get_json())
        for path in paths
    ]


def test_a_bound_token_cannot_touch_another_services_objects_and_nothing_changes(
    world: dict[str, Any],
) -> None:
    client, runs = world["client"], world["runs"]
    token = issue(client, "billing-everything", EVERYTHING_BUT_ADMIN, "billing")
    before = snapshot(client, runs)
    for method, path, body, expected in foreign_routes(runs):
        response = client.open(path, method=method, headers=bearer(token), json=body)
        assert response.status_code == expected, (method, path, response.get_json())
    assert snapshot(client, runs) == before


def test_a_bound_token_acts_on_its_own_services_objects(world: dict[str, Any]) -> None:
    client, runs = world["client"], world["runs"]
    token = issue(client, "billing-everything", EVERYTHING_BUT_ADMIN, "billing")
    own = bearer(token)
    for method, path, body, expected in [
        ("GET", "/api/v1/jobs/bill-job", None, 200),
        ("PATCH", "/api/v1/jobs/bill-job", {"timeout_s": 5}, 200),
        ("POST", "/api/v1/jobs/bill-job/pause", None, 200),
        ("POST", "/api/v1/jobs/bill-job/resume", None, 200),
        ("PUT", "/api/v1/jobs/bill-new", job_body("bill-new", service="billing"), 201),
        ("POST", "/api/v1/jobs/bill-new/trigger", None, 202),
        ("GET", f"/api/v1/runs/{runs['bill-job']}", None, 200),
        ("GET", "/api/v1/services/billing", None, 200),
        ("PUT", "/api/v1/services/billing", {"interval_s": 30}, 200),
        ("POST", "/api/v1/services/billing/pause", None, 200),
        ("POST", "/api/v1/services/billing/resume", None, 200),
        ("POST", "/api/v1/heartbeats/billing", None, 200),
        ("GET", "/api/v1/missions/bill-m", None, 200),
        ("POST", "/api/v1/missions/bill-m/signals/receive-approval", {"approved": True}, 200),
        ("GET", "/api/v1/mission-definitions/approval", None, 200),
        ("DELETE", "/api/v1/jobs/bill-new", None, 204),
    ]:
        response = client.open(path, method=method, headers=own, json=body)
        assert response.status_code == expected, (method, path, response.get_json())


def test_a_bound_tokens_listings_hold_its_service_only(world: dict[str, Any]) -> None:
    client = world["client"]
    reader = bearer(issue(client, "billing-reader", ["read"], "billing"))
    assert [j["name"] for j in client.get("/api/v1/jobs", headers=reader).get_json()["jobs"]] == ["bill-job"]
    assert client.get("/api/v1/jobs?service=payments", headers=reader).get_json()["jobs"] == []
    assert [r["job"] for r in client.get("/api/v1/runs", headers=reader).get_json()["runs"]] == ["bill-job"]
    assert client.get("/api/v1/runs?job=pay-job", headers=reader).get_json()["runs"] == []
    services = client.get("/api/v1/services", headers=reader).get_json()["services"]
    assert [s["name"] for s in services] == ["billing"]
    missions = client.get("/api/v1/missions", headers=reader).get_json()["missions"]
    assert [m["id"] for m in missions] == ["bill-m"]
    # ... while an unbound reader sees both services' objects
    everyone = bearer(issue(client, "fleet-reader", ["read"]))
    assert len(client.get("/api/v1/jobs", headers=everyone).get_json()["jobs"]) == 2
    assert len(client.get("/api/v1/missions", headers=everyone).get_json()["missions"]) == 2


def test_a_service_token_beats_by_query_string_but_broader_tokens_may_not(world: dict[str, Any]) -> None:
    client = world["client"]
    beat_only = issue(client, "billing-beats", ["heartbeats:write"], "billing")
    broader = issue(client, "billing-broader", ["heartbeats:write", "read"], "billing")
    assert client.get("/api/v1/heartbeats/billing", query_string={"token": beat_only}).status_code == 200
    refused = client.get("/api/v1/heartbeats/billing", query_string={"token": broader})
    assert refused.status_code == 401 and refused.get_json()["error"]["field"] == "token"
    # only a token that may write services registers a new service by heartbeat
    assert (
        client.post(
            "/api/v1/heartbeats/fresh", headers=bearer(issue(client, "beats", ["heartbeats:write"]))
        ).status_code
        == 404
    )
    assert (
        client.post(
            "/api/v1/heartbeats/fresh",
            headers=bearer(issue(client, "svc", ["services:write", "heartbeats:write"])),
        ).status_code
        == 201
    )
