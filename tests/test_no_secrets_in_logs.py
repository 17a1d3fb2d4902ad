"""No token, header value, signing secret or request body reaches the logs.

Every log record of a busy in-process scenario is captured at DEBUG, from every logger, and scanned
for distinctive markers planted in each kind of secret: the admin token, a service token, job and
mission headers and bodies, a heartbeat message, URLs' query strings, a webhook channel's URL, a
target's response body. The scenario goes through the web app (test client), the executor and the
mission engine against a real local HTTP server, on SQLite (the code paths that log do not differ).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mission_control.base.clock import FrozenClock
from mission_control.base.config import Settings
from mission_control.db import migrate
from mission_control.db.engine import make_engine
from mission_control.execution.executor import ExecutionContext, execute_run
from mission_control.missions.engine import advance_mission
from mission_control.missions.steps import StepRunner
from mission_control.missions.store import MissionStore
from mission_control.monitoring.notifications.notices import (
    DeliveryContext,
    deliver,
    group_by_channel,
    list_notices,
)
from mission_control.monitoring.notifications.senders import SmtpServer
from mission_control.outbound.sender import make_session
from mission_control.scheduling.claiming import create_manual_run
from mission_control.web.api import create_app
from tests.conftest import T0, TargetServer

ADMIN = "admin-token-MARKER-A1-0123456789"
SIGNING = "signing-secret-MARKER-S2-0123456789"
HEADER = "header-value-MARKER-H3"
BODY = "request-body-MARKER-B4"
QUERY = "query-string-MARKER-Q5"
MESSAGE = "heartbeat-message-MARKER-M6"
SIGNAL = "signal-payload-MARKER-P7"
HOOK = "webhook-path-MARKER-W8"
SMTP_PASSWORD = "smtp-password-MARKER-S9"
AUTHORIZATION = "Bearer authorization-MARKER-A10"
ROUTING_KEY = "routing-key-MARKER-R11"
APPRISE = "apprise-url-MARKER-U12"


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # the root logger: every logger propagates here
    return caplog


def test_secrets_never_reach_the_logs(tmp_path: Any, everything_logged: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    clock = FrozenClock(T0)
    settings = Settings(
        database_url=url, admin_token=ADMIN, signing_secret=SIGNING, broker_url="memory://",
        smtp_host="127.0.0.1", smtp_port=9, smtp_user="mc", smtp_password=SMTP_PASSWORD,
    )  # fmt: skip
    enqueued: list[int] = []
    app = create_app(
        settings, clock=clock, engine=engine, enqueue=enqueued.extend, notify=lambda c: None,
        deliver=lambda g: None, enqueue_missions=lambda ids: None,
    )  # fmt: skip
    client = app.test_client()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with TargetServer() as target:
        # Jobs: headers and a body that are secrets, a URL with a secret query, a target answering 500
        # with a secret in its body; run through the executor, twice (a failure, then a retry).
        job = {
            "service": "billing",
            "target": {
                "url": f"{target.url}/status/500?key={QUERY}",
                "headers": {"X-Api-Key": HEADER, "Authorization": AUTHORIZATION},
                "body": {"card": BODY},
            },
            "schedule": {"every_s": 3600},
            "retry": {"max_attempts": 2, "backoff_s": 0, "backoff_max_s": 0, "jitter": 0},
        }
        assert client.put("/api/v1/jobs/charge", headers=admin, json=job).status_code == 201
        ctx = ExecutionContext(engine=engine, clock=clock, settings=settings, session=make_session())
        run_id = create_manual_run(engine, "charge", clock.now())
        execute_run(run_id, ctx)
        execute_run(run_id, ctx)
        assert target.requests[0].headers["Authorization"] == AUTHORIZATION  # sent, sealed at rest
        assert client.get(f"/api/v1/runs/{run_id}", headers=admin).status_code == 200

        # Services: a token shown once, heartbeats with it (header and query string) and a message.
        client.put("/api/v1/services/billing", headers=admin, json={"interval_s": 60})
        token = client.post("/api/v1/services/billing/tokens", headers=admin, json={}).get_json()["token"]
        service = {"Authorization": f"Bearer {token}"}
        assert (
            client.post(
                "/api/v1/heartbeats/billing", headers=service, json={"status": "fail", "message": MESSAGE}
            ).status_code
            == 200
        )
        assert client.get(f"/api/v1/heartbeats/billing?token={token}").status_code == 200
        client.get("/api/v1/jobs", headers={"Authorization": f"Bearer wrong-{ADMIN}"})  # a refused guess

        # A webhook channel whose URL is a secret, tested (its delivery fails: nothing listens there).
        channel = client.post(
            "/api/v1/channels",
            headers=admin,
            json={"name": "ops", "kind": "webhook", "url": f"http://127.0.0.1:9/{HOOK}?k={QUERY}"},
        ).get_json()
        client.post(f"/api/v1/channels/{channel['id']}/test", headers=admin)
        # ... and an email channel through an SMTP server that is not there, with a password; both
        # delivered (and failing) with the worker's context, which opens the sealed URL.
        mail = client.post(
            "/api/v1/channels",
            headers=admin,
            json={"name": "mail", "kind": "email", "to": ["a@example.test"]},
        ).get_json()
        client.post(f"/api/v1/channels/{mail['id']}/test", headers=admin)
        delivery = DeliveryContext(
            session=ctx.session,
            smtp=SmtpServer("127.0.0.1", 9, "mc", SMTP_PASSWORD, False),
            smtp_from="mc@example.test",
            signing_secret=SIGNING,
            box=ctx.secret_box,
        )
        pending = [n for c in (channel, mail) for n in list_notices(engine, c["id"])]
        for group in group_by_channel(engine, [n["id"] for n in pending]):
            deliver(engine, group, delivery, clock.now(), final=True)
        notices = [n for c in (channel, mail) for n in list_notices(engine, c["id"])]
        details = [a["detail"] for n in notices for a in n["delivery_attempts"]]
        assert len(details) == 2 and all("connection failed" in d for d in details), details

        # A PagerDuty channel (its routing key a secret) and an Apprise channel (its URL one), tested
        # against the local target, which accepts anything.
        port = target.url.rsplit(":", 1)[1]
        pager = client.post(
            "/api/v1/channels",
            headers=admin,
            json={"name": "pd", "kind": "pagerduty", "routing_key": ROUTING_KEY,
                  "events_url": f"{target.url}/status/202?ch=pd"},
        ).get_json()  # fmt: skip
        apprise = client.post(
            "/api/v1/channels",
            headers=admin,
            json={
                "name": "apprise",
                "kind": "apprise",
                "url": f"json://mc:{APPRISE}@127.0.0.1:{port}/status/200",
            },
        ).get_json()
        for made in (pager, apprise):
            tested = client.post(f"/api/v1/channels/{made['id']}/test", headers=admin).get_json()
            assert deliver(engine, [tested["id"]], delivery, clock.now(), final=True).outcome == "sent"
        assert ROUTING_KEY in target.requests_to("/status/202?ch=pd")[0].text  # it really was sent

        # Missions: a step with secret headers and body, a signal with a secret payload.
        client.put("/api/v1/mission-definitions/pay", headers=admin, json={"steps": [
            {"name": "approve", "kind": "wait_for"},
            {"name": "charge", "kind": "http", "url": f"{target.url}/echo?key={QUERY}",
             "headers": {"X-Api-Key": HEADER}, "body": {"card": BODY}},
        ]})  # fmt: skip
        client.post("/api/v1/missions", headers=admin, json={"definition": "pay", "id": "m-1"})
        client.post("/api/v1/missions/m-1/signals/approve", headers=admin, json={"note": SIGNAL})
        store = MissionStore(engine, clock)
        runner = StepRunner(session=make_session(), signing_secret=SIGNING, clock=clock, callables=dict)
        assert advance_mission(store, runner, "m-1", owner="w", lease_margin_s=1) == "completed"
        assert target.requests_to("/echo")[0].headers["X-Api-Key"] == HEADER  # it really was sent

    text = "\n".join(
        f"{record.name} {record.getMessage()} {record.__dict__}" for record in everything_logged.records
    )
    assert len(everything_logged.records) > 5, "the scenario should have logged something"
    markers = (
        ADMIN,
        SIGNING,
        HEADER,
        BODY,
        QUERY,
        MESSAGE,
        SIGNAL,
        HOOK,
        SMTP_PASSWORD,
        AUTHORIZATION,
        ROUTING_KEY,
        APPRISE,
        token,
    )
    leaked = [m for m in markers if m in text]
    assert leaked == [], f"found in the logs: {leaked}"
    engine.dispose()
