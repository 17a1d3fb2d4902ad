"""The jobs API through Flask's test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.conftest import T0
from tests.factories import job_body


def test_put_registers_a_job_and_answers_201_then_200(api):
    created = api.put("/api/v1/jobs/nightly-report", json=job_body())
    assert created.status_code == 201
    job = created.get_json()
    assert job["name"] == "nightly-report"
    assert job["target"]["method"] == "POST"
    assert job["schedule"] == {"timezone": "Europe/Riga", "cron": "30 2 * * *"}
    assert job["next_run_at"] == "2026-03-02T00:30:00Z"
    assert job["enabled"] is True
    assert job["concurrency"] == "forbid"
    assert "Riga" in job["schedule_description"]

    again = api.put("/api/v1/jobs/nightly-report", json=job_body())
    assert again.status_code == 200
    assert again.get_json() == job


def test_put_takes_the_name_from_the_path(api):
    body = job_body()
    del body["name"]
    assert api.put("/api/v1/jobs/from-path", json=body).get_json()["name"] == "from-path"


def test_post_creates_and_refuses_a_taken_name(api):
    assert api.post("/api/v1/jobs", json=job_body()).status_code == 201
    conflict = api.post("/api/v1/jobs", json=job_body(timeout_s=3))
    assert conflict.status_code == 409
    assert conflict.get_json()["error"]["field"] == "name"
    assert api.get("/api/v1/jobs/nightly-report").get_json()["timeout_s"] == 20


def test_get_list_filters_and_pages(api):
    for name, service in [("b", "billing"), ("a", "billing"), ("c", "search")]:
        api.put(f"/api/v1/jobs/{name}", json=job_body(name, service=service))
    api.post("/api/v1/jobs/b/pause")

    names = lambda response: [job["name"] for job in response.get_json()["jobs"]]  # noqa: E731
    assert names(api.get("/api/v1/jobs")) == ["a", "b", "c"]
    assert names(api.get("/api/v1/jobs?service=billing")) == ["a", "b"]
    assert names(api.get("/api/v1/jobs?service=billing&enabled=true")) == ["a"]
    assert names(api.get("/api/v1/jobs?enabled=false")) == ["b"]

    first = api.get("/api/v1/jobs?limit=2").get_json()
    assert [job["name"] for job in first["jobs"]] == ["a", "b"]
    second = api.get(f"/api/v1/jobs?limit=2&cursor={first['next_cursor']}").get_json()
    assert [job["name"] for job in second["jobs"]] == ["c"]
    assert second["next_cursor"] is None


def test_patch_changes_only_what_it_names(api):
    api.put("/api/v1/jobs/nightly-report", json=job_body())
    patched = api.patch(
        "/api/v1/jobs/nightly-report",
        json={"timeout_s": 9, "target": {"headers": {"X-Other": "1"}}, "retry": {"max_attempts": 5}},
    )
    assert patched.status_code == 200
    job = patched.get_json()
    assert job["timeout_s"] == 9
    assert job["target"]["url"] == "https://billing.internal/tasks/report"
    assert job["target"]["headers"] == {"X-Other": "1"}
    assert job["retry"] == {"max_attempts": 5, "backoff_s": 2, "backoff_max_s": 60, "jitter": 0.1}
    assert job["revision"] == 2


def test_patch_can_clear_a_nullable_field_and_replace_the_schedule(api):
    api.put("/api/v1/jobs/nightly-report", json=job_body())
    job = api.patch(
        "/api/v1/jobs/nightly-report", json={"expected_runtime_s": None, "schedule": {"every_s": 60}}
    ).get_json()
    assert job["expected_runtime_s"] is None
    assert job["schedule"]["every_s"] == 60
    assert "cron" not in job["schedule"]
    assert job["next_run_at"] == "2026-03-01T12:01:00Z"


def test_pause_and_resume(api, clock):
    api.put("/api/v1/jobs/nightly-report", json=job_body(schedule={"every_s": 600}))
    paused = api.post("/api/v1/jobs/nightly-report/pause").get_json()
    assert paused["enabled"] is False and paused["next_run_at"] is None
    clock.set(T0 + timedelta(minutes=25))
    resumed = api.post("/api/v1/jobs/nightly-report/resume").get_json()
    assert resumed["enabled"] is True
    assert resumed["next_run_at"] == "2026-03-01T12:30:00Z"


def test_delete(api):
    api.put("/api/v1/jobs/nightly-report", json=job_body())
    assert api.delete("/api/v1/jobs/nightly-report").status_code == 204
    assert api.get("/api/v1/jobs/nightly-report").status_code == 404
    assert api.delete("/api/v1/jobs/nightly-report").status_code == 404


def test_healthz_and_readyz_are_open(app):
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_says_when_the_schema_is_behind(app, engine):
    from mission_control.db import migrate

    migrate.downgrade(engine, "base")
    try:
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 503
        assert "mission-control db upgrade" in ready.get_json()["checks"]["database"]
    finally:
        migrate.upgrade(engine)


def test_readyz_says_when_the_broker_is_unreachable(engine, clock):
    from mission_control.base.config import Settings
    from mission_control.web.api import create_app
    from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET, free_port

    settings = Settings(
        admin_token=ADMIN_TOKEN,
        signing_secret=SIGNING_SECRET,
        broker_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    ready = create_app(settings, clock=clock, engine=engine).test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"] == {"database": "ok", "broker": "unreachable"}


def test_openapi_document_describes_every_route_from_the_models(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    paths = document["paths"]
    assert set(paths["/api/v1/jobs/{name}"]) == {"get", "put", "patch", "delete"}
    assert set(paths["/api/v1/jobs"]) == {"get", "post"}
    assert "post" in paths["/api/v1/jobs/{name}/pause"] and "post" in paths["/api/v1/jobs/{name}/resume"]
    assert paths["/healthz"]["get"]["security"] == []
    schemas = document["components"]["schemas"]
    schedule = schemas["ScheduleSpec"]["properties"]
    assert schedule["every_s"]["anyOf"][0]["minimum"] == 1
    assert set(schemas["JobSpec"]["required"]) == {"name", "service", "target", "schedule"}
    assert schemas["JobSpec"]["additionalProperties"] is False
    # Every route the app serves is documented, and nothing documented is missing from the app
    # (the dashboard's HTML pages and the API page at /api/docs are not the API).
    served = {
        (re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
        if rule.endpoint != "static" and not rule.endpoint.startswith(("dashboard.", "docs."))
    }
    documented = {(path, method) for path, item in paths.items() for method in item}
    assert served == documented
