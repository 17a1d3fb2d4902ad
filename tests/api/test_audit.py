"""The audit trail: every mutating route leaves exactly one row, in the change's own transaction, with
no secret in it; ``GET /api/v1/audit`` filters and pages it; retention prunes it.

The walking test reads the OpenAPI document: a new POST/PUT/PATCH/DELETE operation without a recipe
here fails it, so a new route cannot ship unaudited by accident.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from mission_control.db import audit as audit_db
from mission_control.db.alerts import AlertKind, open_alert
from mission_control.db.audit import AuditEntry
from mission_control.db.tables import audit_log, jobs
from mission_control.jobs.registry import JobRegistry
from tests.factories import job_body, job_spec

MUTATING = ("post", "put", "patch", "delete")
# Operations that change things but are not operators' changes: heartbeats are telemetry at
# thousands a second (each service keeps its own history and state changes instead).
# Heartbeats and the other pings of a service's own runs (start, fail, log, exit code) are its events,
# kept in its event ring, not operator changes.
NOT_AUDITED = {
    ("POST", f"/api/v1/heartbeats/{{name}}{suffix}") for suffix in ("", "/start", "/fail", "/log", "/{code}")
}
SECRET = "Bearer do-not-leak-8f3a"
APPROVAL = {
    "steps": [
        {"name": "approve", "kind": "wait_for", "timeout_s": 3600, "schema": {"type": "object"}},
    ]
}


def rows(engine: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(audit_log).order_by(audit_log.c.id)).mappings()]


class Walker:
    """Requests as the ``auditor`` token (admin, a named token, so the row carries its id)."""

    def __init__(self, app: Any, api: Any, engine: Any, clock: Any) -> None:
        self.client, self.api, self.engine, self.clock = app.test_client(), api, engine, clock
        made = api.post("/api/v1/tokens", json={"name": "auditor", "scopes": ["admin"]})
        assert made.status_code == 201, made.get_json()
        self.token_id = made.get_json()["id"]
        self.headers = {"Authorization": f"Bearer {made.get_json()['token']}"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return getattr(self.client, method.lower())(path, headers=self.headers, **kwargs)

    def ok(self, response: Any) -> Any:
        assert response.status_code < 300, response.get_json()
        return response.get_json()


# Each recipe prepares what the operation needs (through the admin API: those rows are not counted),
# then answers (method, path, request kwargs, expected action, expected subject kind, subject name).
Recipe = Callable[[Walker], tuple[str, dict[str, Any], str, str, str]]


def _job(w: Walker, name: str, **overrides: Any) -> None:
    w.ok(w.api.put(f"/api/v1/jobs/{name}", json=job_body(name, **overrides)))


def _service(w: Walker, name: str) -> None:
    w.ok(w.api.put(f"/api/v1/services/{name}", json={"interval_s": 60, "grace_s": 30}))


def _channel(w: Walker, name: str) -> int:
    made = w.api.post("/api/v1/channels", json={"name": name, "kind": "webhook", "url": "https://h.test/x"})
    return int(w.ok(made)["id"])


def _mission(w: Walker, mission_id: str) -> None:
    w.ok(w.api.put("/api/v1/mission-definitions/approval", json=APPROVAL))
    w.ok(w.api.post("/api/v1/missions", json={"definition": "approval", "input": {}, "id": mission_id}))


def _silence(w: Walker) -> int:
    ends_at = (w.clock.now() + timedelta(hours=1)).isoformat()
    made = w.api.post("/api/v1/silences", json={"ends_at": ends_at, "comment": "maintenance"})
    return int(w.ok(made)["id"])


def _alert(w: Walker) -> int:
    with w.engine.begin() as conn:
        change = open_alert(conn, AlertKind.SERVICE_DOWN, "billing", w.clock.now(), "down")
    assert change is not None
    return change.alert_id


RECIPES: dict[tuple[str, str], Recipe] = {
    ("POST", "/api/v1/jobs"): lambda w: (
        "/api/v1/jobs", {"json": job_body("a.create")}, "job.create", "job", "a.create"),
    ("PUT", "/api/v1/jobs/{name}"): lambda w: (
        "/api/v1/jobs/a.put", {"json": job_body("a.put")}, "job.put", "job", "a.put"),
    ("PATCH", "/api/v1/jobs/{name}"): lambda w: (
        _job(w, "a.patch"),
        ("/api/v1/jobs/a.patch", {"json": {"timeout_s": 30}}, "job.patch", "job", "a.patch"),
    )[1],
    ("DELETE", "/api/v1/jobs/{name}"): lambda w: (
        _job(w, "a.delete"), ("/api/v1/jobs/a.delete", {}, "job.delete", "job", "a.delete"))[1],
    ("POST", "/api/v1/jobs/{name}/pause"): lambda w: (
        _job(w, "a.pause"), ("/api/v1/jobs/a.pause/pause", {}, "job.pause", "job", "a.pause"))[1],
    ("POST", "/api/v1/jobs/{name}/resume"): lambda w: (
        _job(w, "a.resume", enabled=False),
        ("/api/v1/jobs/a.resume/resume", {}, "job.resume", "job", "a.resume"),
    )[1],
    ("POST", "/api/v1/jobs/{name}/trigger"): lambda w: (
        _job(w, "a.trigger"), ("/api/v1/jobs/a.trigger/trigger", {}, "run.trigger", "job", "a.trigger"))[1],
    ("PUT", "/api/v1/services/{name}"): lambda w: (
        "/api/v1/services/s-put", {"json": {"interval_s": 60, "grace_s": 30}}, "service.put", "service",
        "s-put"),
    ("DELETE", "/api/v1/services/{name}"): lambda w: (
        _service(w, "s-del"), ("/api/v1/services/s-del", {}, "service.delete", "service", "s-del"))[1],
    ("POST", "/api/v1/services/{name}/pause"): lambda w: (
        _service(w, "s-pause"),
        ("/api/v1/services/s-pause/pause", {}, "service.pause", "service", "s-pause"),
    )[1],
    ("POST", "/api/v1/services/{name}/resume"): lambda w: (
        _service(w, "s-resume"), w.ok(w.api.post("/api/v1/services/s-resume/pause")),
        ("/api/v1/services/s-resume/resume", {}, "service.resume", "service", "s-resume"),
    )[2],
    ("POST", "/api/v1/services/{name}/tokens"): lambda w: (
        _service(w, "s-tok"),
        ("/api/v1/services/s-tok/tokens", {"json": {"label": "ci"}}, "service.token_create", "token", None),
    )[1],
    ("DELETE", "/api/v1/services/{name}/tokens/{token_id}"): lambda w: (
        _service(w, "s-rev"),
        (f"/api/v1/services/s-rev/tokens/{w.ok(w.api.post('/api/v1/services/s-rev/tokens'))['id']}", {},
         "service.token_revoke", "token", None),
    )[1],
    ("POST", "/api/v1/services/{name}/signing-secrets"): lambda w: (
        "/api/v1/services/billing/signing-secrets", {}, "signing_secret.rotate", "service", "billing"),
    ("DELETE", "/api/v1/services/{name}/signing-secrets/{secret_id}"): lambda w: (
        f"/api/v1/services/pay/signing-secrets/{w.ok(w.api.post('/api/v1/services/pay/signing-secrets'))['id']}",
        {}, "signing_secret.revoke", "service", "pay"),
    ("POST", "/api/v1/tokens"): lambda w: (
        "/api/v1/tokens", {"json": {"name": "t-new", "scopes": ["read"]}}, "token.create", "token", "t-new"),
    ("DELETE", "/api/v1/tokens/{token_id}"): lambda w: (
        f"/api/v1/tokens/{w.ok(w.api.post('/api/v1/tokens', json={'name': 't-old', 'scopes': ['read']}))['id']}",  # noqa: E501
        {}, "token.revoke", "token", "t-old"),
    ("POST", "/api/v1/channels"): lambda w: (
        "/api/v1/channels", {"json": {"name": "c-new", "kind": "webhook", "url": "https://h.test/secret"}},
        "channel.create", "channel", "c-new"),
    ("DELETE", "/api/v1/channels/{channel_id}"): lambda w: (
        f"/api/v1/channels/{_channel(w, 'c-del')}", {}, "channel.delete", "channel", "c-del"),
    ("POST", "/api/v1/channels/{channel_id}/test"): lambda w: (
        f"/api/v1/channels/{_channel(w, 'c-test')}/test", {}, "channel.test", "channel", "c-test"),
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): lambda w: (
        (alert_id := _alert(w)) and None,
        (f"/api/v1/alerts/{alert_id}/acknowledge", {"json": {"comment": "on it"}}, "alert.acknowledge",
         "alert", str(alert_id)),
    )[1],
    ("POST", "/api/v1/silences"): lambda w: (
        "/api/v1/silences",
        {"json": {"ends_at": (w.clock.now() + timedelta(hours=2)).isoformat(), "comment": "deploy",
                  "subject_pattern": "billing*"}},
        "silence.create", "silence", str(_silence(w) + 1)),
    ("DELETE", "/api/v1/silences/{silence_id}"): lambda w: (
        (silence_id := _silence(w)) and None,
        (f"/api/v1/silences/{silence_id}", {}, "silence.expire", "silence", str(silence_id)),
    )[1],
    ("POST", "/api/v1/badges"): lambda w: (
        _service(w, "s-badge"),
        ("/api/v1/badges", {"json": {"service": "s-badge"}}, "badge.create", "badge", None),
    )[1],
    ("DELETE", "/api/v1/badges/{badge_id}"): lambda w: (
        (badge_id := w.ok(w.api.post("/api/v1/badges", json={"tag": "tier:1"}))["id"]) and None,
        (f"/api/v1/badges/{badge_id}", {}, "badge.revoke", "badge", str(badge_id)),
    )[1],
    ("PUT", "/api/v1/mission-definitions/{name}"): lambda w: (
        "/api/v1/mission-definitions/d-new", {"json": APPROVAL}, "definition.put", "definition", "d-new"),
    ("POST", "/api/v1/missions"): lambda w: (
        w.ok(w.api.put("/api/v1/mission-definitions/approval", json=APPROVAL)),
        ("/api/v1/missions", {"json": {"definition": "approval", "input": {}, "id": "m-start"}},
         "mission.start", "mission", "m-start"),
    )[1],
    ("POST", "/api/v1/missions/{mission_id}/signals/{signal}"): lambda w: (
        _mission(w, "m-signal"),
        ("/api/v1/missions/m-signal/signals/approve", {"json": {"ok": True}}, "mission.signal", "mission",
         "m-signal"),
    )[1],
    ("POST", "/api/v1/missions/{mission_id}/cancel"): lambda w: (
        _mission(w, "m-cancel"),
        ("/api/v1/missions/m-cancel/cancel", {"json": {"reason": "no"}}, "mission.cancel", "mission",
         "m-cancel"),
    )[1],
}  # fmt: skip


def mutating_operations(api: Any) -> list[tuple[str, str]]:
    document = api.get("/api/v1/openapi.json").get_json()
    return sorted(
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in MUTATING
    )


def test_every_mutating_operation_in_the_openapi_document_leaves_exactly_one_audit_row(
    app: Any, api: Any, engine: Any, clock: Any
) -> None:
    walker = Walker(app, api, engine, clock)
    operations = mutating_operations(api)
    assert len(operations) >= 25  # the document was read, not an empty list walked
    missing = [op for op in operations if op not in RECIPES and op not in NOT_AUDITED]
    assert missing == [], f"add a recipe (or a reason in NOT_AUDITED) for {missing}"
    for method, template in operations:
        if (method, template) in NOT_AUDITED:
            continue
        path, kwargs, action, kind, subject = RECIPES[(method, template)](walker)
        before = len(rows(engine))
        response = walker.call(method, path, **kwargs)
        assert response.status_code < 300, (method, path, response.get_json())
        new = rows(engine)[before:]
        assert len(new) == 1, (method, template, new)
        [row] = new
        assert (row["action"], row["subject_kind"]) == (action, kind), (method, template, row)
        if subject is not None:
            assert row["subject_name"] == subject, (method, template, row)
        assert (row["actor"], row["actor_token_id"]) == ("auditor", walker.token_id)
        assert row["client_address"] == "127.0.0.1"
        assert row["at"] == clock.now()


def test_heartbeats_leave_no_audit_row(api: Any, engine: Any) -> None:
    assert api.post("/api/v1/heartbeats/billing").status_code < 300
    assert rows(engine) == []


def test_an_identical_put_changes_nothing_and_leaves_no_row(api: Any, engine: Any) -> None:
    assert api.put("/api/v1/jobs/nightly", json=job_body("nightly")).status_code == 201
    assert api.put("/api/v1/jobs/nightly", json=job_body("nightly")).status_code == 200
    assert [row["action"] for row in rows(engine)] == ["job.put"]
    assert rows(engine)[0]["change"]["before"] is None
    assert api.put("/api/v1/jobs/nightly", json=job_body("nightly", timeout_s=40)).status_code == 200
    change = rows(engine)[-1]["change"]
    assert (change["before"]["timeout_s"], change["after"]["timeout_s"]) == (20, 40)


def test_the_bootstrap_admin_is_recorded_by_name_with_no_token_id(api: Any, engine: Any) -> None:
    api.put("/api/v1/services/billing", json={"interval_s": 60, "grace_s": 30})
    [row] = rows(engine)
    assert (row["actor"], row["actor_token_id"], row["service"]) == ("MC_ADMIN_TOKEN", None, "billing")


def test_no_secret_reaches_the_change(api: Any, engine: Any) -> None:
    target = {"url": "https://billing.internal/run", "headers": {"Authorization": SECRET, "X-Team": "b"}}
    assert api.put("/api/v1/jobs/secretive", json=job_body("secretive", target=target)).status_code == 201
    assert api.patch("/api/v1/jobs/secretive", json={"timeout_s": 30}).status_code == 200
    assert api.delete("/api/v1/jobs/secretive").status_code == 204
    made = api.post("/api/v1/tokens", json={"name": "deployer", "scopes": ["jobs:write"]}).get_json()
    service_token = api.post("/api/v1/services/billing/tokens").get_json()
    api.put("/api/v1/services/billing", json={"interval_s": 60, "grace_s": 30})
    service_token = api.post("/api/v1/services/billing/tokens").get_json()
    signing = api.post("/api/v1/services/billing/signing-secrets").get_json()
    slack = "https://hooks.slack.test/services/T000/B000/slack-secret-path"
    assert api.post("/api/v1/channels", json={"name": "s", "kind": "slack", "url": slack}).status_code == 201
    trail = json.dumps([row["change"] for row in rows(engine)])
    for secret in (SECRET, "do-not-leak", made["token"], service_token["token"], signing["secret"],
                   "slack-secret-path", "T000"):  # fmt: skip
        assert secret not in trail
    job_changes = [row["change"] for row in rows(engine) if row["subject_kind"] == "job"]
    assert job_changes[0]["after"]["target"]["headers"] == {"Authorization": "****", "X-Team": "b"}
    assert job_changes[-1]["before"]["target"]["headers"]["Authorization"] == "****"


def test_the_row_and_the_change_commit_or_roll_back_together(engine: Any, clock: Any) -> None:
    registry = JobRegistry(engine, clock)
    entry = AuditEntry("ops", None, "127.0.0.1", "job.put")
    registry.put(job_spec("kept"), audit=entry)

    class Boom(Exception):
        pass

    def fail_after_the_audit_insert(conn: Any, audit: Any, **kwargs: Any) -> int | None:
        written = audit_db.write(conn, audit, **kwargs)
        assert written is not None
        raise Boom

    import mission_control.jobs.registry as registry_module

    original = registry_module.write_audit
    registry_module.write_audit = fail_after_the_audit_insert
    try:
        with pytest.raises(Boom):
            registry.put(job_spec("lost"), audit=entry)
    finally:
        registry_module.write_audit = original
    with engine.connect() as conn:
        assert conn.execute(select(jobs.c.name)).scalars().all() == ["kept"]
    assert [row["subject_name"] for row in rows(engine)] == ["kept"]


def test_a_store_called_without_audit_writes_no_row(engine: Any, clock: Any) -> None:
    registry = JobRegistry(engine, clock)
    registry.put(job_spec("beat-made"))
    registry.set_enabled("beat-made", False)
    assert rows(engine) == []


def _seed(api: Any, clock: Any) -> None:
    for index in range(5):
        api.put(f"/api/v1/jobs/job-{index}", json=job_body(f"job-{index}"))
        clock.advance(60)
    api.post("/api/v1/jobs/job-1/pause")
    api.put("/api/v1/services/pay", json={"interval_s": 60, "grace_s": 30})


def test_the_listing_is_newest_first_and_pages_by_cursor(api: Any, clock: Any) -> None:
    _seed(api, clock)
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        page = api.get("/api/v1/audit", query_string={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.get_json()
        body = page.get_json()
        seen += [entry["id"] for entry in body["entries"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and len(set(seen)) == 7
    everything = api.get("/api/v1/audit").get_json()["entries"]
    assert [entry["id"] for entry in everything] == seen
    stamps = [entry["at"] for entry in everything]
    assert stamps == sorted(stamps, reverse=True)
    assert everything[0]["action"] == "service.put"


def test_filters(api: Any, clock: Any) -> None:
    start = clock.now()
    _seed(api, clock)

    def listed(**params: Any) -> list[tuple[str, str]]:
        answer = api.get("/api/v1/audit", query_string=params)
        assert answer.status_code == 200, answer.get_json()
        return [(e["action"], e["subject_name"]) for e in answer.get_json()["entries"]]

    assert listed(subject="job:job-1") == [("job.pause", "job-1"), ("job.put", "job-1")]
    assert listed(subject="job-1") == [("job.pause", "job-1"), ("job.put", "job-1")]
    assert listed(subject="service:job-1") == []
    assert listed(action="service.put") == [("service.put", "pay")]
    assert listed(actor="MC_ADMIN_TOKEN", action="job.pause") == [("job.pause", "job-1")]
    assert listed(actor="someone-else") == []
    since = (start + timedelta(seconds=120)).isoformat()
    until = (start + timedelta(seconds=180)).isoformat()
    assert listed(since=since, until=until) == [("job.put", "job-2")]


@pytest.mark.parametrize("cursor", ["nope", "W10", "WyJ4IiwgMV0", "!!!", "WyIyMDI2LTAxLTAxIiwgMV0"])
def test_a_cursor_the_api_did_not_give_out_is_400_invalid_cursor(api: Any, cursor: str) -> None:
    answer = api.get("/api/v1/audit", query_string={"cursor": cursor})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "invalid_cursor"


def test_read_tokens_read_it_and_bound_tokens_see_only_their_service(api: Any, app: Any) -> None:
    api.put("/api/v1/jobs/bill", json=job_body("bill"))
    api.put("/api/v1/jobs/pays", json=job_body("pays", service="payments"))
    reader = api.post("/api/v1/tokens", json={"name": "reader", "scopes": ["read"]}).get_json()["token"]
    bound = api.post(
        "/api/v1/tokens", json={"name": "b-read", "scopes": ["read"], "service": "billing"}
    ).get_json()["token"]
    runner = api.post("/api/v1/tokens", json={"name": "runner", "scopes": ["runs:read"]}).get_json()["token"]
    client = app.test_client()

    def subjects(token: str) -> Any:
        answer = client.get("/api/v1/audit", headers={"Authorization": f"Bearer {token}"})
        return answer.status_code, [e["subject_name"] for e in (answer.get_json().get("entries") or [])]

    assert subjects(reader) == (200, ["runner", "b-read", "reader", "pays", "bill"])
    # its service's rows only: its job and its service's tokens (names and scopes, never secrets)
    assert subjects(bound) == (200, ["b-read", "bill"])
    assert subjects(runner)[0] == 403


def test_retention_prunes_rows_older_than_the_setting(engine: Any, clock: Any) -> None:
    registry = JobRegistry(engine, clock)
    entry = AuditEntry("ops", None, None, "job.put")
    registry.put(job_spec("old"), audit=entry)
    clock.advance(86400 * 10)
    registry.put(job_spec("new"), audit=entry)
    assert audit_db.prune(engine, clock.now(), retention_days=5) == 1
    assert [row["subject_name"] for row in rows(engine)] == ["new"]
    assert audit_db.prune(engine, clock.now(), retention_days=5) == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar() == 1


def test_auth_header_is_needed(app: Any) -> None:
    assert app.test_client().get("/api/v1/audit").status_code == 401


def test_the_retention_task_prunes_the_audit_trail_by_mc_audit_retention_days(
    engine: Any, clock: Any
) -> None:
    from mission_control.base.config import Settings
    from mission_control.runtime.context import Runtime, set_runtime
    from mission_control.runtime.tasks import prune_old_runs
    from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET

    registry = JobRegistry(engine, clock)
    entry = AuditEntry("ops", None, None, "job.put")
    registry.put(job_spec("year-old"), audit=entry)
    clock.advance(86400 * 20)
    registry.put(job_spec("recent"), audit=entry)
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        admin_token=ADMIN_TOKEN,
        signing_secret=SIGNING_SECRET,
        broker_url="memory://",
        audit_retention_days=10,
    )
    assert Settings(database_url="sqlite://", broker_url="memory://").audit_retention_days == 365
    set_runtime(Runtime(settings=settings, engine=engine, clock=clock))
    try:
        prune_old_runs()
    finally:
        set_runtime(None)
    assert [row["subject_name"] for row in rows(engine)] == ["recent"]


def test_dashboard_actions_are_recorded_as_dashboard_and_shown_on_its_pages(
    app: Any, api: Any, engine: Any, clock: Any
) -> None:
    import re

    assert api.put("/api/v1/jobs/nightly", json=job_body("nightly")).status_code == 201
    token = api.post("/api/v1/tokens", json={"name": "ops-admin", "scopes": ["admin"]}).get_json()
    browser = app.test_client()
    assert browser.post("/login", data={"token": token["token"]}).status_code == 302
    page = browser.get("/jobs/nightly").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)[1]
    assert browser.post("/jobs/nightly/pause", data={"csrf": csrf}).status_code == 302
    assert browser.post("/jobs/nightly/resume", data={"csrf": csrf}).status_code == 302
    assert browser.post("/jobs/nightly/trigger", data={"csrf": csrf}).status_code == 302
    with engine.begin() as conn:
        change = open_alert(conn, AlertKind.JOB_FAILED, "nightly", clock.now(), "failed")
    assert change is not None
    ack = browser.post(f"/alerts/{change.alert_id}/acknowledge", data={"csrf": csrf, "comment": "seen"})
    assert ack.status_code == 302
    made = [(row["actor"], row["actor_token_id"], row["action"]) for row in rows(engine)[2:]]
    assert made == [
        ("dashboard: ops-admin", token["id"], "job.pause"),
        ("dashboard: ops-admin", token["id"], "job.resume"),
        ("dashboard: ops-admin", token["id"], "run.trigger"),
        ("dashboard: ops-admin", token["id"], "alert.acknowledge"),
    ]
    job_page = browser.get("/jobs/nightly").get_data(as_text=True)
    assert "dashboard: ops-admin" in job_page and "run.trigger" in job_page
    audit_page = browser.get("/audit?subject=job:nightly&action=job.pause")
    assert audit_page.status_code == 200
    text = audit_page.get_data(as_text=True)
    assert "job.pause" in text and "job.resume" not in text
    assert "default-src" in audit_page.headers.get("Content-Security-Policy", "")
