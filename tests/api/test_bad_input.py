"""Every kind of bad input answers 4xx with {"error": {code, message, field}} and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from mission_control.db.tables import jobs
from tests.api.conftest import AUTH
from tests.factories import job_body

URL = "/api/v1/jobs/nightly-report"


@pytest.fixture
def registered(api, engine):
    """A registered job, and a snapshot function to prove the registry did not change."""
    assert api.put(URL, json=job_body()).status_code == 201

    def snapshot() -> list[dict[str, Any]]:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(select(jobs).order_by(jobs.c.id))]

    return snapshot


def assert_error(response, status: int, code: str, field: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["field"] == field
    assert isinstance(error["message"], str) and error["message"]
    if field:
        assert field.split(".")[-1] in error["message"]
    return error


def with_changes(**changes: Any) -> dict[str, Any]:
    body = job_body()
    for dotted, value in changes.items():
        node = body
        *parents, leaf = dotted.split("__")
        for parent in parents:
            node = node[parent]
        if value is DELETE:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return body


DELETE = object()
BIG = "x" * (64 * 1024)

BAD_BODIES = {
    "unknown top-level field": (with_changes(colour="blue"), "unknown_field", "colour"),
    "unknown nested field": (with_changes(target__verb="POST"), "unknown_field", "target.verb"),
    "unknown retry field": (with_changes(retry__tries=3), "unknown_field", "retry.tries"),
    "read-only field": (with_changes(next_run_at="2030-01-01T00:00:00Z"), "read_only_field", "next_run_at"),
    "missing service": (with_changes(service=DELETE), "validation_error", "service"),
    "bad service name": (with_changes(service="Billing Team"), "validation_error", "service"),
    "invalid cron": (with_changes(schedule={"cron": "61 * * * *"}), "validation_error", "schedule.cron"),
    "six-field cron": (with_changes(schedule={"cron": "0 0 * * * *"}), "validation_error", "schedule.cron"),
    "reboot alias": (with_changes(schedule={"cron": "@reboot"}), "validation_error", "schedule.cron"),
    "unknown timezone": (
        with_changes(schedule={"cron": "* * * * *", "timezone": "Mars/Olympus_Mons"}),
        "validation_error",
        "schedule.timezone",
    ),
    "no schedule kind": (with_changes(schedule={"timezone": "UTC"}), "validation_error", "schedule"),
    "two schedule kinds": (
        with_changes(schedule={"cron": "* * * * *", "every_s": 5}),
        "validation_error",
        "schedule",
    ),
    "every_s zero": (with_changes(schedule={"every_s": 0}), "validation_error", "schedule.every_s"),
    "every_s negative": (with_changes(schedule={"every_s": -5}), "validation_error", "schedule.every_s"),
    "every_s as string": (with_changes(schedule={"every_s": "30"}), "validation_error", "schedule.every_s"),
    "at in the past": (
        with_changes(schedule={"at": "2020-01-01T00:00:00Z"}),
        "validation_error",
        "schedule.at",
    ),
    "at not a date": (with_changes(schedule={"at": "tomorrow"}), "validation_error", "schedule.at"),
    "ftp url": (with_changes(target__url="ftp://billing.internal/x"), "validation_error", "target.url"),
    "javascript url": (with_changes(target__url="javascript:alert(1)"), "validation_error", "target.url"),
    "url without host": (with_changes(target__url="http:///path"), "validation_error", "target.url"),
    "url with credentials": (
        with_changes(target__url="https://user:pw@billing.internal/"),
        "validation_error",
        "target.url",
    ),
    "url with a bad port": (with_changes(target__url="http://host:99999/"), "validation_error", "target.url"),
    "unknown method": (with_changes(target__method="TRACE"), "validation_error", "target.method"),
    "timeout zero": (with_changes(timeout_s=0), "validation_error", "timeout_s"),
    "timeout too long": (with_changes(timeout_s=3601), "validation_error", "timeout_s"),
    "timeout as string": (with_changes(timeout_s="30"), "validation_error", "timeout_s"),
    "expected runtime negative": (
        with_changes(expected_runtime_s=-1),
        "validation_error",
        "expected_runtime_s",
    ),
    "zero attempts": (with_changes(retry__max_attempts=0), "validation_error", "retry.max_attempts"),
    "too many attempts": (with_changes(retry__max_attempts=21), "validation_error", "retry.max_attempts"),
    "cap below base": (
        with_changes(retry__backoff_s=30, retry__backoff_max_s=10),
        "validation_error",
        "retry.backoff_max_s",
    ),
    "jitter above one": (with_changes(retry__jitter=2), "validation_error", "retry.jitter"),
    "hop-by-hop header": (
        with_changes(target__headers={"Connection": "close"}),
        "validation_error",
        "target.headers",
    ),
    "transfer-encoding header": (
        with_changes(target__headers={"Transfer-Encoding": "chunked"}),
        "validation_error",
        "target.headers",
    ),
    "host header": (with_changes(target__headers={"host": "evil"}), "validation_error", "target.headers"),
    "reserved header": (
        with_changes(target__headers={"X-Mission-Control-Run": "1"}),
        "validation_error",
        "target.headers",
    ),
    "header value not a string": (
        with_changes(target__headers={"X-Count": 1}),
        "validation_error",
        "target.headers.X-Count",
    ),
    "header with a line break": (
        with_changes(target__headers={"X-A": "1\r\nX-B: 2"}),
        "validation_error",
        "target.headers",
    ),
    "header name not a token": (
        with_changes(target__headers={"X A": "1"}),
        "validation_error",
        "target.headers",
    ),
    "body over the limit": (with_changes(target__body={"blob": BIG}), "validation_error", "target.body"),
    "concurrency unknown": (with_changes(concurrency="sometimes"), "validation_error", "concurrency"),
    "enabled as string": (with_changes(enabled="yes"), "validation_error", "enabled"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES), ids=list(BAD_BODIES))
def test_bad_job_bodies_are_refused_and_change_nothing(api, registered, case):
    body, code, field = BAD_BODIES[case]
    before = registered()
    assert_error(api.put(URL, json=body), 422, code, field)
    assert_error(api.post("/api/v1/jobs", json={**body, "name": "another"}), 422, code, field)
    assert registered() == before


@pytest.mark.parametrize(
    "name",
    ["Nightly", "-leading-dash", ".hidden", "under_score_ok_but_UPPER", "a" * 129, "sp ace", "ümlaut"],
)
def test_names_outside_the_pattern_are_refused(api, registered, name):
    before = registered()
    assert_error(api.post("/api/v1/jobs", json=job_body(name)), 422, "validation_error", "name")
    path_name = name.replace(" ", "%20")
    assert_error(api.put(f"/api/v1/jobs/{path_name}", json=job_body(name)), 422, "validation_error", "name")
    assert registered() == before


def test_a_body_naming_another_job_than_the_path_is_refused(api, registered):
    assert_error(
        api.put("/api/v1/jobs/other", json=job_body("nightly-report")), 422, "validation_error", "name"
    )


def test_malformed_json_is_a_400(api, registered):
    before = registered()
    for raw in [b"{", b'{"name": }', b"\xff\xfe{}", b'{"a": NaN}', b'{"a": 1, "a": 2}', b"[" * 100_000]:
        response = api.put(URL, data=raw, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, raw[:20]
        assert response.get_json()["error"]["code"] == "malformed_json"
    assert registered() == before


def test_a_json_value_that_is_not_an_object_is_a_422(api, registered):
    assert_error(
        api.put(URL, data=b"[1, 2]", headers={"Content-Type": "application/json"}),
        422,
        "validation_error",
        None,
    )


def test_wrong_content_type_is_a_415(api, registered):
    before = registered()
    response = api.put(URL, data=json.dumps(job_body()), headers={"Content-Type": "text/plain"})
    assert_error(response, 415, "unsupported_media_type", "Content-Type")
    response = api.put(URL, data=json.dumps(job_body()))
    assert_error(response, 415, "unsupported_media_type", "Content-Type")
    assert registered() == before


def test_a_10_mb_request_is_a_413(api, registered):
    before = registered()
    huge = json.dumps(with_changes(target__body={"blob": "x" * 10_000_000}))
    response = api.put(URL, data=huge, headers={"Content-Type": "application/json"})
    assert_error(response, 413, "payload_too_large", None)
    assert registered() == before


def test_unknown_jobs_are_404_everywhere(api):
    for method, path in [
        ("get", "/api/v1/jobs/ghost"),
        ("delete", "/api/v1/jobs/ghost"),
        ("post", "/api/v1/jobs/ghost/pause"),
        ("post", "/api/v1/jobs/ghost/resume"),
    ]:
        assert_error(getattr(api, method)(path), 404, "not_found", "name")
    assert_error(api.patch("/api/v1/jobs/ghost", json={"timeout_s": 3}), 404, "not_found", "name")


def test_unknown_routes_and_methods_answer_json(api):
    assert_error(api.get("/api/v1/nothing-here"), 404, "not_found", None)
    response = api.post("/api/v1/jobs/nightly-report")
    assert_error(response, 405, "method_not_allowed", None)
    assert "PUT" in response.headers["Allow"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Basic dGVzdA=="},
        {"Authorization": "Bearer"},
    ],
    ids=["none", "wrong", "basic", "empty"],
)
def test_every_api_call_needs_the_admin_token(app, headers):
    client = app.test_client()
    for method, path in [("get", "/api/v1/jobs"), ("put", URL), ("get", "/api/v1/no-such-route")]:
        response = getattr(client, method)(path, headers=headers, json=job_body())
        error = assert_error(response, 401, "unauthorized", "Authorization")
        assert "Bearer" in response.headers["WWW-Authenticate"]
        assert "test-admin-token" not in error["message"]


def test_query_parameters_are_validated(api):
    assert_error(api.get("/api/v1/jobs?enabled=maybe"), 422, "validation_error", "enabled")
    assert_error(api.get("/api/v1/jobs?limit=0"), 422, "validation_error", "limit")
    assert_error(api.get("/api/v1/jobs?servcie=billing"), 422, "unknown_field", "servcie")
    assert_error(api.get("/api/v1/jobs?limit=1&limit=2"), 422, "validation_error", "limit")


def test_patch_refuses_bad_values_and_renames(api, registered):
    before = registered()
    assert_error(api.patch(URL, json={"timeout_s": None}), 422, "validation_error", "timeout_s")
    assert_error(
        api.patch(URL, json={"schedule": {"every_s": 0}}), 422, "validation_error", "schedule.every_s"
    )
    assert_error(
        api.patch(URL, json={"target": {"url": "file:///etc/passwd"}}), 422, "validation_error", "target.url"
    )
    assert_error(api.patch(URL, json={"name": "renamed"}), 422, "validation_error", "name")
    assert_error(api.patch(URL, json={"bogus": 1}), 422, "unknown_field", "bogus")
    assert registered() == before


def test_the_admin_token_is_required_with_content(app):
    assert app.test_client().get("/api/v1/jobs", headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"service": "a\\u0000b"}', "service"),
        (b'{"target": {"body": {"k": "\\ud800"}}}', "target.body.k"),
        (b'{"target": {"body": {"\\u0000": 1}}}', "target.body.\x00"),
        (b'{"timeout_s": 1e400}', None),
        (b'{"target": {"body": ' + b"[" * 40 + b"]" * 40 + b"}}", None),
    ],
    ids=["nul", "lone-surrogate", "nul-key", "infinite-number", "deep-nesting"],
)
def test_json_no_database_can_store_is_refused(api, registered, raw, field):
    before = registered()
    response = api.patch(URL, data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422), response.get_data(as_text=True)
    if field is not None:
        assert response.get_json()["error"]["field"] == field
    assert registered() == before


@pytest.mark.parametrize("path", ["/api/v1/jobs/%00", "/api/v1/jobs/a%00b", "/api/v1/jobs/%ED%A0%80"])
def test_path_names_no_database_can_store_are_refused(api, registered, path):
    for method in ("get", "delete", "patch"):
        response = getattr(api, method)(path, json={"timeout_s": 3})
        assert response.status_code == 422, (method, path, response.get_data(as_text=True))
    assert api.get("/api/v1/jobs?cursor=%00").status_code == 422
