"""Each service may have its own signing secret: issued and rotated through the API with an overlap
window, sealed at rest, and used by workers for that service's requests only (issue 13, item 5)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from mission_control.base.config import Settings
from mission_control.db.tables import service_signing_secrets
from mission_control.execution.executor import ExecutionContext, execute_run
from mission_control.jobs.registry import JobRegistry
from mission_control.outbound.secretbox import SecretBox
from mission_control.outbound.sender import make_session
from mission_control.outbound.service_secrets import (
    DEFAULT_MARKER,
    MAX_LIVE,
    ServiceSigningSecrets,
    SigningKeys,
    signing_keys,
)
from mission_control.outbound.signing import verify_standard_webhooks
from mission_control.runtime.context import Runtime
from mission_control.scheduling.claiming import create_manual_run
from tests.api.conftest import AUTH
from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET
from tests.factories import job_spec


@pytest.fixture
def ctx(engine, clock):
    settings = Settings(admin_token=ADMIN_TOKEN, signing_secret=SIGNING_SECRET)
    session = make_session()
    # No cache between the API's change and the next request, so each step below is seen at once.
    keys = signing_keys(engine, clock, settings, ttl_s=0)
    yield ExecutionContext(engine=engine, clock=clock, settings=settings, session=session, signing_keys=keys)
    session.close()


def _fire(engine, clock, ctx, target, job: str):
    clock.set(clock.now() + timedelta(seconds=1))  # one manual run per job and instant
    run_id = create_manual_run(engine, job, clock.now())
    assert execute_run(run_id, ctx) == "succeeded"
    [request] = [r for r in target.requests_to("/ok") if r.headers.get("Idempotency-Key") == str(run_id)]
    return request


def _jobs(engine, clock, target):
    registry = JobRegistry(engine, clock)
    registry.put(job_spec("billing.report", service="billing", target={"url": f"{target.url}/ok"}))
    registry.put(job_spec("payments.sweep", service="payments", target={"url": f"{target.url}/ok"}))


def test_a_rotation_signs_with_old_and_new_through_the_overlap_then_only_the_new(
    app, engine, clock, ctx, target
):
    _jobs(engine, clock, target)
    client = app.test_client()
    now = clock.now().timestamp()
    assert _fire(engine, clock, ctx, target, "billing.report").signed_by(SIGNING_SECRET, now)

    issued = client.post("/api/v1/services/billing/signing-secrets", headers=AUTH, json={"overlap_s": 3600})
    assert issued.status_code == 201 and issued.headers["Cache-Control"] == "no-store"
    first = issued.get_json()["secret"]
    assert first.startswith("whsec_")
    # Receivers still on the default and receivers already on the new secret both verify...
    request = _fire(engine, clock, ctx, target, "billing.report")
    assert request.signed_by(SIGNING_SECRET, now) and request.signed_by(first, now)
    # ...other services are untouched, and no other service's secret verifies billing's requests.
    other = _fire(engine, clock, ctx, target, "payments.sweep")
    assert other.signed_by(SIGNING_SECRET, now) and not other.signed_by(first, now)

    clock.set(clock.now() + timedelta(hours=1, seconds=1))
    now = clock.now().timestamp()
    request = _fire(engine, clock, ctx, target, "billing.report")
    assert request.signed_by(first, now) and not request.signed_by(SIGNING_SECRET, now)

    second = client.post("/api/v1/services/billing/signing-secrets", headers=AUTH).get_json()["secret"]
    request = _fire(engine, clock, ctx, target, "billing.report")
    assert request.signed_by(first, now) and request.signed_by(second, now)
    listed = client.get("/api/v1/services/billing/signing-secrets", headers=AUTH).get_json()
    assert [s["kind"] for s in listed["signing_secrets"]] == ["own", "own"]
    assert first not in str(listed) and second not in str(listed)

    old_id = listed["signing_secrets"][1]["id"]
    assert (
        client.delete(f"/api/v1/services/billing/signing-secrets/{old_id}", headers=AUTH).status_code == 204
    )
    request = _fire(engine, clock, ctx, target, "billing.report")
    assert request.signed_by(second, now) and not request.signed_by(first, now)
    gone = client.delete(f"/api/v1/services/billing/signing-secrets/{old_id}", headers=AUTH)
    assert gone.status_code == 404 and gone.get_json()["error"]["field"] == "secret_id"


def test_secrets_are_sealed_at_rest_and_never_listed(app, engine):
    client = app.test_client()
    secret = client.post("/api/v1/services/billing/signing-secrets", headers=AUTH).get_json()["secret"]
    with engine.connect() as conn:
        stored = [row.ciphertext for row in conn.execute(select(service_signing_secrets))]
    assert stored and all(secret not in value for value in stored)
    assert secret not in client.get("/api/v1/services/billing/signing-secrets", headers=AUTH).get_data(
        as_text=True
    )


def test_bad_requests_change_nothing(app, engine):
    client = app.test_client()
    for body in ({"overlap_s": -1}, {"overlap_s": 31 * 86_400}, {"overlap": 5}):
        answer = client.post("/api/v1/services/billing/signing-secrets", headers=AUTH, json=body)
        assert answer.status_code == 422, body
    assert client.post("/api/v1/services/Bad Name/signing-secrets", headers=AUTH).status_code in (404, 422)
    assert client.post("/api/v1/services/billing/signing-secrets").status_code == 401
    with engine.connect() as conn:
        assert conn.execute(select(service_signing_secrets)).first() is None


def test_a_job_may_ask_for_standard_webhooks_headers(engine, clock, ctx, target):
    JobRegistry(engine, clock).put(
        job_spec(
            "hooks", target={"url": f"{target.url}/ok", "signature": "standard-webhooks", "body": {"a": 1}}
        )
    )
    request = _fire(engine, clock, ctx, target, "hooks")
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert "x-mission-control-signature" not in headers
    assert headers["webhook-id"] == headers["idempotency-key"]
    assert verify_standard_webhooks(SIGNING_SECRET, headers, request.body, now=int(clock.now().timestamp()))


def test_concurrent_rotations_leave_one_current_secret(engine, clock):
    store = ServiceSigningSecrets(engine, clock, SecretBox((), SIGNING_SECRET))
    barrier = threading.Barrier(6)

    def rotate() -> None:
        barrier.wait(timeout=10)
        store.rotate("billing", overlap_s=3600)

    threads = [threading.Thread(target=rotate) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    with engine.connect() as conn:
        rows = conn.execute(select(service_signing_secrets)).all()
    assert len([row for row in rows if row.expires_at is None]) == 1
    assert len([row for row in rows if row.ciphertext == DEFAULT_MARKER]) <= 1
    # Seven secrets were current at some point (the default and six rotations): the newest four sign.
    assert len(store.live_ciphertexts()["billing"]) == MAX_LIVE


def test_a_worker_shares_one_cache_of_signing_keys_across_its_runs(engine, clock):
    # Each task gets a new ExecutionContext; the keys (and their cache) must be the process's.
    runtime = Runtime(
        settings=Settings(admin_token=ADMIN_TOKEN, signing_secret=SIGNING_SECRET), engine=engine, clock=clock
    )
    try:
        first, second = runtime.execution_context(), runtime.execution_context()
        assert first.signing_keys is second.signing_keys is not None
    finally:
        if runtime._session is not None:
            runtime._session.close()


def test_a_worker_reads_every_service_s_secrets_in_one_query_per_refresh(engine, clock):
    store = ServiceSigningSecrets(engine, clock, SecretBox((), SIGNING_SECRET))
    own = {f"svc-{i}": store.rotate(f"svc-{i}", overlap_s=0) for i in range(5)}
    ticks = [0.0]
    keys = SigningKeys(store, SIGNING_SECRET, ttl_s=5, monotonic=lambda: ticks[0])
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):  # SQLite's engine also sends BEGIN
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(3):  # a fleet of 50 services, each fired three times within the refresh period
            for i in range(50):
                expected = [own[f"svc-{i}"].secret] if i < 5 else [SIGNING_SECRET]
                assert keys.for_service(f"svc-{i}") == expected
        assert len(statements) == 1
        assert store.revoke("svc-0", own["svc-0"].id)
        statements.clear()
        assert keys.for_service("svc-0") == [own["svc-0"].secret]  # seen at the next refresh, not before
        assert statements == []
        ticks[0] = 5.0
        assert keys.for_service("svc-0") == [SIGNING_SECRET]
        assert keys.for_service("svc-1") == [own["svc-1"].secret]
        assert len(statements) == 1
    finally:
        event.remove(engine, "before_cursor_execute", count)
