"""Security boundaries the other API tests leave unpinned.

An endpoint missing from scopes.RULES must not be served to whatever token is valid: the API's
before_request refuses it (403, field ``scope``), even to the admin token, and asks an anonymous
caller for a token first (401). tests/api/test_route_scopes.py keeps every shipped route declared;
this pins what happens if one slips through anyway.
"""

from __future__ import annotations

from tests.api.conftest import AUTH


def test_a_route_nobody_declared_is_refused_even_to_the_admin_token(app):
    served = []

    def undeclared() -> str:
        served.append(True)
        return "should never be served"

    app.add_url_rule("/api/v1/zz-undeclared", "zz_undeclared", undeclared)
    client = app.test_client()

    anonymous = client.get("/api/v1/zz-undeclared")
    assert anonymous.status_code == 401

    refused = client.get("/api/v1/zz-undeclared", headers=AUTH)
    assert refused.status_code == 403, refused.get_data(as_text=True)
    assert refused.get_json()["error"]["field"] == "scope"
    assert "declares no scope" in refused.get_json()["error"]["message"]
    assert served == []


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_revoked_token_cannot_beat_by_the_heartbeat_fast_path(app):
    """The heartbeat checks its API token inside its own statement (db/api_tokens.heartbeat_token,
    and heartbeat_token_cte on PostgreSQL), not through authenticate(): a revoked token must be
    refused there too, by header and by query string, and write nothing."""
    client = app.test_client()
    assert client.put("/api/v1/services/billing", headers=AUTH, json={"interval_s": 60}).status_code in (
        200,
        201,
    )
    made = client.post(
        "/api/v1/tokens",
        headers=AUTH,
        json={"name": "billing-beats", "scopes": ["heartbeats:write"], "service": "billing"},
    ).get_json()
    token = made["token"]

    def count() -> int:
        return client.get("/api/v1/services/billing", headers=AUTH).get_json()["heartbeat_count"]

    assert client.post("/api/v1/heartbeats/billing", headers=_bearer(token)).status_code == 200
    before = count()
    assert client.delete(f"/api/v1/tokens/{made['id']}", headers=AUTH).status_code == 204

    by_header = client.post("/api/v1/heartbeats/billing", headers=_bearer(token))
    by_query = client.get("/api/v1/heartbeats/billing", query_string={"token": token})
    assert by_header.status_code == 401, by_header.get_json()
    assert by_query.status_code == 401, by_query.get_json()
    assert count() == before


def test_the_access_log_line_never_carries_a_query_string(tmp_path):
    """Heartbeat tokens may travel as ?token=: the locked access-log format (cli/web.py) logs the path
    alone, whatever gunicorn.conf.py or GUNICORN_CMD_ARGS ask for."""
    from tests.cli.test_web_gunicorn_config import _printed_config

    (tmp_path / "gunicorn.conf.py").write_text("access_log_format = '%(r)s %(q)s'\n")
    settings = _printed_config(tmp_path, GUNICORN_CMD_ARGS="--print-config --access-logformat=%(q)s")
    log_format = settings["access_log_format"]
    assert "%(U)s" in log_format
    for leaks_the_query in ("%(q)s", "%(r)s", "raw_uri", "query_string", "request_uri"):
        assert leaks_the_query not in log_format.lower(), log_format
