"""Helpers shared by the benchmarks: throwaway databases, bulk job rows, and figure formatting.

The benchmarks must leave nothing behind on a machine other engineers share, so every database is
created here under a unique name and dropped with ``FORCE`` (stray connections from a killed child
must not keep it alive). Job rows are written with SQLAlchemy Core, bypassing ``JobRegistry.put``,
because registering 100,000 jobs one validated transaction at a time would take longer than the
benchmark itself; the rows have exactly the shape ``registry._insert`` writes.
"""

from __future__ import annotations

import os
import resource
import signal
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import psycopg2
from psycopg2 import sql
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from mission_control.db.tables import jobs

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
ADMIN_TOKEN = "x" * 20
SIGNING_SECRET = "y" * 32
DAY_S = 86_400
INSERT_CHUNK = 5_000


def _admin_connection() -> Any:
    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
    conn.autocommit = True  # CREATE/DROP DATABASE refuse to run inside a transaction
    return conn


@contextmanager
def throwaway_database(prefix: str) -> Iterator[str]:
    """Create a uniquely named database, yield its SQLAlchemy URL, and always drop it afterwards."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn = _admin_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    try:
        yield f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        conn = _admin_connection()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        finally:
            conn.close()


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so ``finally`` blocks still drop databases and stop processes."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def job_template(url: str, every_s: int, concurrency: str = "forbid") -> dict[str, Any]:
    """The spec columns of one job, produced by the real JobSpec so the stored JSON has its shape.

    Imported here, not at the top: a beat never loads pydantic's models, so neither may the process
    whose RSS stands for the beat's.
    """
    from mission_control.jobs.spec import JobSpec

    spec = JobSpec.model_validate(
        {
            "name": "template",
            "service": "bench",
            "target": {"url": url},
            "schedule": {"every_s": every_s},
            "concurrency": concurrency,
        }
    )
    return spec.model_dump(mode="json")


def insert_jobs(
    engine: Engine,
    count: int,
    next_run_at: Sequence[datetime] | datetime,
    *,
    template: dict[str, Any],
    prefix: str = "job",
    start: int = 0,
) -> None:
    """Insert ``count`` jobs named ``{prefix}-{i}`` in chunks, so memory stays flat at any ``count``.

    ``next_run_at`` is one instant for every job or one per job.
    """
    now = datetime.now(UTC)
    for low in range(0, count, INSERT_CHUNK):
        rows = []
        for i in range(low, min(low + INSERT_CHUNK, count)):
            due = next_run_at if isinstance(next_run_at, datetime) else next_run_at[i]
            rows.append(
                {
                    **template,
                    "name": f"{prefix}-{start + i}",
                    "next_run_at": due,
                    "paused_at": None,
                    "revision": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        with engine.begin() as conn:
            conn.execute(insert(jobs), rows)


def idle_and_overdue(n: int, k: int, now: datetime) -> list[datetime]:
    """``next_run_at`` for N jobs of which the first K are overdue by one second, the rest a day away.

    One second late is well inside the misfire grace (15 s), so each overdue job claims as a normal,
    timely slot, like a beat that is merely busy, not one that was down.
    """
    overdue = now - timedelta(seconds=1)
    later = now + timedelta(seconds=DAY_S)
    return [overdue if i < k else later for i in range(n)]


def rss_mb() -> float:
    """Peak resident set of this process (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def summary(samples: Sequence[float]) -> dict[str, Any]:
    """The same keys as the peer script's ``summary`` so the JSON lines compare field by field."""
    xs = sorted(samples)
    return {
        "n": len(xs),
        "p50_ms": ms(statistics.median(xs)),
        "p95_ms": ms(xs[int(0.95 * (len(xs) - 1))]),
        "max_ms": ms(xs[-1]),
    }


def percentiles_s(samples: Sequence[float]) -> dict[str, Any]:
    """p50/p99/max of durations in seconds (nearest rank), for the e2e lag figures."""
    xs = sorted(samples)
    if not xs:
        return {"n": 0}

    def rank(q: float) -> float:
        return xs[min(len(xs) - 1, max(0, round(q * len(xs)) - 1))]

    return {
        "n": len(xs),
        "p50_s": round(rank(0.50), 4),
        "p99_s": round(rank(0.99), 4),
        "max_s": round(xs[-1], 4),
        "min_s": round(xs[0], 4),
    }


def wait_until(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    """Poll ``predicate`` until it holds; raise with ``what`` when the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
