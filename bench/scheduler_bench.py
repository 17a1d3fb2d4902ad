"""Tick benchmark of RegistryScheduler, shaped like /work/shared/bench/peer_beat_schedulers.py.

usage: python bench/scheduler_bench.py N K [--broker memory://|redis://127.0.0.1:6379/12] [--cap S]
  N   registered jobs (``every_s: 86400``), not due for a day
  K   of those, how many are overdue by one second at start (the burst)

Prints one JSON line whose keys match the peer script's (``startup_load_s``, ``burst.per_s``,
``idle_tick.p50_ms``, ``rss_mb``...) so the two sit side by side, plus what only ours has: the delay
before a running beat notices an edit, and a two-process check that every slot fires exactly once.

Why it is built this way:
* Each run gets its own PostgreSQL database, created and dropped here, so figures never mix with
  another run's rows and nothing is left behind.
* Migration and bulk population run in a spawned child process: the parent's ``ru_maxrss`` is then the
  scheduler's own footprint, not the peak of building 100,000 rows (or of importing Alembic), which a
  real beat never pays.
* ``tick_registry()`` is driven the way ``celery beat`` drives ``tick()``: again at once while it returns
  0, otherwise after sleeping what it returned. That is what makes "edit noticed" a real figure.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import multiprocessing as mp
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import benchlib
from sqlalchemy import func, select, update

import mission_control
from mission_control.db.engine import make_engine
from mission_control.db.tables import jobs, runs

QUEUE = "triggers"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("N", type=int, help="registered jobs")
    p.add_argument("K", type=int, help="of those, overdue at start")
    p.add_argument("--broker", default="memory://", help="memory:// (default, as the peers) or redis://...")
    p.add_argument("--cap", type=float, default=120.0, help="stop a burst after this many seconds")
    p.add_argument("--idle-ticks", type=int, default=50)
    p.add_argument("--edit-trials", type=int, default=5, help="edits, each at a random phase of the sleep")
    p.add_argument(
        "--two-batch",
        type=int,
        default=100,
        help="scheduler_batch of the two concurrent beats: smaller than K so their claims interleave",
    )
    p.add_argument("--profile-dir", type=Path, default=None, help="write cProfile stats of burst and idle")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if not 0 <= args.K <= args.N:
        p.error("need 0 <= K <= N")
    if args.broker.startswith("redis") and not args.broker.rstrip("/").endswith("/12"):
        p.error("use Redis db 12 for this benchmark (db 14 belongs to the peers)")
    return args


def configure_env(database_url: str, broker: str) -> None:
    """celeryconfig reads the environment at import, so this must run before importing celery_app."""
    os.environ["MC_DATABASE_URL"] = database_url
    os.environ["MC_BROKER_URL"] = broker
    os.environ["MC_ADMIN_TOKEN"] = benchlib.ADMIN_TOKEN
    os.environ["MC_SIGNING_SECRET"] = benchlib.SIGNING_SECRET


def build_scheduler(database_url: str, broker: str, batch: int | None = None) -> Any:
    """A RegistryScheduler wired as the brief says: explicit Runtime, our broker, no housekeeping."""
    from mission_control.base.config import Settings
    from mission_control.runtime.app import app
    from mission_control.runtime.beat import RegistryScheduler
    from mission_control.runtime.context import Runtime

    app.conf.broker_url = broker
    app.conf.beat_schedule = {}
    extra = {} if batch is None else {"scheduler_batch": batch}
    settings = Settings(
        database_url=database_url,
        broker_url=broker,
        admin_token=benchlib.ADMIN_TOKEN,
        signing_secret=benchlib.SIGNING_SECRET,
        **extra,
    )
    runtime = Runtime.from_settings(settings)
    return RegistryScheduler(app=app, runtime=runtime)


# --------------------------------------------------------------------------- broker helpers
def queued(app: Any) -> int:
    """Trigger messages sitting in the broker's ``triggers`` queue (memory:// or redis://)."""
    with app.connection_for_write() as conn:
        try:
            return int(conn.default_channel.queue_declare(QUEUE, passive=True).message_count)
        except Exception:  # the queue was never declared: nothing was sent
            return 0


def purge(app: Any) -> None:
    with app.connection_for_write() as conn, contextlib.suppress(Exception):  # no queue yet: nothing to purge
        conn.default_channel.queue_purge(QUEUE)


# --------------------------------------------------------------------------- child processes
def populate(database_url: str, n: int, k: int, now_iso: str, done: Any) -> None:
    """Migrate and insert N jobs (K overdue); runs in a child so the parent's RSS stays the beat's."""
    from mission_control.db import migrate

    engine = make_engine(database_url)
    migrate.upgrade(engine)
    now = datetime.fromisoformat(now_iso)
    template = benchlib.job_template("http://127.0.0.1:9/ok", benchlib.DAY_S)
    started = time.perf_counter()
    benchlib.insert_jobs(engine, n, benchlib.idle_and_overdue(n, k, now), template=template)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE jobs")
    engine.dispose()
    done.put(round(time.perf_counter() - started, 2))


def concurrent_beat(database_url: str, broker: str, batch: int, barrier: Any, results: Any) -> None:
    """One of two beats ticking over the same overdue slots; reports the run ids it enqueued."""
    import mission_control.runtime.beat as scheduler_module

    configure_env(database_url, broker)
    sched = build_scheduler(database_url, broker, batch=batch)
    sent: list[int] = []
    real_enqueue = scheduler_module.enqueue_runs

    def recording_enqueue(app: Any, run_ids: list[int]) -> int:
        sent.extend(run_ids)
        return real_enqueue(app, run_ids)

    scheduler_module.enqueue_runs = recording_enqueue  # instrumentation of this child only
    with sched.runtime.engine.connect():
        pass  # connect before the start line, so neither beat gets a head start
    barrier.wait()
    ticks, idle_after = 0, 0
    deadline = time.monotonic() + 60
    while idle_after < 3 and time.monotonic() < deadline:
        delay = sched.tick_registry()
        ticks += 1
        if delay > 0:
            idle_after += 1
            time.sleep(0.02)
    results.put({"pid": os.getpid(), "ticks": ticks, "enqueued": sent})
    sched.runtime.engine.dispose()


# --------------------------------------------------------------------------- measurements
def mark_runs_finished(engine: Any) -> None:
    """Stand in for the workers: with concurrency "forbid" an unfinished run would skip the next slot."""
    with engine.begin() as conn:
        conn.execute(
            update(runs)
            .where(runs.c.status == "queued")
            .values(status="succeeded", finished_at=datetime.now(UTC))
        )


def measure_burst(sched: Any, engine: Any, args: argparse.Namespace, out: dict[str, Any]) -> None:
    per: list[float] = []
    t0 = time.perf_counter()
    while True:
        t = time.perf_counter()
        delay = sched.tick_registry()
        per.append(time.perf_counter() - t)
        if delay > 0 or time.perf_counter() - t0 > args.cap:
            break
    wall = time.perf_counter() - t0
    with engine.connect() as conn:
        committed = conn.execute(
            select(func.count()).select_from(runs).where(runs.c.status == "queued")
        ).scalar()
    in_queue = queued(sched.app)
    out["first_tick_s"] = round(per[0], 3)
    out["burst"] = {
        "dispatched": in_queue,
        "runs_committed": committed,
        "wall_s": round(wall, 3),
        "per_s": round(committed / wall, 1) if committed else None,
        "capped": delay == 0,
        "ticks": len(per),
        "tick": benchlib.summary(per),
    }
    out["queued"] = in_queue


def measure_idle(sched: Any, args: argparse.Namespace, out: dict[str, Any]) -> None:
    from mission_control.scheduling.claiming import claim_due_retries, claim_due_slots, next_wakeup

    per = []
    for _ in range(args.idle_ticks):
        t = time.perf_counter()
        sched.tick_registry()
        per.append(time.perf_counter() - t)
    out["idle_tick"] = benchlib.summary(per)

    # The same tick split into its three database calls, to show where an idle tick's time goes.
    engine, settings = sched.runtime.engine, sched.runtime.settings
    parts: dict[str, list[float]] = {"claim_due_slots": [], "claim_due_retries": [], "next_wakeup": []}
    for _ in range(args.idle_ticks):
        now = datetime.now(UTC)
        t = time.perf_counter()
        claim_due_slots(engine, now, batch=settings.scheduler_batch, grace_s=settings.misfire_grace_s)
        parts["claim_due_slots"].append(time.perf_counter() - t)
        t = time.perf_counter()
        claim_due_retries(engine, now, batch=settings.scheduler_batch)
        parts["claim_due_retries"].append(time.perf_counter() - t)
        t = time.perf_counter()
        next_wakeup(engine)
        parts["next_wakeup"].append(time.perf_counter() - t)
    out["idle_parts_p50_ms"] = {name: benchlib.summary(xs)["p50_ms"] for name, xs in parts.items()}

    # What `celery beat` really calls: Scheduler.tick (housekeeping heap) plus tick_registry.
    full = []
    for _ in range(min(args.idle_ticks, 20)):
        t = time.perf_counter()
        sched.tick()
        full.append(time.perf_counter() - t)
    out["idle_full_tick"] = benchlib.summary(full)


def measure_edit(sched: Any, database_url: str, args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Edit one job from another connection at a random phase of beat's sleep; time until it is claimed."""
    rng = random.Random(args.seed)
    editor = make_engine(database_url)
    noticed: list[float] = []
    claiming_tick: list[float] = []
    try:
        for trial in range(args.edit_trials):
            name = f"job-{args.N - 1 - trial}"
            with editor.connect() as conn:
                job_id = conn.execute(select(jobs.c.id).where(jobs.c.name == name)).scalar_one()

            def run_count(job_id: int = job_id) -> int:
                with editor.connect() as conn:
                    return int(
                        conn.execute(
                            select(func.count()).select_from(runs).where(runs.c.job_id == job_id)
                        ).scalar()
                    )

            before = run_count()
            delay = sched.tick_registry()
            phase = rng.uniform(0, delay)
            time.sleep(phase)
            with editor.begin() as conn:
                conn.execute(update(jobs).where(jobs.c.id == job_id).values(next_run_at=datetime.now(UTC)))
            edited = time.perf_counter()
            time.sleep(max(0.0, delay - phase))
            deadline = edited + 10
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                delay = sched.tick_registry()
                ended = time.perf_counter()
                if run_count() > before:
                    noticed.append(ended - edited)
                    claiming_tick.append(ended - t)
                    break
                time.sleep(delay)
            else:
                noticed.append(float("inf"))
        out["edit_noticed"] = {
            "trials": len(noticed),
            "p50_s": round(sorted(noticed)[len(noticed) // 2], 3),
            "max_s": round(max(noticed), 3),
            "all_s": [round(x, 3) for x in noticed],
        }
        out["tick_after_edit_s"] = round(max(claiming_tick), 4) if claiming_tick else None
    finally:
        editor.dispose()


def measure_two_beats(database_url: str, args: argparse.Namespace, engine: Any, out: dict[str, Any]) -> None:
    """Two beat processes tick over K overdue slots at once; each slot must yield one run and one message."""
    mark_runs_finished(engine)
    slot = datetime.now(UTC) - timedelta(seconds=1)
    with engine.begin() as conn:
        ids = list(conn.execute(select(jobs.c.id).order_by(jobs.c.id).limit(args.K)).scalars())
        conn.execute(update(jobs).where(jobs.c.id.in_(ids)).values(next_run_at=slot))
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(3)
    results = ctx.Queue()
    children = [
        ctx.Process(
            target=concurrent_beat, args=(database_url, args.broker, args.two_batch, barrier, results)
        )
        for _ in range(2)
    ]
    for child in children:
        child.start()
    try:
        barrier.wait(timeout=60)
        reports = [results.get(timeout=120) for _ in children]
    finally:
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.terminate()
                child.join()
    with engine.connect() as conn:
        rows = conn.execute(
            select(runs.c.job_id, runs.c.scheduled_for, func.count().label("n"), func.min(runs.c.id))
            .where(runs.c.job_id.in_(ids), runs.c.scheduled_for == slot)
            .group_by(runs.c.job_id, runs.c.scheduled_for)
        ).all()
    run_ids = {row[3] for row in rows}
    enqueued = [run_id for report in reports for run_id in report["enqueued"]]
    out["two_beats"] = {
        "processes": 2,
        "batch": args.two_batch,
        "slots": args.K,
        "runs": sum(row.n for row in rows),
        "duplicate_runs": sum(row.n - 1 for row in rows if row.n > 1),
        "missing_runs": args.K - len(rows),
        "messages": len(enqueued),
        "duplicate_messages": len(enqueued) - len(set(enqueued)),
        "missing_messages": len(run_ids - set(enqueued)),
        "per_process": [len(report["enqueued"]) for report in reports],
        "ticks": [report["ticks"] for report in reports],
    }


def run(args: argparse.Namespace, database_url: str, out: dict[str, Any]) -> None:
    ctx = mp.get_context("spawn")
    done = ctx.Queue()
    child = ctx.Process(
        target=populate, args=(database_url, args.N, args.K, datetime.now(UTC).isoformat(), done)
    )
    child.start()
    out["populate_s"] = done.get(timeout=1800)
    child.join()

    configure_env(database_url, args.broker)
    t = time.perf_counter()
    sched = build_scheduler(database_url, args.broker)
    with sched.runtime.engine.connect():
        pass  # a beat's first connection is part of getting ready, as the sqla peer's initial load is
    out["startup_load_s"] = round(time.perf_counter() - t, 3)
    engine = sched.runtime.engine
    purge(sched.app)
    profiler = cProfile.Profile() if args.profile_dir else None
    try:
        if profiler:
            profiler.enable()
        measure_burst(sched, engine, args, out)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile_dir / f"burst-{args.N}.pstats")
        mark_runs_finished(engine)
        purge(sched.app)

        profiler = cProfile.Profile() if args.profile_dir else None
        if profiler:
            profiler.enable()
        measure_idle(sched, args, out)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile_dir / f"idle-{args.N}.pstats")

        measure_edit(sched, database_url, args, out)
        out["rss_mb"] = benchlib.rss_mb()
        purge(sched.app)
        measure_two_beats(database_url, args, engine, out)
    finally:
        purge(sched.app)
        sched.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchlib.exit_on_sigterm()
    if args.profile_dir:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"which": "mission_control", "N": args.N, "K": args.K, "broker": args.broker}
    out["code"] = os.path.dirname(mission_control.__file__)  # which copy of the product was measured
    with benchlib.throwaway_database("mc_sched_bench") as database_url:
        run(args, database_url, out)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
