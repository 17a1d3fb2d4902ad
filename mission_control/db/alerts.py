"""Alerts: opened when something deviates, counted while it repeats, resolved when it recovers.

At most one unresolved alert exists per (kind, subject), which a partial unique index enforces, so
two checkers racing to open the same alert end with one row and a repeat count, never two alerts.
Every function takes the caller's connection: an alert opens or resolves in the same transaction as
the state change that caused it. The returned :class:`AlertChange` values say what to notify.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, bindparam, func, select, text, update
from sqlalchemy.engine import Connection, Engine, RowMapping

from mission_control.db.audit import AuditEntry
from mission_control.db.audit import write as write_audit
from mission_control.db.tables import UNRESOLVED, alerts
from mission_control.db.types import UTCDateTime


class AlertKind(StrEnum):
    SERVICE_DOWN = "service_down"
    JOB_FAILED = "job_failed"
    JOB_SLOW = "job_slow"
    JOB_MISSED = "job_missed"
    SERVICE_HUNG = "service_hung"  # a run started (/heartbeats/{name}/start) and not ended in max_runtime_s
    SERVICE_EARLY = "service_early"  # a heartbeat more than early_tolerance_s before it was expected


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


UNRESOLVED_STATES = (AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value)


@dataclass(frozen=True)
class AlertChange:
    alert_id: int
    kind: str
    subject: str
    event: str  # "opened" | "resolved"


def open_alert(
    conn: Connection,
    kind: AlertKind,
    subject: str,
    now: datetime,
    message: str,
    details: dict[str, Any] | None = None,
) -> AlertChange | None:
    """Open the alert, or count one more occurrence on the unresolved one; a change only if new."""
    row = conn.execute(
        _UPSERT,
        {
            "kind": kind.value,
            "subject": subject,
            "message": message,
            "details": details,
            "now": now,
        },
    ).one()
    if row.occurrences != 1:
        return None
    return AlertChange(row.id, kind.value, subject, "opened")


# Textual, because SQLAlchemy does not cache its dialect INSERT … ON CONFLICT constructs and
# recompiled this on every call (about 1-4 ms; a check that finds 1,000 services down pays it 1,000
# times). PostgreSQL and SQLite (3.35+) both accept this form, partial-index conflict target included.
_UPSERT = text(
    """
    INSERT INTO alerts (kind, subject, state, message, details, occurrences, opened_at, last_seen_at)
    VALUES (:kind, :subject, 'open', :message, :details, 1, :now, :now)
    ON CONFLICT (kind, subject) WHERE state IN ('open', 'acknowledged')
    DO UPDATE SET occurrences = alerts.occurrences + 1, last_seen_at = excluded.last_seen_at,
                  message = excluded.message, details = excluded.details
    RETURNING id, occurrences
    """
).bindparams(
    bindparam("details", type_=alerts.c.details.type),
    bindparam("now", type_=UTCDateTime()),
)


def resolve_alerts(
    conn: Connection, kinds: Iterable[AlertKind], subject: str, now: datetime
) -> list[AlertChange]:
    """Resolve the unresolved alerts of these kinds on ``subject`` (usually none: an index probe)."""
    rows = conn.execute(
        update(alerts)
        .where(
            alerts.c.subject == subject,
            alerts.c.kind.in_([kind.value for kind in kinds]),
            alerts.c.state.in_(UNRESOLVED_STATES),
        )
        .values(state=AlertState.RESOLVED.value, resolved_at=now)
        .returning(alerts.c.id, alerts.c.kind)
    ).all()
    return [AlertChange(row.id, row.kind, subject, "resolved") for row in rows]


def acknowledge(
    engine: Engine,
    alert_id: int,
    now: datetime,
    comment: str | None,
    *,
    audit: AuditEntry | None = None,
) -> RowMapping | None:
    """Acknowledge an open alert (again: updates the comment); None if it does not exist.

    A resolved alert cannot be acknowledged; the caller tells that apart by the returned row's state.
    ``audit``: an acknowledgement that changed the row is recorded in the same transaction.
    """
    with engine.begin() as conn:
        before = conn.execute(select(*_ACK_FIELDS).where(alerts.c.id == alert_id)).mappings().first()
        changed = conn.execute(
            update(alerts)
            .where(alerts.c.id == alert_id, alerts.c.state.in_(UNRESOLVED_STATES))
            .values(
                state=AlertState.ACKNOWLEDGED.value,
                acknowledged_at=func.coalesce(alerts.c.acknowledged_at, now),
                ack_comment=comment,
            )
        ).rowcount
        after = conn.execute(select(alerts).where(alerts.c.id == alert_id)).mappings().first()
        if changed and before is not None and after is not None and dict(before) != _ack_view(after):
            write_audit(
                conn,
                audit,
                at=now,
                subject_kind="alert",
                subject_name=str(alert_id),
                before=dict(before),
                after=_ack_view(after),
            )
        return after


_ACK_FIELDS = (
    alerts.c.kind,
    alerts.c.subject,
    alerts.c.state,
    alerts.c.acknowledged_at,
    alerts.c.ack_comment,
)


def _ack_view(row: RowMapping) -> dict[str, Any]:
    return {column.name: row[column.name] for column in _ACK_FIELDS}


@dataclass(frozen=True)
class AlertFilter:
    state: str | None = None
    kind: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    limit: int = 100


def list_alerts(engine: Engine, where: AlertFilter) -> list[RowMapping]:
    """Newest first; ``state="unresolved"`` means open or acknowledged."""
    conditions = []
    if where.state == "unresolved":
        conditions.append(alerts.c.state.in_(UNRESOLVED_STATES))
    elif where.state:
        conditions.append(alerts.c.state == where.state)
    if where.kind:
        conditions.append(alerts.c.kind == where.kind)
    if where.subject:
        conditions.append(alerts.c.subject == where.subject)
    if where.since:
        conditions.append(alerts.c.opened_at >= where.since)
    if where.until:
        conditions.append(alerts.c.opened_at < where.until)
    if where.before_id:
        conditions.append(alerts.c.id < where.before_id)
    statement = select(alerts).where(and_(True, *conditions)).order_by(alerts.c.id.desc()).limit(where.limit)
    with engine.connect() as conn:
        return list(conn.execute(statement).mappings())


def get_alert(engine: Engine, alert_id: int) -> RowMapping | None:
    with engine.connect() as conn:
        return conn.execute(select(alerts).where(alerts.c.id == alert_id)).mappings().first()


@dataclass(frozen=True)
class SubjectPattern:
    """How often and how long one (kind, subject) was in trouble: the pattern, not the incident."""

    kind: str
    subject: str
    alerts: int
    occurrences: int
    unresolved: int
    resolved: int
    mean_time_to_recovery_s: float | None
    longest_s: float | None
    total_open_s: float
    last_opened_at: datetime


def summarize(engine: Engine, now: datetime, *, since: datetime | None = None) -> list[SubjectPattern]:
    """Per (kind, subject): counts, time spent open (unresolved ones up to ``now``), mean recovery."""
    statement = select(
        alerts.c.kind,
        alerts.c.subject,
        alerts.c.state,
        alerts.c.occurrences,
        alerts.c.opened_at,
        alerts.c.resolved_at,
    )
    if since is not None:
        statement = statement.where(alerts.c.opened_at >= since)
    groups: dict[tuple[str, str], list[Any]] = {}
    with engine.connect() as conn:
        for row in conn.execute(statement):
            groups.setdefault((row.kind, row.subject), []).append(row)
    patterns = []
    for (kind, subject), rows in groups.items():
        recoveries = [(r.resolved_at - r.opened_at).total_seconds() for r in rows if r.resolved_at]
        spans = [((r.resolved_at or now) - r.opened_at).total_seconds() for r in rows]
        patterns.append(
            SubjectPattern(
                kind=kind,
                subject=subject,
                alerts=len(rows),
                occurrences=sum(r.occurrences for r in rows),
                unresolved=sum(1 for r in rows if r.state != AlertState.RESOLVED),
                resolved=len(recoveries),
                mean_time_to_recovery_s=sum(recoveries) / len(recoveries) if recoveries else None,
                longest_s=max(spans) if spans else None,
                total_open_s=sum(spans),
                last_opened_at=max(r.opened_at for r in rows),
            )
        )
    patterns.sort(key=lambda p: (-p.unresolved, -p.alerts, p.kind, p.subject))
    return patterns


__all__ = [
    "UNRESOLVED",
    "AlertChange",
    "AlertFilter",
    "AlertKind",
    "AlertState",
    "SubjectPattern",
    "acknowledge",
    "get_alert",
    "list_alerts",
    "open_alert",
    "resolve_alerts",
    "summarize",
]
