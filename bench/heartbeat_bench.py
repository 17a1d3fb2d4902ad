"""Heartbeat ingest: throughput and latency of ``POST /api/v1/heartbeats/{service}`` under wrk.

usage:
  python bench/heartbeat_bench.py [--services 1000] [--workers 2 4] [--auth admin token]
                                  [--duration 20] [--connections 64] [--wrk-threads 2]
  python bench/heartbeat_bench.py --profile-dir /tmp/hb-spy --workers 2 --auth admin   # + py-spy pass
  python bench/heartbeat_bench.py --statements-only     # SQL statements per heartbeat, in process

One JSON line per configuration (auth x web workers). Each configuration gets its own throwaway
database, private ``redis-server`` (the broker the web app hands alert changes to) and the production
web command, ``mission-control web --host 127.0.0.1 --port P --workers N`` (gunicorn, gthread, its
default threads), all stopped and dropped in ``finally``. Needs ``wrk`` on the PATH (Debian:
``apt-get install wrk``).

How each figure is taken:
* S services are registered with ``ServiceRegistry.put`` (interval and grace one hour, so none goes
  late during the run). With ``--auth token`` each also gets its own token through
  ``POST /api/v1/services/NAME/tokens``, and every request carries its service's token; with
  ``--auth admin`` every request carries the admin token. Both in ``Authorization: Bearer``.
* A generated wrk Lua script sends ``POST`` with the body ``{"status":"ok"}`` round-robin over the S
  services (thread t sends to services t, t+T, t+2T, ...), counts the requests it wrote and the
  answers by status in ``response()``, and prints them with wrk's latency histogram as one JSON line.
* A warm-up run (``--warmup`` s, default 3) first: gunicorn's workers import lazily and fill their
  connection pools on first use, and every service's first beat flips it ``new`` -> ``up``.
* ``per_s`` is wrk's completed requests / its duration. Latency p50/p90/p99 are the lines of wrk's
  ``--latency`` distribution (closed loop: each connection waits for its answer before sending again).
* Durability: ``sum(services.heartbeat_count)`` before and after the measured run. Every 2xx must be in
  it; the difference can only be heartbeats still in flight when wrk stopped (at most one per
  connection), which the server commits but wrk never counts. So ``ok_2xx <= db_delta <= sent`` must
  hold, and ``db_minus_2xx`` is reported.
* CPU: seconds used during the measured run by the gunicorn processes (its process group), by the
  PostgreSQL backends of our database (``pg_stat_activity``, from ``/proc``), by wrk (rusage of the
  finished child), and by the whole machine. ``xacts_per_heartbeat`` is ``pg_stat_database.xact_commit``
  of our database over the run divided by ``db_delta``.
* ``--statements-only`` counts, in this process, what one ``ServiceRegistry.record_heartbeat`` of a
  known, up service sends on an engine made as the web app makes it (``make_engine``, no pool pre-ping):
  SQLAlchemy-level statements, plus psycopg2's implicit ``BEGIN`` and the ``COMMIT``, i.e. the round
  trips to PostgreSQL. A service token is checked by the same statement (results before 2026-11-22
  03:20 count a separate ``service_of_token`` checkout and the pre-ping ``SELECT 1`` too).
* ``--profile-dir``: after the measured runs, one more wrk run with ``py-spy record -r 200 -f raw
  --subprocesses`` attached to gunicorn's master (profiling slows the server, so its figures are not
  reported); summarise with ``bench/spy_top.py``. Without ``--spy-gil`` every busy thread is sampled,
  so a thread waiting for PostgreSQL's answer counts (wall time); with it only the thread holding the
  GIL (Python CPU time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchlib
import requests
from e2e_bench import CODE, Stack, free_port, machine_cpu_s, process_cpu_s
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from mission_control.base.clock import SYSTEM_CLOCK
from mission_control.db import migrate
from mission_control.db.engine import make_engine
from mission_control.db.tables import services
from mission_control.monitoring.services import ServiceConfig, ServiceRegistry

HOUR_S = 3600.0
MC_WEB = str(Path(sys.executable).parent / "mission-control")
JSON_MARK = "BENCH_JSON "
STATS_FLUSH_S = 1.5

# Round-robin POSTs over the services; counts what was sent and what came back, by status.
LUA = r"""
local names = {%(names)s}
local tokens = {%(tokens)s}
local body = '{"status":"ok"}'
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  nthreads = tonumber(args[1])
  sent, ok, bad = 0, 0, 0
  statuses = {}
end

function request()
  local i = (tid + sent * nthreads) %% #names + 1
  sent = sent + 1
  local token = tokens[i] or tokens[1]
  return wrk.format("POST", "/api/v1/heartbeats/" .. names[i],
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    bad = bad + 1
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
  end
end

function done(summary, latency, requests)
  local s, o, b, codes = 0, 0, 0, {}
  for _, thread in ipairs(threads) do
    s = s + thread:get("sent")
    o = o + thread:get("ok")
    b = b + thread:get("bad")
    for code, n in pairs(thread:get("statuses")) do
      table.insert(codes, string.format('"%%s": %%d', code, n))
    end
  end
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"sent": %%d, "ok_2xx": %%d, "not_2xx": %%d, "not_2xx_by_status": {%%s}, ' ..
    '"completed": %%d, "duration_us": %%d, "errors": {"connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d}, "p999_us": %%d, "max_us": %%d, "mean_us": %%.1f}\n',
    s, o, b, table.concat(codes, ", "), summary.requests, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(99.9), latency.max, latency.mean))
end
"""

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def lua_script(names: list[str], tokens: list[str]) -> str:
    quoted = ", ".join(json.dumps(n) for n in names)
    return LUA % {"names": quoted, "tokens": ", ".join(json.dumps(t) for t in tokens), "mark": JSON_MARK}


def parse_wrk(output: str) -> dict[str, Any]:
    """The Lua JSON line plus the p50/p90/p99 lines of wrk's ``--latency`` distribution (in ms)."""
    result: dict[str, Any] = {}
    for line in output.splitlines():
        if line.startswith(JSON_MARK):
            result.update(json.loads(line[len(JSON_MARK) :]))
        match = re.match(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", line)
        if match:
            result[f"p{match[1]}_ms"] = round(float(match[2]) * UNIT_MS[match[3]], 3)
    if "sent" not in result:
        raise RuntimeError(f"wrk printed no result line:\n{output[-3000:]}")
    return result


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of every live process in a process group (gunicorn and its workers)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5, pgrp
            user, system = process_cpu_s(int(entry))
            total += user + system
    return total


def backend_pids(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).all()
    return [int(r[0]) for r in rows]


def postgres_cpu_s(pids: list[int]) -> float:
    return sum(sum(process_cpu_s(pid)) for pid in pids)


def xact_commits(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
            ).scalar()
            or 0
        )


def heartbeat_total(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.sum(services.c.heartbeat_count), 0))).scalar() or 0)


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def code_digest() -> str:
    """sha256 (16 hex) over the .py files of the mission_control package this process imports."""
    digest = hashlib.sha256()
    for path in sorted(Path(CODE).rglob("*.py")):
        digest.update(str(path.relative_to(CODE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class WebStack(Stack):
    """The e2e bench's Stack (private redis-server, process groups, logs) plus the web command."""

    web_port: int = field(default_factory=free_port)

    def start_web(self, workers: int, threads: int | None) -> None:
        argv = [MC_WEB, "web", "--host", "127.0.0.1", "--port", str(self.web_port), "--workers", str(workers)]
        argv += ["--threads", str(threads)] if threads else []
        self.spawn("web", argv, self.scratch)

        def ready() -> bool:
            self.alive("web")
            try:
                return requests.get(f"{self.web_url}/readyz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        benchlib.wait_until(ready, 60, "the web app's /readyz", interval_s=0.2)

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"


def run_wrk(stack: WebStack, script: Path, args: argparse.Namespace, seconds: float) -> str:
    argv = ["wrk", "-t", str(args.wrk_threads), "-c", str(args.connections), "-d", f"{round(seconds)}s"]
    argv += ["--latency", "--timeout", "10s", "-s", str(script), stack.web_url, "--", str(args.wrk_threads)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def settle(engine: Engine, timeout_s: float = 30.0) -> int:
    """Wait until the heartbeat total stops moving (answers in flight when wrk stopped are committed)."""
    last = heartbeat_total(engine)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = heartbeat_total(engine)
        if now == last:
            return now
        last = now
    raise TimeoutError(f"heartbeats still arriving {timeout_s} s after wrk stopped")


def one_configuration(args: argparse.Namespace, auth: str, workers: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "scenario": "heartbeat_ingest",
        "code": CODE,
        "code_digest": code_digest(),
        "auth": auth,
        "web_workers": workers,
        "web_threads": args.threads or "default (4)",
        "services": args.services,
        "wrk": f"-t{args.wrk_threads} -c{args.connections} -d{round(args.duration)}s --latency",
    }
    scratch = Path(tempfile.mkdtemp(prefix="mc-hb-"))
    try:
        with benchlib.throwaway_database("mc_hb_bench") as database_url:
            engine = make_engine(database_url)
            stack = WebStack(scratch, database_url)
            try:
                migrate.upgrade(engine)
                registry = ServiceRegistry(engine, SYSTEM_CLOCK)
                names = [f"svc-{i:05d}" for i in range(args.services)]
                for name in names:
                    registry.put(name, ServiceConfig(interval_s=HOUR_S, grace_s=HOUR_S))
                stack.start_redis()
                stack.start_web(workers, args.threads)
                tokens = [benchlib.ADMIN_TOKEN]
                if auth == "token":
                    tokens = create_tokens(stack, names)
                script = scratch / "heartbeats.lua"
                script.write_text(lua_script(names, tokens), encoding="utf-8")
                if args.warmup:
                    run_wrk(stack, script, args, args.warmup)
                before = settle(engine)
                time.sleep(STATS_FLUSH_S)  # backends report commit counts to pg_stat_database at most 1/s
                web_pgid = stack.processes["web"].pid
                pids = backend_pids(engine)
                web0, pg0, wrk0 = group_cpu_s(web_pgid), postgres_cpu_s(pids), children_cpu_s()
                machine0, xacts0 = machine_cpu_s(), xact_commits(engine)
                output = run_wrk(stack, script, args, args.duration)
                web1, pg1, wrk1, machine1 = (
                    group_cpu_s(web_pgid),
                    postgres_cpu_s(pids),
                    children_cpu_s(),
                    machine_cpu_s(),
                )
                after = settle(engine)
                time.sleep(STATS_FLUSH_S)
                xacts = xact_commits(engine) - xacts0  # our own reads roll back: not counted
                stack.alive("web")
                wrk = parse_wrk(output)
                delta = after - before
                seconds = wrk["duration_us"] / 1e6
                out.update(
                    {
                        "per_s": round(wrk["completed"] / seconds, 1),
                        "p50_ms": wrk.get("p50_ms"),
                        "p90_ms": wrk.get("p90_ms"),
                        "p99_ms": wrk.get("p99_ms"),
                        "p999_ms": round(wrk["p999_us"] / 1000, 3),
                        "max_ms": round(wrk["max_us"] / 1000, 3),
                        "completed": wrk["completed"],
                        "ok_2xx": wrk["ok_2xx"],
                        "not_2xx": wrk["not_2xx"],
                        "not_2xx_by_status": wrk["not_2xx_by_status"],
                        "socket_errors": wrk["errors"],
                        "sent": wrk["sent"],
                        "db_heartbeats_delta": delta,
                        "db_minus_2xx": delta - wrk["ok_2xx"],
                        "durable": wrk["ok_2xx"] <= delta <= wrk["sent"],
                        "xacts_per_heartbeat": round(xacts / delta, 3) if delta else None,
                        "pg_backends": len(pids),
                        "cpu_s": {
                            "web": round(web1 - web0, 2),
                            "postgres": round(pg1 - pg0, 2),
                            "wrk": round(wrk1 - wrk0, 2),
                            "machine_busy": round(machine1[0] - machine0[0], 2),
                            "machine_capacity": round(machine1[1] - machine0[1], 2),
                        },
                        "cpu_ms_per_heartbeat": {
                            "web": round(1000 * (web1 - web0) / delta, 3) if delta else None,
                            "postgres": round(1000 * (pg1 - pg0) / delta, 3) if delta else None,
                        },
                    }
                )
                if args.profile_dir:
                    out["profile"] = profile(args, stack, script, auth, workers)
            finally:
                stack.stop_all()
                engine.dispose()
    finally:
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in scratch.glob("*.log"):
                shutil.copy(log, args.keep_logs / f"{auth}-w{workers}-{log.name}")
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def create_tokens(stack: WebStack, names: list[str]) -> list[str]:
    tokens = []
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {benchlib.ADMIN_TOKEN}"
        for name in names:
            response = session.post(f"{stack.web_url}/api/v1/services/{name}/tokens", timeout=10)
            response.raise_for_status()
            tokens.append(response.json()["token"])
    return tokens


def profile(args: argparse.Namespace, stack: WebStack, script: Path, auth: str, workers: int) -> str:
    """One more wrk run with py-spy sampling gunicorn and its workers; returns the raw profile's path."""
    args.profile_dir.mkdir(parents=True, exist_ok=True)
    output = args.profile_dir / f"web-{auth}-w{workers}{'-gil' if args.spy_gil else ''}.txt"
    seconds = min(10, args.duration)
    argv = [args.py_spy, "record", "-r", "200", "-d", str(seconds), "-f", "raw", "-o", str(output)]
    argv += ["--gil"] if args.spy_gil else []
    spy = subprocess.Popen(
        [*argv, "--pid", str(stack.processes["web"].pid), "--subprocesses"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1)  # py-spy attaches
        run_wrk(stack, script, args, seconds + 1)
        spy.wait(timeout=60)
    finally:
        if spy.poll() is None:
            spy.terminate()
            with suppress(subprocess.TimeoutExpired):
                spy.wait(timeout=10)
    return str(output)


# --------------------------------------------------------------------------- statements per heartbeat
def statements_per_heartbeat(args: argparse.Namespace) -> dict[str, Any]:
    """Round trips of one heartbeat on an engine configured as the web app's, counted in process."""
    import psycopg2.extensions

    counts: Counter[str] = Counter()

    idle = psycopg2.extensions.TRANSACTION_STATUS_IDLE

    class CountingCursor(psycopg2.extensions.cursor):  # type: ignore[misc]
        def execute(self, query: Any, vars: Any = None) -> Any:
            if self.connection.info.transaction_status == idle and not self.connection.autocommit:
                counts["BEGIN (implicit)"] += 1
            text = query.decode() if isinstance(query, bytes) else str(query)
            counts[" ".join(text.split()[:3])[:60]] += 1
            return super().execute(query, vars)

    class CountingConnection(psycopg2.extensions.connection):  # type: ignore[misc]
        """Counts what reaches the server: psycopg2 sends nothing for COMMIT/ROLLBACK when idle."""

        def cursor(self, *a: Any, **kw: Any) -> Any:
            kw.setdefault("cursor_factory", CountingCursor)
            return super().cursor(*a, **kw)

        def commit(self) -> None:
            if self.info.transaction_status != idle:
                counts["COMMIT"] += 1
            super().commit()

        def rollback(self) -> None:
            if self.info.transaction_status != idle:
                counts["ROLLBACK"] += 1
            super().rollback()

    out: dict[str, Any] = {"scenario": "heartbeat_statements", "code": CODE, "code_digest": code_digest()}
    with benchlib.throwaway_database("mc_hb_stmts") as database_url:
        setup_engine = make_engine(database_url)
        migrate.upgrade(setup_engine)
        setup_engine.dispose()
        # As the web app makes it: no pool pre-ping.
        engine = make_engine(
            database_url, pool_pre_ping=False, connect_args={"connection_factory": CountingConnection}
        )
        sqlalchemy_level: Counter[str] = Counter()

        @event.listens_for(engine, "before_cursor_execute")
        def _count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
            sqlalchemy_level[" ".join(statement.split()[:2])] += 1

        registry = ServiceRegistry(engine, SYSTEM_CLOCK)
        registry.put("svc", ServiceConfig(interval_s=HOUR_S, grace_s=HOUR_S))
        token = registry.create_token("svc").token
        registry.record_heartbeat("svc", status="ok", message=None, truncated=False)  # new -> up
        runs = args.statement_runs
        # The API checks a service token inside the heartbeat's own statement (``token=``, a
        # HeartbeatCredential). Code without it (16dbc46 to ebf1e31) looked the token up first in
        # authenticate(): that lookup is counted with the heartbeat.
        try:
            from mission_control.db.api_tokens import HeartbeatCredential
        except ImportError:
            HeartbeatCredential = None
        for label, service_token in (("admin", None), ("token", token)):
            counts.clear()
            sqlalchemy_level.clear()
            for _ in range(runs):
                if service_token is None:
                    registry.record_heartbeat("svc", status="ok", message=None, truncated=False)
                elif HeartbeatCredential is not None:
                    credential = HeartbeatCredential.of(service_token, from_header=True)
                    registry.record_heartbeat(
                        "svc", status="ok", message=None, truncated=False, token=credential
                    )
                else:
                    registry.tokens.lookup(service_token)
                    registry.record_heartbeat("svc", status="ok", message=None, truncated=False)
            out[label] = {
                "round_trips_per_heartbeat": round(sum(counts.values()) / runs, 2),
                "by_statement": {k: round(v / runs, 2) for k, v in counts.most_common()},
                "sqlalchemy_statements_per_heartbeat": round(sum(sqlalchemy_level.values()) / runs, 2),
            }
        engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--workers", type=int, nargs="+", default=[2, 4], help="web worker processes to try")
    p.add_argument("--threads", type=int, default=None, help="web threads (default: the command's)")
    p.add_argument("--auth", nargs="+", choices=["admin", "token"], default=["admin", "token"])
    p.add_argument("--duration", type=float, default=20)
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--profile-dir", type=Path, default=None)
    p.add_argument("--py-spy", default="/tmp/spy-venv/bin/py-spy")
    p.add_argument("--spy-gil", action="store_true", help="sample only threads holding the GIL (CPU)")
    p.add_argument("--keep-logs", type=Path, default=None)
    p.add_argument("--statements-only", action="store_true")
    p.add_argument("--statement-runs", type=int, default=200)
    args = p.parse_args(argv)
    benchlib.exit_on_sigterm()
    if args.statements_only:
        print(json.dumps(statements_per_heartbeat(args)), flush=True)
        return 0
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not on the PATH (Debian: apt-get install -y wrk)")
    for auth in args.auth:
        for workers in args.workers:
            print(json.dumps(one_configuration(args, auth, workers)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
