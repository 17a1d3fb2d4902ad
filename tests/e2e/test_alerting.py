"""End to end: stale heartbeats and failing jobs open alerts that reach a webhook, and recover.

Real beat (which sends the staleness check every second) and worker processes, PostgreSQL, a private
Redis, and a local HTTP server playing both the job target and the webhook receiver.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import Celery

from mission_control.base.clock import SYSTEM_CLOCK
from mission_control.db.alerts import AlertFilter, list_alerts
from mission_control.jobs.registry import JobRegistry
from mission_control.monitoring.notifications.notices import ChannelSpec, create_channel
from mission_control.monitoring.services import ServiceConfig, ServiceRegistry
from mission_control.runtime.notify import send_notices
from mission_control.scheduling.claiming import create_manual_run
from mission_control.scheduling.queueing import enqueue_runs
from tests.conftest import wait_until
from tests.factories import job_spec

pytestmark = pytest.mark.slow


def hook_events(target) -> list[tuple[str, str, str]]:
    out = []
    for request in target.requests_to("/echo?ch=ops"):
        for notice in request.json()["notices"]:
            out.append((notice["event"], notice["alert"]["kind"], notice["alert"]["subject"]))
    return out


def test_a_silent_service_goes_late_then_down_alerts_and_recovers(stack, e2e_engine, redis_server, target):
    create_channel(
        e2e_engine,
        ChannelSpec("ops", "webhook", {"url": f"{target.url}/echo?ch=ops"}, None, "*", None, True),
        SYSTEM_CLOCK.now(),
    )
    services = ServiceRegistry(e2e_engine, SYSTEM_CLOCK)
    stack.worker()
    stack.beat()
    services.record_heartbeat(
        "payments", status="ok", message=None, truncated=False, register=ServiceConfig(2, grace_s=3)
    )

    wait_until(lambda: services.get("payments")["state"] == "late", 15, "the service to be late")
    wait_until(lambda: ("opened", "service_down", "payments") in hook_events(target), 20, "the down notice")
    service = services.get("payments")
    assert service["state"] == "down"
    [alert] = list_alerts(e2e_engine, AlertFilter(kind="service_down"))
    assert alert["state"] == "open"
    flagged_after = alert["opened_at"] - (service["last_seen_at"] + timedelta(seconds=5))
    assert flagged_after >= timedelta(0)  # never before interval + grace

    result = services.record_heartbeat("payments", status="ok", message=None, truncated=False)
    assert [(c.kind, c.event) for c in result.changes] == [("service_down", "resolved")]
    broker = Celery(broker=redis_server.url, set_as_current=False)
    try:
        send_notices(broker, result.changes)  # what the web app does after answering the heartbeat
    finally:
        broker.close()
    wait_until(
        lambda: ("resolved", "service_down", "payments") in hook_events(target), 20, "the resolve notice"
    )
    assert [e for e in hook_events(target) if e[0] == "opened"] == [("opened", "service_down", "payments")]


def test_a_job_failing_past_its_retries_alerts_and_its_next_success_resolves(
    stack, e2e_engine, redis_server, target
):
    create_channel(
        e2e_engine,
        ChannelSpec("ops", "webhook", {"url": f"{target.url}/echo?ch=ops"}, ["job_failed"], "*", None, True),
        SYSTEM_CLOCK.now(),
    )
    registry = JobRegistry(e2e_engine)
    retry = {"max_attempts": 2, "backoff_s": 0.2, "backoff_max_s": 0.5, "jitter": 0}
    registry.put(job_spec("export", target={"url": f"{target.url}/sequence/export/500,500,200"}, retry=retry))
    stack.worker()
    stack.beat()  # sweeps the retry back onto the queue
    broker = Celery(broker=redis_server.url, set_as_current=False)
    try:
        enqueue_runs(broker, [create_manual_run(e2e_engine, "export", SYSTEM_CLOCK.now())])
        wait_until(
            lambda: ("opened", "job_failed", "export") in hook_events(target), 30, "the failure notice"
        )
        enqueue_runs(broker, [create_manual_run(e2e_engine, "export", SYSTEM_CLOCK.now())])
        wait_until(
            lambda: ("resolved", "job_failed", "export") in hook_events(target), 30, "the resolve notice"
        )
    finally:
        broker.close()
    [alert] = list_alerts(e2e_engine, AlertFilter(kind="job_failed"))
    assert alert["state"] == "resolved" and "after 2 attempt(s)" in alert["message"]
