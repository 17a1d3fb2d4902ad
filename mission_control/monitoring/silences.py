"""Silences: a planned maintenance or a known outage should not page anyone, yet still be on record.

A silence has matchers (alert kinds, or all; an fnmatch subject pattern, the syntax channels'
``subject_pattern`` uses), a window (``starts_at`` .. ``ends_at``), a comment and who made it. While
it is active, alerts it matches still open, count their occurrences and resolve as always; only their
notices are not sent: routing (``notices.route``, ``notices.due_repeats``) stores them with status
``silenced`` and the silence's id, and marks the alert with it (``alerts.silence_id``). A resolve or
acknowledgement about an alert whose every notice to a channel was silenced is silenced too (that
channel never heard of it). When the silence ends with the alert still unresolved, the repeat sweep's
routing of never-notified alerts (``notices.unrouted``) sends the opening notice then, as
Alertmanager does.

Expiring a silence (``DELETE /api/v1/silences/{id}``) ends it now: ``ends_at`` becomes now and
``expired_at`` records that it was ended by hand. Silences are never deleted, so a notice's
``silence_id`` always names one.

Extension point, tags: the issue asks for tag matchers once services and jobs have tags. A silence
would then get a ``tags`` column (a list of ``key:value`` patterns) and :meth:`Silence.matches` one
more condition, fed the alert's subject's tags; the API model (``extra="forbid"``) refuses ``tags``
until then rather than accepting a matcher it would ignore.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine, RowMapping

from mission_control.db.audit import AuditEntry
from mission_control.db.audit import write as write_audit
from mission_control.db.tables import silences

SilenceState = Literal["pending", "active", "expired"]


@dataclass(frozen=True)
class SilenceSpec:
    alert_kinds: list[str] | None
    subject_pattern: str
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str


@dataclass(frozen=True)
class Silence:
    """A silence as routing reads it."""

    id: int
    alert_kinds: tuple[str, ...] | None
    subject_pattern: str
    starts_at: datetime
    ends_at: datetime

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Silence:
        kinds = row["alert_kinds"]
        return cls(
            row["id"],
            None if kinds is None else tuple(kinds),
            row["subject_pattern"],
            row["starts_at"],
            row["ends_at"],
        )

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, kind: str, subject: str) -> bool:
        """Whether an alert of ``kind`` on ``subject`` is muted by this silence (window aside)."""
        if self.alert_kinds is not None and kind not in self.alert_kinds:
            return False
        return fnmatch.fnmatchcase(subject, self.subject_pattern)


def state_of(row: Mapping[str, Any], now: datetime) -> SilenceState:
    if now < row["starts_at"]:
        return "pending"
    return "active" if now < row["ends_at"] else "expired"


def audit_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "alert_kinds": row["alert_kinds"],
        "subject_pattern": row["subject_pattern"],
        "starts_at": row["starts_at"],
        "ends_at": row["ends_at"],
        "comment": row["comment"],
        "created_by": row["created_by"],
        "expired_at": row["expired_at"],
    }


def create_silence(
    engine: Engine, spec: SilenceSpec, now: datetime, *, audit: AuditEntry | None = None
) -> RowMapping:
    with engine.begin() as conn:
        silence_id = conn.execute(
            insert(silences).values(**vars(spec), created_at=now).returning(silences.c.id)
        ).scalar_one()
        row = conn.execute(select(silences).where(silences.c.id == silence_id)).mappings().one()
        write_audit(
            conn, audit, at=now, subject_kind="silence", subject_name=str(silence_id), after=audit_view(row)
        )
        return row


def get_silence(engine: Engine, silence_id: int) -> RowMapping | None:
    with engine.connect() as conn:
        return conn.execute(select(silences).where(silences.c.id == silence_id)).mappings().first()


def list_silences(
    engine: Engine, now: datetime, state: SilenceState | None = None, limit: int = 500
) -> list[RowMapping]:
    """Silences newest first; ``state`` keeps only pending, active or expired ones."""
    statement = select(silences).order_by(silences.c.id.desc()).limit(limit)
    if state == "pending":
        statement = statement.where(silences.c.starts_at > now)
    elif state == "active":
        statement = statement.where(silences.c.starts_at <= now, silences.c.ends_at > now)
    elif state == "expired":
        statement = statement.where(silences.c.ends_at <= now)
    with engine.connect() as conn:
        return list(conn.execute(statement).mappings())


def expire_silence(
    engine: Engine, silence_id: int, now: datetime, *, audit: AuditEntry | None = None
) -> RowMapping | None:
    """End a silence now (a pending one never starts); an expired one stays as it is. None if unknown."""
    with engine.begin() as conn:
        before = (
            conn.execute(select(silences).where(silences.c.id == silence_id).with_for_update())
            .mappings()
            .first()
        )
        if before is None:
            return None
        if before["ends_at"] <= now:
            return before
        conn.execute(
            update(silences)
            .where(silences.c.id == silence_id)
            .values(ends_at=now, starts_at=min(before["starts_at"], now), expired_at=now)
        )
        after = conn.execute(select(silences).where(silences.c.id == silence_id)).mappings().one()
        write_audit(
            conn,
            audit,
            at=now,
            subject_kind="silence",
            subject_name=str(silence_id),
            before=audit_view(before),
            after=audit_view(after),
        )
        return after


def active_silences(conn: Connection, now: datetime) -> list[Silence]:
    """The silences in force at ``now`` (an index range on ``ends_at``; there are few)."""
    rows = conn.execute(
        select(silences).where(silences.c.ends_at > now, silences.c.starts_at <= now).order_by(silences.c.id)
    ).mappings()
    return [Silence.of(row) for row in rows]


def silencing(found: Iterable[Silence], kind: str, subject: str, now: datetime) -> Silence | None:
    """The first active silence that mutes an alert of ``kind`` on ``subject``, if any."""
    for silence in found:
        if silence.active(now) and silence.matches(kind, subject):
            return silence
    return None
