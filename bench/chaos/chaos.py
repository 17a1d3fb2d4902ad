"""The chaos run of the reliability issue: real processes, kill -9, broker and database restarts, then a
reconciliation that must find nothing lost, nothing duplicated, nothing stuck and every expected alert.

usage:
  python bench/chaos/chaos.py                       # short form, about 2 minutes
  python bench/chaos/chaos.py --jobs 500 --services 200 --duration 600 --settle 90   # long form
  python bench/chaos/chaos.py --keep-logs /tmp/chaos-logs --seed 7

What runs: a private PostgreSQL (initdb + pg_ctl on a spare port, so restarting it touches nothing else
on the machine), a private ``redis-server`` that keeps nothing on disk, the target fleet
(``python -m tests.targets``: answers fast, slow, never, with 500s and with 200 kB bodies, and logs
every request), three workers, two beats and the web app (2 gunicorn workers), each started as the
Procfile starts it. Jobs (``fleet.JOB_KINDS``: every_s 1..5 and ``* * * * *``) are registered through
``JobRegistry.put``; services beat through the web app with the admin token, and some of them go
silent for a while so ``service_down`` must open and resolve.

During ``--duration`` seconds it kills -9 a worker, beat or web process group (kinds in turn, in
random order, the instance at random) every
``--kill-every`` seconds and starts it again at once, kills -9 and restarts Redis once (at 40 %) and
stops PostgreSQL immediately and starts it again once (at 60 %). Then load and chaos stop; the beats
keep running (the reconciler's periodic task comes from them) while the settle phase waits, at most
``--settle`` seconds, for every run of the window to reach a terminal state. ``reconcile.py`` says
how each figure is counted. The last line on stdout is one JSON object; the exit status is 0 only
when its ``ok`` is true.

The harness also acts as the process supervisor a Procfile platform provides: a process that exits
without being killed by it is started again and counted in ``unexpected_exits`` (by kind). Any count
there fails ``ok`` as well: a process that dies of a fault it was meant to ride out (as workers did
on a Redis restart before ``mission_control/runtime/redis_transport.py``) needs a supervisor to keep the
fleet running, even when nothing is lost.

``MC_REQUEUE_AFTER_S`` is 5 (default 30) so a message lost with Redis is sent again within the settle
phase of the short form; nothing else departs from the defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parents[1])]

import benchlib  # noqa: E402
import e2e_bench  # noqa: E402
import fleet  # noqa: E402
import reconcile  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from mission_control.db import migrate  # noqa: E402
from mission_control.db.engine import make_engine  # noqa: E402
from mission_control.db.tables import runs  # noqa: E402
from mission_control.jobs.registry import JobRegistry  # noqa: E402
from mission_control.jobs.spec import JobSpec  # noqa: E402
from tests.e2e.test_database_outage import PrivatePostgres  # noqa: E402

WORKERS = ("worker1", "worker2", "worker3")
BEATS = ("beat1", "beat2")


def say(message: str) -> None:
    """Progress goes to stderr: stdout carries only the one JSON line."""
    print(f"[chaos {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


@dataclass
class ChaosStack(e2e_bench.Stack):
    """The e2e bench's stack (web, named workers and beats included), restarted and supervised."""

    def restart(self, name: str) -> None:
        """Start a process again under the name it had."""
        if name.startswith("worker"):
            self.start_worker(name, 32)
        elif name.startswith("beat"):
            self.start_beat(name)
        elif name == "web":
            self.start_web()
        elif name == "redis":
            self.start_redis()

    def supervise(self, exits: Counter[str]) -> None:
        """Start again any process that exited without being killed by us, as a supervisor would, and
        count it: an exit nobody asked for is a finding even when the data come out whole."""
        for name, process in list(self.processes.items()):
            if process.poll() is None:
                continue
            if name == "target":
                self.alive("target")  # raises with its log: without the fleet the figures mean nothing
            say(f"{name} exited by itself with {process.returncode}; starting it again")
            exits[name.rstrip("0123456789")] += 1
            del self.processes[name]
            self.restart(name)

    def kill9(self, name: str) -> None:
        """kill -9 the whole process group (gunicorn's master and its workers die together)."""
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--services", type=int, default=40)
    parser.add_argument("--duration", type=float, default=60, help="seconds of load and chaos")
    parser.add_argument("--kill-every", type=float, default=10, help="seconds between two kill -9")
    parser.add_argument("--settle", type=float, default=45, help="at most this long for runs to finish")
    parser.add_argument("--requeue-after", type=int, default=5, help="MC_REQUEUE_AFTER_S")
    parser.add_argument("--silent-share", type=float, default=0.1, help="services that go silent a while")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-logs", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchlib.exit_on_sigterm()
    figures = run(args)
    print(json.dumps(figures, sort_keys=True), flush=True)
    return 0 if figures.get("ok") else 1


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    scratch = Path(tempfile.mkdtemp(prefix="mc-chaos-"))
    postgres = PrivatePostgres()
    stack: ChaosStack | None = None
    started = time.monotonic()
    try:
        postgres.start()
        engine = make_engine(postgres.url)
        migrate.upgrade(engine)
        stack = ChaosStack(scratch, postgres.url, extra_env={"MC_REQUEUE_AFTER_S": str(args.requeue_after)})
        stack.start_redis()
        stack.start_target()
        target = f"http://127.0.0.1:{stack.target_port}"
        registry = JobRegistry(engine)
        for body in fleet.job_specs(args.jobs, target, args.seed):
            registry.put(JobSpec.model_validate(body))
        for name in WORKERS:
            stack.start_worker(name, 32)
        for name in BEATS:
            stack.start_beat(name)
        stack.start_web()
        benchlib.wait_until(stack.web_ready, 60, "the web app", interval_s=0.2)
        benchlib.wait_until(lambda: _any_succeeded(engine), 60, "a first run to succeed", interval_s=0.2)
        setup_s = time.monotonic() - started

        w0 = datetime.now(UTC)
        t0 = time.time()
        names = [f"svc-{i}" for i in range(args.services)]
        silent = set(names[: max(1, round(args.services * args.silent_share))])
        senders = fleet.HeartbeatSenders(
            stack.web_url,
            benchlib.ADMIN_TOKEN,
            names,
            silent,
            silence_from=t0 + 0.2 * args.duration,
            silence_until=t0 + 0.55 * args.duration,
            seed=args.seed,
        )
        senders.start()
        say(
            f"setup {setup_s:.1f} s; {args.duration:g} s of chaos, {args.jobs} jobs, {args.services} services"
        )
        exits: Counter[str] = Counter()
        events = chaos(stack, postgres, rng, t0, args, exits)
        w1 = datetime.now(UTC)
        senders.stop()
        say(f"chaos over: {dict(events)}; settling")
        settle_s, unfinished_at_w1 = settle(engine, w1, args.settle, lambda: stack.supervise(exits))
        engine.dispose()
        engine = make_engine(postgres.url)
        figures = reconcile.reconcile(
            engine,
            stack.target_log,
            w0,
            w1,
            accepted=senders.accepted,
            silent=silent,
            silence_from=datetime.fromtimestamp(t0 + 0.2 * args.duration, UTC),
        )
        engine.dispose()
        figures["ok"] = figures["ok"] and not exits
        figures.update(
            scenario="chaos",
            jobs=args.jobs,
            services=args.services,
            duration_s=args.duration,
            kill_every_s=args.kill_every,
            seed=args.seed,
            events=dict(events),
            unexpected_exits=dict(exits),
            heartbeat_refused=dict(senders.refused),
            heartbeat_errors=dict(senders.errors),
            setup_s=round(setup_s, 1),
            settle_s=round(settle_s, 1),
            unfinished_at_settle_start=unfinished_at_w1,
            wall_s=round(time.monotonic() - started, 1),
            started_at=w0.isoformat(timespec="seconds"),
        )
        return figures
    finally:
        if stack is not None:
            stack.stop_all()
            if args.keep_logs is not None:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                for log in scratch.glob("*.log"):
                    shutil.copy(log, args.keep_logs / log.name)
                if stack.target_log.exists():
                    shutil.copy(stack.target_log, args.keep_logs / stack.target_log.name)
        postgres.destroy()
        shutil.rmtree(scratch, ignore_errors=True)


def chaos(
    stack: ChaosStack,
    postgres: PrivatePostgres,
    rng: random.Random,
    t0: float,
    args: argparse.Namespace,
    exits: Counter[str],
) -> Counter[str]:
    """Kill -9 and restart on a timetable relative to ``t0``; returns what was done, counted."""
    timetable = [(t0 + 0.4 * args.duration, "redis"), (t0 + 0.6 * args.duration, "pg")]
    at = t0 + args.kill_every
    while at < t0 + args.duration - 1:
        timetable.append((at, "kill"))
        at += args.kill_every
    timetable.sort()
    events: Counter[str] = Counter()
    kinds: list[tuple[str, ...]] = []
    for when, what in timetable:
        wait_supervising(stack, when, exits)
        if what == "redis":
            stack.kill9("redis")
            stack.restart("redis")
            events["redis_restarts"] += 1
        elif what == "pg":
            postgres.stop()
            time.sleep(1)
            postgres.start()
            events["postgres_restarts"] += 1
        else:
            if not kinds:  # every kind in turn, in a random order, so a short run hits each
                kinds = rng.sample([WORKERS, BEATS, ("web",)], 3)
            victim = rng.choice(kinds.pop())
            stack.kill9(victim)
            stack.restart(victim)
            events[f"kill9_{victim.rstrip('0123456789')}"] += 1
        say(f"{what} done at +{time.time() - t0:.1f} s")
    wait_supervising(stack, t0 + args.duration, exits)
    return events


def wait_supervising(stack: ChaosStack, until: float, exits: Counter[str]) -> None:
    """Sleep until the wall-clock instant ``until``, restarting processes that exit on their own."""
    while True:
        stack.supervise(exits)
        left = until - time.time()
        if left <= 0:
            return
        time.sleep(min(0.5, left))


def settle(engine: Any, w1: datetime, limit_s: float, supervise: Any) -> tuple[float, int | None]:
    """Wait until no run of the window is unfinished, or ``limit_s`` passes.

    Returns the time taken and how many runs of the window were unfinished as it began.
    """
    start = time.monotonic()
    unfinished = (
        select(func.count())
        .select_from(runs)
        .where(runs.c.scheduled_for <= w1, runs.c.status.not_in(reconcile.TERMINAL))
    )
    at_start: int | None = None
    while time.monotonic() - start < limit_s:
        supervise()
        try:
            with engine.connect() as conn:
                left = int(conn.execute(unfinished).scalar() or 0)
            at_start = left if at_start is None else at_start
            if not left:
                break
        except Exception as exc:  # the database may still be recovering right after its restart
            say(f"settle: {type(exc).__name__}")
        time.sleep(1)
    time.sleep(2)  # let a resolve or alert commit that raced the last poll land
    return time.monotonic() - start, at_start


def _any_succeeded(engine: Any) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(select(func.count()).where(runs.c.status == "succeeded")).scalar())


if __name__ == "__main__":
    sys.exit(main())
