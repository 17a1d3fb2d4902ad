"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against real gunicorn.

Sign in, see the failing job on top, pause and trigger it, acknowledge an alert; a screenshot of every
page (desktop and phone widths) is saved under ``test-artifacts/screenshots`` (not committed) to look at.

The browser is the machine's ``chromium`` if one is on the PATH, else one ``playwright install chromium``
downloaded. With neither, the module is skipped with one line saying how to get one, except in CI
(``CI`` set), where .ci/run installs Chromium, so a missing one fails the tests instead of hiding them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mission_control.base.config import Settings
from mission_control.client import MissionControl
from mission_control.db.engine import make_engine
from mission_control.execution.executor import ExecutionContext, execute_run
from mission_control.jobs.registry import JobRegistry
from mission_control.outbound.sender import make_session
from mission_control.scheduling.claiming import create_manual_run
from tests.conftest import SIGNING_SECRET
from tests.factories import job_spec

pytestmark = pytest.mark.slow

GET_CHROMIUM = "no Chromium: `sudo apt-get install chromium` (or `.venv/bin/playwright install chromium`)"


def playwright_has_its_chromium() -> bool:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        return Path(playwright.chromium.executable_path).exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")  # None: Playwright's own
NO_BROWSER = CHROMIUM is None and not playwright_has_its_chromium()
if NO_BROWSER and not os.environ.get("CI"):
    pytest.skip(GET_CHROMIUM, allow_module_level=True)
SHOTS = (
    Path(os.environ.get("MC_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
    / "screenshots"
)


@pytest.fixture(scope="module")
def chromium():
    if NO_BROWSER:
        pytest.fail(f"{GET_CHROMIUM}; .ci/run installs it, so CI does not skip these tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def failing_job(web_server, target):
    """A job whose target answers 500, run once for real so it has a failed run and a job_failed alert."""
    engine = make_engine(web_server.database_url)
    session = make_session()
    try:
        registry = JobRegistry(engine)
        spec = job_spec("billing.export", service="billing", target={"url": f"{target.url}/status/500"},
                        retry={"max_attempts": 1})  # fmt: skip
        registry.put(spec)
        registry.put(job_spec("reports.daily", service="reports", target={"url": f"{target.url}/ok"}))
        settings = Settings(admin_token=web_server.token, signing_secret=SIGNING_SECRET)
        ctx = ExecutionContext(engine=engine, clock=registry.clock, settings=settings, session=session)
        for name in ("reports.daily", "billing.export"):
            execute_run(create_manual_run(engine, name, registry.clock.now()), ctx)
        yield "billing.export"
    finally:
        session.close()
        engine.dispose()


def test_sign_in_see_the_failure_first_pause_trigger_and_acknowledge(chromium, web_server, failing_job):
    SHOTS.mkdir(parents=True, exist_ok=True)
    mc = MissionControl(web_server.url, web_server.token)
    mc.heartbeat("payments")
    mc.heartbeat("ledger", status="fail", message="disk full")

    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(f"{message.text} {message.location}") if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{web_server.url}/jobs")
    assert page.url.startswith(f"{web_server.url}/login")
    page.screenshot(path=SHOTS / "login.png")
    page.fill("#token", "not the token")
    page.click("button[type=submit]")
    assert "not the admin token" in page.content()
    page.fill("#token", web_server.token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{web_server.url}/jobs")
    problems.clear()  # the wrong token's 401 above was the point

    first_row = page.locator("tbody tr").first
    assert failing_job in first_row.inner_text() and "failed" in first_row.inner_text()
    page.screenshot(path=SHOTS / "jobs.png", full_page=True)

    page.goto(f"{web_server.url}/")
    assert failing_job in page.locator("table").first.inner_text()
    page.screenshot(path=SHOTS / "overview.png", full_page=True)

    page.click(f"table a:has-text('{failing_job}')")
    page.click("button:has-text('Pause')")
    assert f"{failing_job} paused" in page.locator(".flash").inner_text()
    page.click("button:has-text('Trigger now')")
    assert f"{failing_job} triggered" in page.locator(".flash").inner_text()
    page.screenshot(path=SHOTS / "job.png", full_page=True)
    assert mc.job(failing_job)["enabled"] is False

    page.goto(f"{web_server.url}/alerts")
    row = page.locator("tr", has_text="ledger")
    row.locator("input[name=comment]").fill("replacing the disk")
    row.locator("button:has-text('Acknowledge')").click()
    assert "acknowledged" in page.locator(".flash").inner_text()
    assert "ack: replacing the disk" in page.content()
    page.screenshot(path=SHOTS / "alerts.png", full_page=True)

    page.goto(f"{web_server.url}/services")
    assert "ledger" in page.content() and "payments" in page.content()
    page.screenshot(path=SHOTS / "services.png", full_page=True)

    # The live refresh swaps <main> in place: a heartbeat shows up without a reload.
    mc.heartbeat("newcomer")
    page.wait_for_selector("text=newcomer", timeout=10_000)

    mc.put_mission_definition({"name": "onboarding", "steps": [
        {"name": "approve", "kind": "wait_for", "schema": {"type": "object", "required": ["by"]}},
        {"name": "cool-off", "kind": "sleep", "seconds": 3600},
    ]})  # fmt: skip
    mc.start_mission("onboarding", {"customer": "acme", "plan": "enterprise"}, id="onboard-acme")
    mc.signal("onboard-acme", "approve", {"by": "ops@example.com"})
    mc.start_mission("onboarding", {"customer": "globex"}, id="onboard-globex")
    page.goto(f"{web_server.url}/missions")
    assert "onboard-acme" in page.content() and "onboard-globex" in page.content()
    page.screenshot(path=SHOTS / "missions.png", full_page=True)
    page.click("a:has-text('onboard-acme')")
    assert "ops@example.com" in page.content()
    page.screenshot(path=SHOTS / "mission.png", full_page=True)
    page.goto(f"{web_server.url}/missions/onboard-globex")
    page.fill("input[name=reason]", "customer withdrew")
    page.click("button:has-text('Cancel mission')")
    assert "onboard-globex cancelled" in page.locator(".flash").inner_text()
    assert mc.mission("onboard-globex")["status"] == "cancelled"

    phone = chromium.new_page(viewport={"width": 375, "height": 812}, is_mobile=True)
    phone.context.add_cookies(page.context.cookies())
    phone.goto(f"{web_server.url}/jobs")
    phone.screenshot(path=SHOTS / "jobs-phone.png", full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375 + 1  # no sideways scrolling
    phone.goto(f"{web_server.url}/missions/onboard-acme")
    phone.screenshot(path=SHOTS / "mission-phone.png", full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375 + 1
    phone.close()

    assert problems == []  # no script errors, no Content-Security-Policy violations
    page.close()
