"""Two beats at once, for the peers: does each due entry go out exactly once?

usage: /tmp/peer-venv/bin/python bench/peer_two_beats.py {sqla|redbeat} K [--seconds 15]

Run in the peers' own venv (never in .venv). The peer script /work/shared/bench/peer_beat_schedulers.py
does not measure this row of the comparison table, so this fills it in with the same populate code
and the same app settings. Both beats publish to one Redis queue (``celery`` in db 14, the peers'
database), so every message either beat sent can be counted and each job's duplicates found.

* sqla: two DatabaseScheduler processes, each ticking again at once while tick() returns 0.
* redbeat: two RedBeatScheduler processes, each first taking the distributed lock as ``beat_init``
  does in ``celery beat``; the one that does not get it waits, bounded by the run's deadline.

Prints one JSON line. Needs the peer_beat database (``createdb -h 127.0.0.1 -U postgres peer_beat``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import time
from collections import Counter
from typing import Any

PG = os.environ.get("PEER_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/peer_beat")
RB = os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:6379/14")
DAY = 86400


def make_app() -> Any:
    """The peer script's app, but with the broker on Redis db 14 so both processes share one queue."""
    from celery import Celery

    app = Celery("mc", broker=RB, set_as_current=True)
    app.conf.update(
        timezone="UTC",
        enable_utc=True,
        result_expires=None,
        beat_max_loop_interval=5,
        beat_dburi=PG,
        beat_schema=None,
        redbeat_redis_url=RB,
    )

    @app.task(name="mc.http_trigger")
    def http_trigger(job_id: str) -> str:
        return job_id

    return app


def populate(which: str, k: int) -> None:
    """K entries, all overdue (last run two days ago, every day), exactly as the peer script writes them."""
    now = dt.datetime.now(dt.UTC)
    if which == "sqla":
        import sqlalchemy as sa
        from sqlalchemy_celery_beat.models import IntervalSchedule, Period, PeriodicTask, PeriodicTaskChanged
        from sqlalchemy_celery_beat.session import SessionManager

        session = SessionManager().session_factory(PG)
        session.execute(
            sa.text(
                "TRUNCATE celery_periodictask, celery_intervalschedule, "
                "celery_periodictaskchanged RESTART IDENTITY CASCADE"
            )
        )
        session.commit()
        day = IntervalSchedule(every=DAY, period=Period.SECONDS)
        session.add(day)
        session.commit()
        rows = [
            {
                "name": f"job-{i}",
                "task": "mc.http_trigger",
                "args": json.dumps([f"job-{i}"]),
                "kwargs": "{}",
                "headers": "{}",
                "enabled": True,
                "one_off": False,
                "total_run_count": 0,
                "description": "",
                "discriminator": "intervalschedule",
                "schedule_id": day.id,
                "last_run_at": now - dt.timedelta(days=2),
            }
            for i in range(k)
        ]
        session.execute(sa.insert(PeriodicTask), rows)
        session.execute(sa.insert(PeriodicTaskChanged), [{"id": 1, "last_update": now}])
        session.commit()
        session.close()
        return

    from celery.schedules import schedule as interval
    from redbeat.decoder import RedBeatJSONEncoder
    from redbeat.schedulers import RedBeatSchedulerEntry

    app = make_app()
    from redbeat.schedulers import get_redis

    pipe = get_redis(app).pipeline(transaction=False)  # get_redis also sets app.redbeat_conf
    conf = app.redbeat_conf
    for i in range(k):
        e = RedBeatSchedulerEntry(
            f"job-{i}", "mc.http_trigger", interval(run_every=DAY), args=[f"job-{i}"], app=app
        )
        e.last_run_at = now - dt.timedelta(days=2)
        definition = {
            "name": e.name,
            "task": e.task,
            "args": e.args,
            "kwargs": e.kwargs,
            "options": e.options,
            "schedule": e.schedule,
            "enabled": e.enabled,
        }
        pipe.hset(e.key, "definition", json.dumps(definition, cls=RedBeatJSONEncoder))
        pipe.hsetnx(e.key, "meta", json.dumps({"last_run_at": e.last_run_at}, cls=RedBeatJSONEncoder))
        pipe.zadd(conf.schedule_key, {e.key: e.score})
    pipe.execute()


def beat(which: str, seconds: float, barrier: Any, results: Any) -> None:
    """One beat: tick like ``celery beat`` (again at once while tick() returns 0) until the deadline."""
    app = make_app()
    if which == "sqla":
        from sqlalchemy_celery_beat.schedulers import DatabaseScheduler

        scheduler = DatabaseScheduler(app=app)
    else:
        from redbeat.schedulers import RedBeatScheduler

        scheduler = RedBeatScheduler(app=app)
    barrier.wait(timeout=120)
    deadline = time.monotonic() + seconds
    locked = which == "sqla"
    if which == "redbeat":
        # acquire_distributed_beat_lock() of redbeat.schedulers, as beat_init runs it, except that the
        # wait is bounded by our deadline (redis-py's lock is thread-local, so no helper thread).
        from redbeat.schedulers import LUA_EXTEND_TO_SCRIPT, get_redis

        client = get_redis(scheduler.app)
        lock = client.lock(scheduler.lock_key, timeout=scheduler.lock_timeout, sleep=0.1)
        lock.lua_extend = client.register_script(LUA_EXTEND_TO_SCRIPT)
        if lock.acquire(blocking_timeout=max(0.01, deadline - time.monotonic())):
            scheduler.lock = lock
            locked = True
    ticks = 0
    if locked:
        while time.monotonic() < deadline:
            delay = scheduler.tick()
            ticks += 1
            if delay > 0:
                time.sleep(min(delay, 0.2, max(0.0, deadline - time.monotonic())))
    results.put({"pid": os.getpid(), "ticks": ticks, "had_lock": locked})
    results.close()
    results.join_thread()  # the queue's feeder thread must flush before _exit
    os._exit(0)  # skip interpreter teardown: a lock-less redbeat scheduler's close() would fail


def count_messages() -> Counter[str]:
    import redis

    client = redis.Redis.from_url(RB)
    sent: Counter[str] = Counter()
    for raw in client.lrange("celery", 0, -1):
        sent[json.loads(raw)["headers"]["argsrepr"]] += 1
    client.close()
    return sent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("which", choices=["sqla", "redbeat"])
    p.add_argument("K", type=int)
    p.add_argument("--seconds", type=float, default=15.0, help="how long both beats run")
    args = p.parse_args()

    import redis

    redis.Redis.from_url(RB).flushdb()  # db 14 is the peers'
    populate(args.which, args.K)
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    children = [ctx.Process(target=beat, args=(args.which, args.seconds, barrier, results)) for _ in range(2)]
    for child in children:
        child.start()
    reports = [results.get(timeout=args.seconds + 120) for _ in children]
    for child in children:
        child.join(timeout=30)
    sent = count_messages()
    redis.Redis.from_url(RB).flushdb()
    print(
        json.dumps(
            {
                "which": args.which,
                "K": args.K,
                "seconds": args.seconds,
                "messages": sum(sent.values()),
                "distinct_jobs_sent": len(sent),
                "duplicate_messages": sum(n - 1 for n in sent.values() if n > 1),
                "missing": args.K - len(sent),
                "beats": reports,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
