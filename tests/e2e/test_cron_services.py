"""End to end (issue 17): a cron-scheduled service registered through the real web (gunicorn) misses
its slot; the real beat's staleness check turns it late at the slot and down at slot + grace, a real
worker delivers service_down to a local webhook receiver, and a heartbeat through the web resolves it.

No test waits for a minute boundary: the service's last heartbeat is recorded by the registry with an
injected clock 30 s before the last whole minute (its "* * * * *" slot), and the grace is what is
left of that minute plus 6 s, so the slot has just passed and the service is down 6 s from now.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests

from mission_control.base.clock import SYSTEM_CLOCK, FrozenClock
from mission_control.db.alerts import AlertFilter, list_alerts
from mission_control.monitoring.notifications.notices import ChannelSpec, create_channel
from mission_control.monitoring.services import ServiceRegistry
from tests.conftest import wait_until

pytestmark = pytest.mark.slow


def hook_events(target) -> list[tuple[str, str, str]]:
    out = []
    for request in target.requests_to("/echo?ch=cron"):
        for notice in request.json()["notices"]:
            out.append((notice["event"], notice["alert"]["kind"], notice["alert"]["subject"]))
    return out


def test_a_cron_service_that_misses_its_slot_goes_late_then_down_and_a_webhook_hears_it(
    stack, web, e2e_engine, target
):
    headers = {"Authorization": f"Bearer {web.token}"}

    def api(method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, web.url + path, headers=headers, timeout=10, **kwargs)

    create_channel(
        e2e_engine,
        ChannelSpec(
            "cron", "webhook", {"url": f"{target.url}/echo?ch=cron"}, ["service_down"], "*", None, True
        ),
        SYSTEM_CLOCK.now(),
    )
    stack.worker()
    stack.beat()
    now = SYSTEM_CLOCK.now()
    slot = now.replace(second=0, microsecond=0)  # "* * * * *" fired here, and nobody pinged since
    grace_s = (now - slot).total_seconds() + 6
    put = api("PUT", "/api/v1/services/nightly", json={
        "schedule": {"cron": "* * * * *", "timezone": "Europe/Riga"}, "grace_s": grace_s})  # fmt: skip
    assert put.status_code == 201, put.text
    assert put.json()["schedule"] == {"cron": "* * * * *", "timezone": "Europe/Riga"}
    before_slot = ServiceRegistry(e2e_engine, FrozenClock(slot - timedelta(seconds=30)))
    pinged = before_slot.record_heartbeat("nightly", status="ok", message=None, truncated=False)
    assert (pinged.service["state"], pinged.service["deadline_at"]) == ("up", slot)

    services = ServiceRegistry(e2e_engine, SYSTEM_CLOCK)
    wait_until(lambda: services.get("nightly")["state"] in ("late", "down"), 15, "the service to be late")
    wait_until(lambda: ("opened", "service_down", "nightly") in hook_events(target), 30, "the down notice")
    [alert] = list_alerts(e2e_engine, AlertFilter(kind="service_down"))
    assert alert["opened_at"] >= slot + timedelta(seconds=grace_s)  # never before slot + grace
    flips = [f["to_state"] for f in reversed(services.flips(["nightly"])["nightly"])]
    assert flips == ["up", "late", "down"]

    beat = api("POST", "/api/v1/heartbeats/nightly")
    assert beat.status_code == 200, beat.text
    next_slot = slot + timedelta(minutes=1)
    assert beat.json()["deadline_at"] in (  # the first whole minute after the heartbeat
        (next_slot + timedelta(minutes=k)).isoformat().replace("+00:00", "Z") for k in range(3)
    )
    wait_until(lambda: ("resolved", "service_down", "nightly") in hook_events(target), 30, "the resolve")
