"""Do hundreds of slow targets starve fast ones? Measures a worker pool under a flood of silent targets.

Setup: one celery worker (threads pool, ``-c C``) and one beat on a private Redis and a throwaway
PostgreSQL database; S one-shot jobs aimed at a target that never answers (``timeout_s`` T) all fire at
once, while F fast jobs fire every second. Reports the fast jobs' firing lag (target receive time minus
slot) before and during the flood, and how long the silent attempts held their thread (must be <= T + 1).

    .venv/bin/python bench/slow_targets.py --concurrency 256 --slow 200 --fast 20 --timeout 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from mission_control.db import migrate
from mission_control.db.engine import make_engine
from mission_control.db.tables import attempts, runs
from mission_control.jobs.registry import JobRegistry
from tests.conftest import PG_ADMIN_URL, PostgresDatabases
from tests.e2e.conftest import RedisServer, Stack
from tests.factories import job_spec
from tests.targets import TargetServer


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--fast", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()

    databases = PostgresDatabases(PG_ADMIN_URL)
    scratch = Path(tempfile.mkdtemp(prefix="mc-slow-"))
    redis_server = RedisServer(scratch)
    target = TargetServer().start()
    stack = None
    try:
        url = databases.create("slowbench")
        engine = make_engine(url)
        migrate.upgrade(engine)
        redis_server.start()
        registry = JobRegistry(engine)
        for index in range(args.fast):
            registry.put(
                job_spec(
                    f"fast-{index:03d}",
                    target={"url": f"{target.url}/ok"},
                    schedule={"every_s": 1},
                    concurrency="allow",
                )
            )
        logs = scratch / "logs"
        logs.mkdir()
        stack = Stack(url, redis_server, logs)
        stack.worker(concurrency=args.concurrency)
        stack.beat()
        time.sleep(10)  # a baseline of fast firings before the flood
        flood_at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
        for index in range(args.slow):
            registry.put(
                job_spec(
                    f"slow-{index:03d}",
                    target={"url": f"{target.url}/never"},
                    schedule={"at": flood_at.isoformat()},
                    timeout_s=args.timeout,
                    retry={"max_attempts": 1},
                )
            )
        time.sleep(2 + args.timeout + 8)
        stack.stop_all()

        with engine.connect() as conn:
            slot_of = {
                row.id: row.scheduled_for for row in conn.execute(select(runs.c.id, runs.c.scheduled_for))
            }
            silent = conn.execute(
                select(attempts.c.duration_ms, attempts.c.status)
                .join(runs, runs.c.id == attempts.c.run_id)
                .where(runs.c.job_name.like("slow-%"))
            ).all()
        lags_before, lags_during = [], []
        flood_end = flood_at.timestamp() + args.timeout
        for request in target.requests_to("/ok"):
            slot = slot_of[int(request.headers["X-Mission-Control-Run"])].timestamp()
            lag = request.received_at - slot
            (lags_during if flood_at.timestamp() <= slot <= flood_end else lags_before).append(lag)
        summary = {
            "concurrency": args.concurrency,
            "slow": args.slow,
            "fast": args.fast,
            "timeout_s": args.timeout,
            "fast_lag_before_ms": {
                "n": len(lags_before),
                "p50": round(statistics.median(lags_before) * 1000, 1),
                "p99": round(percentile(lags_before, 0.99) * 1000, 1),
            },
            "fast_lag_during_flood_ms": {
                "n": len(lags_during),
                "p50": round(statistics.median(lags_during) * 1000, 1) if lags_during else None,
                "p99": round(percentile(lags_during, 0.99) * 1000, 1) if lags_during else None,
                "max": round(max(lags_during) * 1000, 1) if lags_during else None,
            },
            "silent_attempts": {
                "n": len(silent),
                "timed_out": sum(1 for row in silent if row.status == "timed_out"),
                "max_held_ms": max((row.duration_ms or 0) for row in silent) if silent else None,
            },
        }
        print(json.dumps(summary))
        engine.dispose()
    finally:
        if stack is not None:
            stack.stop_all()
        target.stop()
        redis_server.stop()
        databases.drop_all()


if __name__ == "__main__":
    main()
