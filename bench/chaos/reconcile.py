"""The chaos run's reconciliation: what was promised against what the targets and the database saw.

Sources: the target fleet's own request log (one JSON line per request as it arrived, with the
``X-Mission-Control-Run`` / ``-Attempt`` / ``-Job`` headers), the database (jobs, runs, attempts,
services, alerts) and the heartbeat senders' own counts of 2xx answers. The stack is still running
while the figures are taken (the beats keep firing slots after ``w1``), so the log is read before
the database: every request it holds was sent for a run already committed. The window ``[w0, w1]`` is
the chaos phase: jobs were registered before ``w0`` and beats kept running until the end of settle.

Definitions (each one a figure in the JSON line):

* ``slots_due``: for every job, the instants its schedule (``mission_control.base.schedules``) yields in
  ``[w0, w1]``.
* ``lost``: due slots with no runs row standing for them. A row stands for its own ``scheduled_for``;
  a ``catch_up`` row (misfire ``run_once``) also stands for the ``missed_count`` slots ending at its
  slot, a ``skipped``/``misfire`` row for the ``missed_count`` slots starting at its slot: that is what
  the scheduler promises for slots missed while no beat could claim (``slots_collapsed`` counts them;
  they are not lost). A slot skipped ``overlap`` under ``concurrency: forbid`` has its row, so it is
  not lost either (``runs_by_status`` shows how many).
* ``succeeded_unseen``: runs of the window recorded ``succeeded`` whose run id the target never saw:
  a success the database claims but no target received. Counted as lost.
* ``requests_unknown_run``: target requests whose run id has no runs row. Counted as duplicated.
* ``duplicated``: (run id, attempt number) pairs the target saw more than once, plus runs with more
  than one ``succeeded`` attempt in the database. A run whose target saw a 2xx route more than once
  under *different* attempt numbers, with at most one of them ``succeeded`` in the database, is the
  retry of an attempt recorded as failed (its worker was killed after sending: the attempt is closed
  as lost); it is reported as ``redelivered_after_lost_attempt`` and allowed, because that is the
  at-least-once contract (``Idempotency-Key`` carries the run id for the target to drop it).
* ``stuck``: runs with ``scheduled_for <= w1`` not in a terminal state after settle.
* heartbeats: ``heartbeats_accepted`` (2xx answers the senders saw) vs ``heartbeats_recorded``
  (``services.heartbeat_count``); ``heartbeats_missing`` = per service, accepted beyond recorded,
  summed (must be 0; recorded may exceed accepted by requests whose answer was cut by a kill).
* alerts: every ``fail-*`` and ``never-*`` job must have a ``job_failed`` alert
  (``job_failed_missing``); every silenced service must have a ``service_down`` alert opened after its
  silence began and resolved (``service_down_missing``, ``service_down_unresolved``). Alerts nobody
  asked for are reported (``unexpected_alerts``), not failed: a web down for seconds may legitimately
  make a service late.

``ok`` is true when lost, duplicated, stuck, heartbeats_missing and every missing alert are all zero.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from mission_control.base.schedules import Schedule, schedule_from_dict
from mission_control.db.tables import alerts, attempts, jobs, runs, services
from mission_control.jobs.slots import MAX_SLOTS_SCANNED

TERMINAL = ("succeeded", "failed", "timed_out", "skipped", "cancelled")
SUCCESS_PATHS = ("/ok", "/sleep/", "/echo", "/big/")


def slots_between(schedule: Schedule, w0: datetime, w1: datetime) -> list[datetime]:
    """Every slot of ``schedule`` in ``[w0, w1]``."""
    out: list[datetime] = []
    slot = schedule.next_after(w0 - timedelta(microseconds=1))
    while slot is not None and slot <= w1 and len(out) < MAX_SLOTS_SCANNED:
        out.append(slot)
        slot = schedule.next_after(slot)
    return out


def read_target_log(path: Path) -> list[dict[str, Any]]:
    """The target's requests with the Mission Control headers pulled out (header names any case)."""
    out = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        headers = {k.lower(): v for k, v in record["headers"].items()}
        run = headers.get("x-mission-control-run")
        attempt = headers.get("x-mission-control-attempt")
        out.append(
            {
                "path": record["path"],
                "run": int(run) if run else None,
                "attempt": int(attempt) if attempt else None,
                "at": record["received_at"],
            }
        )
    return out


def reconcile(
    engine: Engine,
    target_log: Path,
    w0: datetime,
    w1: datetime,
    *,
    accepted: Counter[str],
    silent: set[str],
    silence_from: datetime,
) -> dict[str, Any]:
    # The log first: the stack still runs, and every request in the log was sent for a run committed
    # before it, so the database read afterwards must know every run id the log names.
    requests_seen = read_target_log(target_log)
    with engine.connect() as conn:
        job_rows = conn.execute(select(jobs.c.name, jobs.c.schedule)).all()
        run_rows = conn.execute(
            select(
                runs.c.id,
                runs.c.job_name,
                runs.c.scheduled_for,
                runs.c.trigger,
                runs.c.status,
                runs.c.reason,
                runs.c.missed_count,
            )
        ).all()
        attempt_rows = conn.execute(select(attempts.c.run_id, attempts.c.number, attempts.c.status)).all()
        beat_counts = dict(conn.execute(select(services.c.name, services.c.heartbeat_count)).all())
        alert_rows = conn.execute(
            select(alerts.c.kind, alerts.c.subject, alerts.c.state, alerts.c.opened_at, alerts.c.resolved_at)
        ).all()

    # --- slots: due vs a row standing for them -------------------------------------------------
    runs_of_job: dict[str, list[Any]] = defaultdict(list)
    for run in run_rows:
        runs_of_job[run.job_name].append(run)
    due_total = lost = collapsed = 0
    lost_examples: list[str] = []
    for job in job_rows:
        schedule = schedule_from_dict(job.schedule)
        due = slots_between(schedule, w0, w1)
        due_total += len(due)
        own = {run.scheduled_for for run in runs_of_job[job.name]}
        collapsing = [r for r in runs_of_job[job.name] if r.missed_count]
        for slot in due:
            if slot in own:
                continue
            if any(_collapses(schedule, run, slot) for run in collapsing):
                collapsed += 1
                continue
            lost += 1
            if len(lost_examples) < 5:
                lost_examples.append(f"{job.name}@{slot.isoformat()}")

    # --- what the target saw ----------------------------------------------------------------------
    run_ids = {run.id for run in run_rows}
    seen_runs: set[int] = set()
    pairs: Counter[tuple[int, int]] = Counter()
    deliveries: dict[int, set[int]] = defaultdict(set)  # run -> attempt numbers that reached a 2xx route
    unknown = 0
    for req in requests_seen:
        if req["run"] is None:
            continue
        if req["run"] not in run_ids:
            unknown += 1
            continue
        seen_runs.add(req["run"])
        pairs[(req["run"], req["attempt"])] += 1
        if req["path"].startswith(SUCCESS_PATHS):
            deliveries[req["run"]].add(req["attempt"])
    duplicate_requests = sum(n - 1 for n in pairs.values() if n > 1)
    succeeded_attempts: Counter[int] = Counter(a.run_id for a in attempt_rows if a.status == "succeeded")
    multi_success = sum(1 for n in succeeded_attempts.values() if n > 1)
    redelivered = sum(1 for numbers in deliveries.values() if len(numbers) > 1)

    in_window = [run for run in run_rows if w0 <= run.scheduled_for <= w1]
    fired = sum(1 for run in in_window if run.id in seen_runs)
    # Only the window's runs: they were all terminal before the log was read; later ones may not be.
    succeeded_unseen = sum(1 for run in in_window if run.status == "succeeded" and run.id not in seen_runs)
    stuck_rows = [run for run in run_rows if run.scheduled_for <= w1 and run.status not in TERMINAL]
    by_status = Counter(run.status + (f"/{run.reason}" if run.reason else "") for run in in_window)

    # --- heartbeats -------------------------------------------------------------------------------
    hb_accepted = sum(accepted.values())
    hb_recorded = sum(int(n) for n in beat_counts.values())
    hb_missing = sum(max(0, n - int(beat_counts.get(name, 0))) for name, n in accepted.items())

    # --- alerts -----------------------------------------------------------------------------------
    failed_subjects = {a.subject for a in alert_rows if a.kind == "job_failed"}
    must_fail = {job.name for job in job_rows if job.name.split("-")[0] in ("fail", "never")}
    down = [a for a in alert_rows if a.kind == "service_down"]
    opened = {a.subject for a in down if a.subject in silent and a.opened_at >= silence_from}
    resolved = {a.subject for a in down if a.subject in opened and a.resolved_at is not None}
    unexpected = Counter(
        a.kind
        for a in alert_rows
        if not (a.kind == "job_failed" and a.subject in must_fail)
        and not (a.kind == "service_down" and a.subject in silent)
    )

    figures = {
        "slots_due": due_total,
        "runs_in_window": len(in_window),
        "runs_fired": fired,
        "slots_collapsed": collapsed,
        "lost": lost + succeeded_unseen,
        "lost_slots": lost,
        "succeeded_unseen": succeeded_unseen,
        "lost_examples": lost_examples,
        "duplicated": duplicate_requests + multi_success + unknown,
        "duplicate_requests": duplicate_requests,
        "multi_success_runs": multi_success,
        "requests_unknown_run": unknown,
        "redelivered_after_lost_attempt": redelivered,
        "target_requests": len(requests_seen),
        "stuck": len(stuck_rows),
        "stuck_examples": [f"{r.id}:{r.job_name}:{r.status}" for r in stuck_rows[:5]],
        "runs_by_status": dict(sorted(by_status.items())),
        "heartbeats_accepted": hb_accepted,
        "heartbeats_recorded": hb_recorded,
        "heartbeats_missing": hb_missing,
        "job_failed_expected": len(must_fail),
        "job_failed_missing": len(must_fail - failed_subjects),
        "service_down_expected": len(silent),
        "service_down_missing": len(silent - opened),
        "service_down_unresolved": len(opened - resolved),
        "unexpected_alerts": dict(unexpected),
    }
    figures["ok"] = (
        not any(
            figures[key]
            for key in (
                "lost",
                "duplicated",
                "stuck",
                "heartbeats_missing",
                "job_failed_missing",
                "service_down_missing",
                "service_down_unresolved",
            )
        )
        and figures["slots_due"] > 0
        and hb_accepted > 0
    )
    return figures


def _collapses(schedule: Schedule, run: Any, slot: datetime) -> bool:
    """Whether ``run`` (with ``missed_count`` slots) stands for ``slot`` under its misfire policy.

    ``run_once`` writes a ``catch_up`` row at the last missed slot; ``skip`` a skipped row at the
    first one. Walk the schedule from the earlier of the two and count.
    """
    if run.trigger == "catch_up":
        first, last = slot, run.scheduled_for
    elif run.reason == "misfire":
        first, last = run.scheduled_for, slot
    else:
        return False
    if first > last:
        return False
    steps, cursor = 0, first
    while cursor < last and steps < run.missed_count:
        nxt = schedule.next_after(cursor)
        if nxt is None:
            return False
        cursor, steps = nxt, steps + 1
    return cursor == last and steps < run.missed_count
