"""The audit trail: who changed what, when, from where, and the change itself.

Every change made through the API, the CLI (which speaks the API) or the dashboard writes one
``audit_log`` row in the same transaction as the change, so the trail never claims a change that
rolled back and never misses one that committed. The mechanism is explicit: the web layer builds an
:class:`AuditEntry` (actor, token id, client address, action) and hands it to the store method that
makes the change as its ``audit=`` keyword; the store calls :func:`write` on its own connection with
the subject and the before/after it knows. A store called without ``audit`` (the worker, beat, tests,
migrations) writes no row: only operators' changes are audited, not the system's own bookkeeping.

A write that changes nothing (an idempotent PUT of the job or service already stored) writes no row;
the trail records changes, not requests.

Secrets never reach ``change``: callers pass job specs through ``jobs.secrets.redact_spec`` (the
store in ``jobs`` does), token and signing secrets are never passed, and channel targets are reduced
to scheme, host and port by the caller. This module sits in ``db`` (like ``alerts``), so every part
above it may write a row.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.engine import Connection, Engine, RowMapping

from mission_control.db.tables import audit_log

REDACTED = "****"


@dataclass(frozen=True)
class AuditEntry:
    """Who is making a change and what kind of change it is; the store adds subject and change."""

    actor: str  # a token's name, "MC_ADMIN_TOKEN", or "dashboard: <token name>"
    actor_token_id: int | None
    client_address: str | None
    action: str  # "<kind>.<verb>": job.put, job.pause, run.trigger, token.create, mission.signal...


def write(
    conn: Connection,
    audit: AuditEntry | None,
    *,
    at: datetime,
    subject_kind: str,
    subject_name: str,
    service: str | None = None,
    before: Any = None,
    after: Any = None,
    action: str | None = None,
) -> int | None:
    """Insert the row for ``audit`` on ``conn`` (the change's own transaction); None without one.

    ``action`` overrides the entry's (a PUT that creates answers ``job.create``, say).
    """
    if audit is None:
        return None
    result = conn.execute(
        insert(audit_log)
        .values(
            at=at,
            actor_token_id=audit.actor_token_id,
            actor=audit.actor[:160],
            client_address=(audit.client_address or None) and audit.client_address[:64],
            action=action or audit.action,
            subject_kind=subject_kind,
            subject_name=subject_name[:200],
            service=service,
            change={"before": _jsonable(before), "after": _jsonable(after)},
        )
        .returning(audit_log.c.id)
    )
    return int(result.scalar_one())


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON (datetimes as ISO strings), so every database stores it the same way."""
    if value is None:
        return None
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return str(value)


@dataclass(frozen=True)
class AuditFilter:
    subject_kind: str | None = None
    subject_name: str | None = None
    actor: str | None = None
    action: str | None = None
    service: str | None = None  # a bound token's service: only its rows
    since: datetime | None = None
    until: datetime | None = None
    before: tuple[datetime, int] | None = None  # keyset: (at, id) of the last row of the previous page
    limit: int = 50


def list_entries(engine: Engine, where: AuditFilter) -> list[RowMapping]:
    """Rows matching ``where``, newest first by (at, id)."""
    statement = select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(where.limit)
    if where.subject_kind is not None:
        statement = statement.where(audit_log.c.subject_kind == where.subject_kind)
    if where.subject_name is not None:
        statement = statement.where(audit_log.c.subject_name == where.subject_name)
    if where.actor is not None:
        statement = statement.where(audit_log.c.actor == where.actor)
    if where.action is not None:
        statement = statement.where(audit_log.c.action == where.action)
    if where.service is not None:
        statement = statement.where(audit_log.c.service == where.service)
    if where.since is not None:
        statement = statement.where(audit_log.c.at >= where.since)
    if where.until is not None:
        statement = statement.where(audit_log.c.at < where.until)
    if where.before is not None:
        at, row_id = where.before
        statement = statement.where(
            or_(audit_log.c.at < at, and_(audit_log.c.at == at, audit_log.c.id < row_id))
        )
    with engine.connect() as conn:
        return list(conn.execute(statement).mappings())


def prune(engine: Engine, now: datetime, *, retention_days: float, batch: int = 1000) -> int:
    """Delete rows older than ``retention_days`` before ``now``, ``batch`` at a time; how many went."""
    cutoff = now - timedelta(days=retention_days)
    removed = 0
    while True:
        with engine.begin() as conn:
            ids = select(audit_log.c.id).where(audit_log.c.at < cutoff).limit(batch).scalar_subquery()
            count = conn.execute(delete(audit_log).where(audit_log.c.id.in_(ids))).rowcount
        removed += count
        if count < batch:
            return removed


def encode_cursor(at: datetime, row_id: int) -> str:
    raw = json.dumps([at.astimezone(UTC).isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (at, id) an :func:`encode_cursor` cursor holds; ValueError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
        if not (
            isinstance(decoded, list)
            and len(decoded) == 2
            and isinstance(decoded[0], str)
            and len(decoded[0]) <= 40
            and type(decoded[1]) is int
            and 0 < decoded[1] < 2**63
        ):
            raise ValueError("not an [at, id] pair")
        at = datetime.fromisoformat(decoded[0])
        if at.tzinfo is None or at.astimezone(UTC).isoformat() != decoded[0]:
            raise ValueError("not an instant as this API writes them")
        return at.astimezone(UTC), decoded[1]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError, OverflowError):
        raise ValueError("cursor is not a next_cursor this API gave out") from None
