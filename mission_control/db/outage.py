"""Waiting out a database outage for a write that must not be lost.

A worker that has sent a request holds its outcome only in memory; if the database is down when it
comes to record it, giving up leaves the run (or mission step) leased until the lease expires and
then counts it lost. So the write is retried with backoff for as long as the lease lasts; beyond
that the lease is over, the reconciler owns the work, and the error is raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError

log = logging.getLogger(__name__)
T = TypeVar("T")

BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 5.0)


def retry_while_unreachable(
    action: Callable[[], T],
    *,
    budget_s: float,
    what: str,
    extra: Mapping[str, Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``action()``, tried again after each OperationalError until ``budget_s`` would be exceeded."""
    started = time.monotonic()
    failures = 0
    while True:
        try:
            return action()
        except OperationalError as exc:
            wait_s = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
            failures += 1
            if time.monotonic() - started + wait_s >= budget_s:
                raise
            cause = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
            log.warning("cannot %s (%s); retrying in %.1f s", what, cause, wait_s, extra=dict(extra or {}))
            sleep(wait_s)
