"""Executing runs against a real local HTTP server, on SQLite and PostgreSQL, with a pinned clock."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from mission_control.base.config import Settings
from mission_control.db.alerts import AlertFilter, list_alerts
from mission_control.db.tables import attempts, runs
from mission_control.execution.executor import ExecutionContext, execute_run
from mission_control.jobs.registry import JobRegistry
from mission_control.outbound.sender import make_session
from mission_control.scheduling.claiming import claim_due_retries, create_manual_run
from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET, T0
from tests.factories import job_spec


@pytest.fixture
def notified():
    """Alert changes the executor handed to the notification channels."""
    return []


@pytest.fixture
def ctx(engine, clock, notified):
    settings = Settings(admin_token=ADMIN_TOKEN, signing_secret=SIGNING_SECRET, response_excerpt_bytes=1024)
    session = make_session()
    yield ExecutionContext(
        engine=engine, clock=clock, settings=settings, session=session, notify=notified.extend
    )
    session.close()


@pytest.fixture
def registry(engine, clock):
    return JobRegistry(engine, clock)


def register(registry, server, path, *, target=None, **overrides):
    overrides.setdefault("retry", {"max_attempts": 3, "backoff_s": 2, "backoff_max_s": 60, "jitter": 0})
    overrides.setdefault("schedule", {"every_s": 3600})
    spec = job_spec(target={"url": f"{server.url}{path}", **(target or {})}, **overrides)
    registry.put(spec)
    return spec


def hold_lease(engine, run_id, *, owner):
    """Make the run look claimed by another worker: one attempt made, lease until T0 + 40 s."""
    with engine.begin() as conn:
        conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(
                status="running", attempt_count=1, lease_owner=owner, leased_until=T0 + timedelta(seconds=40)
            )
        )


def the_run(engine, run_id):
    with engine.connect() as conn:
        return conn.execute(select(runs).where(runs.c.id == run_id)).one()


def the_attempts(engine, run_id):
    with engine.connect() as conn:
        return conn.execute(
            select(attempts).where(attempts.c.run_id == run_id).order_by(attempts.c.number)
        ).all()


def test_a_successful_trigger_is_signed_recorded_and_succeeds(engine, registry, ctx, target):
    register(registry, target, "/ok", target={"headers": {"X-Team": "billing"}, "body": {"report": "daily"}})
    run_id = create_manual_run(engine, "nightly-report", T0)

    assert execute_run(run_id, ctx) == "succeeded"

    [request] = target.requests_to("/ok")
    assert request.method == "POST"
    assert json.loads(request.body) == {"report": "daily"}
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["x-team"] == "billing"
    assert headers["content-type"] == "application/json"
    assert headers["idempotency-key"] == str(run_id)
    assert headers["x-mission-control-run"] == str(run_id)
    assert headers["x-mission-control-job"] == "nightly-report"
    assert headers["x-mission-control-attempt"] == "1"
    assert request.signed_by(SIGNING_SECRET, now=T0.timestamp())

    run = the_run(engine, run_id)
    assert (run.status, run.attempt_count, run.http_status, run.reason) == ("succeeded", 1, 200, None)
    assert run.started_at == T0 and run.finished_at == T0
    assert run.lease_owner is None
    [attempt] = the_attempts(engine, run_id)
    assert (attempt.status, attempt.http_status, attempt.response_truncated) == ("succeeded", 200, False)
    assert json.loads(attempt.response_excerpt) == {"ok": True}
    assert attempt.response_headers["content-type"] == "application/json"
    assert attempt.duration_ms > 0


def test_5xx_is_retried_with_backoff_until_it_succeeds(engine, registry, ctx, clock, target):
    register(registry, target, "/sequence/retry/500,503,200")
    run_id = create_manual_run(engine, "nightly-report", T0)

    assert execute_run(run_id, ctx) == "retrying"
    run = the_run(engine, run_id)
    assert run.next_attempt_at == T0 + timedelta(seconds=2)  # backoff_s=2, no jitter
    assert execute_run(run_id, ctx) == "noop"  # a retrying run is not claimable until it is queued again

    clock.advance(2)
    assert claim_due_retries(engine, clock.now(), batch=10) == [run_id]
    assert execute_run(run_id, ctx) == "retrying"
    assert the_run(engine, run_id).next_attempt_at == T0 + timedelta(seconds=2 + 4)

    clock.advance(4)
    claim_due_retries(engine, clock.now(), batch=10)
    assert execute_run(run_id, ctx) == "succeeded"
    assert [(a.number, a.status, a.http_status) for a in the_attempts(engine, run_id)] == [
        (1, "failed", 500),
        (2, "failed", 503),
        (3, "succeeded", 200),
    ]
    assert [r.headers["X-Mission-Control-Attempt"] for r in target.requests_to("/sequence")] == [
        "1",
        "2",
        "3",
    ]


def test_a_4xx_fails_at_once_without_retry(engine, registry, ctx, target):
    register(registry, target, "/status/404")
    run_id = create_manual_run(engine, "nightly-report", T0)
    assert execute_run(run_id, ctx) == "failed"
    run = the_run(engine, run_id)
    assert (run.reason, run.attempt_count, run.http_status, run.error) == ("client_error", 1, 404, "HTTP 404")


def test_retries_exhausted_fail_the_run(engine, registry, ctx, clock, target):
    register(
        registry,
        target,
        "/status/500",
        retry={"max_attempts": 2, "backoff_s": 1, "backoff_max_s": 1, "jitter": 0},
    )
    run_id = create_manual_run(engine, "nightly-report", T0)
    assert execute_run(run_id, ctx) == "retrying"
    clock.advance(1)
    claim_due_retries(engine, clock.now(), batch=10)
    assert execute_run(run_id, ctx) == "failed"
    assert (the_run(engine, run_id).reason, the_run(engine, run_id).attempt_count) == ("retries_exhausted", 2)


def test_429_honours_retry_after(engine, registry, ctx, target):
    register(registry, target, "/status/429?retry_after=7")
    run_id = create_manual_run(engine, "nightly-report", T0)
    assert execute_run(run_id, ctx) == "retrying"
    assert the_run(engine, run_id).next_attempt_at == T0 + timedelta(seconds=7)


def test_a_refused_connection_is_retried(engine, registry, ctx):
    from tests.conftest import free_port

    registry.put(job_spec(target={"url": f"http://127.0.0.1:{free_port()}/"}))
    run_id = create_manual_run(engine, "nightly-report", T0)
    assert execute_run(run_id, ctx) == "retrying"
    [attempt] = the_attempts(engine, run_id)
    assert attempt.status == "failed"
    assert attempt.error_class == "ConnectionError"
    assert "refused" in attempt.error_message.lower()


def test_redirects_are_not_followed(engine, registry, ctx, target):
    register(registry, target, "/redirect")
    run_id = create_manual_run(engine, "nightly-report", T0)
    assert execute_run(run_id, ctx) == "failed"
    assert the_run(engine, run_id).reason == "redirect"
    [attempt] = the_attempts(engine, run_id)
    assert attempt.response_headers["location"] == "/ok"
    assert target.requests_to("/ok") == []


def test_a_huge_answer_is_kept_only_up_to_the_excerpt_size(engine, registry, ctx, target):
    register(registry, target, "/big/50000000")
    run_id = create_manual_run(engine, "nightly-report", T0)
    assert execute_run(run_id, ctx) == "succeeded"
    [attempt] = the_attempts(engine, run_id)
    assert attempt.response_truncated is True
    assert len(attempt.response_excerpt) <= 1024


@pytest.mark.parametrize("path", ["/never", "/trickle-headers/10", "/trickle-body/30"])
def test_a_silent_or_trickling_target_times_out_within_the_hard_limit(engine, registry, ctx, target, path):
    register(registry, target, path, timeout_s=1.0, retry={"max_attempts": 1})
    run_id = create_manual_run(engine, "nightly-report", T0)
    started = time.monotonic()
    assert execute_run(run_id, ctx) == "timed_out"
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 1.0, f"the attempt held its thread for {elapsed:.2f} s"
    [attempt] = the_attempts(engine, run_id)
    assert (attempt.status, attempt.error_class) == ("timed_out", "Timeout")


def test_a_run_past_its_expected_runtime_is_marked_slow(engine, registry, ctx, target):
    register(registry, target, "/sleep/0.3", expected_runtime_s=0.1)
    run_id = create_manual_run(engine, "nightly-report", T0)
    assert execute_run(run_id, ctx) == "succeeded"
    assert the_run(engine, run_id).slow is True


def test_a_duplicate_delivery_is_a_no_op_while_the_lease_holds(engine, registry, ctx, target):
    register(registry, target, "/ok")
    run_id = create_manual_run(engine, "nightly-report", T0)
    hold_lease(engine, run_id, owner="other")
    assert execute_run(run_id, ctx) == "noop"
    assert target.requests == []


def test_an_expired_lease_is_taken_over_and_the_lost_attempt_closed(engine, registry, ctx, clock, target):
    register(registry, target, "/ok")
    run_id = create_manual_run(engine, "nightly-report", T0)
    hold_lease(engine, run_id, owner="dead")
    with engine.begin() as conn:
        conn.execute(attempts.insert().values(run_id=run_id, number=1, status="running", started_at=T0))
    clock.advance(41)
    assert execute_run(run_id, ctx) == "succeeded"
    assert [(a.number, a.status, a.error_class) for a in the_attempts(engine, run_id)] == [
        (1, "failed", "WorkerLost"),
        (2, "succeeded", None),
    ]


def test_a_lost_last_attempt_fails_the_run_as_worker_lost(engine, registry, ctx, clock, target):
    register(registry, target, "/ok", retry={"max_attempts": 1})
    run_id = create_manual_run(engine, "nightly-report", T0)
    hold_lease(engine, run_id, owner="dead")
    clock.advance(41)
    assert execute_run(run_id, ctx) == "failed"
    assert the_run(engine, run_id).reason == "worker_lost"
    assert target.requests == []


def test_a_run_of_a_deleted_job_is_cancelled(engine, registry, ctx, target):
    register(registry, target, "/ok")
    run_id = create_manual_run(engine, "nightly-report", T0)
    registry.delete("nightly-report")
    assert execute_run(run_id, ctx) == "cancelled"
    assert (the_run(engine, run_id).reason, the_run(engine, run_id).job_name) == (
        "job_deleted",
        "nightly-report",
    )


def test_a_scheduled_run_of_a_paused_job_is_skipped_but_a_manual_one_runs(engine, registry, ctx, target):
    register(registry, target, "/ok", concurrency="allow")
    scheduled = create_manual_run(engine, "nightly-report", T0)
    with engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == scheduled).values(trigger="schedule"))
    registry.set_enabled("nightly-report", False)
    assert execute_run(scheduled, ctx) == "skipped"
    assert the_run(engine, scheduled).reason == "paused"
    manual = create_manual_run(engine, "nightly-report", T0 + timedelta(seconds=1))
    assert execute_run(manual, ctx) == "succeeded"


def test_a_fired_one_shot_is_disabled_but_its_run_still_goes_out(engine, registry, ctx, target):
    from mission_control.scheduling.claiming import claim_due_slots

    register(registry, target, "/ok", schedule={"at": (T0 + timedelta(seconds=1)).isoformat()})
    [run_id] = claim_due_slots(engine, T0 + timedelta(seconds=1), batch=10, grace_s=15).run_ids
    assert not registry.get("nightly-report").spec.enabled
    assert execute_run(run_id, ctx) == "succeeded"


def test_a_worker_engine_without_pre_ping_survives_its_connections_being_killed(postgres, clock, target):
    """PostgreSQL restarted under a worker: its pooled connections are dead, the next run still works.

    Its own PostgreSQL database (terminating server backends has no SQLite counterpart).
    """
    from mission_control.db import migrate
    from mission_control.db.engine import make_engine

    url = postgres.create("prepg")
    engine = make_engine(url)
    migrate.upgrade(engine)
    worker_engine = make_engine(url, pool_pre_ping=False)
    settings = Settings(admin_token=ADMIN_TOKEN, signing_secret=SIGNING_SECRET)
    session = make_session()
    worker_ctx = ExecutionContext(engine=worker_engine, clock=clock, settings=settings, session=session)
    try:
        register(JobRegistry(engine, clock), target, "/ok")
        first = create_manual_run(engine, "nightly-report", T0)
        assert execute_run(first, worker_ctx) == "succeeded"  # the pool now holds a connection
        with engine.connect() as conn:
            killed = conn.exec_driver_sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).scalar()
        assert killed >= 1

        second = create_manual_run(engine, "nightly-report", T0 + timedelta(seconds=1))
        assert execute_run(second, worker_ctx) == "succeeded"
        assert [a.status for a in the_attempts(engine, second)] == ["succeeded"]
    finally:
        session.close()
        worker_engine.dispose()
        engine.dispose()


def test_retries_exhausted_open_job_failed_and_the_next_success_resolves_it(
    engine, registry, target, clock, ctx, notified
):
    register(registry, target, "/sequence/alerting/500,500,200", retry={"max_attempts": 1})
    first = create_manual_run(engine, "nightly-report", T0)
    assert execute_run(first, ctx) == "failed"
    assert [(c.kind, c.event) for c in notified] == [("job_failed", "opened")]
    second = create_manual_run(engine, "nightly-report", T0 + timedelta(seconds=1))
    assert execute_run(second, ctx) == "failed"
    assert len(notified) == 1  # still the same open alert, counted
    [alert] = list_alerts(engine, AlertFilter(state="open"))
    assert alert["occurrences"] == 2 and alert["details"]["run_id"] == second

    clock.advance(60)
    third = create_manual_run(engine, "nightly-report", T0 + timedelta(seconds=2))
    assert execute_run(third, ctx) == "succeeded"
    assert [(c.kind, c.event) for c in notified][-1] == ("job_failed", "resolved")


def test_a_slow_run_opens_job_slow(engine, registry, target, clock, ctx, notified):
    register(registry, target, "/sleep/0.3", expected_runtime_s=0.1, timeout_s=5)
    run_id = create_manual_run(engine, "nightly-report", T0)
    assert execute_run(run_id, ctx) == "succeeded"
    assert [(c.kind, c.event) for c in notified] == [("job_slow", "opened")]
    [alert] = list_alerts(engine, AlertFilter(kind="job_slow"))
    assert "expected runtime of 0.1 s" in alert["message"]


def test_every_executor_log_line_names_its_run_and_job(engine, registry, ctx, target, caplog):
    register(registry, target, "/status/500", retry={"max_attempts": 1})
    run_id = create_manual_run(engine, "nightly-report", T0)
    with caplog.at_level("INFO", logger="mission_control.execution.executor"):
        execute_run(run_id, ctx)
    lines = [r for r in caplog.records if r.name == "mission_control.execution.executor"]
    assert len(lines) >= 2
    assert all((r.run_id, r.job) == (run_id, "nightly-report") for r in lines)
    assert all(target.url not in r.getMessage() for r in lines)  # URLs (and their query strings) stay out


def test_a_scheduled_success_resolves_job_missed_but_a_manual_one_does_not(
    engine, registry, ctx, target, notified
):
    from mission_control.db.alerts import AlertKind, open_alert
    from mission_control.scheduling.claiming import claim_due_slots

    register(registry, target, "/ok", schedule={"every_s": 60})
    with engine.begin() as conn:
        open_alert(conn, AlertKind.JOB_MISSED, "nightly-report", T0, "missed 3 slots")
    manual = create_manual_run(engine, "nightly-report", T0)
    assert execute_run(manual, ctx) == "succeeded"
    assert list_alerts(engine, AlertFilter(state="open"))  # a manual run says nothing about the schedule

    [scheduled] = claim_due_slots(engine, T0 + timedelta(seconds=60), batch=10, grace_s=15).run_ids
    assert execute_run(scheduled, ctx) == "succeeded"
    assert [(c.kind, c.event) for c in notified] == [("job_missed", "resolved")]
    assert list_alerts(engine, AlertFilter(state="open")) == []


def test_a_late_scheduled_success_leaves_job_missed_open(engine, registry, ctx, target, clock):
    """A run drained from a backlog proves nothing about the schedule: only an on-time one resolves."""
    from mission_control.db.alerts import AlertKind, open_alert
    from mission_control.scheduling.claiming import claim_due_slots

    register(registry, target, "/ok", schedule={"every_s": 60})
    with engine.begin() as conn:
        open_alert(conn, AlertKind.JOB_MISSED, "nightly-report", T0, "a slot has not started")
    [late] = claim_due_slots(engine, T0 + timedelta(seconds=60), batch=10, grace_s=15).run_ids
    clock.advance(60 + 16)  # the worker picks it up 16 s after its slot, past the 15 s grace
    assert execute_run(late, ctx) == "succeeded"
    assert [a["kind"] for a in list_alerts(engine, AlertFilter(state="open"))] == ["job_missed"]


def runs_counted(status: str) -> float:
    return REGISTRY.get_sample_value("mc_runs_total", {"status": status}) or 0.0


def test_a_run_is_counted_once_by_the_status_it_ends_in_not_per_attempt(engine, registry, ctx, clock, target):
    register(
        registry,
        target,
        "/status/500",
        retry={"max_attempts": 3, "backoff_s": 1, "backoff_max_s": 1, "jitter": 0},
    )
    before = {status: runs_counted(status) for status in ("failed", "retrying")}
    run_id = create_manual_run(engine, "nightly-report", T0)
    for _ in range(2):
        assert execute_run(run_id, ctx) == "retrying"
        clock.advance(1)
        claim_due_retries(engine, clock.now(), batch=10)
    assert execute_run(run_id, ctx) == "failed"

    assert runs_counted("failed") - before["failed"] == 1  # three attempts, one run
    assert runs_counted("retrying") == before["retrying"] == 0
    families = {metric.name: metric for metric in REGISTRY.collect()}
    assert {name for sample in families["mc_runs"].samples for name in sample.labels} == {"status"}


def test_per_job_series_are_off_by_default_and_bounded_when_asked_for(monkeypatch):
    from mission_control.base import instruments

    monkeypatch.setattr(instruments, "_jobs_labelled", set())

    def job_runs(job: str) -> float | None:
        return REGISTRY.get_sample_value("mc_job_runs_total", {"job_name": job, "status": "skipped"})

    instruments.count_run("unlabelled", "skipped")
    assert job_runs("unlabelled") is None

    before = job_runs("_other") or 0.0
    for job in ("a", "b", "c", "d", "a"):
        instruments.count_run(job, "skipped", job_series=2)
    assert (job_runs("a"), job_runs("b")) == (2.0, 1.0)
    assert job_runs("c") is None and job_runs("d") is None
    assert job_runs("_other") - before == 2
