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

Tags: a silence may also carry a ``tag_pattern`` (fnmatch, ``team:billing``, ``tier:*``); it then
mutes only alerts whose subject (the service of a ``service_*`` alert, the job of a ``job_*`` one)
carries a tag matching it, read from the ``subject_tags`` index when routing meets such a silence.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine, RowMapping

from mission_control.base.tags import any_tag_matches
from mission_control.db.audit import AuditEntry
from mission_control.db.audit import write as write_audit
from mission_control.db.tables import silences, subject_tags

SilenceState = Literal["pending", "active", "expired"]


@dataclass(frozen=True)
class SilenceSpec:
    alert_kinds: list[str] | None
    subject_pattern: str
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    tag_pattern: str | None = None


@dataclass(frozen=True)
class Silence:
    """A silence as routing reads it."""

    id: int
    alert_kinds: tuple[str, ...] | None
    subject_pattern: str
    starts_at: datetime
    ends_at: datetime
    tag_pattern: str | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Silence:
        kinds = row["alert_kinds"]
        return cls(
            row["id"],
            None if kinds is None else tuple(kinds),
            row["subject_pattern"],
            row["starts_at"],
            row["ends_at"],
            row.get("tag_pattern"),
        )

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, kind: str, subject: str, tags: Iterable[str] = ()) -> bool:
        """Whether an alert of ``kind`` on ``subject`` (carrying ``tags``) is muted by this silence
        (window aside)."""
        if self.alert_kinds is not None and kind not in self.alert_kinds:
            return False
        if self.tag_pattern is not None and not any_tag_matches(self.tag_pattern, tags):
            return False
        return fnmatch.fnmatchcase(subject, self.subject_pattern)


def subject_kind(alert_kind: str) -> str:
    """Whose tags an alert of this kind is about: a service's (``service_*``) or a job's."""
    return "service" if alert_kind.startswith("service_") else "job"


def subject_tags_of(
    conn: Connection, alerts: Iterable[Mapping[str, Any]]
) -> dict[tuple[str, str], list[str]]:
    """The tags of the alerts' subjects, by (``service``|``job``, name): one indexed read."""
    wanted = {(subject_kind(a["kind"]), a["subject"]) for a in alerts}
    if not wanted:
        return {}
    found: dict[tuple[str, str], list[str]] = {}
    rows = conn.execute(
        select(subject_tags.c.kind, subject_tags.c.name, subject_tags.c.tag).where(
            subject_tags.c.name.in_(sorted({name for _, name in wanted}))
        )
    )
    for kind, name, tag in rows:
        if (kind, name) in wanted:
            found.setdefault((kind, name), []).append(tag)
    return found


def state_of(row: Mapping[str, Any], now: datetime) -> SilenceState:
    if now < row["starts_at"]:
        return "pending"
    return "active" if now < row["ends_at"] else "expired"


def audit_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "alert_kinds": row["alert_kinds"],
        "subject_pattern": row["subject_pattern"],
        "tag_pattern": row["tag_pattern"],
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


def silencing(
    found: Iterable[Silence], kind: str, subject: str, now: datetime, tags: Iterable[str] = ()
) -> Silence | None:
    """The first active silence that mutes an alert of ``kind`` on ``subject`` (with ``tags``)."""
    for silence in found:
        if silence.active(now) and silence.matches(kind, subject, tags):
            return silence
    return None
