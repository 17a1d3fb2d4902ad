"""Staleness detection at 10,000 monitored services: deadline -> alert row -> webhook received.

usage:
  python bench/staleness_bench.py [--services 10000] [--window 30] [--lead 10] [--concurrency 64]

Starts, each in its own process: a private ``redis-server``, ``bench/webhook_receiver.py`` (logs every
POST's arrival time and JSON body), one worker (``celery worker -P threads -c 64 -Q triggers,default``)
and one beat (``python -m mission_control beat``), as the Procfile runs them, on a throwaway database;
all stopped and dropped in ``finally``. Prints one JSON line.

How each figure is taken:
* One webhook channel (kind ``webhook``, every alert kind, subject ``*``, no repeats) points at the
  receiver. A canary service, due 1 s after beat starts, must reach the receiver first: that proves
  beat -> check_services -> route_alert -> deliver_notice -> receiver and warms the worker up.
* Then N services are written in one transaction directly as ``record_heartbeat`` leaves a service
  after one ``ok`` heartbeat at T0 (state ``up``, ``heartbeat_count`` 1, ``deadline_at`` from
  :func:`health_at`). Their down-deadlines D = last_seen_at + interval_s + grace_s are spread evenly
  over ``--window`` s starting ``--lead`` s after T0 (assigned to names in a shuffled order); grace_s
  is 1..5 s, so each service first turns ``late`` (at last_seen_at + interval_s) and then ``down``.
  ``--cron-share F``: that fraction of them are cron-scheduled instead (daily ``M H * * *`` lines in
  four zones, as a heartbeat a day before left them; cron instants are whole minutes, so the slot is
  the minute before D and grace_s the rest, 1..60 s; one whose slot passed before the insert goes in
  ``late``, as the check would have left it). Their D is the slot (the jobs' cron code) + grace_s.
* (a) ``alert``: ``alerts.opened_at`` - D for each service's ``service_down`` alert. ``opened_at`` is
  the checker's clock at the start of its transaction, so this understates when the alert is visible;
  (a') ``alert_visible``: when that alert's transaction committed, minus D. A trigger the bench adds
  to its throwaway database NOTIFYs each alert's subject, which PostgreSQL delivers at commit; a
  LISTENing thread stamps the arrival. (Polling ``id > last`` would miss rows: concurrent checks
  commit out of id order.)
* (b) ``webhook``: the receiver's arrival time of the ``opened`` notice whose ``alert.subject`` is the
  service, minus D. ``webhook_parts`` splits it by the rows the worker writes: opened -> notice
  created (``route_alert``), notice created -> received (``deliver_notice``).
* ``late``: the ``up -> late`` flip's time minus last_seen_at + interval_s (``service_flips.at``).
* ``checker_ticks``: distinct ``opened_at`` values of the alerts (one per check transaction that
  opened any), the most alerts one of them opened, each such transaction's start (``opened_at``) to
  commit (its last alert's NOTIFY), and the longest gap between two such starts;
  ``default_queue_depth``: the Redis ``default`` queue's length, sampled every 0.5 s.
* ``flagged`` / ``notified`` count the services with a ``service_down`` alert / with an ``opened``
  webhook, out of N; ``alert_all`` / ``webhook_all`` are p50/p99 over all N with a missing one counted
  as never (null: that rank was not reached). ``duplicate_webhooks``: extra ``opened`` notices for a
  subject already notified.
* The run ends when every service was notified (with ``--no-channel``: every alert committed), or
  ``--timeout`` s after the last deadline. ``--no-channel`` deletes the channel once the canary is
  through, to time detection without the notices' load; ``--profile-dir`` runs py-spy on the worker
  from the insert on (every busy thread, i.e. wall time; ``--spy-gil``: the GIL holder, CPU time).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import select as select_module
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import benchlib
import psycopg2
import redis
from e2e_bench import CODE, Stack, machine_cpu_s
from heartbeat_bench import backend_pids, code_digest, postgres_cpu_s
from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine, make_url

from mission_control.base.clock import SYSTEM_CLOCK
from mission_control.db import migrate
from mission_control.db.engine import make_engine
from mission_control.db.tables import alerts, channels, notices, service_flips, services
from mission_control.monitoring.notifications.notices import ChannelSpec, create_channel
from mission_control.monitoring.service_state import cron_schedule, expected_after, health_at

HERE = Path(__file__).resolve().parent
INSERT_CHUNK = 2000


WATCH_CHANNEL = "mc_bench_alerts"
# A probe in the throwaway database only: NOTIFY is delivered when the inserting transaction commits,
# which is when the alert becomes visible to anyone (ids do not tell: transactions commit out of order).
WATCH_TRIGGER = f"""
CREATE FUNCTION mc_bench_alert_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('{WATCH_CHANNEL}', NEW.subject); RETURN NULL; END $$;
CREATE TRIGGER mc_bench_alert_notify AFTER INSERT ON alerts
FOR EACH ROW EXECUTE FUNCTION mc_bench_alert_notify();
"""


class AlertWatcher(threading.Thread):
    """LISTENs for the probe's notifications and stamps when each alert's transaction committed."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg2.connect(dsn)
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute(f"LISTEN {WATCH_CHANNEL}")
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if select_module.select([self.conn], [], [], 0.2)[0]:
                    self.conn.poll()
                    stamp = time.time()
                    while self.conn.notifies:
                        self.seen.setdefault(self.conn.notifies.pop(0).payload, stamp)
        except BaseException as exc:  # surfaced by the main thread
            self.error = exc
        finally:
            self.conn.close()


def receiver_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def opened_arrivals(path: Path) -> tuple[dict[str, float], int]:
    """First arrival of an ``opened`` notice per subject, and how many extra ``opened`` notices came.

    A webhook body is one notice (``{"event", "alert"}``) or, once notices are batched per channel,
    several (``{"notices": [{"event", "alert"}, ...]}``); both are read.
    """
    first: dict[str, float] = {}
    extra = 0
    for line in receiver_log(path):
        body = line["body"]
        if not isinstance(body, dict):
            continue
        for notice in body.get("notices", [body]):
            if not isinstance(notice, dict) or notice.get("event") != "opened" or not notice.get("alert"):
                continue
            subject = notice["alert"]["subject"]
            if subject in first:
                extra += 1
            else:
                first[subject] = line["t"]
    return first, extra


def service_rows(
    count: int, t0: datetime, first_deadline: datetime, window_s: float, seed: int, cron_share: float = 0.0
) -> list[dict]:
    """Rows as ``record_heartbeat`` leaves a service after one ``ok`` beat at ``t0``.

    ``cron_share`` of them (every k-th name) are cron-scheduled instead, see :func:`cron_row`.
    """
    offsets = [window_s * i / max(1, count - 1) for i in range(count)]
    random.Random(seed).shuffle(offsets)
    rows = []
    for i, offset in enumerate(offsets):
        down_at = first_deadline + timedelta(seconds=offset)
        if int((i + 1) * cron_share) > int(i * cron_share):
            rows.append(cron_row(f"svc-{i:05d}", t0, down_at, CRON_ZONES[i % len(CRON_ZONES)]))
            continue
        grace_s = float(1 + i % 5)
        interval_s = (down_at - t0).total_seconds() - grace_s
        health = health_at(
            t0, last_seen_at=t0, last_status="ok", interval_s=interval_s, grace_s=grace_s, paused=False
        )
        rows.append(
            {
                "name": f"svc-{i:05d}",
                "interval_s": interval_s,
                "schedule_cron": None,  # every row has the same keys: one executemany
                "schedule_timezone": None,
                "grace_s": grace_s,
                "state": health.state.value,
                "state_changed_at": t0,
                "deadline_at": health.deadline_at,
                "expected_at": t0 + timedelta(seconds=interval_s),
                "last_seen_at": t0,
                "last_status": "ok",
                "heartbeat_count": 1,
                "created_at": t0,
                "updated_at": t0,
            }
        )
    return rows


# Cron services' zones: whole-hour, half-hour and half-hour-DST offsets (the minute fields still align).
CRON_ZONES = ("Europe/Riga", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")


def cron_row(name: str, t0: datetime, down_at: datetime, zone: str) -> dict:
    """A daily cron service (``"M H * * *"`` in ``zone``) down at ``down_at``, as a heartbeat a day
    before its slot left it and the staleness check (if the slot already passed at ``t0``) moved it.

    Cron instants fall on whole minutes: the slot is the minute before ``down_at`` (at least 1 s
    before) and the grace the rest, so down-deadlines still spread by the second over the window.
    """
    slot = (down_at - timedelta(seconds=1)).replace(second=0, microsecond=0)
    grace_s = (down_at - slot).total_seconds()
    wall = slot.astimezone(ZoneInfo(zone))
    schedule = cron_schedule(f"{wall.minute} {wall.hour} * * *", zone)
    assert schedule is not None
    seen = slot - timedelta(hours=23, minutes=59)
    assert expected_after(seen, interval_s=None, schedule=schedule) == slot
    health = health_at(
        t0, last_seen_at=seen, last_status="ok", interval_s=None, grace_s=grace_s, paused=False,
        schedule=schedule,
    )  # fmt: skip
    return {
        "name": name,
        "interval_s": None,
        "schedule_cron": schedule.expr,
        "schedule_timezone": zone,
        "grace_s": grace_s,
        "state": health.state.value,
        "state_changed_at": t0,
        "deadline_at": health.deadline_at,
        "expected_at": slot,
        "last_seen_at": seen,
        "last_status": "ok",
        "heartbeat_count": 1,
        "created_at": t0,
        "updated_at": t0,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "scenario": "staleness",
        "code": CODE,
        "code_digest": code_digest(),
        "services": args.services,
        "window_s": args.window,
        "lead_s": args.lead,
        "worker_concurrency": args.concurrency,
        "channel": args.channel,
        "cron_share": args.cron_share,
    }
    scratch = Path(tempfile.mkdtemp(prefix="mc-stale-"))
    log = scratch / "webhooks.jsonl"
    try:
        with benchlib.throwaway_database("mc_stale_bench") as database_url:
            engine = make_engine(database_url)
            stack = Stack(scratch, database_url)
            watcher: AlertWatcher | None = None
            try:
                migrate.upgrade(engine)
                with engine.begin() as conn:
                    conn.exec_driver_sql(WATCH_TRIGGER)
                watcher = AlertWatcher(
                    make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
                )
                stack.start_redis()
                port = stack.target_port
                stack.spawn(
                    "receiver",
                    [
                        sys.executable,
                        str(HERE / "webhook_receiver.py"),
                        "--port",
                        str(port),
                        "--log",
                        str(log),
                    ],
                    scratch,
                )
                create_channel(
                    engine,
                    ChannelSpec(
                        name="bench-webhook",
                        kind="webhook",
                        target={"url": f"http://127.0.0.1:{port}/notice"},
                        alert_kinds=None,
                        subject_pattern="*",
                        repeat_interval_s=None,
                        enabled=True,
                    ),
                    SYSTEM_CLOCK.now(),
                )
                stack.start_workers(1, args.concurrency)
                # The canary: down 1 s from now, so the first check after beat starts flags it.
                now = SYSTEM_CLOCK.now()
                canary = service_rows(1, now, now + timedelta(seconds=1), 0, args.seed)[0]
                with engine.begin() as conn:
                    conn.execute(insert(services), [{**canary, "name": "canary"}])
                stack.start_beat()

                def canary_notified() -> bool:
                    stack.alive("beat")
                    stack.alive("worker1")
                    return "canary" in opened_arrivals(log)[0]

                benchlib.wait_until(canary_notified, 90, "the canary's webhook", interval_s=0.2)
                if not args.channel:
                    with engine.begin() as conn:
                        conn.execute(delete(channels))
                assert watcher is not None
                watcher.start()

                t0 = SYSTEM_CLOCK.now()
                first = t0 + timedelta(seconds=args.lead)
                rows = service_rows(args.services, t0, first, args.window, args.seed, args.cron_share)
                with engine.begin() as conn:
                    for low in range(0, len(rows), INSERT_CHUNK):
                        conn.execute(insert(services), rows[low : low + INSERT_CHUNK])
                committed = SYSTEM_CLOCK.now()
                first_late = min(r["deadline_at"] for r in rows)
                out["insert_committed_before_first_late_s"] = round(
                    (first_late - committed).total_seconds(), 3
                )
                pids = backend_pids(engine)
                cpu0, machine0, pg0 = stack.cpu(), machine_cpu_s(), postgres_cpu_s(pids)
                spy = start_spy(args, stack)

                last_deadline = first + timedelta(seconds=args.window)
                give_up = last_deadline.timestamp() + args.timeout
                names = {r["name"] for r in rows}
                broker = redis.Redis(port=stack.redis_port)
                depth: list[int] = []
                while time.time() < give_up:
                    for name in stack.processes:
                        stack.alive(name)
                    if watcher.error:
                        raise watcher.error
                    depth.append(int(broker.llen("default")))
                    done = set(opened_arrivals(log)[0]) if args.channel else set(watcher.seen)
                    if len(names & done) == len(names):
                        break
                    time.sleep(0.5)
                broker.close()
                out["default_queue_depth"] = {"max": max(depth, default=0), "last": depth[-1] if depth else 0}
                out["ended_after_last_deadline_s"] = round(time.time() - last_deadline.timestamp(), 2)
                cpu1, machine1, pg1 = stack.cpu(), machine_cpu_s(), postgres_cpu_s(pids)
                if spy is not None:
                    spy.wait(timeout=120)
                    out["profile"] = str(args.profile_dir / f"worker{'-gil' if args.spy_gil else ''}.txt")
                watcher.stop.set()
                watcher.join(timeout=10)
                out["cpu_s"] = {
                    **{
                        n: round(sum(cpu1[n]) - sum(cpu0.get(n, (0.0, 0.0))), 2) for n in cpu1 if n != "redis"
                    },
                    "redis": round(sum(cpu1["redis"]) - sum(cpu0["redis"]), 2),
                    "postgres (our backends)": round(pg1 - pg0, 2),
                    "machine_busy": round(machine1[0] - machine0[0], 2),
                    "machine_capacity": round(machine1[1] - machine0[1], 2),
                }
                out.update(figures(engine, names, log, watcher.seen))
            finally:
                if watcher is not None:
                    watcher.stop.set()
                stack.stop_all()
                engine.dispose()
    finally:
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for path in [*scratch.glob("*.log"), log]:
                if path.exists():
                    shutil.copy(path, args.keep_logs / path.name)
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def figures(engine: Engine, names: set[str], log: Path, visible: dict[str, float]) -> dict[str, Any]:
    with engine.connect() as conn:
        svc = {
            r.name: r
            for r in conn.execute(
                select(
                    services.c.id,
                    services.c.name,
                    services.c.state,
                    services.c.last_seen_at,
                    services.c.interval_s,
                    services.c.grace_s,
                    services.c.schedule_cron,
                    services.c.schedule_timezone,
                )
            )
        }
        opened = {
            r.subject: r
            for r in conn.execute(
                select(alerts.c.id, alerts.c.subject, alerts.c.opened_at, alerts.c.occurrences).where(
                    alerts.c.kind == "service_down"
                )
            )
        }
        notice_rows = {
            r.alert_id: r
            for r in conn.execute(
                select(
                    notices.c.alert_id,
                    notices.c.created_at,
                    notices.c.sent_at,
                    notices.c.status,
                    notices.c.attempts,
                ).where(notices.c.event == "opened")
            )
        }
        late_flips = {
            r.service_id: r.at
            for r in conn.execute(
                select(service_flips.c.service_id, service_flips.c.at).where(
                    service_flips.c.to_state == "late"
                )
            )
        }
        alert_ticks = Counter(
            r.opened_at for r in conn.execute(select(alerts.c.opened_at).where(alerts.c.subject.in_(names)))
        )
        states = dict(
            conn.execute(
                select(services.c.state, func.count())
                .where(services.c.name.in_(names))
                .group_by(services.c.state)
            ).all()
        )
    arrivals, duplicates = opened_arrivals(log)
    to_alert, to_visible, to_webhook, to_late, routing, delivery = [], [], [], [], [], []
    for name in names:
        row = svc[name]
        schedule = cron_schedule(row.schedule_cron, row.schedule_timezone)
        due = expected_after(row.last_seen_at, interval_s=row.interval_s, schedule=schedule)
        assert due is not None
        late_at = due.timestamp()
        down_at = late_at + row.grace_s
        alert = opened.get(name)
        if alert is not None:
            to_alert.append(alert.opened_at.timestamp() - down_at)
            notice = notice_rows.get(alert.id)
            if notice is not None:
                routing.append(notice.created_at.timestamp() - alert.opened_at.timestamp())
                if name in arrivals:
                    delivery.append(arrivals[name] - notice.created_at.timestamp())
        if name in visible:
            to_visible.append(visible[name] - down_at)
        if name in arrivals:
            to_webhook.append(arrivals[name] - down_at)
        if row.id in late_flips:
            to_late.append(late_flips[row.id].timestamp() - late_at)
    notice_status = Counter(n.status for n in notice_rows.values())
    ticks: dict[float, list[float]] = {}
    for name, alert in opened.items():
        if name in names and name in visible:
            ticks.setdefault(alert.opened_at.timestamp(), []).append(visible[name])
    tick_s = [max(commits) - start for start, commits in ticks.items()]
    starts = sorted(ticks)
    return {
        "flagged": len(to_alert),
        "notified": len(to_webhook),
        "final_states": states,
        "alert": benchlib.percentiles_s(to_alert),
        "alert_visible": benchlib.percentiles_s(to_visible),
        "webhook": benchlib.percentiles_s(to_webhook),
        "webhook_parts_p50_p99_s": {
            part: [benchlib.percentiles_s(xs).get("p50_s"), benchlib.percentiles_s(xs).get("p99_s")]
            for part, xs in (("opened_to_notice_created", routing), ("notice_created_to_received", delivery))
        },
        "late": benchlib.percentiles_s(to_late),
        "late_flips": len(to_late),
        "flagged_over_2s": sum(1 for x in to_alert if x > 2),
        "notified_over_2s": sum(1 for x in to_webhook if x > 2),
        "checker_ticks": {
            "with_alerts": len(alert_ticks),
            "most_alerts_in_one": max(alert_ticks.values(), default=0),
            "start_to_commit": benchlib.percentiles_s(tick_s),
            "longest_gap_between_starts_s": round(
                max((b - a for a, b in itertools.pairwise(starts)), default=0.0), 3
            ),
        },
        "alert_all": censored(to_alert, len(names)),
        "webhook_all": censored(to_webhook, len(names)),
        "notices_opened": dict(notice_status),
        "duplicate_webhooks": duplicates,
    }


def start_spy(args: argparse.Namespace, stack: Stack) -> subprocess.Popen[bytes] | None:
    """py-spy on the worker from the insert on, for ``--spy-seconds`` (raw collapsed stacks)."""
    if args.profile_dir is None:
        return None
    args.profile_dir.mkdir(parents=True, exist_ok=True)
    argv = [args.py_spy, "record", "-r", "200", "-d", str(args.spy_seconds), "-f", "raw"]
    argv += ["--gil"] if args.spy_gil else []
    output = args.profile_dir / f"worker{'-gil' if args.spy_gil else ''}.txt"
    argv += ["-o", str(output), "--pid", str(stack.processes["worker1"].pid)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def censored(samples: list[float], total: int) -> dict[str, Any]:
    """p50/p99 over all ``total`` services, one without a sample counted as never (null: not reached)."""
    xs = sorted(samples) + [float("inf")] * (total - len(samples))

    def rank(q: float) -> float | None:
        x = xs[min(len(xs) - 1, max(0, round(q * len(xs)) - 1))]
        return None if x == float("inf") else round(x, 4)

    return {"n": total, "missing": total - len(samples), "p50_s": rank(0.5), "p99_s": rank(0.99)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--services", type=int, default=10_000)
    p.add_argument("--window", type=float, default=30.0, help="seconds the down-deadlines spread over")
    p.add_argument("--lead", type=float, default=10.0, help="seconds from insert to the first down-deadline")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--timeout", type=float, default=90.0, help="seconds past the last deadline to wait")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep-logs", type=Path, default=None)
    p.add_argument(
        "--no-channel",
        dest="channel",
        action="store_false",
        help="delete the channel after the canary: detection alone (route_alert still runs per alert)",
    )
    p.add_argument("--profile-dir", type=Path, default=None, help="py-spy the worker into DIR/worker.txt")
    p.add_argument("--py-spy", default="/tmp/spy-venv/bin/py-spy")
    p.add_argument("--spy-seconds", type=int, default=40)
    p.add_argument("--spy-gil", action="store_true", help="sample only the thread holding the GIL")
    p.add_argument(
        "--cron-share",
        type=float,
        default=0.0,
        help="fraction (0..1) of the services that are cron-scheduled (daily, several zones)",
    )
    args = p.parse_args(argv)
    if args.lead <= 5:
        raise SystemExit("--lead must exceed the largest grace (5 s): interval_s must stay positive")
    benchlib.exit_on_sigterm()
    print(json.dumps(run(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
