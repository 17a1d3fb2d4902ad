"""End to end (issue 17): a run started and never ended within max_runtime_s opens service_hung, found
by the real beat's staleness check through the service's deadline (no new periodic task, no new probe),
delivered to a webhook by a real worker; the run's end resolves it and that notice follows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import Celery

from mission_control.base.clock import SYSTEM_CLOCK
from mission_control.db.alerts import AlertFilter, list_alerts
from mission_control.monitoring.notifications.notices import ChannelSpec, create_channel
from mission_control.monitoring.services import ServiceConfig, ServiceRegistry
from mission_control.runtime.notify import send_notices
from tests.conftest import wait_until

pytestmark = pytest.mark.slow

RID = "7e0d0a3c-1d0e-4c5a-a7f1-0c3b2e9d4f55"


def hook_events(target) -> list[tuple[str, str, str]]:
    out = []
    for request in target.requests_to("/echo?ch=runs"):
        for notice in request.json()["notices"]:
            out.append((notice["event"], notice["alert"]["kind"], notice["alert"]["subject"]))
    return out


def test_a_hung_run_alerts_through_beat_and_worker_and_its_end_resolves(
    stack, e2e_engine, redis_server, target
):
    create_channel(
        e2e_engine,
        ChannelSpec(
            "runs", "webhook", {"url": f"{target.url}/echo?ch=runs"}, ["service_hung"], "*", None, True
        ),
        SYSTEM_CLOCK.now(),
    )
    services = ServiceRegistry(e2e_engine, SYSTEM_CLOCK)
    services.put("backup", ServiceConfig(interval_s=3600, grace_s=60, max_runtime_s=2))
    stack.worker()
    stack.beat()
    started = services.record_heartbeat("backup", status="start", message=None, truncated=False, rid=RID)
    assert started.service["open_runs"] == 1

    wait_until(lambda: ("opened", "service_hung", "backup") in hook_events(target), 20, "the hung notice")
    [alert] = list_alerts(e2e_engine, AlertFilter(kind="service_hung"))
    assert alert["state"] == "open" and alert["details"]["rid"] == RID
    assert alert["opened_at"] >= started.received_at + timedelta(seconds=2)  # never before max_runtime_s

    ended = services.record_heartbeat("backup", status="ok", message=None, truncated=False, rid=RID)
    assert [(c.kind, c.event) for c in ended.changes] == [("service_hung", "resolved")]
    broker = Celery(broker=redis_server.url, set_as_current=False)
    try:
        send_notices(broker, ended.changes)  # what the web app does after answering the ping
    finally:
        broker.close()
    wait_until(
        lambda: ("resolved", "service_hung", "backup") in hook_events(target), 20, "the resolve notice"
    )
    assert [e for e in hook_events(target) if e[0] == "opened"] == [("opened", "service_hung", "backup")]
