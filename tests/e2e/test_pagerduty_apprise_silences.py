"""End to end (issue 17): real web (gunicorn), worker and beat over PostgreSQL and a private Redis,
delivering to a local fake of PagerDuty's Events API v2 and a local Apprise target (Apprise's
``json://`` service). A service that goes down pages PagerDuty and reaches Apprise; acknowledging it
acknowledges the PagerDuty incident and its recovery resolves it; a silenced service's alert opens
and is recorded but sends nothing; an Apprise channel pointed at 127.0.0.2, denied by
MC_OUTBOUND_DENY, is refused and that server hears nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select

from mission_control.db.tables import notices
from tests.conftest import wait_until
from tests.notification_fakes import FakeService

pytestmark = pytest.mark.slow
ROUTING_KEY = "e2eRoutingKey0123456789abcdefABCD"


@pytest.fixture
def pagerduty():
    with FakeService(routing_key=ROUTING_KEY) as fake:
        yield fake


@pytest.fixture
def forbidden_target():
    with FakeService(host="127.0.0.2") as fake:
        yield fake


class Api:
    def __init__(self, web: Any) -> None:
        self.url, self.headers = web.url, {"Authorization": f"Bearer {web.token}"}

    def __call__(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        answer = requests.request(method, self.url + path, headers=self.headers, timeout=10, **kwargs)
        assert answer.status_code == expect, (method, path, answer.status_code, answer.text)
        return answer.json() if answer.content else None


def alert_of(api: Api, subject: str) -> dict[str, Any] | None:
    found = [a for a in api("GET", "/api/v1/alerts?kind=service_down")["alerts"] if a["subject"] == subject]
    return found[0] if found else None


def test_pagerduty_and_apprise_deliver_silences_hold_and_a_resolve_closes_the_incident(
    stack, web, e2e_engine, pagerduty, forbidden_target
):
    api = Api(web)
    api(
        "POST",
        "/api/v1/channels",
        201,
        json={
            "name": "pd-primary",
            "kind": "pagerduty",
            "routing_key": ROUTING_KEY,
            "events_url": f"{pagerduty.url}/v2/enqueue",
            "alert_kinds": ["service_down"],
        },
    )
    api(
        "POST",
        "/api/v1/channels",
        201,
        json={
            "name": "ntfy-ish",
            "kind": "apprise",
            "url": f"json://127.0.0.1:{pagerduty.port}/apprise",
            "alert_kinds": ["service_down"],
        },
    )
    denied = api("POST", "/api/v1/channels", 201, json={
        "name": "denied", "kind": "apprise", "url": f"json://127.0.0.2:{forbidden_target.port}/apprise",
        "alert_kinds": ["service_down"]})  # fmt: skip
    ends_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    silence = api("POST", "/api/v1/silences", 201, json={
        "subject_pattern": "quiet-*", "ends_at": ends_at, "comment": "batch host maintenance"})  # fmt: skip
    for name in ("payments", "quiet-batch"):
        api("PUT", f"/api/v1/services/{name}", 201, json={"interval_s": 2, "grace_s": 1})
        api("POST", f"/api/v1/heartbeats/{name}")

    stack.extra_env["MC_OUTBOUND_DENY"] = "127.0.0.2/32"
    stack.worker()
    stack.beat()

    def triggered() -> list[dict[str, Any]]:
        return [e for e in pagerduty.events() if e["event_action"] == "trigger"]

    wait_until(lambda: len(triggered()) >= 1, 30, "PagerDuty to be triggered")
    [trigger] = triggered()
    assert trigger["payload"]["source"] == "payments" and trigger["payload"]["severity"] == "critical"
    key = trigger["dedup_key"]
    wait_until(lambda: pagerduty.requests_to("/apprise"), 20, "the Apprise target to hear of it")
    [message] = pagerduty.requests_to("/apprise")
    assert "service_down payments" in message.json()["title"]

    # The silenced service is down too: its alert is open and recorded, its notices kept, none sent.
    wait_until(lambda: alert_of(api, "quiet-batch") is not None, 20, "the silenced service's alert")
    quiet = alert_of(api, "quiet-batch")
    assert quiet["state"] == "open"
    wait_until(lambda: alert_of(api, "quiet-batch")["silence_id"] == silence["id"], 20, "the mark")
    with e2e_engine.connect() as conn:
        kept = conn.execute(
            select(notices.c.status, notices.c.silence_id).where(notices.c.alert_id == quiet["id"])
        ).all()
    assert {tuple(row) for row in kept} == {("silenced", silence["id"])} and len(kept) == 3

    # The channel pointed at a denied address failed for good, and that server heard nothing.
    def denied_notices() -> list[dict[str, Any]]:
        found = api("GET", f"/api/v1/channels/{denied['id']}/notices")["notices"]
        return [n for n in found if n["status"] != "silenced"]

    wait_until(lambda: [n["status"] for n in denied_notices()] == ["failed"], 20, "the denied notice to fail")
    [refused] = denied_notices()
    assert refused["error_kind"] == "permanent" and "denied by the outbound policy" in refused["last_error"]
    assert forbidden_target.received == []

    # Acknowledge: the PagerDuty incident is acknowledged. Recover: it is resolved.
    payments = alert_of(api, "payments")
    api("POST", f"/api/v1/alerts/{payments['id']}/acknowledge", json={"comment": "on it"})
    wait_until(lambda: pagerduty.incidents[key]["status"] == "acknowledged", 20, "the PagerDuty ack")
    api("POST", "/api/v1/heartbeats/payments")
    wait_until(
        lambda: pagerduty.incidents[key]["status"] == "resolved", 20, "the PagerDuty incident to close"
    )
    assert alert_of(api, "payments")["state"] == "resolved"
    assert {e["dedup_key"] for e in pagerduty.events()} == {key}

    # Nothing anywhere ever mentioned the silenced service.
    assert not any("quiet-batch" in r.body.decode() for r in pagerduty.received)
