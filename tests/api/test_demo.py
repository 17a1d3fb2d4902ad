"""The dev stack's demo target: answers only signed triggers, and keeps a demo service beating."""

from __future__ import annotations

import time

from mission_control.outbound.signing import SIGNATURE_HEADER, sign
from mission_control.web.api import create_app
from tests.conftest import SIGNING_SECRET


def test_the_demo_echo_checks_signatures_and_beats_for_the_demo_service(app, engine, clock):
    settings = app.extensions["mission_control"].settings.model_copy(update={"demo_echo": True})
    notified: list = []
    demo = create_app(settings, clock=clock, engine=engine, enqueue=lambda ids: None, notify=notified.extend)
    client = demo.test_client()
    body = b'{"hello":"world"}'

    def signature(secret: str, stamp: int, url: str = "http://localhost/demo/echo") -> dict[str, str]:
        value = sign(secret, method="POST", url=url, idempotency_key="7", body=body, timestamp=stamp)
        return {SIGNATURE_HEADER: value, "Idempotency-Key": "7"}

    forged = client.post("/demo/echo", data=body, headers=signature("wrong", int(time.time())))
    assert forged.status_code == 401
    assert demo.extensions["mission_control"].services.get("demo") is None

    stamp = int(clock.now().timestamp())
    elsewhere = client.post(
        "/demo/echo", data=body, headers=signature(SIGNING_SECRET, stamp, "http://localhost/api/v1/jobs")
    )
    assert elsewhere.status_code == 401  # signed for another URL: a replay from elsewhere
    signed = client.post("/demo/echo", data=body, headers=signature(SIGNING_SECRET, stamp))
    assert signed.status_code == 200 and signed.get_json()["signature_valid"] is True
    service = demo.extensions["mission_control"].services.get("demo")
    assert (service["state"], service["interval_s"], service["grace_s"]) == ("up", 10, 10)
