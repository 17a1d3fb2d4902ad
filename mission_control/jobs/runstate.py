"""The states a run moves through, and why it ended where it did.

``queued -> running -> (retrying -> queued -> running)* -> terminal``. Every run ends in a terminal
status (DESIGN.md invariant 3); ``skipped`` and ``failed`` always carry a reason.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


UNFINISHED = frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.RETRYING})
TERMINAL = frozenset(RunStatus) - UNFINISHED


class Trigger(StrEnum):
    SCHEDULE = "schedule"  # a slot fired on time
    CATCH_UP = "catch_up"  # one run standing for slots missed while no scheduler ran (misfire: run_once)
    MANUAL = "manual"  # POST /jobs/{name}/trigger


class Reason(StrEnum):
    OVERLAP = "overlap"  # skipped: the previous run was unfinished and the job forbids overlap
    MISFIRE = "misfire"  # skipped: missed while no scheduler ran, and the job says skip
    PAUSED = "paused"  # skipped: the job was paused after the run was queued
    JOB_DELETED = "job_deleted"  # cancelled: the job was removed before the run started
    CLIENT_ERROR = "client_error"  # failed: a 4xx other than 429, not retried
    REDIRECT = "redirect"  # failed: a 3xx; redirects are not followed
    DESTINATION_REFUSED = "destination_refused"  # failed: the outbound policy denies the target's address
    RETRIES_EXHAUSTED = "retries_exhausted"  # failed: the last allowed attempt failed
    WORKER_LOST = "worker_lost"  # failed: the worker died and no attempt was left


class AttemptStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
