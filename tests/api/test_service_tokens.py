"""Service tokens one by one: the create answer's id, the listing (never a token or digest), and
revoking a single token so its next heartbeat is refused as an unknown token's, the others unaffected."""

from __future__ import annotations

import pytest

from tests.api.conftest import AUTH

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
def client(app):
    return app.test_client()


def beat(client, name, token):
    return client.post(f"/api/v1/heartbeats/{name}", headers={"Authorization": f"Bearer {token}"})


def create(client, name, label=None):
    body = {"label": label} if label else None
    response = client.post(f"/api/v1/services/{name}/tokens", headers=AUTH, json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def services(client):
    for name in ("billing", "search"):
        assert (
            client.put(f"/api/v1/services/{name}", headers=AUTH, json={"interval_s": 60}).status_code == 201
        )


def test_a_token_is_created_with_its_id_listed_without_secrets_and_revoked_alone(client, services, clock):
    first = create(client, "billing", "cron on host-1")
    clock.advance(5)
    second = create(client, "billing", "cron on host-2")
    assert set(first) == {"id", "service", "token", "label"}
    assert isinstance(first["id"], int) and first["id"] != second["id"]

    listing = client.get("/api/v1/services/billing/tokens", headers=AUTH)
    assert listing.status_code == 200
    assert listing.get_json() == {
        "tokens": [
            {"id": first["id"], "label": "cron on host-1", "created_at": "2026-03-01T12:00:00Z"},
            {"id": second["id"], "label": "cron on host-2", "created_at": "2026-03-01T12:00:05Z"},
        ]
    }
    text = listing.get_data(as_text=True)
    assert first["token"] not in text and second["token"] not in text and "digest" not in text
    assert beat(client, "billing", first["token"]).status_code == 200

    revoked = client.delete(f"/api/v1/services/billing/tokens/{first['id']}", headers=AUTH)
    assert revoked.status_code == 204

    unknown = beat(client, "billing", "mcs_" + "x" * 43).get_json()
    after = beat(client, "billing", first["token"])
    assert after.status_code == 401
    assert after.get_json() == unknown  # refused exactly as a token never issued
    assert beat(client, "billing", second["token"]).status_code == 200  # the other still works
    assert [
        t["id"] for t in client.get("/api/v1/services/billing/tokens", headers=AUTH).get_json()["tokens"]
    ] == [second["id"]]
    again = client.delete(f"/api/v1/services/billing/tokens/{first['id']}", headers=AUTH)
    assert again.status_code == 404 and again.get_json()["error"]["field"] == "token_id"


def test_a_token_of_another_service_or_an_unknown_id_is_404_and_nothing_is_revoked(client, services):
    billing = create(client, "billing")
    search = create(client, "search")

    for path in (
        f"/api/v1/services/billing/tokens/{search['id']}",  # search's token, through billing
        f"/api/v1/services/billing/tokens/{search['id'] + 1000}",
        f"/api/v1/services/billing/tokens/{2**63}",  # past any id
    ):
        response = client.delete(path, headers=AUTH)
        assert response.status_code == 404, path
        assert response.get_json()["error"]["code"] == "not_found"
    for name in ("ghost",):
        assert (
            client.delete(f"/api/v1/services/{name}/tokens/{billing['id']}", headers=AUTH).status_code == 404
        )
        assert client.get(f"/api/v1/services/{name}/tokens", headers=AUTH).status_code == 404

    assert beat(client, "billing", billing["token"]).status_code == 200
    assert beat(client, "search", search["token"]).status_code == 200
    assert client.get("/api/v1/services/search/tokens", headers=AUTH).get_json()["tokens"][0]["label"] is None


def test_listing_and_revoking_need_the_admin_token(client, services):
    token = create(client, "billing")
    service_auth = {"Authorization": f"Bearer {token['token']}"}

    # A known token without the admin scope: 403 (an unknown one would be 401).
    assert client.get("/api/v1/services/billing/tokens", headers=service_auth).status_code == 403
    assert (
        client.delete(f"/api/v1/services/billing/tokens/{token['id']}", headers=service_auth).status_code
        == 403
    )
    assert client.get("/api/v1/services/billing/tokens").status_code == 401
    assert beat(client, "billing", token["token"]).status_code == 200  # a service cannot revoke itself


def test_the_routes_are_in_the_openapi_document(client):
    document = client.get("/api/v1/openapi.json").get_json()
    tokens = document["paths"]["/api/v1/services/{name}/tokens"]
    assert set(tokens) >= {"get", "post"}
    assert "delete" in document["paths"]["/api/v1/services/{name}/tokens/{token_id}"]
    created = tokens["post"]["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    assert "id" in document["components"]["schemas"][created.rsplit("/", 1)[1]]["required"]
