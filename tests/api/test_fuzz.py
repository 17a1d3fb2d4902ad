"""Random and hostile input never crashes a request or reaches the database unvalidated."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import job_body

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "name",
    "service",
    "target",
    "schedule",
    "timeout_s",
    "expected_runtime_s",
    "retry",
    "concurrency",
    "misfire",
    "enabled",
    "url",
    "cron",
    "every_s",
    "at",
    "timezone",
    "headers",
    "body",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_jobs_get_2xx_or_4xx_never_5xx(api, data):
    body = job_body()
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        section = data.draw(st.sampled_from(["top", "target", "schedule", "retry"]), label="section")
        node = body if section == "top" else body[section]
        if not isinstance(node, dict):
            continue
        node[data.draw(st.sampled_from(FIELDS), label="field")] = data.draw(JSON, label="value")
    response = api.put("/api/v1/jobs/fuzzed", json=body)
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert set(response.get_json()["error"]) >= {"code", "message", "field"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw=st.binary(max_size=300)
    | st.text(max_size=300).map(lambda text: text.encode("utf-8", "surrogatepass"))
)
def test_random_bytes_as_a_body_never_crash(api, raw):
    for method in ("put", "patch"):
        response = getattr(api, method)(
            "/api/v1/jobs/fuzzed", data=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code < 500, response.get_data(as_text=True)
        assert response.mimetype == "application/json"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    params=st.dictionaries(
        st.sampled_from(["service", "enabled", "limit", "cursor", "x"]), st.text(max_size=20)
    )
)
def test_random_query_strings_never_crash(api, params):
    response = api.get("/api/v1/jobs", query_string=params)
    assert response.status_code in (200, 422), response.get_data(as_text=True)
    json.loads(response.get_data())
