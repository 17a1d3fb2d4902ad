"""Rate limits: refused credentials per client address, heartbeats per service token (429 + Retry-After)."""

from __future__ import annotations

import dataclasses

import pytest

from mission_control.api.limits import TokenBuckets
from tests.api.conftest import AUTH
from tests.conftest import ADMIN_TOKEN

WRONG = {"Authorization": "Bearer not-the-admin-token-at-all"}


class Ticks:
    """A monotonic clock for the buckets that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks(app) -> Ticks:
    ticks = Ticks()
    state = app.extensions["mission_control"]
    app.extensions["mission_control"] = dataclasses.replace(
        state,
        auth_failures=TokenBuckets(rate=30 / 60, burst=30, clock=ticks),
        heartbeat_limits=TokenBuckets(rate=10, burst=100, clock=ticks),
    )
    return ticks


def test_buckets_refill_at_their_rate() -> None:
    ticks = Ticks()
    buckets = TokenBuckets(rate=2, burst=3, clock=ticks)
    assert [buckets.take("k") for _ in range(3)] == [None, None, None]
    assert buckets.take("k") == pytest.approx(0.5)
    assert buckets.take("other") is None
    ticks.now += 0.5
    assert buckets.wait_s("k") is None and buckets.take("k") is None
    ticks.now += 100
    assert [buckets.take("k") for _ in range(4)][-1] == pytest.approx(0.5)  # never more than the burst


def test_guessing_tokens_is_limited_per_address(app, ticks) -> None:
    client = app.test_client()
    for _ in range(30):
        assert client.get("/api/v1/jobs", headers=WRONG).status_code == 401
    limited = client.get("/api/v1/jobs", headers=WRONG)
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert limited.headers["Retry-After"] == "2"
    # Spent means spent: the right token from that address waits too, other addresses do not.
    assert client.get("/api/v1/jobs", headers=AUTH).status_code == 429
    elsewhere = client.get("/api/v1/jobs", headers=AUTH, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert elsewhere.status_code == 200
    assert client.post("/api/v1/heartbeats/svc", headers=WRONG).status_code == 429
    assert client.post("/login", data={"token": ADMIN_TOKEN}).status_code == 429
    ticks.now += 2
    assert client.get("/api/v1/jobs", headers=AUTH).status_code == 200
    assert client.get("/api/v1/jobs", headers=AUTH).status_code == 200  # successes cost nothing


def test_wrong_heartbeat_tokens_and_dashboard_sign_ins_count_as_failures(app, ticks) -> None:
    client = app.test_client()
    for i in range(30):
        if i % 2:
            assert client.post("/api/v1/heartbeats/svc", headers=WRONG).status_code == 401
        else:
            assert client.post("/login", data={"token": "wrong-token-guess"}).status_code == 401
    page = client.post("/login", data={"token": ADMIN_TOKEN})
    assert page.status_code == 429 and "Too many wrong tokens" in page.get_data(as_text=True)


def test_heartbeats_are_limited_per_service_token(app, ticks) -> None:
    client = app.test_client()
    tokens = {}
    for name in ("chatty", "quiet"):
        assert client.put(f"/api/v1/services/{name}", headers=AUTH, json={"interval_s": 60}).status_code in (
            200,
            201,
        )
        tokens[name] = client.post(f"/api/v1/services/{name}/tokens", headers=AUTH, json={}).get_json()[
            "token"
        ]
    chatty = {"Authorization": f"Bearer {tokens['chatty']}"}
    for _ in range(100):
        assert client.post("/api/v1/heartbeats/chatty", headers=chatty).status_code == 200
    limited = client.post("/api/v1/heartbeats/chatty", headers=chatty)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert "MC_HEARTBEATS_PER_S" in limited.get_json()["error"]["message"]
    quiet = {"Authorization": f"Bearer {tokens['quiet']}"}
    assert client.post("/api/v1/heartbeats/quiet", headers=quiet).status_code == 200
    assert client.post("/api/v1/heartbeats/chatty", headers=AUTH).status_code == 200  # the admin's own
    ticks.now += 0.1
    assert client.post("/api/v1/heartbeats/chatty", headers=chatty).status_code == 200
