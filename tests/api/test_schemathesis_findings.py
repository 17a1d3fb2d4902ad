"""What tests/api/test_schemathesis.py found, pinned down one by one on both database backends."""

from __future__ import annotations

import pytest

from tests.factories import job_body

TOO_BIG_ID = 2**63  # one past the largest id a BIGINT holds


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("delete", f"/api/v1/channels/{TOO_BIG_ID}"),
        ("post", f"/api/v1/channels/{TOO_BIG_ID}/test"),
        ("post", f"/api/v1/alerts/{TOO_BIG_ID}/acknowledge"),
        ("get", f"/api/v1/runs/{TOO_BIG_ID}"),
    ],
)
def test_an_id_past_the_bigint_range_is_404_for_every_method_not_405(api, method, path):
    response = getattr(api, method)(path)
    assert response.status_code == 404, response.get_json()
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/v1/runs", "/api/v1/alerts", "/api/v1/alerts/summary"])
def test_an_instant_in_the_query_is_iso_8601_not_unix_seconds(api, path):
    response = api.get(path, query_string={"since": "0.5"})
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "since"
    assert api.get(path, query_string={"since": "2026-03-01T12:00:00Z"}).status_code == 200


def test_a_null_name_in_a_job_body_stands_for_the_path(api):
    created = api.put("/api/v1/jobs/nightly-report", json=job_body(name=None))
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["name"] == "nightly-report"
    patched = api.patch("/api/v1/jobs/nightly-report", json={"name": None, "timeout_s": 10})
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["timeout_s"] == 10
    renamed = api.patch("/api/v1/jobs/nightly-report", json={"name": "other"})
    assert renamed.status_code == 422 and renamed.get_json()["error"]["field"] == "name"


def test_a_json_heartbeat_message_with_nul_or_a_lone_surrogate_is_kept_not_refused(api):
    raw = b'{"message": "out\\u0000put \\ud800 end"}'
    response = api.post("/api/v1/heartbeats/billing", data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.get_json()
    [beat] = api.get("/api/v1/services/billing").get_json()["heartbeats"]
    assert beat["message"] == "out\ufffdput \ufffd end"
    # Everywhere else a NUL is still refused: PostgreSQL cannot store it.
    refused = api.post(
        "/api/v1/heartbeats/billing",
        data=b'{"status": "ok\\u0000"}',
        headers={"Content-Type": "application/json"},
    )
    assert refused.status_code == 422 and "NUL" in refused.get_json()["error"]["message"]


def test_the_document_says_what_path_names_hold_and_that_authenticated_calls_may_be_429(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation["parameters"]:
                if parameter["in"] == "path" and parameter["schema"]["type"] == "string":
                    assert "pattern" in parameter["schema"], (method, path, parameter["name"])
            # A badge's key is a credential carried in its path (no security scheme can say so): an
            # unknown one spends the failed-authentication budget, so those public routes may be 429.
            credential = operation.get("security") != [] or path.startswith("/badge/")
            assert ("429" in operation["responses"]) == credential, (method, path)
    job = document["paths"]["/api/v1/jobs/{name}"]["get"]["parameters"][0]
    assert job["schema"] == {"type": "string", "pattern": r"^[a-z0-9][a-z0-9._-]{0,127}$"}
    patch = document["components"]["schemas"]["JobPatch"]["properties"]
    assert patch["service"].get("type") == "string" and "anyOf" not in patch["service"]
    assert {"type": "null"} in patch["expected_runtime_s"]["anyOf"]
