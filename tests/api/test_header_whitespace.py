"""Target header values that begin or end with whitespace are refused at registration (422 naming the
header, never repeating its value) and nothing is stored; a job stored before the rule still reads."""

from __future__ import annotations

from typing import Any

import pytest

from mission_control.jobs.registry import JobRegistry
from mission_control.jobs.spec import JobSpec
from tests.factories import job_body

SECRET = "sk_live_SECRET123"


def refused_naming(response: Any, field: str) -> None:
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert error["field"] == field
    assert "whitespace" in error["message"]
    assert "SECRET" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "value",
    [f" {SECRET}", f"{SECRET} ", f"\t{SECRET}", f"{SECRET}\t", f"Bearer {SECRET}\u00a0", " ", "\t"],
    ids=["leading-space", "trailing-space", "leading-tab", "trailing-tab", "trailing-nbsp", "space", "tab"],
)
def test_put_and_post_refuse_a_header_value_with_surrounding_whitespace(api, value):
    body = job_body(target={"url": "https://billing.internal/x", "headers": {"X-Api-Key": value}})

    refused_naming(api.put("/api/v1/jobs/nightly-report", json=body), "target.headers.X-Api-Key")
    refused_naming(api.post("/api/v1/jobs", json=body), "target.headers.X-Api-Key")

    assert api.get("/api/v1/jobs/nightly-report").status_code == 404
    assert api.get("/api/v1/jobs").get_json()["jobs"] == []


def test_patch_refuses_it_and_leaves_the_stored_job_as_it_was(api):
    assert api.put("/api/v1/jobs/nightly-report", json=job_body()).status_code == 201
    before = api.get("/api/v1/jobs/nightly-report").get_json()

    patched = api.patch(
        "/api/v1/jobs/nightly-report", json={"target": {"headers": {"Authorization": f"Bearer {SECRET} "}}}
    )

    refused_naming(patched, "target.headers.Authorization")
    assert api.get("/api/v1/jobs/nightly-report").get_json() == before


@pytest.mark.parametrize("value", ["", "a b", "Bearer x\ty"], ids=["empty", "inner-space", "inner-tab"])
def test_inner_whitespace_and_empty_values_stay_allowed(api, value):
    # X-Trace: a header whose value is answered (X-Api-Key's would be "****", see test_secret_headers).
    body = job_body(target={"url": "https://billing.internal/x", "headers": {"X-Trace": value}})
    answer = api.put("/api/v1/jobs/nightly-report", json=body)
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["target"]["headers"] == {"X-Trace": value}


def test_a_job_stored_before_the_rule_is_still_read_and_listed(api, engine, clock):
    legacy = job_body(target={"url": "https://billing.internal/x", "headers": {"X-Trace": "k "}})
    JobRegistry(engine, clock).put(JobSpec.model_validate(legacy, context={"stored": True}))

    assert api.get("/api/v1/jobs/nightly-report").get_json()["target"]["headers"] == {"X-Trace": "k "}
    assert [job["name"] for job in api.get("/api/v1/jobs").get_json()["jobs"]] == ["nightly-report"]


def test_a_mission_http_step_gets_the_same_rule(api):
    # Mission definitions check their http steps' headers through the job's TargetSpec.
    body = {
        "steps": [{"name": "a", "kind": "http", "url": "http://x/", "headers": {"X-Api-Key": f"{SECRET} "}}]
    }
    response = api.put("/api/v1/mission-definitions/approval", json=body)
    assert response.status_code == 422, response.get_json()
    assert "whitespace" in response.get_json()["error"]["message"]
    assert "SECRET" not in response.get_data(as_text=True)
    assert api.get("/api/v1/mission-definitions/approval").status_code == 404


def test_a_mission_definition_stored_before_the_rule_still_starts(api, engine, clock):
    from mission_control.db.tables import mission_definitions

    body = {
        "name": "legacy",
        "steps": [{"name": "a", "kind": "http", "url": "http://127.0.0.1:9/", "headers": {"X-Key": "k "}}],
    }
    with engine.begin() as conn:
        conn.execute(
            mission_definitions.insert().values(
                name="legacy", version=1, body=body, digest="0" * 64, created_at=clock.now()
            )
        )
    started = api.post("/api/v1/missions", json={"definition": "legacy", "input": {}, "id": "m-legacy"})
    assert started.status_code == 201, started.get_json()
