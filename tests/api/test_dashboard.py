"""The dashboard over the Flask test client: sign-in, CSRF, CSP, the pages and their actions."""

from __future__ import annotations

import re

import pytest

from mission_control.jobs.registry import JobRegistry
from mission_control.scheduling.claiming import create_manual_run
from tests.api.conftest import AUTH
from tests.conftest import ADMIN_TOKEN, T0
from tests.factories import job_spec

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
def browser(app):
    client = app.test_client()
    answer = client.post("/login", data={"token": ADMIN_TOKEN})
    assert answer.status_code == 302
    return client


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page)[1]


def test_pages_need_sign_in_and_the_cookie_is_locked_down(app):
    client = app.test_client()
    first = client.get("/jobs")
    assert first.status_code == 302 and first.headers["Location"].startswith("/login?next=/jobs")
    wrong = client.post("/login", data={"token": "not-the-token-at-all"})
    assert wrong.status_code == 401 and "not the admin token" in wrong.get_data(as_text=True)
    right = client.post("/login?next=/alerts", data={"token": ADMIN_TOKEN})
    assert right.status_code == 302 and right.headers["Location"] == "/alerts"
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie
    offsite = client.post("/login?next=//evil.example/", data={"token": ADMIN_TOKEN})
    assert offsite.headers["Location"] == "/"


def test_every_page_renders_with_a_strict_policy(browser, engine, clock, app):
    JobRegistry(engine, clock).put(job_spec("nightly-report", target={"url": "https://x.test/r?secret=1"}))
    run_id = create_manual_run(engine, "nightly-report", T0)
    app.test_client().post("/api/v1/heartbeats/billing", headers=AUTH, json={"status": "fail"})
    for path in ("/", "/jobs", "/jobs/nightly-report", "/services", "/alerts"):
        page = browser.get(path)
        assert page.status_code == 200, path
        policy = page.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy and "unsafe" not in policy
        text = page.get_data(as_text=True)
        assert "<script>" not in text and "style=" not in text  # nothing inline for the policy to forbid
    assert "billing" in browser.get("/").get_data(as_text=True)
    job_page = browser.get("/jobs/nightly-report").get_data(as_text=True)
    assert str(run_id) in job_page and "secret=1" not in job_page  # no query strings: they carry secrets
    assert browser.get("/jobs/nope").status_code == 404
    fragment = browser.get("/jobs", headers={"X-Fragment": "1"}).get_data(as_text=True)
    assert "<header>" not in fragment and "nightly-report" in fragment
    assert browser.get("/assets/refresh.js").status_code == 200


def test_actions_need_the_csrf_token(browser, engine, clock, enqueued):
    JobRegistry(engine, clock).put(job_spec("nightly-report"))
    page = browser.get("/jobs/nightly-report").get_data(as_text=True)
    assert browser.post("/jobs/nightly-report/pause", data={}).status_code == 400
    assert browser.post("/jobs/nightly-report/pause", data={"csrf": "forged"}).status_code == 400
    assert JobRegistry(engine, clock).get("nightly-report").paused_at is None

    token = csrf_of(page)
    assert browser.post("/jobs/nightly-report/pause", data={"csrf": token}).status_code == 302
    assert JobRegistry(engine, clock).get("nightly-report").paused_at is not None
    assert browser.post("/jobs/nightly-report/trigger", data={"csrf": token}).status_code == 302
    assert len(enqueued) == 1
    assert "nightly-report triggered" in browser.get("/jobs/nightly-report").get_data(as_text=True)


def test_acknowledge_an_alert_from_the_alerts_page(browser, app):
    app.test_client().post("/api/v1/heartbeats/billing", headers=AUTH, json={"status": "fail"})
    page = browser.get("/alerts").get_data(as_text=True)
    alert_id = re.search(r"/alerts/(\d+)/acknowledge", page)[1]
    done = browser.post(f"/alerts/{alert_id}/acknowledge", data={"csrf": csrf_of(page), "comment": "on it"})
    assert done.status_code == 302
    after = browser.get("/alerts").get_data(as_text=True)
    assert "ack: on it" in after and f"alert {alert_id} acknowledged" in after


def test_missions_pages_and_cancel(browser, app):
    api = app.test_client()
    definition = {
        "steps": [
            {"name": "approve", "kind": "wait_for", "timeout_s": 60},
            {"name": "notify", "kind": "http", "url": "https://x.test/n?secret=1"},
        ]
    }
    assert api.put("/api/v1/mission-definitions/onboarding", headers=AUTH, json=definition).status_code == 201
    for mission_id in ("m-1", "m-2"):
        api.post("/api/v1/missions", headers=AUTH, json={"definition": "onboarding", "id": mission_id})
    listing = browser.get("/missions")
    assert listing.status_code == 200
    text = listing.get_data(as_text=True)
    assert "m-1" in text and "onboarding" in text and "waiting" in text
    assert "style=" not in text and "<script>" not in text
    page = browser.get("/missions/m-1").get_data(as_text=True)
    assert "approve" in page and "waiting for signal" in page.replace("\n", " ")
    assert browser.get("/missions/nope").status_code == 404
    assert browser.post("/missions/m-1/cancel", data={"reason": "x"}).status_code == 400  # no CSRF token
    done = browser.post("/missions/m-1/cancel", data={"csrf": csrf_of(page), "reason": "duplicate signup"})
    assert done.status_code == 302
    after = browser.get("/missions/m-1").get_data(as_text=True)
    assert "Cancelled: duplicate signup" in after and "mission m-1 cancelled" in after
    cancelled = browser.get("/missions?status=cancelled").get_data(as_text=True)
    assert "m-1" in cancelled and "m-2" not in cancelled


def test_an_alert_id_past_bigint_is_a_404_not_a_database_error(browser):
    page = browser.get("/alerts").get_data(as_text=True)
    answer = browser.post("/alerts/99999999999999999999/acknowledge", data={"csrf": csrf_of(page)})
    assert answer.status_code == 404
