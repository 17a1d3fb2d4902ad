"""Rate limits: refused credentials per client address, heartbeats per service token (429 + Retry-After)."""

from __future__ import annotations

import dataclasses

import pytest
from flask import request

from mission_control.web.api import create_app
from mission_control.web.api.limits import TokenBuckets
from tests.api.conftest import AUTH

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
    assert client.get("/api/v1/jobs").status_code == 429  # no token at all is a refused one too
    assert client.post("/api/v1/heartbeats/svc", headers=WRONG).status_code == 429
    assert client.post("/api/v1/heartbeats/svc").status_code == 429
    elsewhere = client.get("/api/v1/jobs", headers=WRONG, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert elsewhere.status_code == 401  # other addresses have their own budget
    ticks.now += 2
    assert client.get("/api/v1/jobs", headers=WRONG).status_code == 401
    assert client.get("/api/v1/jobs", headers=WRONG).status_code == 429
    for _ in range(5):
        assert client.get("/api/v1/jobs", headers=AUTH).status_code == 200  # successes cost nothing
    ticks.now += 2
    assert client.get("/api/v1/jobs", headers=WRONG).status_code == 401


def test_valid_tokens_are_accepted_while_their_address_is_over_budget(app, ticks) -> None:
    """Issue 13, item 3: behind one proxy, one client guessing must not lock the others out."""
    client = app.test_client()
    assert client.put("/api/v1/services/svc", headers=AUTH, json={"interval_s": 60}).status_code in (200, 201)
    token = client.post("/api/v1/services/svc/tokens", headers=AUTH, json={}).get_json()["token"]
    service = {"Authorization": f"Bearer {token}"}
    for _ in range(30):
        assert client.get("/api/v1/jobs", headers=WRONG).status_code == 401
    assert client.get("/api/v1/jobs", headers=WRONG).status_code == 429
    # The same address, valid credentials: the admin's on the API and on heartbeats, a service's in
    # the header and in ?token=, by POST, GET and HEAD.
    assert client.get("/api/v1/jobs", headers=AUTH).status_code == 200
    assert client.get("/api/v1/services/svc", headers=AUTH).status_code == 200
    assert client.post("/api/v1/heartbeats/svc", headers=AUTH).status_code == 200
    assert client.post("/api/v1/heartbeats/svc", headers=service).status_code == 200
    assert client.get("/api/v1/heartbeats/svc", query_string={"token": token}).status_code == 200
    assert client.head("/api/v1/heartbeats/svc", query_string={"token": token}).status_code == 200
    assert (
        client.post("/api/v1/heartbeats/svc", query_string={"token": token}, data="done").status_code == 200
    )
    # Refused credentials from there still are refused with 429, and valid ones spent nothing.
    assert client.get("/api/v1/heartbeats/svc", query_string={"token": "guess"}).status_code == 429
    assert client.get("/api/v1/jobs", headers=WRONG).status_code == 429
    ticks.now += 2
    assert client.get("/api/v1/jobs", headers=WRONG).status_code == 401


def test_wrong_heartbeat_tokens_and_dashboard_sign_ins_count_as_failures(app, ticks) -> None:
    client = app.test_client()
    for i in range(30):
        if i % 2:
            assert client.post("/api/v1/heartbeats/svc", headers=WRONG).status_code == 401
        else:
            assert client.post("/login", data={"token": "wrong-token-guess"}).status_code == 401
    page = client.post("/login", data={"token": "wrong-token-guess"})
    assert page.status_code == 429 and "Too many wrong tokens" in page.get_data(as_text=True)
    assert client.get("/api/v1/jobs", headers=WRONG).status_code == 429


def proxied_app(app, hops: int, ticks: Ticks):
    """The test app rebuilt with MC_PROXY_HOPS = ``hops`` (same database, clock and callbacks)."""
    state = app.extensions["mission_control"]
    rebuilt = create_app(
        state.settings.model_copy(update={"proxy_hops": hops}),
        clock=state.clock,
        engine=state.engine,
        enqueue=state.enqueue,
        notify=state.notify,
        deliver=state.deliver,
        enqueue_missions=state.enqueue_missions,
    )
    rebuilt.testing = True
    rebuilt.extensions["mission_control"] = dataclasses.replace(
        rebuilt.extensions["mission_control"],
        auth_failures=TokenBuckets(rate=30 / 60, burst=30, clock=ticks),
    )
    return rebuilt


def test_behind_one_trusted_proxy_each_client_has_its_own_budget(app, ticks) -> None:
    client = proxied_app(app, 1, ticks).test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.2"}  # the load balancer every request arrives from

    def via_proxy(client_ip: str, spoofed: str | None = None) -> dict[str, str]:
        # The proxy appends the address it saw; a client may have sent anything before it.
        forwarded = client_ip if spoofed is None else f"{spoofed}, {client_ip}"
        return {**WRONG, "X-Forwarded-For": forwarded}

    for i in range(30):
        guess = client.get(
            "/api/v1/jobs", headers=via_proxy("203.0.113.5", f"198.51.100.{i}"), environ_base=proxy
        )
        assert guess.status_code == 401
    spent = client.get("/api/v1/jobs", headers=via_proxy("203.0.113.5", "198.51.100.99"), environ_base=proxy)
    assert spent.status_code == 429  # spoofing an earlier hop does not give a fresh budget
    other = client.get("/api/v1/jobs", headers=via_proxy("203.0.113.6"), environ_base=proxy)
    assert other.status_code == 401  # another client behind the same proxy: its own budget
    assert client.get("/api/v1/jobs", headers=via_proxy("203.0.113.5"), environ_base=proxy).status_code == 429
    assert client.get("/api/v1/jobs", headers=WRONG, environ_base=proxy).status_code == 401  # the proxy's own


def test_without_trusted_proxies_x_forwarded_for_is_ignored(app, ticks) -> None:
    client = proxied_app(app, 0, ticks).test_client()
    for i in range(30):
        headers = {**WRONG, "X-Forwarded-For": f"198.51.100.{i}"}
        assert client.get("/api/v1/jobs", headers=headers).status_code == 401
    spoofed = {**WRONG, "X-Forwarded-For": "198.51.100.200", "X-Real-IP": "198.51.100.201"}
    assert client.get("/api/v1/jobs", headers=spoofed).status_code == 429
    assert client.get("/api/v1/jobs", headers={**AUTH, "X-Forwarded-For": "198.51.100.1"}).status_code == 200


def test_a_trusted_proxy_is_believed_for_the_client_and_scheme_not_the_host(app, ticks) -> None:
    # A proxy that does not set X-Forwarded-Host would pass on whatever the client sent there.
    proxied = proxied_app(app, 1, ticks)

    @proxied.get("/_seen")
    def seen() -> dict[str, str]:
        return {"remote_addr": request.remote_addr or "", "scheme": request.scheme, "host": request.host}

    answer = proxied.test_client().get(
        "/_seen",
        headers={
            "X-Forwarded-For": "203.0.113.5",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil.example",
        },
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert answer.get_json() == {"remote_addr": "203.0.113.5", "scheme": "https", "host": "localhost"}


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
