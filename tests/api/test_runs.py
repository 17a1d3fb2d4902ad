"""Triggering jobs and reading run history over the API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mission_control.base.config import Settings
from mission_control.execution.executor import ExecutionContext, execute_run
from mission_control.outbound.sender import make_session
from mission_control.scheduling.claiming import claim_due_slots
from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET, T0
from tests.factories import job_body


@pytest.fixture
def execute(engine, clock):
    session = make_session()
    ctx = ExecutionContext(
        engine=engine,
        clock=clock,
        settings=Settings(admin_token=ADMIN_TOKEN, signing_secret=SIGNING_SECRET),
        session=session,
    )
    yield lambda run_id: execute_run(run_id, ctx)
    session.close()


def test_trigger_records_a_queued_run_enqueues_it_and_answers_202(api, enqueued, target):
    api.put("/api/v1/jobs/report", json=job_body("report", target={"url": f"{target.url}/ok"}))
    response = api.post("/api/v1/jobs/report/trigger")
    assert response.status_code == 202
    run = response.get_json()
    assert (run["job"], run["trigger"], run["status"], run["scheduled_for"]) == (
        "report",
        "manual",
        "queued",
        "2026-03-01T12:00:00Z",
    )
    assert enqueued == [run["id"]]


def test_trigger_refuses_an_overlap_the_job_forbids(api, enqueued, target):
    api.put("/api/v1/jobs/report", json=job_body("report", concurrency="forbid"))
    assert api.post("/api/v1/jobs/report/trigger").status_code == 202
    conflict = api.post("/api/v1/jobs/report/trigger")
    assert conflict.status_code == 409
    assert conflict.get_json()["error"]["code"] == "conflict"
    assert len(enqueued) == 1


def test_trigger_of_an_unknown_job_is_404(api):
    assert api.post("/api/v1/jobs/ghost/trigger").status_code == 404


def test_a_run_is_read_back_with_its_attempts_and_shown_as_the_jobs_last_run(api, target, execute):
    api.put(
        "/api/v1/jobs/report",
        json=job_body(
            "report", target={"url": f"{target.url}/sequence/r/500,200"}, retry={"max_attempts": 1}
        ),
    )
    run_id = api.post("/api/v1/jobs/report/trigger").get_json()["id"]
    assert execute(run_id) == "failed"

    run = api.get(f"/api/v1/runs/{run_id}").get_json()
    assert (run["status"], run["reason"], run["http_status"], run["attempt_count"]) == (
        "failed",
        "retries_exhausted",
        500,
        1,
    )
    [attempt] = run["attempts"]
    assert (attempt["number"], attempt["status"], attempt["http_status"]) == (1, "failed", 500)
    assert '"status": 500' in attempt["response_excerpt"]
    assert attempt["response_headers"]["content-type"] == "application/json"

    job = api.get("/api/v1/jobs/report").get_json()
    assert job["last_run"]["id"] == run_id
    assert job["last_run"]["status"] == "failed"


def test_runs_are_listed_newest_first_filtered_and_paged(api, engine, clock):
    api.put("/api/v1/jobs/a", json=job_body("a", schedule={"every_s": 60}, concurrency="allow"))
    api.put("/api/v1/jobs/b", json=job_body("b", schedule={"every_s": 60}, concurrency="allow"))
    for minute in (1, 2, 3):
        claim_due_slots(engine, T0 + timedelta(minutes=minute), batch=100, grace_s=15)

    runs = api.get("/api/v1/runs").get_json()["runs"]
    assert len(runs) == 6
    assert [run["id"] for run in runs] == sorted((run["id"] for run in runs), reverse=True)

    only_a = api.get("/api/v1/runs?job=a").get_json()["runs"]
    assert {run["job"] for run in only_a} == {"a"} and len(only_a) == 3

    window = api.get(
        "/api/v1/runs", query_string={"since": "2026-03-01T12:02:00Z", "until": "2026-03-01T12:03:00Z"}
    )
    assert {run["scheduled_for"] for run in window.get_json()["runs"]} == {"2026-03-01T12:02:00Z"}

    first = api.get("/api/v1/runs?limit=4").get_json()
    second = api.get(f"/api/v1/runs?limit=4&cursor={first['next_cursor']}").get_json()
    assert len(first["runs"]) == 4 and len(second["runs"]) == 2 and second["next_cursor"] is None
    assert not {r["id"] for r in first["runs"]} & {r["id"] for r in second["runs"]}

    assert {run["status"] for run in api.get("/api/v1/runs?status=queued").get_json()["runs"]} == {"queued"}


def test_bad_run_queries_are_422_and_unknown_runs_404(api):
    for query in ("status=bogus", "since=2026-03-01T12:00:00", "cursor=abc", "limit=5000", "job=Bad%20Name"):
        response = api.get(f"/api/v1/runs?{query}")
        assert response.status_code == 422, query
    assert api.get("/api/v1/runs/99999999999999999999999").status_code == 404
    missing = api.get("/api/v1/runs/999999")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["field"] == "run_id"
