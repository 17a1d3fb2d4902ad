"""Migration 0007 on a database that has service tokens: each becomes a heartbeats:write token of its
service with the same digest, so the secret the service holds still sends its heartbeats, and only
its heartbeats; downgrading gives the service tokens back."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from mission_control.base.clock import FrozenClock
from mission_control.base.config import Settings
from mission_control.db import migrate
from mission_control.db.engine import make_engine
from mission_control.web.api import create_app
from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET, T0

OLD_SECRET = "mcs_an-old-service-token-0123456789abcdefghijk"
OTHER_SECRET = "mcs_another-old-token-0123456789abcdefghijklmn"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_at_0006(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'at-0006.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres").create("tokens0007")
    )
    engine = make_engine(url)
    migrate.upgrade(engine, "0006")
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with engine.begin() as conn:
        for service_id, name in ((1, "billing"), (2, "search")):
            conn.execute(
                text(
                    "INSERT INTO services (id, name, interval_s, grace_s, state, state_changed_at, "
                    "created_at, updated_at, heartbeat_count) "
                    "VALUES (:id, :name, 60, 0, 'new', :t, :t, :t, 0)"
                ),
                {"id": service_id, "name": name, "t": created},
            )
        for token_id, service_id, secret, label in ((7, 1, OLD_SECRET, "cron"), (9, 2, OTHER_SECRET, None)):
            conn.execute(
                text(
                    "INSERT INTO service_tokens (id, service_id, digest, label, created_at) "
                    "VALUES (:id, :service_id, :digest, :label, :t)"
                ),
                {
                    "id": token_id,
                    "service_id": service_id,
                    "digest": hashlib.sha256(secret.encode()).hexdigest(),
                    "label": label,
                    "t": created,
                },
            )
    yield engine
    engine.dispose()


def _app(engine):
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        admin_token=ADMIN_TOKEN,
        signing_secret=SIGNING_SECRET,
        broker_url="memory://",
    )
    app = create_app(settings, clock=FrozenClock(T0), engine=engine, enqueue=list, notify=list, deliver=list)
    return app.test_client()


def test_upgrading_keeps_every_service_token_working_and_only_for_heartbeats(engine_at_0006):
    engine = engine_at_0006
    migrate.upgrade(engine)
    assert "service_tokens" not in inspect(engine).get_table_names()
    client = _app(engine)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    listed = client.get("/api/v1/tokens", headers=admin).get_json()["tokens"]
    assert [(t["id"], t["scopes"], t["service"]) for t in listed] == [
        (7, ["heartbeats:write"], "billing"),
        (9, ["heartbeats:write"], "search"),
    ]
    old = {"Authorization": f"Bearer {OLD_SECRET}"}
    assert client.post("/api/v1/heartbeats/billing", headers=old).status_code == 200
    assert client.get("/api/v1/heartbeats/billing", query_string={"token": OLD_SECRET}).status_code == 200
    assert client.post("/api/v1/heartbeats/search", headers=old).status_code == 403
    assert client.get("/api/v1/jobs", headers=old).status_code == 403
    # The service-token API still sees them, by their old ids and labels.
    service_tokens = client.get("/api/v1/services/billing/tokens", headers=admin).get_json()["tokens"]
    assert [(t["id"], t["label"]) for t in service_tokens] == [(7, "cron")]
    # A new token does not reuse a copied id (PostgreSQL's sequence was moved past them).
    created = client.post("/api/v1/services/billing/tokens", headers=admin, json={}).get_json()
    assert created["id"] > 9


def test_downgrading_gives_the_service_tokens_back(engine_at_0006):
    engine = engine_at_0006
    migrate.upgrade(engine)
    migrate.downgrade(engine, "0006")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, service_id, digest FROM service_tokens ORDER BY id")).all()
    assert [(r.id, r.service_id) for r in rows] == [(7, 1), (9, 2)]
    assert rows[0].digest == hashlib.sha256(OLD_SECRET.encode()).hexdigest()
    assert "api_tokens" not in inspect(engine).get_table_names()
