"""The served OpenAPI document is a valid OpenAPI 3.1 document, and /api/docs shows it to people."""

from __future__ import annotations

import re

from openapi_spec_validator import validate


def test_the_served_document_is_valid_openapi_3_1(app):
    response = app.test_client().get("/api/v1/openapi.json")  # no token: the document is public
    assert response.status_code == 200
    validate(response.get_json())


def test_a_field_that_may_only_be_left_out_has_no_null_default(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    patch = document["components"]["schemas"]["JobPatch"]["properties"]
    assert "default" not in patch["enabled"]
    assert patch["timeout_s"] == {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 3600,
        "title": "Timeout S",
    }


def test_the_api_page_lists_every_operation_without_a_token_or_a_script(app):
    client = app.test_client()
    document = client.get("/api/v1/openapi.json").get_json()
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert f'id="op-{operation["operationId"]}"' in html, (method, path)
    assert 'id="schema-JobPatch"' in html
    assert "<script" not in html
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert not re.search(r"(src|href)=\"https?://", html)
