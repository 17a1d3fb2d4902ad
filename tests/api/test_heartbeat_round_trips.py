"""A token's heartbeat costs one connection checkout and one transaction, the token checked inside it.

The scoped-token change once put a separate checkout and ``SELECT`` on ``api_tokens`` in front of
every heartbeat (279 instead of 391 heartbeats/s in ``bench/heartbeat_bench.py``). These tests count
what reaches the database through SQLAlchemy's events, so that cannot come back unnoticed: on
PostgreSQL the whole heartbeat, token check and ``last_used_at`` included, is one statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from flask import g
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from mission_control.db.tables import api_tokens
from tests.api.conftest import AUTH


@dataclass
class Traffic:
    checkouts: int = 0
    statements: int = 0
    commits: int = 0
    rollbacks: int = 0


@contextmanager
def counting(engine: Engine) -> Iterator[Traffic]:
    """What ``engine`` sends while the block runs: pool checkouts, statements, commits, rollbacks."""
    traffic = Traffic()

    def on_checkout(*_: Any) -> None:
        traffic.checkouts += 1

    def on_statement(*_: Any) -> None:
        traffic.statements += 1

    def on_commit(*_: Any) -> None:
        traffic.commits += 1

    def on_rollback(*_: Any) -> None:
        traffic.rollbacks += 1

    listeners = [
        (engine.pool, "checkout", on_checkout),
        (engine, "before_cursor_execute", on_statement),
        (engine, "commit", on_commit),
        (engine, "rollback", on_rollback),
    ]
    for target, name, listener in listeners:
        event.listen(target, name, listener)
    try:
        yield traffic
    finally:
        for target, name, listener in listeners:
            event.remove(target, name, listener)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def principals(app: Any) -> list[Any]:
    """``g.principal`` as each request ended (what an audit trail would read)."""
    seen: list[Any] = []

    @app.after_request
    def _record(response: Any) -> Any:
        seen.append(g.get("principal"))
        return response

    return seen


@pytest.fixture
def client(app: Any, principals: list[Any]) -> Any:
    client = app.test_client()
    for name in ("billing", "search"):
        assert (
            client.put(f"/api/v1/services/{name}", headers=AUTH, json={"interval_s": 60}).status_code == 201
        )
    return client


def issue(client: Any, name: str, scopes: list[str], service: str | None = None) -> tuple[int, str]:
    response = client.post(
        "/api/v1/tokens", headers=AUTH, json={"name": name, "scopes": scopes, "service": service}
    )
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    return created["id"], created["token"]


def last_used_at(engine: Engine, token_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(api_tokens.c.last_used_at).where(api_tokens.c.id == token_id)).scalar()


def test_a_token_heartbeat_is_one_checkout_and_one_transaction(client, engine, principals) -> None:
    token_id, token = issue(client, "billing-beats", ["heartbeats:write"], "billing")
    assert client.post("/api/v1/heartbeats/billing", headers=bearer(token)).status_code == 200  # new -> up

    for send in (
        lambda: client.post("/api/v1/heartbeats/billing", headers=bearer(token), json={"message": "ok"}),
        lambda: client.get("/api/v1/heartbeats/billing", query_string={"token": token}),
    ):
        with counting(engine) as traffic:
            assert send().status_code == 200
        assert (traffic.checkouts, traffic.commits, traffic.rollbacks) == (1, 1, 0), traffic
        if engine.dialect.name == "postgresql":
            assert traffic.statements == 1, traffic  # token check, touch, beat and ring slot at once

    who = principals[-1]
    assert (who.id, who.name, who.scopes, who.service, who.kind) == (
        token_id,
        "billing-beats",
        frozenset({"heartbeats:write"}),
        "billing",
        "token",
    )


def test_an_unbound_token_beats_for_any_service_in_one_transaction(client, engine, principals) -> None:
    token_id, token = issue(client, "fleet-beats", ["heartbeats:write", "read"])
    for name in ("billing", "search"):
        assert client.post(f"/api/v1/heartbeats/{name}", headers=bearer(token)).status_code == 200
    with counting(engine) as traffic:
        assert client.post("/api/v1/heartbeats/search", headers=bearer(token)).status_code == 200
    assert (traffic.checkouts, traffic.commits) == (1, 1), traffic
    assert principals[-1].id == token_id and principals[-1].service is None


def test_the_admin_token_heartbeat_looks_up_no_token(client, engine, principals) -> None:
    assert client.post("/api/v1/heartbeats/billing", headers=AUTH).status_code == 200
    with counting(engine) as traffic:
        assert client.post("/api/v1/heartbeats/billing", headers=AUTH).status_code == 200
    assert (traffic.checkouts, traffic.commits, traffic.rollbacks) == (1, 1, 0), traffic
    if engine.dialect.name == "postgresql":
        assert traffic.statements == 1, traffic
    assert principals[-1].kind == "bootstrap"


def test_last_used_at_is_written_by_the_heartbeat_at_most_once_a_minute(client, engine, clock) -> None:
    token_id, token = issue(client, "billing-beats", ["heartbeats:write"], "billing")
    assert last_used_at(engine, token_id) is None
    assert client.post("/api/v1/heartbeats/billing", headers=bearer(token)).status_code == 200
    first = last_used_at(engine, token_id)
    assert first == clock.now()
    clock.advance(60)
    assert client.post("/api/v1/heartbeats/billing", headers=bearer(token)).status_code == 200
    assert last_used_at(engine, token_id) == first
    clock.advance(1)
    assert client.post("/api/v1/heartbeats/billing", headers=bearer(token)).status_code == 200
    assert last_used_at(engine, token_id) == clock.now()


def test_refused_token_heartbeats_write_nothing_and_answer_as_the_full_check(client, engine, clock) -> None:
    _, beats = issue(client, "billing-beats", ["heartbeats:write"], "billing")
    _, reader = issue(client, "reader", ["read"])
    _, broader = issue(client, "billing-broader", ["heartbeats:write", "read"], "billing")
    expiring = client.post(
        "/api/v1/tokens",
        headers=AUTH,
        json={"name": "soon", "scopes": ["heartbeats:write"], "expires_at": "2026-03-01T12:00:30Z"},
    ).get_json()["token"]
    clock.advance(60)

    def count() -> int:
        return client.get("/api/v1/services/billing", headers=AUTH).get_json()["heartbeat_count"]

    before = count()
    cases = [
        (client.post("/api/v1/heartbeats/search", headers=bearer(beats)), 403, "service"),
        (client.post("/api/v1/heartbeats/billing", headers=bearer(reader)), 403, "scope"),
        (client.get("/api/v1/heartbeats/billing", query_string={"token": broader}), 401, "token"),
        (client.post("/api/v1/heartbeats/billing", headers=bearer(expiring)), 401, "Authorization"),
        (client.post("/api/v1/heartbeats/billing", headers=bearer("mcs_" + "x" * 43)), 401, "Authorization"),
        (client.post("/api/v1/heartbeats/ghost", headers=bearer(beats)), 403, "service"),
    ]
    for response, status, field in cases:
        assert response.status_code == status, response.get_json()
        assert response.get_json()["error"]["field"] == field
    assert "expired at 2026-03-01T12:00:30" in cases[3][0].get_json()["error"]["message"]
    assert "may only beat for 'billing'" in cases[0][0].get_json()["error"]["message"]
    assert count() == before
