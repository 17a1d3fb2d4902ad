"""``/api/v1/tokens``: created with the secret shown once and only a digest stored, listed without
secrets, revoked with effect on the next request, refused once expired."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text

from tests.api.conftest import AUTH

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
def client(app):
    return app.test_client()


def create(client, name="billing-deployer", **fields):
    body = {"name": name, "scopes": ["jobs:write", "runs:read"], "service": "billing", **fields}
    response = client.post("/api/v1/tokens", headers=AUTH, json=body)
    assert response.status_code == 201, response.get_json()
    return response


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_a_token_is_shown_once_and_stored_as_its_digest_only(client, engine):
    response = create(client)
    assert response.headers["Cache-Control"] == "no-store"
    created = response.get_json()
    assert {k: created[k] for k in ("name", "scopes", "service", "expires_at", "created_by")} == {
        "name": "billing-deployer",
        "scopes": ["jobs:write", "runs:read"],
        "service": "billing",
        "expires_at": None,
        "created_by": "MC_ADMIN_TOKEN",
    }
    secret = created["token"]
    listed = client.get("/api/v1/tokens", headers=AUTH)
    assert secret not in listed.get_data(as_text=True)
    [row] = listed.get_json()["tokens"]
    assert row["id"] == created["id"] and "token" not in row and row["last_used_at"] is None
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT digest FROM api_tokens")).scalar_one()
    assert stored == hashlib.sha256(secret.encode()).hexdigest()

    assert client.get("/api/v1/jobs", headers=bearer(secret)).status_code == 200
    used = client.get("/api/v1/tokens", headers=AUTH).get_json()["tokens"][0]
    assert used["last_used_at"] == "2026-03-01T12:00:00Z"


def test_names_are_unique_and_bad_requests_change_nothing(client):
    create(client)
    again = client.post("/api/v1/tokens", headers=AUTH, json={"name": "billing-deployer", "scopes": ["read"]})
    assert again.status_code == 409
    for body in (
        {"name": "x", "scopes": ["nope"]},
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["read"], "expires_at": "2026-03-01T11:00:00"},  # no time zone
        {"name": "Bad Name", "scopes": ["read"]},
    ):
        assert client.post("/api/v1/tokens", headers=AUTH, json=body).status_code == 422, body
    assert len(client.get("/api/v1/tokens", headers=AUTH).get_json()["tokens"]) == 1


def test_revoking_refuses_the_very_next_request(client):
    created = create(client).get_json()
    assert client.get("/api/v1/jobs", headers=bearer(created["token"])).status_code == 200
    assert client.delete(f"/api/v1/tokens/{created['id']}", headers=AUTH).status_code == 204
    assert client.get("/api/v1/jobs", headers=bearer(created["token"])).status_code == 401
    assert client.delete(f"/api/v1/tokens/{created['id']}", headers=AUTH).status_code == 404
    assert client.get("/api/v1/tokens", headers=AUTH).get_json()["tokens"] == []
    [revoked] = client.get("/api/v1/tokens?all=true", headers=AUTH).get_json()["tokens"]
    assert revoked["revoked_at"] == "2026-03-01T12:00:00Z"


def test_an_expired_token_is_refused_saying_so(client, clock):
    created = create(client, expires_at="2026-03-01T13:00:00Z").get_json()
    assert client.get("/api/v1/jobs", headers=bearer(created["token"])).status_code == 200
    clock.advance(3600)
    refused = client.get("/api/v1/jobs", headers=bearer(created["token"]))
    assert refused.status_code == 401 and "expired" in refused.get_json()["error"]["message"]


def test_several_admin_tokens_coexist_so_rotation_has_no_downtime(client):
    first = create(client, "admin-1", scopes=["admin"], service=None).get_json()
    second = client.post(
        "/api/v1/tokens", headers=bearer(first["token"]), json={"name": "admin-2", "scopes": ["admin"]}
    ).get_json()
    assert second["created_by"] == "admin-1"
    assert client.delete(f"/api/v1/tokens/{first['id']}", headers=bearer(second["token"])).status_code == 204
    assert client.get("/api/v1/tokens", headers=bearer(first["token"])).status_code == 401
    assert client.get("/api/v1/tokens", headers=bearer(second["token"])).status_code == 200


def test_only_admin_manages_tokens_and_unknown_tokens_spend_the_failure_budget(client):
    reader = create(client, "reader", scopes=["read"], service=None).get_json()
    assert client.get("/api/v1/tokens", headers=bearer(reader["token"])).status_code == 403
    denied = client.post(
        "/api/v1/tokens", headers=bearer(reader["token"]), json={"name": "y", "scopes": ["admin"]}
    )
    assert denied.status_code == 403
    statuses = [client.get("/api/v1/jobs", headers=bearer("mct_guess")).status_code for _ in range(40)]
    assert statuses[0] == 401 and statuses[-1] == 429
