"""End to end: real beat and worker processes, PostgreSQL, a private Redis and a local HTTP target."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from mission_control.db.tables import jobs
from mission_control.jobs.registry import JobRegistry
from tests.conftest import SIGNING_SECRET, wait_until
from tests.e2e.conftest import attempts_of, runs_of
from tests.factories import job_spec

pytestmark = pytest.mark.slow

FAST_RETRY = {"max_attempts": 2, "backoff_s": 0.5, "backoff_max_s": 1, "jitter": 0}


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0).isoformat()


def terminal(engine, job: str) -> list:
    return [run for run in runs_of(engine, job) if run.status not in ("queued", "running", "retrying")]


def test_jobs_fire_on_time_signed_retried_timed_out_and_recorded(stack, e2e_engine, target):
    registry = JobRegistry(e2e_engine)
    put = lambda name, path, **kw: registry.put(  # noqa: E731
        job_spec(name, target={"url": f"{target.url}{path}", "body": {"job": name}}, **kw)
    )
    put("tick", "/ok", schedule={"every_s": 1}, concurrency="allow")
    put("flaky", "/sequence/flaky/500,200", schedule={"at": in_seconds(2)}, retry=FAST_RETRY)
    put("missing", "/status/404", schedule={"at": in_seconds(2)}, retry=FAST_RETRY)
    put("silent", "/never", schedule={"at": in_seconds(2)}, timeout_s=1, retry={"max_attempts": 1})
    put("overlap", "/sleep/2.5", schedule={"every_s": 1}, concurrency="forbid", timeout_s=5)
    put("paused", "/ok", schedule={"every_s": 1}, enabled=False)
    stack.worker()
    stack.beat()

    ticks = target.wait_for(4, "/ok", timeout_s=20)
    for request in ticks:
        assert request.signed_by(SIGNING_SECRET, now=time.time())
        assert request.headers["X-Mission-Control-Job"] == "tick"
        assert request.headers["Idempotency-Key"] == request.headers["X-Mission-Control-Run"]
    # Each request is a different run, each run a different one-second slot (lag is a benchmark figure).
    slots = {run.id: run.scheduled_for for run in runs_of(e2e_engine, "tick")}
    fired = [slots[int(request.headers["X-Mission-Control-Run"])] for request in ticks]
    assert len(set(fired)) == len(fired)
    assert all(slot.microsecond == 0 for slot in fired)

    wait_until(
        lambda: terminal(e2e_engine, "flaky") and terminal(e2e_engine, "missing"), 20, "one-shots to end"
    )
    wait_until(lambda: terminal(e2e_engine, "silent"), 20, "the silent target to time out")

    [flaky] = runs_of(e2e_engine, "flaky")
    assert (flaky.status, flaky.attempt_count) == ("succeeded", 2)
    assert [a.http_status for a in attempts_of(e2e_engine, flaky.id)] == [500, 200]
    [missing] = runs_of(e2e_engine, "missing")
    assert (missing.status, missing.reason, missing.attempt_count) == ("failed", "client_error", 1)
    [silent] = runs_of(e2e_engine, "silent")
    assert silent.status == "timed_out"
    [attempt] = attempts_of(e2e_engine, silent.id)
    assert attempt.duration_ms < 2000  # timeout_s + 1 s
    assert not registry.get("flaky").spec.enabled  # one-shots disable themselves after firing

    wait_until(lambda: len(runs_of(e2e_engine, "overlap")) >= 4, 20, "overlapping slots")
    statuses = [(run.status, run.reason) for run in runs_of(e2e_engine, "overlap")]
    assert ("skipped", "overlap") in statuses
    assert len(target.requests_to("/sleep")) <= 1 + len(statuses) // 2
    assert runs_of(e2e_engine, "paused") == [] and not any(
        r.headers.get("X-Mission-Control-Job") == "paused" for r in target.requests
    )


def test_pause_and_resume_take_effect_within_a_second(stack, e2e_engine, target):
    registry = JobRegistry(e2e_engine)
    registry.put(
        job_spec("tick", target={"url": f"{target.url}/ok"}, schedule={"every_s": 1}, concurrency="allow")
    )
    stack.worker()
    stack.beat()
    target.wait_for(2, "/ok", timeout_s=20)

    registry.set_enabled("tick", False)
    paused_at = time.time()
    time.sleep(2.5)  # the absence of requests can only be observed over an interval
    assert all(r.received_at < paused_at + 1.0 for r in target.requests_to("/ok"))

    registry.set_enabled("tick", True)
    resumed_at = time.time()
    fresh = lambda: [r for r in target.requests_to("/ok") if r.received_at > resumed_at]  # noqa: E731
    wait_until(lambda: len(fresh()) >= 1, 5, "the resumed job to fire")
    assert fresh()[0].received_at - resumed_at < 3.0  # next slot (<= 1 s) + a tick (<= 1 s) + the request


def test_beat_down_for_two_minutes_follows_each_jobs_misfire_policy(stack, e2e_engine, target):
    registry = JobRegistry(e2e_engine)
    for name, misfire in (("catch-up", "run_once"), ("skipper", "skip")):
        registry.put(
            job_spec(name, target={"url": f"{target.url}/ok"}, schedule={"every_s": 10}, misfire=misfire)
        )
    # What two minutes without a beat leaves behind: next_run_at two minutes in the past.
    two_minutes_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    aligned = two_minutes_ago - timedelta(seconds=two_minutes_ago.second % 10)
    with e2e_engine.begin() as conn:
        conn.execute(update(jobs).values(next_run_at=aligned))
    stack.worker()
    stack.beat()

    catch_ups = lambda: [r for r in terminal(e2e_engine, "catch-up") if r.trigger == "catch_up"]  # noqa: E731
    wait_until(lambda: catch_ups() and runs_of(e2e_engine, "skipper"), 20, "the first tick")
    [catch_up] = catch_ups()
    assert catch_up.trigger == "catch_up"
    assert 10 <= catch_up.missed_count <= 12
    assert catch_up.status == "succeeded"
    skipped = runs_of(e2e_engine, "skipper")[0]
    assert (skipped.status, skipped.reason) == ("skipped", "misfire")
    assert 10 <= skipped.missed_count <= 12
    # Both are back on schedule: the next slot is in the future.
    assert registry.get("catch-up").next_run_at > datetime.now(UTC) - timedelta(seconds=1)
