"""End-to-end benchmark with real processes: beat -> Redis -> worker(s) -> HTTP target -> run recorded.

usage:
  python bench/e2e_bench.py throughput [--jobs 2000] [--workers 1] [--concurrency 64]
  python bench/e2e_bench.py lag [--jobs 100] [--seconds 60] [--workers 1]
  python bench/e2e_bench.py beat-rss [--jobs 100000] [--due 1000]   # RSS of a real beat process
  python bench/e2e_bench.py all        # throughput with 1 and 2 workers, then lag; one JSON line each

Every scenario starts its own private redis-server (no persistence), its own PostgreSQL database,
the HTTP target of ``tests/targets.py`` in its own process (so it does not share our GIL), the
workers and one beat, exactly as the Procfile runs them, and stops and drops all of it in ``finally``.

Why the figures are taken this way:
* Throughput: the jobs are inserted only once the whole pipeline has fired a canary run, and they
  are due a couple of seconds later, so process start-up is not counted; the clock runs from the
  slot's instant to the last run's ``finished_at`` as the database recorded it.
* Lag: the target stamps each request when it arrives; the request's ``X-Mission-Control-Run``
  header maps it to the run's ``scheduled_for``. Lag is the difference, first attempts only, and the
  runs table splits it into claim (beat), pickup (broker + worker) and send.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import benchlib
import redis
import requests
from celery import Celery
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

import mission_control
from mission_control.db import migrate
from mission_control.db.engine import make_engine
from mission_control.db.tables import jobs, runs

REPO = Path(__file__).resolve().parents[1]
# Which copy of the product the processes import (bench/run_all.sh puts a frozen snapshot on PYTHONPATH).
CODE = os.path.dirname(mission_control.__file__)
CELERY = [sys.executable, "-m", "celery", "-A", "mission_control.celery_app"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_rss_mb(pid: int) -> dict[str, float]:
    """Current and peak RSS of another process, from /proc (ru_maxrss only covers ourselves)."""
    values: dict[str, float] = {}
    with suppress(OSError), open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = round(int(rest.split()[0]) / 1024, 1)
    return values


CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds a process has used so far."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0, 0.0
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # utime, stime (fields 14 and 15)


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / CLK_TCK, sum(values) / CLK_TCK


def pg_sessions(engine: Engine) -> int:
    """Connections ever opened to our database (pg_stat_database.sessions, PostgreSQL 14+)."""
    with engine.connect() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            ).scalar()
            or 0
        )


@dataclass
class Stack:
    """The processes of one scenario; ``stop_all`` ends each by the process group we gave it."""

    scratch: Path
    database_url: str
    redis_port: int = field(default_factory=free_port)
    target_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def target_url(self) -> str:
        return f"http://127.0.0.1:{self.target_port}/ok"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def target_log(self) -> Path:
        return self.scratch / "target.jsonl"

    @property
    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("MC_")}
        return {
            **base,
            "MC_DATABASE_URL": self.database_url,
            "MC_BROKER_URL": self.broker_url,
            "MC_ADMIN_TOKEN": benchlib.ADMIN_TOKEN,
            "MC_SIGNING_SECRET": benchlib.SIGNING_SECRET,
            "PYTHONDONTWRITEBYTECODE": "1",  # other engineers share the tree: leave no .pyc behind
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def spawn(self, name: str, argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
        log = (self.scratch / f"{name}.log").open("ab")
        process = subprocess.Popen(
            argv, env=self.env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.processes[name] = process
        return process

    def start_redis(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server is not installed")
        argv = [binary, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", ""]
        self.spawn("redis", [*argv, "--appendonly", "no", "--dir", str(self.scratch)], self.scratch)
        client = redis.Redis(port=self.redis_port)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        benchlib.wait_until(answers, 10, "redis-server")
        client.close()

    def start_target(self) -> None:
        argv = [sys.executable, "-m", "tests.targets", "--port", str(self.target_port)]
        self.spawn("target", [*argv, "--log", str(self.target_log)], REPO)

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.target_port), timeout=0.2).close()
                return True
            except OSError:
                self.alive("target")
                return False

        benchlib.wait_until(listening, 15, "the HTTP target")

    def start_worker(self, name: str, concurrency: int) -> None:
        """One worker as the Procfile runs it (threads pool, both queues), named ``name``."""
        argv = [*CELERY, "worker", "-P", "threads", "-c", str(concurrency), "-Q", "triggers,default"]
        argv += ["-n", f"{name}@%h", "--without-mingle", "--without-gossip", "-l", "warning"]
        self.spawn(name, argv, self.scratch)

    def start_workers(self, count: int, concurrency: int) -> None:
        for i in range(count):
            self.start_worker(f"worker{i + 1}", concurrency)
        control = Celery(broker=self.broker_url)
        try:

            def all_answer() -> bool:
                for i in range(count):
                    self.alive(f"worker{i + 1}")
                return len(control.control.ping(timeout=0.5)) >= count

            benchlib.wait_until(all_answer, 60, f"{count} worker(s) to answer a ping")
        finally:
            control.close()

    def start_beat(self, name: str = "beat") -> None:
        # As the Procfile runs it.
        self.spawn(name, [sys.executable, "-m", "mission_control", "beat", "-l", "warning"], self.scratch)

    def start_web(self, workers: int = 2) -> None:
        """``mission-control web`` (gunicorn) on ``web_port``; see :meth:`web_ready`."""
        argv = [
            sys.executable,
            "-m",
            "mission_control",
            "web",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.web_port),
        ]
        self.spawn("web", [*argv, "--workers", str(workers)], self.scratch)

    def web_ready(self) -> bool:
        self.alive("web")
        try:
            return requests.get(self.web_url + "/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def alive(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            tail = (self.scratch / f"{name}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def rss(self) -> dict[str, dict[str, float]]:
        return {name: proc_rss_mb(p.pid) for name, p in self.processes.items() if name != "redis"}

    def cpu(self) -> dict[str, tuple[float, float]]:
        return {name: process_cpu_s(p.pid) for name, p in self.processes.items()}

    def stop_all(self) -> None:
        # Beat first (no new messages), then workers (they finish what they hold), then the rest.
        order = sorted(self.processes, key=lambda n: (n != "beat", not n.startswith("worker"), n))
        for name in order:
            process = self.processes.pop(name)
            if process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    with suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)


@contextmanager
def running_stack(workers: int, concurrency: int, keep_logs: Path | None) -> Iterator[tuple[Stack, Engine]]:
    """Database, Redis, target, workers and beat; everything torn down however the scenario ends.

    With ``workers=0`` only the database and Redis are started, for watching one process on its own.
    """
    scratch = Path(tempfile.mkdtemp(prefix="mc-e2e-"))
    try:
        with benchlib.throwaway_database("mc_e2e_bench") as database_url:
            engine = make_engine(database_url)
            stack = Stack(scratch, database_url)
            try:
                migrate.upgrade(engine)
                stack.start_redis()
                if workers:
                    stack.start_target()
                    stack.start_workers(workers, concurrency)
                    fire_canary(stack, engine)
                yield stack, engine
            finally:
                stack.stop_all()
                engine.dispose()
    finally:
        if keep_logs is not None:
            keep_logs.mkdir(parents=True, exist_ok=True)
            for log in scratch.glob("*.log"):
                shutil.copy(log, keep_logs / log.name)
        shutil.rmtree(scratch, ignore_errors=True)


def fire_canary(stack: Stack, engine: Engine) -> None:
    """Start beat and wait for one run to succeed: proves beat, broker, worker and target all work."""
    template = benchlib.job_template(stack.target_url, benchlib.DAY_S)
    benchlib.insert_jobs(engine, 1, datetime.now(UTC), template=template, prefix="canary")
    stack.start_beat()

    def succeeded() -> bool:
        stack.alive("beat")
        with engine.connect() as conn:
            return bool(
                conn.execute(
                    select(func.count())
                    .select_from(runs)
                    .where(runs.c.job_name == "canary-0", runs.c.status == "succeeded")
                ).scalar()
            )

    benchlib.wait_until(succeeded, 60, "the canary run to succeed", interval_s=0.1)


def status_counts(engine: Engine, where: Any) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(runs.c.status, func.count()).where(where).group_by(runs.c.status)).all()
    return {status: n for status, n in rows}


def target_requests(stack: Stack) -> list[dict[str, Any]]:
    if not stack.target_log.exists():
        return []
    lines = stack.target_log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


# --------------------------------------------------------------------------- scenarios
def throughput(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "scenario": "throughput",
        "code": CODE,
        "jobs": args.jobs,
        "workers": args.workers,
        "concurrency": args.concurrency,
    }
    with running_stack(args.workers, args.concurrency, args.keep_logs) as (stack, engine):
        slot = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=args.lead)
        template = benchlib.job_template(stack.target_url, benchlib.DAY_S)
        benchlib.insert_jobs(engine, args.jobs, slot, template=template)
        ours = runs.c.scheduled_for == slot
        spy = start_py_spy(args, stack)
        cpu_before, machine_before, sessions_before = stack.cpu(), machine_cpu_s(), pg_sessions(engine)
        deadline = time.time() + args.timeout
        counts: dict[str, int] = {}
        while time.time() < deadline:
            for name in stack.processes:
                stack.alive(name)
            counts = status_counts(engine, ours)
            if counts.get("succeeded", 0) >= args.jobs:
                break
            time.sleep(0.1)
        observed = time.time()
        cpu_after, machine_after = stack.cpu(), machine_cpu_s()
        sessions = pg_sessions(engine) - sessions_before
        finish_py_spy(spy)
        busy = machine_after[0] - machine_before[0]
        elapsed = machine_after[1] - machine_before[1]
        zero = (0.0, 0.0)
        user = {name: cpu_after[name][0] - cpu_before.get(name, zero)[0] for name in cpu_after}
        system = {name: cpu_after[name][1] - cpu_before.get(name, zero)[1] for name in cpu_after}
        out["cpu_s"] = {
            **{name: round(user[name] + system[name], 2) for name in cpu_after},
            "machine_busy": round(busy, 2),
            "machine_capacity": round(elapsed, 2),
            "rest (postgres, others)": round(busy - sum(user.values()) - sum(system.values()), 2),
        }
        out["cpu_user_sys_s"] = {name: [round(user[name], 2), round(system[name], 2)] for name in cpu_after}
        out["cpu_ms_per_trigger"] = {
            name: round(1000 * (user[name] + system[name]) / args.jobs, 2) for name in cpu_after
        }
        out["pg_connections_opened"] = sessions
        with engine.connect() as conn:
            first_claim, last_claim, last_start, last_finish, multi = conn.execute(
                select(
                    func.min(runs.c.created_at),
                    func.max(runs.c.created_at),
                    func.max(runs.c.started_at),
                    func.max(runs.c.finished_at),
                    func.count().filter(runs.c.attempt_count > 1),
                ).where(ours)
            ).one()
        done = counts.get("succeeded", 0)
        span = (last_finish - slot).total_seconds() if last_finish else None
        out.update(
            {
                "statuses": counts,
                "all_succeeded": done == args.jobs,
                "wall_s": round(span, 3) if span else None,
                "triggers_per_s": round(done / span, 1) if span else None,
                "claims_done_after_s": round((last_claim - slot).total_seconds(), 3) if last_claim else None,
                "first_claim_after_s": round((first_claim - slot).total_seconds(), 3)
                if first_claim
                else None,
                "last_start_after_s": round((last_start - slot).total_seconds(), 3) if last_start else None,
                "observed_by_poll_after_s": round(observed - slot.timestamp(), 3),
                "runs_with_retries": multi,
                "target_requests": len(target_requests(stack)) - 1,  # less the canary
                "rss_mb": stack.rss(),
            }
        )
    return out


def lag(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "scenario": "lag",
        "code": CODE,
        "jobs": args.jobs,
        "every_s": 1,
        "seconds": args.seconds,
        "workers": args.workers,
        "concurrency": args.concurrency,
    }
    with running_stack(args.workers, args.concurrency, args.keep_logs) as (stack, engine):
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=args.lead)
        benchlib.insert_jobs(engine, args.jobs, start, template=benchlib.job_template(stack.target_url, 1))
        end = start + timedelta(seconds=args.seconds)
        time.sleep(max(0.0, end.timestamp() - time.time()))
        for name in stack.processes:
            stack.alive(name)
        with engine.begin() as conn:  # pause them all: nothing after `end` fires
            conn.execute(update(jobs).where(jobs.c.name.like("job-%")).values(next_run_at=None))
        window = (
            (runs.c.scheduled_for >= start) & (runs.c.scheduled_for < end) & (runs.c.job_name != "canary-0")
        )

        def settled() -> bool:
            counts = status_counts(engine, window)
            return not any(counts.get(s) for s in ("queued", "running", "retrying"))

        benchlib.wait_until(settled, 60, "the last runs to finish", interval_s=0.2)
        out["rss_mb"] = stack.rss()
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    runs.c.id,
                    runs.c.scheduled_for,
                    runs.c.created_at,
                    runs.c.started_at,
                    runs.c.finished_at,
                    runs.c.status,
                    runs.c.reason,
                    runs.c.trigger,
                ).where(window)
            ).all()
        requests = target_requests(stack)
    by_id = {row.id: row for row in rows}
    lags, claim, pickup, send = [], [], [], []
    for request in requests:
        headers = request["headers"]
        run = by_id.get(int(headers.get("X-Mission-Control-Run", 0)))
        if run is None or headers.get("X-Mission-Control-Attempt") != "1":
            continue
        scheduled = run.scheduled_for.timestamp()
        lags.append(request["received_at"] - scheduled)
        claim.append(run.created_at.timestamp() - scheduled)
        pickup.append(run.started_at.timestamp() - run.created_at.timestamp())
        send.append(request["received_at"] - run.started_at.timestamp())
    statuses = Counter(row.status for row in rows)
    out.update(
        {
            "expected_runs": args.jobs * args.seconds,
            "runs": len(rows),
            "statuses": dict(statuses),
            "reasons": dict(Counter(row.reason for row in rows if row.reason)),
            "triggers": dict(Counter(row.trigger for row in rows)),
            "lag": benchlib.percentiles_s(lags),
            "lag_parts_p50_p99_s": {
                name: [benchlib.percentiles_s(xs).get("p50_s"), benchlib.percentiles_s(xs).get("p99_s")]
                for name, xs in (("claim", claim), ("pickup", pickup), ("send", send))
            },
            "late_over_1s": sum(1 for x in lags if x > 1.0),
        }
    )
    return out


def beat_rss(args: argparse.Namespace) -> dict[str, Any]:
    """RSS of a real ``celery beat`` process over N registered jobs: idle, then after K fall due at once.

    The scheduler benchmark's ru_maxrss is the bench process's; this is the process the target is about.
    No worker runs, so the K messages wait in Redis and only the beat's own memory is measured.
    """
    out: dict[str, Any] = {"scenario": "beat_rss", "code": CODE, "jobs": args.jobs, "due": args.due}
    with running_stack(0, 0, args.keep_logs) as (stack, engine):
        later = datetime.now(UTC) + timedelta(days=1)
        started = time.perf_counter()
        benchlib.insert_jobs(
            engine, args.jobs, later, template=benchlib.job_template(stack.target_url, 86_400)
        )
        out["populate_s"] = round(time.perf_counter() - started, 2)
        stack.start_beat()
        time.sleep(args.settle)  # imports, first connection, a few idle ticks
        stack.alive("beat")
        beat_pid = stack.processes["beat"].pid
        out["idle"] = proc_rss_mb(beat_pid)
        with engine.begin() as conn:
            ids = select(jobs.c.id).order_by(jobs.c.id).limit(args.due).scalar_subquery()
            conn.execute(update(jobs).where(jobs.c.id.in_(ids)).values(next_run_at=datetime.now(UTC)))

        def claimed() -> bool:
            stack.alive("beat")
            with engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(runs)).scalar() or 0) >= args.due

        benchlib.wait_until(claimed, 60, f"beat to claim {args.due} slots", interval_s=0.1)
        time.sleep(args.settle)
        out["after_burst"] = proc_rss_mb(beat_pid)
        client = redis.Redis(port=stack.redis_port)
        out["messages_in_redis"] = int(client.llen("triggers"))
        client.close()
    return out


# --------------------------------------------------------------------------- optional profiling
def start_py_spy(args: argparse.Namespace, stack: Stack) -> list[subprocess.Popen[bytes]]:
    """Sample beat and workers with py-spy (collapsed stacks) while the throughput burst runs."""
    if not args.py_spy:
        return []
    args.profile_dir.mkdir(parents=True, exist_ok=True)
    spies = []
    for name, process in stack.processes.items():
        if name == "beat" or name.startswith("worker"):
            output = args.profile_dir / f"{name}-w{args.workers}.txt"
            argv = [args.py_spy, "record", "--pid", str(process.pid), "--duration", str(args.spy_seconds)]
            argv += ["--gil"] if args.spy_gil else []
            argv += ["--format", "raw", "--rate", "200", "--nonblocking", "--output", str(output)]
            spies.append(
                subprocess.Popen(
                    argv,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    return spies


def finish_py_spy(spies: list[subprocess.Popen[bytes]]) -> None:
    for spy in spies:
        try:
            spy.wait(timeout=120)
        except subprocess.TimeoutExpired:
            spy.terminate()
            spy.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=["throughput", "lag", "beat-rss", "all"])
    p.add_argument("--jobs", type=int, default=None, help="2000 for throughput, 100 for lag")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--concurrency", type=int, default=64, help="threads per worker")
    p.add_argument("--seconds", type=int, default=60, help="how long the lag scenario fires")
    p.add_argument("--due", type=int, default=1000, help="beat-rss: slots made due at once")
    p.add_argument("--settle", type=float, default=5.0, help="beat-rss: seconds before reading RSS")
    p.add_argument("--lead", type=float, default=2.0, help="seconds between inserting jobs and their slot")
    p.add_argument("--timeout", type=float, default=300.0, help="give up on throughput after this long")
    p.add_argument("--keep-logs", type=Path, default=None, help="copy process logs here at the end")
    p.add_argument("--py-spy", default=None, help="py-spy binary: profile beat and workers (throughput)")
    p.add_argument("--spy-seconds", type=int, default=8)
    p.add_argument("--spy-gil", action="store_true", help="sample only the thread holding the GIL (CPU)")
    p.add_argument("--profile-dir", type=Path, default=Path("/tmp/mc-e2e-profiles"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchlib.exit_on_sigterm()
    if args.scenario == "beat-rss":
        args.jobs = args.jobs or 100_000
        print(json.dumps(beat_rss(args)), flush=True)
        return 0
    if args.scenario in ("throughput", "lag"):
        args.jobs = args.jobs or (2000 if args.scenario == "throughput" else 100)
        result = throughput(args) if args.scenario == "throughput" else lag(args)
        print(json.dumps(result), flush=True)
        return 0
    jobs = args.jobs
    for workers in (1, 2):
        print(
            json.dumps(
                throughput(argparse.Namespace(**{**vars(args), "jobs": jobs or 2000, "workers": workers}))
            )
        )
    print(
        json.dumps(lag(argparse.Namespace(**{**vars(args), "jobs": jobs or 100, "workers": 1}))), flush=True
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
