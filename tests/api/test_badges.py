"""Status badges through the app: created, listed and revoked with the right scopes and audited; the
public image shows a service's, a job's or a tag's worst state; an unknown key is a bare 404 that
spends the failed-authentication budget."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from sqlalchemy import insert, select

from mission_control.db.alerts import AlertKind, open_alert
from mission_control.db.tables import audit_log, services
from mission_control.monitoring.badges import BadgeStore
from mission_control.web.api.limits import TokenBuckets
from tests.factories import job_body

SVG = "{http://www.w3.org/2000/svg}"


def badge(api: Any, **subject: str) -> dict[str, Any]:
    made = api.post("/api/v1/badges", json=subject)
    assert made.status_code == 201, made.get_json()
    assert made.headers["Cache-Control"] == "no-store"
    return made.get_json()


def state(client: Any, made: dict[str, Any]) -> dict[str, Any]:
    answer = client.get(made["json_url"])
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def texts(client: Any, made: dict[str, Any]) -> list[str]:
    answer = client.get(made["svg_url"])
    assert answer.status_code == 200 and answer.mimetype == "image/svg+xml"
    return [text.text or "" for text in ET.fromstring(answer.data).iter(f"{SVG}text")][1::2]


def token(api: Any, name: str, *scopes: str, service: str | None = None) -> dict[str, str]:
    made = api.post("/api/v1/tokens", json={"name": name, "scopes": list(scopes), "service": service})
    assert made.status_code == 201, made.get_json()
    return {"Authorization": f"Bearer {made.get_json()['token']}"}


def test_a_service_badge_shows_its_state_without_a_token(api: Any, app: Any, clock: Any) -> None:
    api.put("/api/v1/services/billing", json={"interval_s": 60, "grace_s": 30, "tags": ["team:billing"]})
    made = badge(api, service="billing")
    assert (made["kind"], made["subject"], made["created_by"]) == ("service", "billing", "MC_ADMIN_TOKEN")
    assert made["svg_url"] == f"/badge/{made['key']}.svg" and len(made["key"]) >= 32
    public = app.test_client()  # no Authorization header at all
    assert state(public, made) == {"label": "billing", "status": "new", "total": 1, "down": 0, "late": 0}
    assert api.post("/api/v1/heartbeats/billing").status_code == 200
    assert texts(public, made) == ["billing", "up"]
    clock.advance(70)
    app.extensions["mission_control"].services.check_stale()
    assert state(public, made)["status"] == "late"
    assert api.post("/api/v1/heartbeats/billing", json={"status": "fail"}).status_code == 200
    assert texts(public, made) == ["billing", "down"]
    answer = public.get(made["svg_url"])
    assert answer.headers["Cache-Control"] == "public, max-age=60"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert api.post("/api/v1/services/billing/pause").status_code == 200
    assert state(public, made)["status"] == "paused"


def test_a_job_badge_follows_runs_alerts_and_pauses(api: Any, app: Any, engine: Any, clock: Any) -> None:
    api.put("/api/v1/jobs/billing.sync", json=job_body("billing.sync"))
    made = badge(api, job="billing.sync")
    public = app.test_client()
    assert state(public, made)["status"] == "new"
    assert api.post("/api/v1/jobs/billing.sync/trigger").status_code == 202
    assert state(public, made)["status"] == "up"
    with engine.begin() as conn:
        open_alert(conn, AlertKind.JOB_SLOW, "billing.sync", clock.now(), "slow")
    assert state(public, made)["status"] == "late"
    with engine.begin() as conn:
        open_alert(conn, AlertKind.JOB_FAILED, "billing.sync", clock.now(), "failed")
    assert texts(public, made) == ["billing.sync", "down"]
    api.post("/api/v1/jobs/billing.sync/pause")
    assert state(public, made)["status"] == "paused"
    api.delete("/api/v1/jobs/billing.sync")
    assert state(public, made) == {"label": "billing.sync", "status": "unknown", "total": 0, "down": 0,
                                   "late": 0}  # fmt: skip


def test_a_tag_badge_shows_the_worst_of_everything_carrying_it(
    api: Any, app: Any, engine: Any, clock: Any
) -> None:
    for name in ("billing-a", "billing-b"):
        api.put(f"/api/v1/services/{name}", json={"interval_s": 60, "tags": ["team:billing"]})
        api.post(f"/api/v1/heartbeats/{name}")
    api.put("/api/v1/services/payments", json={"interval_s": 60, "tags": ["team:payments"]})
    api.post("/api/v1/heartbeats/payments", json={"status": "fail"})
    api.put("/api/v1/jobs/billing.sync", json=job_body("billing.sync", tags=["team:billing"]))
    api.post("/api/v1/jobs/billing.sync/trigger")
    made = badge(api, tag="team:billing")
    public = app.test_client()
    assert state(public, made) == {"label": "team:billing", "status": "up", "total": 3, "down": 0, "late": 0}
    with engine.begin() as conn:
        open_alert(conn, AlertKind.JOB_FAILED, "billing.sync", clock.now(), "failed")
    assert state(public, made) == {
        "label": "team:billing",
        "status": "down",
        "total": 3,
        "down": 1,
        "late": 0,
    }
    assert texts(public, made) == ["team:billing", "down"]
    # a tag nothing carries yet is a badge too
    assert state(public, badge(api, tag="team:nobody"))["status"] == "unknown"


def test_badges_are_listed_revoked_and_audited_without_their_keys(api: Any, app: Any, engine: Any) -> None:
    api.put("/api/v1/services/billing", json={"interval_s": 60})
    made = badge(api, service="billing")
    listed = api.get("/api/v1/badges").get_json()["badges"]
    assert [(b["id"], b["kind"], b["subject"]) for b in listed] == [(made["id"], "service", "billing")]
    assert made["key"] not in str(listed)
    assert api.delete(f"/api/v1/badges/{made['id']}").status_code == 204
    assert app.test_client().get(made["svg_url"]).status_code == 404
    assert api.get("/api/v1/badges").get_json()["badges"] == []
    assert api.get("/api/v1/badges?all=true").get_json()["badges"][0]["revoked_at"] is not None
    assert api.delete(f"/api/v1/badges/{made['id']}").status_code == 404
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.subject_kind == "badge")).mappings().all()
    assert [(row["action"], row["service"]) for row in rows] == [("badge.create", "billing"),
                                                                  ("badge.revoke", "billing")]  # fmt: skip
    assert made["key"] not in str([dict(row) for row in rows])
    trail = api.get(f"/api/v1/audit?subject=badge:{made['id']}").get_json()["entries"]
    assert [entry["action"] for entry in trail] == ["badge.revoke", "badge.create"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, None), ({"service": "a", "job": "b"}, None), ({"tag": "Not A Tag"}, "tag"),
     ({"service": "A"}, "service"), ({"color": "red"}, "color")],
)  # fmt: skip
def test_a_badge_names_exactly_one_valid_subject(api: Any, body: dict[str, Any], field: str | None) -> None:
    answer = api.post("/api/v1/badges", json=body)
    assert answer.status_code == 422 and answer.get_json()["error"]["field"] == field, answer.get_json()


def test_an_unknown_service_or_job_is_a_404(api: Any) -> None:
    assert api.post("/api/v1/badges", json={"service": "nope"}).get_json()["error"]["field"] == "service"
    assert api.post("/api/v1/badges", json={"job": "nope"}).status_code == 404


def test_each_kind_needs_its_write_scope_on_an_unbound_token(api: Any, app: Any) -> None:
    api.put("/api/v1/services/billing", json={"interval_s": 60})
    api.put("/api/v1/jobs/billing.sync", json=job_body("billing.sync"))
    client = app.test_client()
    services_writer = token(api, "sw", "services:write")
    jobs_writer = token(api, "jw", "jobs:write")
    reader = token(api, "r", "read")
    bound = token(api, "b", "admin", service="billing")
    post = client.post
    assert post("/api/v1/badges", json={"service": "billing"}, headers=services_writer).status_code == 201
    assert post("/api/v1/badges", json={"job": "billing.sync"}, headers=services_writer).status_code == 403
    made = post("/api/v1/badges", json={"job": "billing.sync"}, headers=jobs_writer)
    assert made.status_code == 201
    assert post("/api/v1/badges", json={"tag": "tier:1"}, headers=jobs_writer).status_code == 201
    assert post("/api/v1/badges", json={"service": "billing"}, headers=reader).status_code == 403
    assert post("/api/v1/badges", json={"service": "billing"}, headers=bound).status_code == 403
    assert client.get("/api/v1/badges", headers=reader).status_code == 200
    badge_id = made.get_json()["id"]
    assert client.delete(f"/api/v1/badges/{badge_id}", headers=services_writer).status_code == 403
    assert client.delete(f"/api/v1/badges/{badge_id}", headers=jobs_writer).status_code == 204
    assert client.post("/api/v1/badges", json={"tag": "tier:1"}).status_code == 401  # no token


def test_an_unknown_key_is_a_bare_404_that_spends_the_failed_authentication_budget(
    app: Any, api: Any
) -> None:
    state_ = app.extensions["mission_control"]
    app.extensions["mission_control"] = dataclasses.replace(
        state_, auth_failures=TokenBuckets(rate=3 / 60, burst=3, clock=lambda: 1000.0)
    )
    api.put("/api/v1/services/billing", json={"interval_s": 60})
    made = badge(api, service="billing")
    client = app.test_client()
    wrong = made["key"][:-4] + ("AAAA" if not made["key"].endswith("AAAA") else "BBBB")
    answers = [
        client.get(path) for path in (f"/badge/{wrong}.svg", "/badge/short.svg", f"/badge/{wrong}.json")
    ]
    assert [answer.status_code for answer in answers] == [404, 404, 404]
    assert answers[0].get_json() == {"error": {"code": "not_found", "message": "not found", "field": None}}
    assert answers[0].headers["Cache-Control"] == "no-store"
    assert answers[0].headers["X-Content-Type-Options"] == "nosniff"
    limited = client.get(f"/badge/{wrong}.svg")
    assert limited.status_code == 429 and limited.headers["Retry-After"]
    assert client.get("/api/v1/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 429
    assert client.get(made["svg_url"]).status_code == 200  # a valid key never consults the budget


def test_user_strings_are_escaped_in_the_image(app: Any, api: Any, engine: Any, clock: Any) -> None:
    # No API path stores such a name (names are [a-z0-9._-]); a row written by hand must still render inert.
    hostile = "<script>alert(1)</script>&co"
    with engine.begin() as conn:
        conn.execute(insert(services).values(name=hostile, interval_s=60, grace_s=0, state="up",
                                             state_changed_at=clock.now(), created_at=clock.now(),
                                             updated_at=clock.now()))  # fmt: skip
    issued = app.extensions["mission_control"]
    key = BadgeStore(issued.engine, issued.clock).create("service", hostile, "test").key
    answer = app.test_client().get(f"/badge/{key}.svg")
    assert answer.status_code == 200
    assert b"<script>" not in answer.data and b"&lt;script&gt;" in answer.data and b"&amp;co" in answer.data
    assert [t.text for t in ET.fromstring(answer.data).iter(f"{SVG}text")][:2] == [hostile, hostile]
