"""The dashboard with API tokens: a read token signs in to a read-only view (no action buttons, actions
refused server-side), the header names who is signed in, and a session ends when its token is revoked
or expires."""

from __future__ import annotations

import re

import pytest

from mission_control.jobs.registry import JobRegistry
from mission_control.missions import mission
from mission_control.missions.store import MissionStore
from mission_control.monitoring.services import ServiceConfig, ServiceRegistry
from tests.api.conftest import AUTH
from tests.factories import job_spec

pytestmark = pytest.mark.usefixtures("engine")


def issue(app, name, scopes, **fields):
    response = app.test_client().post(
        "/api/v1/tokens", headers=AUTH, json={"name": name, "scopes": scopes, **fields}
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def signed_in(app, token):
    client = app.test_client()
    answer = client.post("/login", data={"token": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def test_a_read_token_sees_pages_without_actions_and_its_posts_are_refused(app, engine, clock):
    JobRegistry(engine, clock).put(job_spec("nightly-report"))
    reader = issue(app, "ops-viewer", ["read"])
    browser = signed_in(app, reader["token"])
    page = browser.get("/jobs/nightly-report").get_data(as_text=True)
    assert "ops-viewer (read-only)" in page
    assert "Trigger now" not in page and "Pause" not in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)[1]  # the sign-out form still has one
    assert browser.post("/jobs/nightly-report/pause", data={"csrf": csrf}).status_code == 403
    assert browser.post("/jobs/nightly-report/trigger", data={"csrf": csrf}).status_code == 403
    assert JobRegistry(engine, clock).get("nightly-report").spec.enabled is True  # nothing changed

    admin = issue(app, "ops-admin", ["admin"])
    admin_page = signed_in(app, admin["token"]).get("/jobs/nightly-report").get_data(as_text=True)
    assert "ops-admin" in admin_page and "Trigger now" in admin_page


def test_tokens_that_cannot_read_cannot_sign_in(app):
    client = app.test_client()
    writer = issue(app, "deployer", ["jobs:write"])
    bound_admin = issue(app, "billing-admin", ["admin"], service="billing")
    assert client.post("/login", data={"token": writer["token"]}).status_code == 403
    assert client.post("/login", data={"token": bound_admin["token"]}).status_code == 403
    assert client.post("/login", data={"token": "mct_nothing"}).status_code == 401


def test_a_bound_read_token_sees_its_service_only(app, engine, clock):
    registry = JobRegistry(engine, clock)
    registry.put(job_spec("bill-job", service="billing"))
    registry.put(job_spec("pay-job", service="payments"))
    store = MissionStore(engine, clock)
    store.put_definition(mission("approval").start().sleep("wait", seconds=60).end())
    store.start("approval", {}, "bill-m", service="billing")
    store.start("approval", {}, "pay-m", service="payments")
    store.start("approval", {}, "fleet-m")  # started by an unbound token: nobody's service
    for name in ("billing", "payments"):
        ServiceRegistry(engine, clock).put(name, ServiceConfig(interval_s=60, grace_s=10))

    bound = issue(app, "billing-viewer", ["read"], service="billing")
    browser = signed_in(app, bound["token"])
    for path in ("/", "/jobs", "/services", "/missions"):
        page = browser.get(path)
        assert page.status_code == 200, path
        text = page.get_data(as_text=True)
        assert "payments" not in text and "pay-job" not in text and "pay-m" not in text, path
    assert "bill-job" in browser.get("/jobs").get_data(as_text=True)
    assert "billing" in browser.get("/services").get_data(as_text=True)
    missions_page = browser.get("/missions").get_data(as_text=True)
    assert "bill-m" in missions_page and "fleet-m" not in missions_page
    assert browser.get("/jobs/bill-job").status_code == 200
    assert browser.get("/missions/bill-m").status_code == 200
    for path in ("/jobs/pay-job", "/missions/pay-m", "/missions/fleet-m", "/jobs/nowhere"):
        assert browser.get(path).status_code == 404, path
    assert browser.get("/alerts").status_code == 403  # fleet-wide
    page = browser.get("/jobs/bill-job").get_data(as_text=True)
    assert "Trigger now" not in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)[1]
    assert browser.post("/jobs/bill-job/pause", data={"csrf": csrf}).status_code == 403
    assert registry.get("bill-job").spec.enabled is True


def test_a_session_ends_when_its_token_is_revoked_or_expires(app, clock):
    reader = issue(app, "viewer", ["read"])
    browser = signed_in(app, reader["token"])
    assert browser.get("/jobs").status_code == 200
    assert app.test_client().delete(f"/api/v1/tokens/{reader['id']}", headers=AUTH).status_code == 204
    assert browser.get("/jobs").status_code == 302  # back to sign-in

    brief = issue(app, "brief", ["read"], expires_at="2026-03-01T12:30:00Z")
    browser = signed_in(app, brief["token"])
    assert browser.get("/jobs").status_code == 200
    clock.advance(1800)
    assert browser.get("/jobs").status_code == 302
