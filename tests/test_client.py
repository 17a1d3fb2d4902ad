"""The client library services use: heartbeats around a unit of work, and checking trigger signatures."""

from __future__ import annotations

import time

import pytest

from mission_control.client import MissionControl, verify_signature
from mission_control.outbound.signing import SIGNATURE_HEADER, sign
from tests.conftest import wait_until

SECRET = "a-signing-secret-for-tests"


def test_verify_signature_accepts_ours_and_refuses_forgeries_and_replays():
    body = b'{"report":"daily"}'
    now = time.time()
    url = "https://billing.internal/tasks/report?format=pdf"

    def signed(at: float, key: str = "42") -> dict[str, str]:
        value = sign(SECRET, method="POST", url=url, idempotency_key=key, body=body, timestamp=int(at))
        return {SIGNATURE_HEADER.lower(): value, "Idempotency-Key": key}

    headers = signed(now)
    assert verify_signature(SECRET, "POST", url, headers, body)
    assert not verify_signature(SECRET, "POST", url, headers, body + b" ")
    assert not verify_signature(SECRET, "PUT", url, headers, body)
    assert not verify_signature(SECRET, "POST", url.replace("report", "refund"), headers, body)
    assert not verify_signature(SECRET, "POST", url, {**headers, "Idempotency-Key": "43"}, body)
    assert not verify_signature("another-secret", "POST", url, headers, body)
    assert not verify_signature(SECRET, "POST", url, {}, body)
    old = signed(now - 600)
    assert not verify_signature(SECRET, "POST", url, old, body)
    assert verify_signature(SECRET, "POST", url, old, body, tolerance_s=900)


@pytest.mark.slow
def test_monitor_beats_ok_or_fail_around_the_work(web_server):
    mc = MissionControl(web_server.url, web_server.token)
    with mc.monitor("client-svc"):
        pass
    assert mc.service("client-svc")["state"] == "up"

    @mc.monitor("client-svc")
    def nightly() -> None:
        raise RuntimeError("export failed")

    with pytest.raises(RuntimeError, match="export failed"):
        nightly()
    service = mc.service("client-svc")
    assert service["state"] == "down"
    assert service["last_message"] == "RuntimeError: export failed"
    assert any(a["subject"] == "client-svc" for a in mc.alerts(state="open", kind="service_down"))

    unreachable = MissionControl("http://127.0.0.1:9", web_server.token, timeout_s=1)
    with unreachable.monitor("client-svc"):  # a heartbeat that cannot be sent never breaks the work
        pass


@pytest.mark.slow
def test_the_access_log_never_shows_a_token_from_the_query_string(web_server):
    import requests

    mc = MissionControl(web_server.url, web_server.token)
    mc.put_service("logged-svc", interval_s=60)
    token = mc._call("POST", "/api/v1/services/logged-svc/tokens")["token"]
    answer = requests.get(
        f"{web_server.url}/api/v1/heartbeats/logged-svc", params={"token": token}, timeout=5
    )
    assert answer.status_code == 200
    # gunicorn writes the access line after the answer leaves, so it may land a moment later.
    wait_until(lambda: "/api/v1/heartbeats/logged-svc" in web_server.log_path.read_text(), 10, "access line")
    log = web_server.log_path.read_text()  # the request is logged...
    assert token not in log and web_server.token not in log  # ...without its token
