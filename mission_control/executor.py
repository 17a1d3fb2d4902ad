"""Executing a run: claim it, send its request, record the attempt, decide what happens next.

The run row is the lock. A worker claims it with a conditional UPDATE that also stamps a lease
(``lease_owner``, ``leased_until``); a duplicate delivery of the same message finds the run already
``running`` under a live lease and does nothing (DESIGN.md invariant 1). The lease outlives the
request's hard deadline by a margin, so a worker that dies mid-attempt is noticed by the reconciler
(or by the broker's redelivery, whichever comes first) and the run is retried or failed
``worker_lost``; it never stays ``running`` (invariant 3). No transaction is open while the request
is in flight.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from mission_control.clock import Clock
from mission_control.config import Settings
from mission_control.db.tables import attempts, jobs, runs
from mission_control.http_trigger import HttpOutcome, send
from mission_control.jobspec import JobSpec
from mission_control.registry import spec_columns, spec_from_row
from mission_control.retry import RetryPolicy
from mission_control.runstate import AttemptStatus, Reason, RunStatus, Trigger
from mission_control.signing import SIGNATURE_HEADER, sign

log = logging.getLogger(__name__)

USER_AGENT = "mission-control"
WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class ExecutionContext:
    """What executing a run needs from its process; one per worker process, shared by its threads."""

    engine: Engine
    clock: Clock
    settings: Settings
    session: requests.Session

    @property
    def signing_secret(self) -> str:
        assert self.settings.signing_secret, "workers refuse to start without MC_SIGNING_SECRET"
        return self.settings.signing_secret


@dataclass(frozen=True)
class _Claim:
    run_id: int
    job_name: str
    attempt: int
    lease_owner: str
    started_at: datetime
    spec: JobSpec


def execute_run(run_id: int, ctx: ExecutionContext) -> str:
    """Run one attempt of ``run_id``; returns the run's status afterwards, or "noop" if not ours."""
    claim = _claim(run_id, ctx)
    if isinstance(claim, str):
        return claim
    body = _request_body(claim.spec)
    headers = _request_headers(claim, body, ctx)
    target = claim.spec.target
    # The URL is not logged: query strings can carry credentials.
    log.info(
        "run %s of %s: attempt %s sending",
        run_id,
        claim.job_name,
        claim.attempt,
        extra={"run_id": run_id, "job": claim.job_name, "attempt": claim.attempt},
    )
    outcome = send(
        ctx.session,
        method=target.method,
        url=target.url,
        headers=headers,
        body=body,
        timeout_s=claim.spec.timeout_s,
        excerpt_bytes=ctx.settings.response_excerpt_bytes,
        now=ctx.clock.now(),
    )
    return _finish(claim, outcome, ctx)


def _claim(run_id: int, ctx: ExecutionContext) -> _Claim | str:
    now = ctx.clock.now()
    with ctx.engine.begin() as conn:
        row = conn.execute(
            select(runs, jobs.c.name.label("current_name"), jobs.c.paused_at, *spec_columns("spec_"))
            .select_from(runs.outerjoin(jobs, jobs.c.id == runs.c.job_id))
            .where(runs.c.id == run_id)
        ).first()
        if row is None:
            log.warning("no such run", extra={"run_id": run_id})
            return "noop"
        claimable = row.status == RunStatus.QUEUED or (
            row.status == RunStatus.RUNNING and row.leased_until is not None and row.leased_until < now
        )
        if not claimable:
            return "noop"  # a duplicate delivery, a run another worker holds, or one already finished
        if row.current_name is None:
            return _end_before_start(conn, row, now, RunStatus.CANCELLED, Reason.JOB_DELETED)
        spec = spec_from_row(row._mapping, "spec_")
        if row.paused_at is not None and row.trigger != Trigger.MANUAL:
            return _end_before_start(conn, row, now, RunStatus.SKIPPED, Reason.PAUSED)

        lease_owner = f"{WORKER_NAME}:{uuid.uuid4().hex[:12]}"
        lease = now + timedelta(seconds=spec.timeout_s + ctx.settings.lease_margin_s)
        claimed = conn.execute(
            update(runs)
            .where(
                runs.c.id == run_id, runs.c.status == row.status, runs.c.attempt_count == row.attempt_count
            )
            .values(
                status=RunStatus.RUNNING,
                lease_owner=lease_owner,
                leased_until=lease,
                attempt_count=runs.c.attempt_count + 1,
                started_at=row.started_at or now,
                next_attempt_at=None,
            )
        )
        if claimed.rowcount != 1:
            return "noop"  # another worker claimed it between our read and our write
        if row.status == RunStatus.RUNNING:
            close_lost_attempts(conn, run_id, now)
        attempt = row.attempt_count + 1
        if attempt > row.max_attempts:
            # The worker holding the last allowed attempt died; nothing is left to try.
            _end_run(
                conn, run_id, lease_owner, now, RunStatus.FAILED, Reason.WORKER_LOST, error="worker lost"
            )
            return RunStatus.FAILED.value
        conn.execute(
            attempts.insert().values(
                run_id=run_id,
                number=attempt,
                status=AttemptStatus.RUNNING,
                started_at=now,
                worker=WORKER_NAME,
            )
        )
    return _Claim(run_id, row.job_name, attempt, lease_owner, row.started_at or now, spec)


def _finish(claim: _Claim, outcome: HttpOutcome, ctx: ExecutionContext) -> str:
    now = ctx.clock.now()
    spec = claim.spec
    attempt_status, retryable, reason = _classify(outcome)
    slow = spec.expected_runtime_s is not None and outcome.duration_ms > spec.expected_runtime_s * 1000
    policy = RetryPolicy(**spec.retry.model_dump())
    error = outcome.error_message or (
        f"HTTP {outcome.status}" if attempt_status != AttemptStatus.SUCCEEDED else None
    )

    with ctx.engine.begin() as conn:
        conn.execute(
            update(attempts)
            .where(attempts.c.run_id == claim.run_id, attempts.c.number == claim.attempt)
            .values(
                status=attempt_status,
                finished_at=now,
                duration_ms=outcome.duration_ms,
                http_status=outcome.status,
                response_headers=outcome.headers or None,
                response_excerpt=outcome.excerpt,
                response_truncated=outcome.truncated,
                error_class=outcome.error_class,
                error_message=outcome.error_message,
            )
        )
        delay_s: float | None = None
        if attempt_status == AttemptStatus.SUCCEEDED:
            changes: dict[str, Any] = {"status": RunStatus.SUCCEEDED, "finished_at": now, "error": None}
        elif retryable and policy.can_retry(claim.attempt):
            delay_s = policy.delay_for(claim.attempt, retry_after_s=outcome.retry_after_s)
            changes = {"status": RunStatus.RETRYING, "next_attempt_at": now + timedelta(seconds=delay_s)}
        elif attempt_status == AttemptStatus.TIMED_OUT:
            changes = {"status": RunStatus.TIMED_OUT, "finished_at": now}
        else:
            changes = {
                "status": RunStatus.FAILED,
                "reason": reason or Reason.RETRIES_EXHAUSTED,
                "finished_at": now,
            }
        changes.setdefault("error", error)
        updated = conn.execute(
            _owned(claim).values(
                **changes,
                lease_owner=None,
                leased_until=None,
                http_status=outcome.status,
                slow=runs.c.slow | slow,
            )
        )
    status = changes["status"].value
    _log_outcome(claim, outcome, status, lost=updated.rowcount != 1, delay_s=delay_s)
    return status


def _classify(outcome: HttpOutcome) -> tuple[AttemptStatus, bool, Reason | None]:
    """(attempt status, retryable?, reason if it fails for good without exhausting retries)."""
    if outcome.kind == "timeout":
        return AttemptStatus.TIMED_OUT, True, None
    if outcome.kind == "connection_error":
        return AttemptStatus.FAILED, True, None
    if outcome.kind == "error" or outcome.status is None:
        return AttemptStatus.FAILED, False, Reason.CLIENT_ERROR
    status = outcome.status
    if 200 <= status < 300:
        return AttemptStatus.SUCCEEDED, False, None
    if status == 429 or status >= 500:
        return AttemptStatus.FAILED, True, None
    if 300 <= status < 400:
        return AttemptStatus.FAILED, False, Reason.REDIRECT
    return AttemptStatus.FAILED, False, Reason.CLIENT_ERROR


def _owned(claim: _Claim) -> Any:
    """An UPDATE of the run that only applies while this attempt still holds the lease."""
    return update(runs).where(
        runs.c.id == claim.run_id,
        runs.c.status == RunStatus.RUNNING,
        runs.c.lease_owner == claim.lease_owner,
    )


def _end_before_start(conn: Connection, row: Any, now: datetime, status: RunStatus, reason: Reason) -> str:
    conn.execute(
        update(runs)
        .where(runs.c.id == row.id, runs.c.status == row.status, runs.c.attempt_count == row.attempt_count)
        .values(status=status, reason=reason, finished_at=now, lease_owner=None, leased_until=None)
    )
    log.info(
        "run %s of %s: %s (%s) before an attempt",
        row.id,
        row.job_name,
        status.value,
        reason.value,
        extra={"run_id": row.id, "job": row.job_name, "run_status": status.value},
    )
    return status.value


def _end_run(
    conn: Connection,
    run_id: int,
    lease_owner: str,
    now: datetime,
    status: RunStatus,
    reason: Reason,
    error: str,
) -> None:
    conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.lease_owner == lease_owner)
        .values(
            status=status, reason=reason, finished_at=now, lease_owner=None, leased_until=None, error=error
        )
    )


def close_lost_attempts(conn: Connection, run_id: int, now: datetime) -> None:
    """Mark attempts left running by a dead worker as failed; the reconciler uses this too."""
    conn.execute(
        update(attempts)
        .where(attempts.c.run_id == run_id, attempts.c.status == AttemptStatus.RUNNING)
        .values(
            status=AttemptStatus.FAILED,
            finished_at=now,
            error_class="WorkerLost",
            error_message="the worker running this attempt stopped before it finished",
        )
    )


def _request_body(spec: JobSpec) -> bytes | None:
    if spec.target.body is None:
        return None
    return json.dumps(spec.target.body, separators=(",", ":"), ensure_ascii=False).encode()


def _request_headers(claim: _Claim, body: bytes | None, ctx: ExecutionContext) -> dict[str, str]:
    timestamp = int(ctx.clock.now().timestamp())
    headers = {"User-Agent": USER_AGENT}
    if body is not None:
        headers["Content-Type"] = "application/json"
    headers.update(claim.spec.target.headers)
    headers.update(
        {
            "Idempotency-Key": str(claim.run_id),
            "X-Mission-Control-Job": claim.job_name,
            "X-Mission-Control-Run": str(claim.run_id),
            "X-Mission-Control-Attempt": str(claim.attempt),
            SIGNATURE_HEADER: sign(ctx.signing_secret, body or b"", timestamp),
        }
    )
    return headers


def _log_outcome(
    claim: _Claim, outcome: HttpOutcome, status: str, *, lost: bool, delay_s: float | None = None
) -> None:
    log.info(
        "run %s of %s: attempt %s %s in %.0f ms -> %s%s%s",
        claim.run_id,
        claim.job_name,
        claim.attempt,
        f"HTTP {outcome.status}" if outcome.status else outcome.error_class,
        outcome.duration_ms,
        status,
        f", next attempt in {delay_s:.1f} s" if delay_s is not None else "",
        " (lease lost to another worker)" if lost else "",
        extra={
            "run_id": claim.run_id,
            "job": claim.job_name,
            "attempt": claim.attempt,
            "run_status": status,
            "http_status": outcome.status,
            "duration_ms": outcome.duration_ms,
            "error_class": outcome.error_class,
            "retry_in_s": delay_s,
            "lease_lost": lost,
        },
    )
