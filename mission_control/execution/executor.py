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
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import requests
from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from mission_control.base import instruments as metrics
from mission_control.base.clock import Clock
from mission_control.base.config import Settings
from mission_control.db.alerts import AlertChange, AlertKind, open_alert, resolve_alerts
from mission_control.db.outage import retry_while_unreachable
from mission_control.db.tables import attempts, jobs, runs
from mission_control.execution import run_transitions
from mission_control.jobs.registry import spec_columns, spec_from_row
from mission_control.jobs.retry import RetryPolicy
from mission_control.jobs.runstate import AttemptStatus, Reason, RunStatus, Trigger
from mission_control.jobs.secrets import open_headers
from mission_control.jobs.spec import JobSpec, MissionStart
from mission_control.outbound.secretbox import SecretBox, SecretUnreadable
from mission_control.outbound.sender import HttpOutcome, send
from mission_control.outbound.service_secrets import SigningKeys, signing_keys
from mission_control.outbound.signing import signature_headers

log = logging.getLogger(__name__)
T = TypeVar("T")

USER_AGENT = "mission-control"
WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class ExecutionContext:
    """What executing a run needs from its process; one per worker process, shared by its threads."""

    engine: Engine
    clock: Clock
    settings: Settings
    session: requests.Session
    # Hands alert changes (opened, resolved) to the notification channels once committed.
    notify: Callable[[Sequence[AlertChange]], object] = lambda changes: None
    # Sends missions a job started to the workers (should a message be lost, their wake_at catches it).
    enqueue_missions: Callable[[Sequence[str]], object] = lambda mission_ids: None

    # The secrets each service's requests are signed with (its own, else MC_SIGNING_SECRET). A worker
    # shares one per process (Runtime), so its cache serves every run; built here when not given.
    signing_keys: SigningKeys | None = None
    # Opens the sealed values of secret headers (MC_SECRET_KEY); its cache makes that one decryption
    # per value and process, not one per attempt. Built from the settings when not given.
    secret_box: SecretBox | None = None

    def __post_init__(self) -> None:
        if self.signing_keys is None:
            object.__setattr__(self, "signing_keys", signing_keys(self.engine, self.clock, self.settings))
        if self.secret_box is None and (self.settings.encryption_keys or self.settings.signing_secret):
            object.__setattr__(self, "secret_box", SecretBox.from_settings(self.settings))

    @property
    def signing_secret(self) -> str:
        assert self.settings.signing_secret, "workers refuse to start without MC_SIGNING_SECRET"
        return self.settings.signing_secret

    def secrets_for(self, service: str) -> list[str]:
        assert self.signing_keys is not None
        return self.signing_keys.for_service(service)


@dataclass(frozen=True)
class _Claim:
    run_id: int
    job_name: str
    attempt: int
    lease_owner: str
    started_at: datetime
    spec: JobSpec
    trigger: str
    scheduled_for: datetime


def execute_run(run_id: int, ctx: ExecutionContext) -> str:
    """Run one attempt of ``run_id``; returns the run's status afterwards, or "noop" if not ours."""
    claim = _once_more_if_disconnected(lambda: _claim(run_id, ctx), run_id)
    if isinstance(claim, str):
        return claim
    if claim.attempt == 1 and claim.trigger == Trigger.SCHEDULE:
        metrics.FIRING_LAG_SECONDS.observe((claim.started_at - claim.scheduled_for).total_seconds())
    target = claim.spec.target
    if target.mission is not None:
        outcome = start_mission_for_run(
            claim.job_name, run_id, target.mission, ctx, service=claim.spec.service
        )
        return _record(claim, lambda: _finish(claim, outcome, ctx), ctx)
    assert target.url is not None
    body = _request_body(claim.spec)
    try:
        headers = _request_headers(claim, body, ctx)
    except SecretUnreadable as exc:  # a key dropped from MC_SECRET_KEY too soon: fails, not retried
        log.error("run %s of %s: %s", run_id, claim.job_name, exc)
        unreadable = HttpOutcome(
            kind="error", duration_ms=0.0, error_class="SecretUnreadable", error_message=str(exc)
        )
        return _record(claim, lambda: _finish(claim, unreadable, ctx), ctx)
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
    return _record(claim, lambda: _finish(claim, outcome, ctx), ctx)


def start_mission_for_run(
    job: str, run_id: int, start: MissionStart, ctx: ExecutionContext, *, service: str | None = None
) -> HttpOutcome:
    """Start the mission a job's run stands for, answered as ``POST /api/v1/missions`` would answer.

    ``service`` (the job's) is recorded as the service that started the mission, so that service's
    bound tokens see and act on it as on the job's runs.

    The mission's id is ``<job>:<run id>``, so a retried attempt of the same run (a worker lost after
    the mission was created) finds its mission instead of starting a second: that counts as success.
    A missing definition or an input its schema refuses fails the run at once (422, as over HTTP).
    """
    from mission_control.missions.machine import PayloadInvalid
    from mission_control.missions.store import DefinitionNotFound, DuplicateMission, MissionStore

    started = time.monotonic()
    store = MissionStore(ctx.engine, ctx.clock, requeue_after_s=ctx.settings.requeue_after_s)
    mission_id = f"{job}:{run_id}"
    status, answer = 201, {}
    try:
        doc = store.start(start.definition, start.input, mission_id, service=service)
        answer = {"id": mission_id, "status": doc["status"]}
        if doc["status"] == "running":
            ctx.enqueue_missions([mission_id])
    except DuplicateMission:
        status, answer = 200, {"id": mission_id, "status": store.get(mission_id)["status"]}
    except DefinitionNotFound:
        status, answer = 422, {"error": f"no mission definition named {start.definition!r}"}
    except PayloadInvalid as exc:
        status, answer = 422, {"error": str(exc)}  # bounded by PayloadInvalid: it quotes the input
    except DBAPIError as exc:  # the database failed us: retried per the job's policy
        return HttpOutcome(
            kind="error",
            duration_ms=round((time.monotonic() - started) * 1000, 3),
            error_class=type(exc).__name__,
            error_message="the database refused the mission's start; it is retried",
        )
    except Exception as exc:
        # Anything else came from the definition or the input (user data): its text is not copied
        # into the run, where anyone who may read runs would see it; the worker's log has the class.
        log.warning("run %s: starting mission %s failed: %s", run_id, mission_id, type(exc).__name__)
        status, answer = 422, {"error": f"the mission could not be started ({type(exc).__name__})"}
    return HttpOutcome(
        kind="response",
        duration_ms=round((time.monotonic() - started) * 1000, 3),
        status=status,
        excerpt=json.dumps(answer),
    )


def _record(claim: _Claim, finish: Callable[[], str], ctx: ExecutionContext) -> str:
    """Record an attempt's outcome, waiting out a database outage while the run's lease is ours.

    Giving up at the first error would leave the run ``running`` until its lease expires and the
    reconciler calls the attempt lost (and, for a job that forbids overlap, skip every slot between).
    """
    lease_ends = claim.started_at + timedelta(seconds=claim.spec.timeout_s + ctx.settings.lease_margin_s)
    return retry_while_unreachable(
        lambda: _once_more_if_disconnected(finish, claim.run_id, claim.job_name),
        budget_s=(lease_ends - ctx.clock.now()).total_seconds(),
        what=f"record attempt {claim.attempt} of run {claim.run_id}",
        extra={"run_id": claim.run_id, "job": claim.job_name, "attempt": claim.attempt},
    )


def _once_more_if_disconnected(action: Callable[[], T], run_id: int, job: str | None = None) -> T:
    """Retry a transition once if its pooled connection turned out dead (PostgreSQL restarted).

    Worker engines skip the pool's pre-ping, a round trip per checkout; SQLAlchemy instead
    invalidates the whole pool when a statement finds a dead connection, so one retry gets a fresh
    one. Both transitions are conditional UPDATEs, so a retry after an unknown commit changes nothing.
    """
    try:
        return action()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning(
            "run %s: database connection lost; retrying on a new connection",
            run_id,
            extra={"run_id": run_id, "job": job},
        )
        return action()


def _claim(run_id: int, ctx: ExecutionContext) -> _Claim | str:
    now = ctx.clock.now()
    lease_owner = f"{WORKER_NAME}:{uuid.uuid4().hex[:12]}"
    if ctx.engine.dialect.name == "postgresql":
        claim = _claim_in_one_statement(run_id, lease_owner, now, ctx)
        if claim is not None:
            return claim
        # Declined: a duplicate delivery, a run another worker holds, a paused or deleted job. The
        # general path below tells these apart (and takes a run that changed in between).
    return _claim_generic(run_id, lease_owner, now, ctx)


def _claim_in_one_statement(
    run_id: int, lease_owner: str, now: datetime, ctx: ExecutionContext
) -> _Claim | str | None:
    with ctx.engine.begin() as conn:
        row = conn.execute(
            run_transitions.CLAIM_IN_ONE,
            run_transitions.params(
                run_id=run_id,
                now=now,
                lease_owner=lease_owner,
                lease_margin_s=ctx.settings.lease_margin_s,
                worker=WORKER_NAME,
            ),
        ).first()
        if row is None:
            return None
        if row.attempt_count > row.max_attempts:
            # The worker holding the last allowed attempt died; nothing is left to try.
            _end_run(conn, run_id, lease_owner, now, RunStatus.FAILED, Reason.WORKER_LOST, "worker lost")
            metrics.count_run(row.job_name, RunStatus.FAILED.value, ctx.settings.metrics_job_series)
            return RunStatus.FAILED.value
    spec = spec_from_row(row._mapping, "spec_")
    return _Claim(
        run_id,
        row.job_name,
        row.attempt_count,
        lease_owner,
        row.started_at,
        spec,
        row.trigger,
        row.scheduled_for,
    )


def _claim_generic(run_id: int, lease_owner: str, now: datetime, ctx: ExecutionContext) -> _Claim | str:
    with ctx.engine.begin() as conn:
        row = conn.execute(
            select(runs, jobs.c.name.label("current_name"), jobs.c.paused_at, *spec_columns("spec_"))
            .select_from(runs.outerjoin(jobs, jobs.c.id == runs.c.job_id))
            .where(runs.c.id == run_id)
        ).first()
        if row is None:
            log.warning("run %s: no such run (pruned, or another database)", run_id, extra={"run_id": run_id})
            return "noop"
        claimable = row.status == RunStatus.QUEUED or (
            row.status == RunStatus.RUNNING and row.leased_until is not None and row.leased_until < now
        )
        if not claimable:
            return "noop"  # a duplicate delivery, a run another worker holds, or one already finished
        if row.current_name is None:
            return _end_before_start(
                conn, row, now, RunStatus.CANCELLED, Reason.JOB_DELETED, ctx.settings.metrics_job_series
            )
        spec = spec_from_row(row._mapping, "spec_")
        if row.paused_at is not None and row.trigger != Trigger.MANUAL:
            return _end_before_start(
                conn, row, now, RunStatus.SKIPPED, Reason.PAUSED, ctx.settings.metrics_job_series
            )

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
            _end_run(conn, run_id, lease_owner, now, RunStatus.FAILED, Reason.WORKER_LOST, "worker lost")
            metrics.count_run(row.job_name, RunStatus.FAILED.value, ctx.settings.metrics_job_series)
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
    return _Claim(
        run_id,
        row.job_name,
        attempt,
        lease_owner,
        row.started_at or now,
        spec,
        row.trigger,
        row.scheduled_for,
    )


def _finish(claim: _Claim, outcome: HttpOutcome, ctx: ExecutionContext) -> str:
    now = ctx.clock.now()
    spec = claim.spec
    attempt_status, retryable, fail_reason = _classify(outcome)
    slow = spec.expected_runtime_s is not None and outcome.duration_ms > spec.expected_runtime_s * 1000
    policy = RetryPolicy(**spec.retry.model_dump())
    error = outcome.error_message or (
        f"HTTP {outcome.status}" if attempt_status != AttemptStatus.SUCCEEDED else None
    )

    delay_s: float | None = None
    reason: Reason | None = None
    finished_at: datetime | None = now
    next_attempt_at: datetime | None = None
    if attempt_status == AttemptStatus.SUCCEEDED:
        status, error = RunStatus.SUCCEEDED, None
    elif retryable and policy.can_retry(claim.attempt):
        delay_s = policy.delay_for(claim.attempt, retry_after_s=outcome.retry_after_s)
        status, finished_at, next_attempt_at = RunStatus.RETRYING, None, now + timedelta(seconds=delay_s)
    elif attempt_status == AttemptStatus.TIMED_OUT:
        status = RunStatus.TIMED_OUT
    else:
        status, reason = RunStatus.FAILED, fail_reason or Reason.RETRIES_EXHAUSTED
    params = run_transitions.params(
        run_id=claim.run_id,
        lease_owner=claim.lease_owner,
        attempt=claim.attempt,
        now=now,
        # the attempt
        attempt_status=attempt_status.value,
        duration_ms=outcome.duration_ms,
        http_status=outcome.status,
        response_headers=outcome.headers or None,
        response_excerpt=outcome.excerpt,
        response_truncated=outcome.truncated,
        error_class=outcome.error_class,
        error_message=outcome.error_message,
        # the run
        status=status.value,
        reason=reason.value if reason else None,
        finished_at=finished_at,
        next_attempt_at=next_attempt_at,
        error=error,
        slow=slow,
    )
    with ctx.engine.begin() as conn:
        if ctx.engine.dialect.name == "postgresql":
            row = conn.execute(run_transitions.FINISH_IN_ONE, params).first()
            owned, alerting = row is not None, bool(row and row.alerting)
        else:
            conn.execute(run_transitions.FINISH_ATTEMPT, params)
            owned = alerting = conn.execute(run_transitions.FINISH_RUN, params).rowcount == 1
        changes = (
            _job_alerts(conn, claim, status, slow, error, now, alerting, ctx.settings.misfire_grace_s)
            if owned
            else []
        )
    if changes:
        ctx.notify(changes)
    if status is not RunStatus.RETRYING:
        metrics.count_run(claim.job_name, status.value, ctx.settings.metrics_job_series)
    metrics.ATTEMPT_SECONDS.observe(outcome.duration_ms / 1000)
    _log_outcome(claim, outcome, status.value, lost=not owned, delay_s=delay_s)
    return status.value


def _job_alerts(
    conn: Connection,
    claim: _Claim,
    status: RunStatus,
    slow: bool,
    error: str | None,
    now: datetime,
    alerting: bool,
    grace_s: float,
) -> list[AlertChange]:
    """Open or resolve the job's alerts in the run's own transaction: a run's end and its alert agree."""
    name = claim.job_name
    details = {"job": name, "run_id": claim.run_id, "attempts": claim.attempt}
    # Only a slot that started within the misfire grace shows the schedule is kept again; a late run
    # drained from a backlog resolving job_missed would let it flap open and shut with every run.
    lag_s = (claim.started_at - claim.scheduled_for).total_seconds()
    on_time = claim.trigger == Trigger.SCHEDULE and lag_s <= grace_s
    changes: list[AlertChange | None] = []
    if status in (RunStatus.FAILED, RunStatus.TIMED_OUT):
        text = f"job {name} {status.value.replace('_', ' ')} after {claim.attempt} attempt(s): {error}"
        changes.append(open_alert(conn, AlertKind.JOB_FAILED, name, now, text, details))
    elif status == RunStatus.SUCCEEDED and alerting:
        # Recovery: it succeeded; in time (job_slow); and a slot fired on schedule again (job_missed).
        kinds = [AlertKind.JOB_FAILED]
        kinds += [] if slow else [AlertKind.JOB_SLOW]
        kinds += [AlertKind.JOB_MISSED] if on_time else []
        changes += resolve_alerts(conn, kinds, name, now)
    if slow:
        limit = claim.spec.expected_runtime_s
        text = f"job {name} ran past its expected runtime of {limit:g} s (run {claim.run_id})"
        changes.append(open_alert(conn, AlertKind.JOB_SLOW, name, now, text, details))
    return [change for change in changes if change is not None]


def _classify(outcome: HttpOutcome) -> tuple[AttemptStatus, bool, Reason | None]:
    """(attempt status, retryable?, reason if it fails for good without exhausting retries)."""
    if outcome.kind == "timeout":
        return AttemptStatus.TIMED_OUT, True, None
    if outcome.kind == "connection_error":
        return AttemptStatus.FAILED, True, None
    if outcome.kind == "refused":  # the outbound policy (SSRF guard) would refuse every retry as well
        return AttemptStatus.FAILED, False, Reason.DESTINATION_REFUSED
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


def _end_before_start(
    conn: Connection, row: Any, now: datetime, status: RunStatus, reason: Reason, job_series: int
) -> str:
    conn.execute(
        update(runs)
        .where(runs.c.id == row.id, runs.c.status == row.status, runs.c.attempt_count == row.attempt_count)
        .values(status=status, reason=reason, finished_at=now, lease_owner=None, leased_until=None)
    )
    metrics.count_run(row.job_name, status.value, job_series)
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
    target = claim.spec.target
    assert target.url is not None
    headers = {"User-Agent": USER_AGENT}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if target.headers:
        assert ctx.secret_box is not None, "workers refuse to start without MC_SIGNING_SECRET"
        headers.update(open_headers(target, ctx.secret_box))
    idempotency_key = str(claim.run_id)
    headers.update(
        {
            "Idempotency-Key": idempotency_key,
            "X-Mission-Control-Job": claim.job_name,
            "X-Mission-Control-Run": str(claim.run_id),
            "X-Mission-Control-Attempt": str(claim.attempt),
        }
    )
    headers.update(
        signature_headers(
            ctx.secrets_for(claim.spec.service),
            target.signature,
            method=target.method,
            url=target.url,
            idempotency_key=idempotency_key,
            body=body or b"",
            timestamp=timestamp,
        )
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
