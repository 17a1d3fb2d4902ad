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
