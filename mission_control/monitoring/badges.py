"""Status badges: who may see a service's, a job's or a tag's state without a token, and what it is.

A badge is an image URL people paste into a README (``GET /badge/<key>.svg``), fetched by browsers
and image proxies that send no credentials. The key in the URL is therefore the credential, and it
answers one question only: the state of one service, one job, or everything carrying one tag.

**How keys are made.** Each badge is a row with a random key of 192 bits (``secrets.token_urlsafe``,
32 URL-safe characters), shown once when the badge is created; only its SHA-256 is stored, as API
tokens are. The alternative, a key derived as an HMAC of the subject under a server secret (what
Healthchecks does, and it needs no table), was weighed and not taken:

* Revocation. A README URL leaks by design (a public repository, a screenshot). With a table one
  badge is revoked (``DELETE /api/v1/badges/{id}``) and the others keep working. With an HMAC the
  only revocation is rotating the secret, which breaks every badge at once, or a deny list, which is
  a table again.
* Rotation. An HMAC key's secret is one more secret to configure and to rotate on every web process;
  losing it or changing it silently invalidates every published badge. Random keys need no secret.
* Unguessability is the same (192 random bits against 2^-64 truncated HMACs), and a table lists who
  created which badge for what, which the audit trail records.
The cost is one indexed lookup by digest per badge request, the same as an API token's.

**What a badge shows.** A service's badge its state (``up``, ``late``, ``down``, ``new``,
``paused``); a job's ``paused`` when disabled, ``down`` while a ``job_failed`` or ``job_missed`` alert
is unresolved, ``late`` for ``job_slow``, ``new`` before its first run, else ``up``; a tag's the worst
of everything carrying it (:func:`mission_control.base.badge_svg.worst`). A subject that no longer
exists shows ``unknown``: a README keeps its image, and nothing is revealed about why.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, insert, select, update
from sqlalchemy.engine import Connection, Engine, RowMapping

from mission_control.base.badge_svg import worst
from mission_control.base.clock import Clock
from mission_control.db.alerts import AlertKind
from mission_control.db.audit import AuditEntry
from mission_control.db.audit import write as write_audit
from mission_control.db.tables import alerts, badges, jobs, runs, services, subject_tags

KINDS = ("service", "job", "tag")
KEY_BYTES = 24  # 192 bits
# Job alerts and the state they put a job's badge in.
_JOB_ALERTS = {AlertKind.JOB_FAILED: "down", AlertKind.JOB_MISSED: "down", AlertKind.JOB_SLOW: "late"}


class SubjectNotFound(LookupError):
    """The service or job a badge was asked for does not exist."""


@dataclass(frozen=True)
class IssuedBadge:
    row: RowMapping
    key: str  # shown once, never stored


@dataclass(frozen=True)
class BadgeState:
    label: str
    status: str  # up | late | down | new | paused | unknown
    total: int  # subjects counted
    down: int
    late: int


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class BadgeStore:
    """Badges as rows; every method is one short transaction."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def create(
        self, kind: str, subject: str, created_by: str, *, audit: AuditEntry | None = None
    ) -> IssuedBadge:
        """A new badge for ``subject``; raises :class:`SubjectNotFound` for an unknown service or job
        (a tag may be one nothing carries yet)."""
        key = secrets.token_urlsafe(KEY_BYTES)
        now = self.clock.now()
        with self.engine.begin() as conn:
            owner = _owner(conn, kind, subject)
            if kind != "tag" and owner is None:
                raise SubjectNotFound(subject)
            row = (
                conn.execute(
                    insert(badges)
                    .values(
                        digest=digest(key),
                        kind=kind,
                        subject=subject,
                        created_at=now,
                        created_by=created_by[:160],
                    )
                    .returning(badges)
                )
                .mappings()
                .one()
            )
            write_audit(conn, audit, at=now, subject_kind="badge", subject_name=str(row["id"]), service=owner,
                        after={"kind": kind, "subject": subject})  # fmt: skip
        return IssuedBadge(row, key)

    def list(self, *, include_revoked: bool = False) -> list[RowMapping]:
        """Badges, oldest first (never a key: none is stored)."""
        statement = select(*(c for c in badges.c if c.name != "digest")).order_by(badges.c.id)
        if not include_revoked:
            statement = statement.where(badges.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return list(conn.execute(statement).mappings())

    def get(self, badge_id: int) -> RowMapping | None:
        """A live badge by id (never its key), or None."""
        columns = (c for c in badges.c if c.name != "digest")
        statement = select(*columns).where(badges.c.id == badge_id, badges.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return conn.execute(statement).mappings().first()

    def revoke(self, badge_id: int, *, audit: AuditEntry | None = None) -> bool:
        """Revoke a live badge: its key answers 404 from now on. False if there is none with that id."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            row = (
                conn.execute(
                    update(badges)
                    .where(badges.c.id == badge_id, badges.c.revoked_at.is_(None))
                    .values(revoked_at=now)
                    .returning(badges)
                )
                .mappings()
                .first()
            )
            if row is None:
                return False
            write_audit(conn, audit, at=now, subject_kind="badge", subject_name=str(badge_id),
                        service=_owner(conn, row["kind"], row["subject"]),
                        before={"kind": row["kind"], "subject": row["subject"]})  # fmt: skip
        return True

    def state(self, key: str) -> BadgeState | None:
        """The state the badge with this key shows, or None: no live badge has this key."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(badges.c.kind, badges.c.subject).where(
                    badges.c.digest == digest(key), badges.c.revoked_at.is_(None)
                )
            ).first()
            if row is None:
                return None
            statuses = _statuses(conn, row.kind, row.subject)
        return BadgeState(
            label=row.subject,
            status=worst(statuses),
            total=len(statuses),
            down=statuses.count("down"),
            late=statuses.count("late"),
        )


def _owner(conn: Connection, kind: str, subject: str) -> str | None:
    """The service a badge's subject belongs to (audit rows carry it); None for a tag or nothing."""
    if kind == "service":
        return conn.execute(select(services.c.name).where(services.c.name == subject)).scalar()
    if kind == "job":
        return conn.execute(select(jobs.c.service).where(jobs.c.name == subject)).scalar()
    return None


def _statuses(conn: Connection, kind: str, subject: str) -> list[str]:
    """The status of every subject the badge stands for."""
    if kind == "service":
        return list(conn.execute(select(services.c.state).where(services.c.name == subject)).scalars())
    if kind == "job":
        return _job_statuses(conn, lambda name: name == subject)
    tagged_services = select(subject_tags.c.name).where(
        subject_tags.c.kind == "service", subject_tags.c.tag == subject
    )
    tagged_jobs = select(subject_tags.c.name).where(
        subject_tags.c.kind == "job", subject_tags.c.tag == subject
    )
    found = list(conn.execute(select(services.c.state).where(services.c.name.in_(tagged_services))).scalars())
    return found + _job_statuses(conn, lambda name: name.in_(tagged_jobs))


def _job_statuses(conn: Connection, which: Callable[[Any], Any]) -> list[str]:
    """The status of each job whose name ``which`` (a name column -> WHERE clause) keeps."""
    ran = exists(select(runs.c.id).where(runs.c.job_id == jobs.c.id))
    found = conn.execute(
        select(jobs.c.name, jobs.c.enabled, ran.label("ran")).where(which(jobs.c.name))
    ).all()
    if not found:
        return []
    alerted: dict[str, list[str]] = {}
    for alert in conn.execute(
        select(alerts.c.subject, alerts.c.kind).where(
            alerts.c.state.in_(("open", "acknowledged")),
            alerts.c.kind.in_([kind.value for kind in _JOB_ALERTS]),
            which(alerts.c.subject),
        )
    ):
        alerted.setdefault(alert.subject, []).append(_JOB_ALERTS[AlertKind(alert.kind)])
    statuses = []
    for job in found:
        if not job.enabled:
            statuses.append("paused")
        elif job.name in alerted:
            statuses.append(worst(alerted[job.name]))
        else:
            statuses.append("up" if job.ran else "new")
    return statuses
