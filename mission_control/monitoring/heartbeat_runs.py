"""Measured runs of a service: ``/start`` opens one, the next end (success, failure, exit code) closes it.

Healthchecks' pairing, kept: a start and an end pair when they carry the same run id (``?rid=``), and a
start without one pairs with the next end without one. Several runs may be open at once, one per run
id; a second start with the same run id restarts it. A run open past the service's ``max_runtime_s``
(taken when it started) is hung: ``service_hung`` opens, one alert per service however many hang
(repeats count on it). It resolves when no hung run is left: the hung run ended (well or not), was
restarted, or a later run succeeded (a success ends every hung run that started before it: a plain
success, with no start of its own, ends them all, as in Healthchecks).

Every function takes the caller's connection, inside the transaction that holds the service's row
lock, so runs of one service never race. The service's ``deadline_at`` is the earlier of its
heartbeat deadline and its open runs' ones (:func:`fold`), which is how the staleness check, reading
only due rows, also finds a run that hangs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from mission_control.db.alerts import AlertChange, AlertKind, open_alert, resolve_alerts
from mission_control.db.tables import heartbeat_runs

MAX_OPEN_RUNS = 100  # per service: starts that never end (a fresh run id each) drop their oldest


@dataclass
class RunOutcome:
    """What an event did to the service's runs."""

    duration_s: float | None = None  # an end that closed its start: how long the run took
    open_runs: int = 0  # runs still open after it
    run_deadline: datetime | None = None  # the earliest deadline of the open runs not yet hung
    changes: list[AlertChange] = field(default_factory=list)


def key(rid: str | None) -> str:
    """The run's key in ``heartbeat_runs``: its id, or '' for a start without one."""
    return rid or ""


def fold(deadline: datetime | None, run_deadline: datetime | None) -> datetime | None:
    """The service's stored deadline: the earlier of its state's and its runs'."""
    if deadline is None:
        return run_deadline
    if run_deadline is None:
        return deadline
    return min(deadline, run_deadline)


def record(
    conn: Connection,
    service: Any,
    kind: str,
    rid: str | None,
    now: datetime,
) -> RunOutcome:
    """Apply one event of ``kind`` (``start``, ``ok``, ``fail``, ``log``) to ``service``'s runs.

    ``service`` is the locked row (``id``, ``name``, ``max_runtime_s``, ``open_runs``).
    """
    outcome = RunOutcome()
    if kind == "log":
        outcome.open_runs, outcome.run_deadline, _ = _summary(conn, service["id"])
        return outcome
    if kind == "start":
        hung_before = _summary(conn, service["id"])[2]
        conn.execute(
            delete(heartbeat_runs).where(
                heartbeat_runs.c.service_id == service["id"], heartbeat_runs.c.rid == key(rid)
            )
        )
        limit = service["max_runtime_s"]
        conn.execute(
            insert(heartbeat_runs).values(
                service_id=service["id"],
                rid=key(rid),
                started_at=now,
                deadline_at=now + timedelta(seconds=limit) if limit else None,
            )
        )
        _keep_newest(conn, service["id"])
        outcome.open_runs, outcome.run_deadline, hung = _summary(conn, service["id"])
        if hung_before and not hung:
            outcome.changes = resolve_alerts(conn, [AlertKind.SERVICE_HUNG], service["name"], now)
        return outcome
    # An end: success or failure.
    if service["open_runs"]:
        run = (
            conn.execute(
                select(heartbeat_runs.c.id, heartbeat_runs.c.started_at).where(
                    heartbeat_runs.c.service_id == service["id"], heartbeat_runs.c.rid == key(rid)
                )
            )
            .mappings()
            .first()
        )
        if run is not None:
            outcome.duration_s = max(0.0, (now - run["started_at"]).total_seconds())
            conn.execute(delete(heartbeat_runs).where(heartbeat_runs.c.id == run["id"]))
        if kind == "ok":
            # A later run succeeded: the hung runs that started before it are over.
            before = run["started_at"] if run is not None else now
            conn.execute(
                delete(heartbeat_runs).where(
                    heartbeat_runs.c.service_id == service["id"],
                    heartbeat_runs.c.hung_at.is_not(None),
                    heartbeat_runs.c.started_at <= before,
                )
            )
        outcome.open_runs, outcome.run_deadline, hung = _summary(conn, service["id"])
        if not hung:
            outcome.changes = resolve_alerts(conn, [AlertKind.SERVICE_HUNG], service["name"], now)
    return outcome


def find_hung(
    conn: Connection, rows: Iterable[Any], now: datetime
) -> tuple[dict[int, Any], list[AlertChange]]:
    """For the staleness check: mark the due runs of these (locked, unpaused) services hung and open
    their alerts; returns each service's earliest deadline still to watch (by service id)."""
    by_id = {row.id: row for row in rows}
    if not by_id:
        return {}, []
    due = conn.execute(
        select(*(heartbeat_runs.c[c] for c in ("id", "service_id", "rid", "started_at")))
        .where(
            heartbeat_runs.c.service_id.in_(list(by_id)),
            heartbeat_runs.c.hung_at.is_(None),
            heartbeat_runs.c.deadline_at <= now,
        )
        .order_by(heartbeat_runs.c.started_at)
    ).all()
    changes: list[AlertChange] = []
    if due:
        conn.execute(
            update(heartbeat_runs).where(heartbeat_runs.c.id.in_([run.id for run in due])).values(hung_at=now)
        )
    for run in due:
        row = by_id[run.service_id]
        since = run.started_at.isoformat()
        which = f"run {run.rid}" if run.rid else "a run"
        text = (
            f"service {row.name} is hung: {which} started at {since} has not ended within "
            f"max_runtime_s ({row.max_runtime_s:g} s)"
        )
        details = {"service": row.name, "rid": run.rid or None, "started_at": since}
        change = open_alert(conn, AlertKind.SERVICE_HUNG, row.name, now, text, details)
        if change:
            changes.append(change)
    pending = conn.execute(
        select(heartbeat_runs.c.service_id, func.min(heartbeat_runs.c.deadline_at))
        .where(heartbeat_runs.c.service_id.in_(list(by_id)), heartbeat_runs.c.hung_at.is_(None))
        .group_by(heartbeat_runs.c.service_id)
    ).all()
    return {service_id: deadline for service_id, deadline in pending}, changes


def run_deadline(conn: Connection, service_id: int) -> datetime | None:
    """The earliest deadline of the service's open runs not yet hung (None if none)."""
    return _summary(conn, service_id)[1]


def _summary(conn: Connection, service_id: int) -> tuple[int, datetime | None, int]:
    """(open runs, earliest deadline not yet hung, hung runs) of one service."""
    row = conn.execute(
        select(
            func.count(),
            func.min(heartbeat_runs.c.deadline_at).filter(heartbeat_runs.c.hung_at.is_(None)),
            func.count().filter(heartbeat_runs.c.hung_at.is_not(None)),
        ).where(heartbeat_runs.c.service_id == service_id)
    ).one()
    return int(row[0]), row[1], int(row[2])


def _keep_newest(conn: Connection, service_id: int) -> None:
    """At most :data:`MAX_OPEN_RUNS` open runs per service: the oldest beyond go."""
    oldest_kept = (
        select(heartbeat_runs.c.started_at)
        .where(heartbeat_runs.c.service_id == service_id)
        .order_by(heartbeat_runs.c.started_at.desc(), heartbeat_runs.c.id.desc())
        .offset(MAX_OPEN_RUNS - 1)
        .limit(1)
        .scalar_subquery()
    )
    conn.execute(
        delete(heartbeat_runs).where(
            heartbeat_runs.c.service_id == service_id, heartbeat_runs.c.started_at < oldest_kept
        )
    )
