"""The chaos run's reconciliation (bench/chaos/reconcile.py) must find each fault it claims to count.

A green chaos run only means something if its checker is not blind: this plants one lost slot, one
duplicated request, one stuck run, a success no target saw, a heartbeat answered 2xx but not
recorded and missing alerts in a small database and target log, and checks each is counted, while a
slot a catch-up run stands for is not.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from mission_control.db import migrate
from mission_control.db.engine import make_engine
from mission_control.db.tables import alerts, attempts, jobs, runs, services
from mission_control.jobs.registry import JobRegistry
from tests.conftest import sqlite_url
from tests.factories import job_spec

# Loaded by path: bench/ is not a package, and its module names must not shadow anything on sys.path.
_SPEC = importlib.util.spec_from_file_location(
    "chaos_reconcile", Path(__file__).resolve().parents[2] / "bench" / "chaos" / "reconcile.py"
)
assert _SPEC is not None and _SPEC.loader is not None
reconcile = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(reconcile)


def test_each_planted_fault_is_counted(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path))
    migrate.upgrade(engine)
    registry = JobRegistry(engine)
    registry.put(job_spec("ok-0", schedule={"every_s": 1}))
    registry.put(job_spec("fail-0", schedule={"every_s": 5}))
    w0 = datetime(2026, 11, 22, 5, 0, 0, tzinfo=UTC)
    w1 = w0 + timedelta(seconds=9)
    now = w1 + timedelta(seconds=30)
    with engine.begin() as conn:
        ids = dict(conn.execute(select(jobs.c.name, jobs.c.id)).all())
        base = {"trigger": "schedule", "max_attempts": 3, "created_at": now, "missed_count": 0}
        log = []
        for k in range(10):
            if k == 3:
                continue  # lost: no row for w0 + 3 s
            slot = w0 + timedelta(seconds=k)
            status = "queued" if k == 5 else "succeeded"  # stuck: still queued after settle
            run_id = conn.execute(
                insert(runs).values(job_id=ids["ok-0"], job_name="ok-0", scheduled_for=slot, status=status,
                                    **base).returning(runs.c.id)
            ).scalar_one()  # fmt: skip
            if status == "succeeded":
                conn.execute(
                    insert(attempts).values(run_id=run_id, number=1, status="succeeded", started_at=slot)
                )
            if k == 7:
                continue  # recorded succeeded, never seen by the target
            seen = 2 if k == 2 else 1  # the same (run, attempt) twice: a duplicate
            headers = {"X-Mission-Control-Run": str(run_id), "X-Mission-Control-Attempt": "1"}
            log += [{"path": "/ok", "headers": headers, "received_at": 0.0}] * seen
        # One catch-up run at w0 + 5 s standing for the two missed slots w0 and w0 + 5 s: nothing lost.
        catch_up = {**base, "trigger": "catch_up", "missed_count": 2, "status": "failed"}
        five = w0 + timedelta(seconds=5)
        conn.execute(
            insert(runs).values(job_id=ids["fail-0"], job_name="fail-0", scheduled_for=five, **catch_up)
        )
        conn.execute(
            insert(services).values(name="svc-0", interval_s=6, grace_s=4, state="up", state_changed_at=now,
                                    heartbeat_count=4, created_at=now, updated_at=now)
        )  # fmt: skip
        conn.execute(
            insert(alerts).values(kind="service_down", subject="svc-0", state="open", message="down",
                                  opened_at=w0 + timedelta(seconds=2), last_seen_at=now)
        )  # fmt: skip
    target_log = tmp_path / "target.jsonl"
    target_log.write_text("".join(json.dumps(line) + "\n" for line in log))

    figures = reconcile.reconcile(
        engine, target_log, w0, w1, accepted=Counter({"svc-0": 5}), silent={"svc-0"}, silence_from=w0
    )

    assert figures["slots_due"] == 12
    assert figures["lost_slots"] == 1 and figures["lost_examples"] == [
        f"ok-0@{(w0 + timedelta(seconds=3)).isoformat()}"
    ]
    assert figures["slots_collapsed"] == 1
    assert figures["succeeded_unseen"] == 1 and figures["lost"] == 2
    assert figures["duplicate_requests"] == 1 and figures["duplicated"] == 1
    assert figures["stuck"] == 1
    assert (
        figures["heartbeats_accepted"],
        figures["heartbeats_recorded"],
        figures["heartbeats_missing"],
    ) == (5, 4, 1)
    assert figures["job_failed_missing"] == 1
    assert figures["service_down_missing"] == 0 and figures["service_down_unresolved"] == 1
    assert figures["ok"] is False
