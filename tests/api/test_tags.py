"""Tags on services and jobs: validated, stored, answered everywhere, audited, and lists filtered by
them (``?tag=``, repeatable: all must match) with the lists' keyset paging."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from mission_control.db.tables import audit_log, subject_tags
from tests.conftest import ADMIN_TOKEN
from tests.factories import job_body

SERVICE = {"interval_s": 60, "grace_s": 30}


def put_job(api: Any, name: str, tags: list[str], **overrides: Any) -> Any:
    response = api.put(f"/api/v1/jobs/{name}", json=job_body(name, tags=tags, **overrides))
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def put_service(api: Any, name: str, tags: list[str]) -> Any:
    response = api.put(f"/api/v1/services/{name}", json={**SERVICE, "tags": tags})
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def names(api: Any, path: str, key: str) -> list[str]:
    """Every name a listing answers, page by page (limit 2, so paging is exercised)."""
    found: list[str] = []
    separator = "&" if "?" in path else "?"
    url = f"{path}{separator}limit=2"
    while True:
        response = api.get(url)
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        found += [item["name"] for item in page[key]]
        if page["next_cursor"] is None:
            return found
        url = f"{path}{separator}limit=2&cursor={page['next_cursor']}"


def test_a_jobs_tags_are_stored_answered_everywhere_and_audited(api: Any, engine: Any) -> None:
    made = put_job(api, "billing.sync", ["team:billing", "tier:1"])
    assert made["tags"] == ["team:billing", "tier:1"]
    assert api.get("/api/v1/jobs/billing.sync").get_json()["tags"] == ["team:billing", "tier:1"]
    assert api.get("/api/v1/jobs").get_json()["jobs"][0]["tags"] == ["team:billing", "tier:1"]
    patched = api.patch("/api/v1/jobs/billing.sync", json={"tags": ["team:payments"]})
    assert patched.status_code == 200 and patched.get_json()["tags"] == ["team:payments"]
    # pause keeps them; a job without tags answers []
    assert api.post("/api/v1/jobs/billing.sync/pause").get_json()["tags"] == ["team:payments"]
    assert put_job(api, "plain", [])["tags"] == []
    with engine.connect() as conn:
        changes = [row.change for row in conn.execute(select(audit_log).order_by(audit_log.c.id))]
    assert changes[0]["after"]["tags"] == ["team:billing", "tier:1"]
    assert (changes[1]["before"]["tags"], changes[1]["after"]["tags"]) == (["team:billing", "tier:1"],
                                                                          ["team:payments"])  # fmt: skip
    # an identical PUT (same tags) changes nothing
    before = len(changes)
    put_job(api, "plain", [])
    with engine.connect() as conn:
        assert len(conn.execute(select(audit_log)).all()) == before


def test_a_services_tags_are_stored_answered_and_audited(api: Any, engine: Any) -> None:
    made = put_service(api, "billing", ["team:billing"])
    assert made["tags"] == ["team:billing"]
    assert api.get("/api/v1/services").get_json()["services"][0]["tags"] == ["team:billing"]
    again = put_service(api, "billing", ["team:billing", "tier:1"])
    assert again["tags"] == ["team:billing", "tier:1"]
    with engine.connect() as conn:
        changes = [row.change for row in conn.execute(select(audit_log).order_by(audit_log.c.id))]
    assert changes[0]["after"]["tags"] == ["team:billing"]
    assert changes[1]["before"]["tags"] == ["team:billing"]
    assert changes[1]["after"]["tags"] == ["team:billing", "tier:1"]
    # a PUT without tags clears them (PUT replaces), a heartbeat keeps them
    assert api.post("/api/v1/heartbeats/billing").status_code == 200
    assert api.get("/api/v1/services/billing").get_json()["tags"] == ["team:billing", "tier:1"]
    assert api.put("/api/v1/services/billing", json=SERVICE).get_json()["tags"] == []


@pytest.mark.parametrize(
    ("tags", "field"),
    [
        (["Team:Billing"], "tags.0"),
        (["ok", "has space"], "tags.1"),
        (["<script>"], "tags.0"),
        (["a&b"], "tags.0"),
        (["team:*"], "tags.0"),
        (["x" * 65], "tags.0"),
        (["team:"], "tags.0"),
        ([f"t{i}" for i in range(17)], "tags"),
        (["tier:1", "tier:1"], "tags"),
        ("team:billing", "tags"),
        ([1], "tags.0"),
    ],
)
def test_bad_tags_are_a_422_naming_the_tag(api: Any, tags: Any, field: str) -> None:
    job = api.put("/api/v1/jobs/bad", json=job_body("bad", tags=tags))
    assert job.status_code == 422 and job.get_json()["error"]["field"] == field, job.get_json()
    service = api.put("/api/v1/services/bad", json={**SERVICE, "tags": tags})
    assert service.status_code == 422 and service.get_json()["error"]["field"] == field
    assert api.get("/api/v1/jobs/bad").status_code == 404
    assert api.get("/api/v1/services/bad").status_code == 404


def test_lists_filter_by_tag_all_must_match_with_keyset_paging(api: Any) -> None:
    for index in range(7):
        tags = ["team:billing"] + (["tier:1"] if index % 2 == 0 else [])
        put_job(api, f"billing.job{index}", tags)
        put_service(api, f"billing-{index}", tags)
    put_job(api, "payments.job", ["team:payments", "tier:1"], service="payments")
    put_service(api, "payments", ["team:payments", "tier:1"])

    assert names(api, "/api/v1/jobs?tag=team:billing", "jobs") == [f"billing.job{i}" for i in range(7)]
    assert names(api, "/api/v1/jobs?tag=team:billing&tag=tier:1", "jobs") == [
        "billing.job0", "billing.job2", "billing.job4", "billing.job6"]  # fmt: skip
    assert names(api, "/api/v1/jobs?tag=tier:1", "jobs") == [
        "billing.job0", "billing.job2", "billing.job4", "billing.job6", "payments.job"]  # fmt: skip
    assert names(api, "/api/v1/jobs?tag=nobody", "jobs") == []
    assert names(api, "/api/v1/services?tag=team:billing&tag=tier:1", "services") == [
        "billing-0", "billing-2", "billing-4", "billing-6"]  # fmt: skip
    assert names(api, "/api/v1/services?tag=tier:1&tag=team:payments", "services") == ["payments"]
    # other filters still apply beside it
    assert "payments.job" not in names(api, "/api/v1/jobs?tag=tier:1&service=billing", "jobs")
    bad = api.get("/api/v1/jobs?tag=Not%20A%20Tag")
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "tag.0"


def test_retagging_and_deleting_keep_the_index_in_step(api: Any, engine: Any) -> None:
    put_job(api, "a", ["team:billing"])
    put_service(api, "a", ["team:billing"])
    put_job(api, "a", ["team:payments"])
    assert names(api, "/api/v1/jobs?tag=team:billing", "jobs") == []
    assert names(api, "/api/v1/jobs?tag=team:payments", "jobs") == ["a"]
    assert api.delete("/api/v1/jobs/a").status_code == 204
    assert api.delete("/api/v1/services/a").status_code == 204
    assert names(api, "/api/v1/jobs?tag=team:payments", "jobs") == []
    with engine.connect() as conn:
        assert conn.execute(select(subject_tags)).all() == []


def test_a_bound_token_lists_only_its_services_jobs_by_tag(api: Any, app: Any) -> None:
    put_job(api, "billing.a", ["tier:1"])
    put_job(api, "payments.a", ["tier:1"], service="payments")
    made = api.post("/api/v1/tokens", json={"name": "b", "scopes": ["read"], "service": "billing"})
    token = made.get_json()["token"]
    answer = app.test_client().get("/api/v1/jobs?tag=tier:1", headers={"Authorization": f"Bearer {token}"})
    assert [job["name"] for job in answer.get_json()["jobs"]] == ["billing.a"]


def test_a_channel_takes_a_tag_pattern_beside_its_subject_pattern(api: Any, engine: Any) -> None:
    body = {
        "name": "billing-hook",
        "kind": "webhook",
        "url": "https://hooks.test/x",
        "tag_pattern": "team:billing",
    }
    made = api.post("/api/v1/channels", json=body)
    assert made.status_code == 201, made.get_json()
    assert (made.get_json()["tag_pattern"], made.get_json()["subject_pattern"]) == ("team:billing", "*")
    assert api.get("/api/v1/channels").get_json()["channels"][0]["tag_pattern"] == "team:billing"
    with engine.connect() as conn:
        [row] = conn.execute(select(audit_log)).mappings().all()
    assert row["change"]["after"]["tag_pattern"] == "team:billing"
    plain = api.post("/api/v1/channels", json={**body, "name": "all", "tag_pattern": None})
    assert plain.get_json()["tag_pattern"] is None
    for bad in ("Team Billing", "<x>", ""):
        refused = api.post("/api/v1/channels", json={**body, "name": "bad", "tag_pattern": bad})
        assert refused.status_code == 422 and refused.get_json()["error"]["field"] == "tag_pattern"


def test_the_dashboard_shows_tags_beside_names(api: Any, app: Any) -> None:
    put_job(api, "billing.sync", ["team:billing"])
    put_service(api, "billing", ["tier:1"])
    browser = app.test_client()
    assert browser.post("/login", data={"token": ADMIN_TOKEN}).status_code == 302
    assert '<span class="tag">team:billing</span>' in browser.get("/jobs").get_data(as_text=True)
    assert '<span class="tag">tier:1</span>' in browser.get("/services").get_data(as_text=True)
