"""Soak: steady load for a long time, RSS of every process and the database's size sampled throughout.

usage:
  python bench/soak.py [--minutes 60] [--jobs 100] [--every-s 5] [--services 50] [--beat-s 5]
                       [--missions-per-s 0.5] [--sample-s 30] [--retention-per-job 50]
                       [--prune-interval-s 300] [--plot bench/soak.png] [--database private|shared]
  python bench/soak.py --replot bench/results/soak-<stamp>.jsonl [--plot bench/soak.png]

One private redis-server, a private PostgreSQL server (below), the HTTP target of tests/targets.py, the
web app (`mission-control web`, 2 gunicorn workers), two workers and one beat, exactly as the
Procfile runs them. Load: ``--jobs`` jobs every ``--every-s`` seconds (``/ok``), ``--services``
services sending a heartbeat every ``--beat-s`` seconds through the web app, and two-step missions
started through the API at ``--missions-per-s``. Retention is shortened (``MC_RUN_RETENTION_PER_JOB``,
``MC_PRUNE_INTERVAL_S``) so bounded growth shows within the run.

The database is a private PostgreSQL server (initdb + pg_ctl in a temporary directory, as the chaos
run uses) with the stock settings, autovacuum on, as a production server runs. The machine's own
server on 127.0.0.1:5432 runs with ``autovacuum = off`` (a CI setting), and there every update of a
run leaves a dead row nobody reclaims: a first soak there grew the database 9 -> 41 MB in 30 minutes
with the number of rows flat. ``--database shared`` measures that server anyway.

Every ``--sample-s`` seconds one JSON line goes to ``bench/results/soak-<stamp>.jsonl``: RSS (VmRSS,
MB) of each process — web counts the gunicorn master and its workers together — PostgreSQL's
database and table sizes, and counters. At the end a PNG plot (RSS per process and database size over
time) is written, and one summary line printed: per process the first, last and peak RSS and the
slope over the second half of the run (MB per hour); a flat slope there is what "no leak" means.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import benchlib
import e2e_bench
import requests
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from mission_control.db.tables import missions, runs

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO))  # the private PostgreSQL server the tests and the chaos run use
TABLES = ("runs", "attempts", "missions", "heartbeats", "alerts", "notices")


def tree_rss_mb(pid: int) -> float:
    """VmRSS of a process and all its descendants (a gunicorn master and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += e2e_bench.proc_rss_mb(current).get("VmRSS", 0.0)
        todo.extend(children.get(current, []))
    return round(total, 1)


class Load:
    """Heartbeats and mission starts through the web app, on their own threads."""

    def __init__(self, url: str, services: int, beat_s: float, missions_per_s: float) -> None:
        self.url = url
        self.services = services
        self.beat_s = beat_s
        self.missions_per_s = missions_per_s
        self.stop = threading.Event()
        self.accepted = 0
        self.refused = 0
        self.started_missions = 0
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {benchlib.ADMIN_TOKEN}"
        self._threads = [threading.Thread(target=self._beats, daemon=True)]
        if missions_per_s > 0:
            self._threads.append(threading.Thread(target=self._missions, daemon=True))

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _count(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self.accepted += 1
            else:
                self.refused += 1

    def _beat(self, i: int) -> None:
        try:
            answer = self._session.post(
                f"{self.url}/api/v1/heartbeats/soak-{i}", json={"status": "ok"}, timeout=10
            )
            self._count(answer.status_code < 300)
        except requests.RequestException:
            self._count(False)

    def _beats(self) -> None:
        with ThreadPoolExecutor(8) as pool:
            while not self.stop.is_set():
                started = time.monotonic()
                list(pool.map(self._beat, range(self.services)))
                self.stop.wait(max(0.0, self.beat_s - (time.monotonic() - started)))

    def _missions(self) -> None:
        n = 0
        while not self.stop.wait(1 / self.missions_per_s):
            n += 1
            try:
                answer = self._session.post(
                    f"{self.url}/api/v1/missions", json={"definition": "soak", "input": {"n": n}}, timeout=10
                )
                if answer.status_code == 201:
                    with self._lock:
                        self.started_missions += 1
            except requests.RequestException:
                pass


def sample(stack: e2e_bench.Stack, engine: Engine, load: Load, t0: float) -> dict[str, Any]:
    with engine.connect() as conn:
        db_mb = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar() / 2**20
        tables = {
            name: round(conn.exec_driver_sql(f"SELECT pg_total_relation_size('{name}')").scalar() / 2**20, 2)
            for name in TABLES
        }
        run_rows = conn.execute(select(func.count()).select_from(runs)).scalar()
        finished = conn.execute(
            select(func.count()).select_from(runs).where(runs.c.status == "succeeded")
        ).scalar()
        mission_rows = conn.execute(select(func.count()).select_from(missions)).scalar()
    rss = {
        name: tree_rss_mb(process.pid)
        if name == "web"
        else e2e_bench.proc_rss_mb(process.pid).get("VmRSS", 0.0)
        for name, process in stack.processes.items()
    }
    return {
        "t_min": round((time.monotonic() - t0) / 60, 3),
        "rss_mb": rss,
        "db_mb": round(db_mb, 2),
        "table_mb": tables,
        "runs_rows": run_rows,
        "runs_succeeded_rows": finished,
        "missions_rows": mission_rows,
        "heartbeats_accepted": load.accepted,
        "heartbeats_refused": load.refused,
        "missions_started": load.started_missions,
    }


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    names = sorted(samples[-1]["rss_mb"])
    half = samples[len(samples) // 2 :]
    out: dict[str, Any] = {}
    for name in [*names, "db_mb"]:
        series = [
            (s["t_min"], s["db_mb"] if name == "db_mb" else s["rss_mb"].get(name, 0.0)) for s in samples
        ]
        tail = [(s["t_min"], s["db_mb"] if name == "db_mb" else s["rss_mb"].get(name, 0.0)) for s in half]
        out[name] = {
            "first": series[0][1],
            "last": series[-1][1],
            "peak": max(v for _, v in series),
            "second_half_slope_per_h": round(_slope(tail) * 60, 2),
        }
    return out


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return 0.0 if var == 0 else sum((x - mean_x) * (y - mean_y) for x, y in points) / var


def plot(samples: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s["t_min"] for s in samples]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for name in sorted(samples[-1]["rss_mb"]):
        series = [s["rss_mb"].get(name, 0.0) for s in samples]
        if name == "target":  # the bench's own HTTP target keeps every request it saw, by design
            top.plot(minutes, series, label="target (harness)", color="grey", linestyle=":")
        else:
            top.plot(minutes, series, label=name)
    top.set_ylabel("RSS (MB)")
    top.set_ylim(bottom=0)
    top.legend(loc="center right", ncol=3, fontsize="small")
    top.grid(alpha=0.3)
    bottom.plot(minutes, [s["db_mb"] for s in samples], label="database", color="black")
    for name in ("runs", "attempts", "missions", "heartbeats"):
        bottom.plot(minutes, [s["table_mb"][name] for s in samples], label=name, linestyle="--")
    rows = bottom.twinx()
    rows.plot(minutes, [s["runs_rows"] for s in samples], label="runs rows", color="tab:red", alpha=0.4)
    rows.set_ylabel("runs rows")
    rows.set_ylim(bottom=0)
    rows.legend(loc="upper right", fontsize="small")
    bottom.set_ylabel("size (MB)")
    bottom.set_xlabel("minutes")
    bottom.set_ylim(bottom=0)
    bottom.legend(loc="upper left", ncol=3, fontsize="small")
    bottom.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


@contextlib.contextmanager
def _database(kind: str) -> Iterator[str]:
    """A server with PostgreSQL's stock settings by default (see the module docstring for why)."""
    if kind == "shared":
        with benchlib.throwaway_database("mc_soak") as url:
            yield url
        return
    from tests.e2e.test_database_outage import PrivatePostgres

    server = PrivatePostgres()
    try:
        server.start()
        yield server.url
    finally:
        server.destroy()


def _title(summary: dict[str, Any]) -> str:
    return (f"Soak: {summary['jobs']} jobs every {summary['every_s']} s, {summary['services']} services, "
            f"{summary['missions_per_s']} missions/s, {summary['minutes']:g} min")  # fmt: skip


def replot(results: Path, path: Path) -> int:
    """Draw the plot of a finished run again (its samples, then its summary line) without running it."""
    lines = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    samples = [line for line in lines if "t_min" in line]
    summaries = [line for line in lines if line.get("scenario") == "soak"]
    if not samples or not summaries:
        raise SystemExit(f"{results}: no samples or no summary line")
    plot(samples, path, _title(summaries[-1]))
    print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--every-s", type=int, default=5)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--beat-s", type=float, default=5)
    parser.add_argument("--missions-per-s", type=float, default=0.5)
    parser.add_argument("--sample-s", type=float, default=30)
    parser.add_argument("--retention-per-job", type=int, default=50)
    parser.add_argument("--prune-interval-s", type=int, default=300)
    parser.add_argument("--plot", type=Path, default=REPO / "bench" / "soak.png")
    parser.add_argument("--keep-logs", type=Path)
    parser.add_argument("--database", choices=("private", "shared"), default="private",
                        help="a private server, stock settings; or a database on 127.0.0.1:5432")  # fmt: skip
    parser.add_argument("--replot", type=Path, help="only draw --plot again from a results file")
    args = parser.parse_args(argv)
    if args.replot is not None:
        return replot(args.replot, args.plot)

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out_path = REPO / "bench" / "results" / f"soak-{stamp}.jsonl"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    extra = {
        "MC_RUN_RETENTION_PER_JOB": str(args.retention_per_job),
        "MC_PRUNE_INTERVAL_S": str(args.prune_interval_s),
        "MC_LOG_FORMAT": "text",
    }
    samples: list[dict[str, Any]] = []
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"mc-soak-{stamp}"
    scratch.mkdir(parents=True)
    with _database(args.database) as database_url:
        from mission_control.db import migrate
        from mission_control.db.engine import make_engine

        engine = make_engine(database_url)
        stack = e2e_bench.Stack(scratch, database_url, extra_env=extra)
        load: Load | None = None
        try:
            migrate.upgrade(engine)
            stack.start_redis()
            stack.start_target()
            stack.start_web()
            benchlib.wait_until(stack.web_ready, 60, "the web app")
            stack.start_workers(2, 16)
            stack.start_beat()
            definition = {"steps": [{"name": "one", "kind": "http", "url": stack.target_url},
                                    {"name": "two", "kind": "http", "url": stack.target_url}]}  # fmt: skip
            headers = {"Authorization": f"Bearer {benchlib.ADMIN_TOKEN}"}
            requests.put(f"{stack.web_url}/api/v1/mission-definitions/soak", json=definition, headers=headers,
                         timeout=10).raise_for_status()  # fmt: skip
            first = datetime.now(UTC) + timedelta(seconds=2)
            template = benchlib.job_template(stack.target_url, args.every_s)
            benchlib.insert_jobs(
                engine, args.jobs, [first + timedelta(seconds=(i % args.every_s)) for i in range(args.jobs)],
                template=template, prefix="soak",
            )  # fmt: skip
            load = Load(stack.web_url, args.services, args.beat_s, args.missions_per_s)
            load.start()
            t0 = time.monotonic()
            deadline = t0 + args.minutes * 60
            with out_path.open("a") as out:
                while True:
                    for name in list(stack.processes):
                        stack.alive(name)
                    point = sample(stack, engine, load, t0)
                    samples.append(point)
                    out.write(json.dumps(point) + "\n")
                    out.flush()
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(min(args.sample_s, max(0.0, deadline - time.monotonic())))
        finally:
            if load is not None:
                load.join()
            stack.stop_all()
            engine.dispose()
            if args.keep_logs is not None:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                for log in scratch.glob("*.log"):
                    (args.keep_logs / log.name).write_bytes(log.read_bytes())
    summary = {
        "scenario": "soak",
        "database": args.database,
        "retention_per_job": args.retention_per_job,
        "prune_interval_s": args.prune_interval_s,
        "minutes": args.minutes,
        "jobs": args.jobs,
        "every_s": args.every_s,
        "services": args.services,
        "missions_per_s": args.missions_per_s,
        "samples": len(samples),
        "results": str(out_path.relative_to(REPO)),
        "plot": str(args.plot),
        "heartbeats_accepted": samples[-1]["heartbeats_accepted"],
        "heartbeats_refused": samples[-1]["heartbeats_refused"],
        "runs_rows_last": samples[-1]["runs_rows"],
        "summary": summarize(samples),
    }
    plot(samples, args.plot, _title(summary))
    with out_path.open("a") as out:
        out.write(json.dumps(summary) + "\n")
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
