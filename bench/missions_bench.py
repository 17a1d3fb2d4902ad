"""Missions benchmark: three-step flows end to end with real workers, and the idle tick beside
100,000 waiting missions.

usage:
  python bench/missions_bench.py throughput [--missions 2000] [--workers 2] [--concurrency 32]
  python bench/missions_bench.py idle-tick [--waiting 100000] [--samples 2000]
  python bench/missions_bench.py all        # both; one JSON line each

throughput: its own PostgreSQL database, private redis-server, the HTTP target of tests/targets.py
in its own process, workers and a beat as the Procfile runs them (see e2e_bench.py). Missions are
started as ``POST /api/v1/missions`` starts them (MissionStore.start, then one message to the
workers), from 8 threads, so starting overlaps with running as under real traffic; each mission is
three ``http`` steps to the target's ``/ok``. The rate is missions completed divided by the span from
the first start to the last mission's ``finished_at`` as the database recorded it.

idle-tick: the beat's idle tick is one statement (``claiming.next_wakeup``). It is timed on a database
with an empty missions table and on one beside 100,000 waiting missions (half waiting for a signal
with no deadline, half with a deadline a day away), in alternating blocks, medians compared; the
plan of the missions part is printed to show it reads one index entry.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import benchlib
import e2e_bench
from celery import Celery
from sqlalchemy import func, insert, select

from mission_control.base.clock import SYSTEM_CLOCK
from mission_control.db import migrate
from mission_control.db.engine import make_autocommit_engine, make_engine
from mission_control.db.tables import missions
from mission_control.missions import machine, mission
from mission_control.missions.store import MissionStore
from mission_control.scheduling.claiming import next_wakeup
from mission_control.scheduling.queueing import enqueue_missions
from mission_control.scheduling.wakeups import NEXT_MISSION_WAKE


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "scenario": "missions-throughput",
        "missions": args.missions,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "steps": 3,
    }
    with e2e_bench.running_stack(args.workers, args.concurrency, args.keep_logs) as (stack, engine):
        store = MissionStore(engine, SYSTEM_CLOCK, requeue_after_s=30)
        url = stack.target_url
        store.put_definition(
            mission("three-steps").http("one", url=url).http("two", url=url).http("three", url=url).end()
        )
        app = Celery(broker=stack.broker_url)
        app.conf.broker_connection_retry_on_startup = True

        def start(i: int) -> None:
            doc = store.start("three-steps", {"n": i}, f"bench-{i}")
            enqueue_missions(app, [doc["id"]])

        cpu_before, machine_before = stack.cpu(), e2e_bench.machine_cpu_s()
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(start, range(args.missions)))
        start_s = time.perf_counter() - t0
        deadline = time.time() + args.timeout
        counts: dict[str, int] = {}
        while time.time() < deadline:
            for name in stack.processes:
                stack.alive(name)
            with engine.connect() as conn:
                counts = dict(
                    conn.execute(select(missions.c.status, func.count()).group_by(missions.c.status)).all()
                )
            if counts.get("completed", 0) + counts.get("failed", 0) >= args.missions:
                break
            time.sleep(0.2)
        cpu_after, machine_after = stack.cpu(), e2e_bench.machine_cpu_s()
        with engine.connect() as conn:
            docs = conn.execute(select(missions.c.doc)).scalars().all()
        app.close()
        finished = [machine.at(d["finished_at"]) for d in docs if d["status"] == "completed"]
        latencies = sorted(
            (machine.at(d["finished_at"]) - machine.at(d["created_at"])).total_seconds()
            for d in docs
            if d["status"] == "completed"
        )
        span = (max(finished) - started_at).total_seconds() if finished else None
        busy = machine_after[0] - machine_before[0]
        zero = (0.0, 0.0)
        out.update(
            {
                "statuses": counts,
                "all_completed": len(finished) == args.missions,
                "start_s": round(start_s, 3),
                "starts_per_s": round(args.missions / start_s, 1),
                "wall_s": round(span, 3) if span else None,
                "missions_per_s": round(len(finished) / span, 1) if span else None,
                "steps_per_s": round(3 * len(finished) / span, 1) if span else None,
                "latency_s": {
                    "p50": round(latencies[len(latencies) // 2], 3),
                    "p99": round(latencies[int(len(latencies) * 0.99) - 1], 3),
                }
                if latencies
                else None,
                "retried_attempts": sum(1 for d in docs for a in d["attempts"] if a["attempt"] > 1),
                "target_requests": len(e2e_bench.target_requests(stack)) - 1,
                "cpu_s": {
                    name: round(sum(cpu_after[name]) - sum(cpu_before.get(name, zero)), 2)
                    for name in cpu_after
                },
                "machine_busy_s": round(busy, 2),
                "rss_mb": stack.rss(),
            }
        )
    return out


def idle_tick(args: argparse.Namespace) -> dict[str, Any]:
    """Two databases, one with an empty missions table and one with ``--waiting`` waiting missions,
    both vacuumed and checkpointed; the idle tick is timed on each in alternating blocks of 100 so
    that drift on a shared machine lands on both sides alike."""
    out: dict[str, Any] = {"scenario": "missions-idle-tick", "waiting": args.waiting, "samples": args.samples}
    with (
        benchlib.throwaway_database("mc_missions_empty") as empty_url,
        benchlib.throwaway_database("mc_missions_full") as full_url,
    ):
        engines = {"empty": make_engine(empty_url), "waiting": make_engine(full_url)}
        peeks = {"empty": make_autocommit_engine(empty_url), "waiting": make_autocommit_engine(full_url)}
        try:
            for engine in engines.values():
                migrate.upgrade(engine)
            t0 = time.perf_counter()
            fill(engines["waiting"], args.waiting)
            out["insert_s"] = round(time.perf_counter() - t0, 1)
            for name, peek in peeks.items():
                with peek.connect() as conn:
                    conn.exec_driver_sql("VACUUM ANALYZE missions")
                    conn.exec_driver_sql("CHECKPOINT")
                    if name == "waiting":
                        out["with_deadline"] = conn.execute(
                            select(func.count()).select_from(missions).where(missions.c.wake_at.is_not(None))
                        ).scalar()
                        plan = (
                            conn.exec_driver_sql(
                                "EXPLAIN " + str(NEXT_MISSION_WAKE.compile(dialect=conn.dialect))
                            )
                            .scalars()
                            .all()
                        )
                        out["mission_part_plan"] = [line.strip() for line in plan]
            samples: dict[str, list[float]] = {"empty": [], "waiting": []}
            for _ in range(50):  # warm both
                for peek in peeks.values():
                    next_wakeup(peek)
            for _ in range(max(args.samples // 100, 1)):
                for name, peek in peeks.items():
                    for _ in range(100):
                        t = time.perf_counter()
                        next_wakeup(peek)
                        samples[name].append((time.perf_counter() - t) * 1000)
            for name, times in samples.items():
                times.sort()
                out[f"{name}_ms"] = {
                    "p50": round(statistics.median(times), 4),
                    "p99": round(times[int(len(times) * 0.99) - 1], 4),
                    "mean": round(statistics.fmean(times), 4),
                }
            out["ratio_p50"] = round(out["waiting_ms"]["p50"] / out["empty_ms"]["p50"], 3)
            out["next_wakeup"] = str(next_wakeup(peeks["waiting"]))
        finally:
            for engine in [*engines.values(), *peeks.values()]:
                engine.dispose()
    return out


def fill(engine: Any, count: int) -> None:
    """``count`` missions waiting for a signal: half with no deadline, half with one a day away."""
    store = MissionStore(engine, SYSTEM_CLOCK)
    plain = mission("approval").wait_for("approve").end()
    deadline = mission("approval-deadline").wait_for("approve", timeout_s=86_400).end()
    store.put_definition(plain)
    store.put_definition(deadline)
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        definition = deadline if i % 2 else plain
        doc = machine.create(definition, 1, f"wait-{i}", {}, now)
        rows.append(
            {
                "id": doc["id"],
                "definition": definition.name,
                "version": 1,
                "status": doc["status"],
                "doc": doc,
                "wake_at": machine.wake_at(doc),
                "revision": doc["revision"],
                "created_at": now,
                "updated_at": now,
            }
        )
        if len(rows) == benchlib.INSERT_CHUNK or i == count - 1:
            with engine.begin() as conn:
                conn.execute(insert(missions), rows)
            rows = []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", choices=["throughput", "idle-tick", "all"])
    parser.add_argument("--missions", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--waiting", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--keep-logs", type=Path)
    args = parser.parse_args(argv)
    scenarios = {"throughput": [throughput], "idle-tick": [idle_tick], "all": [idle_tick, throughput]}
    for scenario in scenarios[args.scenario]:
        print(json.dumps({"at": datetime.now(UTC).isoformat(), **scenario(args)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
