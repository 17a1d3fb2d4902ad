"""API tokens as rows: issued (the secret shown once, its SHA-256 kept), listed, revoked, looked up.

Every credential but the bootstrap ``MC_ADMIN_TOKEN`` lives here, each with its scopes and optionally
the one service it acts for (what the scopes mean is :mod:`mission_control.web.api.scopes`'s business).
Revoking stamps ``revoked_at``: the row stays for the record, and the next lookup no longer finds it,
so a revoked token is refused on its very next request in every process (there is no cache).

``last_used_at`` is written by a conditional UPDATE that matches only when the stored value is more
than :data:`TOUCH_EVERY_S` old, so a token in constant use costs one write a minute, not one a request.

A heartbeat's token is checked inside the heartbeat's own transaction (on PostgreSQL inside its one
statement, :func:`heartbeat_token_cte`), not by a lookup of its own first: heartbeats are the hot
path, and a second checkout and round trip per heartbeat cost a third of their throughput. The rule
is :func:`may_beat`'s, the same one the web app's scope check applies (``heartbeats:write`` or
``admin``, bound to that service or to none, live, unexpired, only heartbeat-only tokens in a URL).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CTE,
    Boolean,
    String,
    bindparam,
    cast,
    delete,
    insert,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import IntegrityError

from mission_control.base.clock import Clock
from mission_control.db.audit import AuditEntry
from mission_control.db.audit import write as write_audit
from mission_control.db.tables import api_tokens
from mission_control.db.types import UTCDateTime

TOKEN_PREFIX = "mct_"
SERVICE_TOKEN_PREFIX = "mcs_"  # the prefix service tokens always had, kept so they stay recognisable
HEARTBEATS_ONLY = ("heartbeats:write",)
BEAT_SCOPES = ("heartbeats:write", "admin")  # any one of these lets a token send heartbeats
TOUCH_EVERY_S = 60.0

# What a listing shows: never the digest.
LISTED = (
    api_tokens.c.id,
    api_tokens.c.name,
    api_tokens.c.scopes,
    api_tokens.c.service,
    api_tokens.c.label,
    api_tokens.c.created_at,
    api_tokens.c.created_by,
    api_tokens.c.last_used_at,
    api_tokens.c.expires_at,
    api_tokens.c.revoked_at,
)


class TokenNameTaken(Exception):
    pass


@dataclass(frozen=True)
class IssuedApiToken:
    row: RowMapping
    token: str = field(repr=False)  # shown once to whoever asked for it, never stored


def token_digest(token: str) -> str:
    """The stored form of a token: its SHA-256 in hex (the digest service tokens always had)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class ApiTokenStore:
    """Tokens as rows; every method is one short transaction."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def create(
        self,
        name: str,
        scopes: Sequence[str],
        *,
        service: str | None = None,
        expires_at: datetime | None = None,
        created_by: str | None = None,
        label: str | None = None,
        prefix: str = TOKEN_PREFIX,
        audit: AuditEntry | None = None,
    ) -> IssuedApiToken:
        """Issue a token; raises :class:`TokenNameTaken` if a token (live or revoked) has ``name``.

        ``audit``: the row (never the secret or its digest) is recorded in the same transaction.
        """
        token = prefix + secrets.token_urlsafe(32)
        try:
            with self.engine.begin() as conn:
                token_id = conn.execute(
                    insert(api_tokens)
                    .values(
                        name=name,
                        digest=token_digest(token),
                        scopes=list(scopes),
                        service=service,
                        label=label,
                        created_at=self.clock.now(),
                        created_by=created_by,
                        expires_at=expires_at,
                    )
                    .returning(api_tokens.c.id)
                ).scalar_one()
                row = conn.execute(select(*LISTED).where(api_tokens.c.id == token_id)).mappings().one()
                write_audit(
                    conn,
                    audit,
                    at=row["created_at"],
                    subject_kind="token",
                    subject_name=name,
                    service=service,
                    after=dict(row),
                )
        except IntegrityError:
            raise TokenNameTaken(name) from None
        return IssuedApiToken(row=row, token=token)

    def list(self, *, include_revoked: bool = False, service: str | None = None) -> list[RowMapping]:
        """Tokens oldest first (never a digest); revoked ones only with ``include_revoked``."""
        statement = select(*LISTED).order_by(api_tokens.c.id)
        if not include_revoked:
            statement = statement.where(api_tokens.c.revoked_at.is_(None))
        if service is not None:
            statement = statement.where(api_tokens.c.service == service)
        with self.engine.connect() as conn:
            return list(conn.execute(statement).mappings())

    def revoke(self, token_id: int, *, service: str | None = None, audit: AuditEntry | None = None) -> bool:
        """Stamp the token revoked now; False if there is no live token ``token_id`` (of ``service``)."""
        now = self.clock.now()
        statement = update(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        if service is not None:
            statement = statement.where(api_tokens.c.service == service)
        with self.engine.begin() as conn:
            before = conn.execute(select(*LISTED).where(api_tokens.c.id == token_id)).mappings().first()
            if conn.execute(statement.values(revoked_at=now)).rowcount != 1:
                return False
            assert before is not None
            write_audit(
                conn,
                audit,
                at=now,
                subject_kind="token",
                subject_name=before["name"],
                service=before["service"],
                before=dict(before),
                after={**before, "revoked_at": now},
            )
            return True

    def lookup(self, token: str) -> RowMapping | None:
        """The live (unrevoked) token's row, expired or not (the caller says which), or None."""
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    select(*LISTED).where(
                        api_tokens.c.digest == token_digest(token), api_tokens.c.revoked_at.is_(None)
                    )
                )
                .mappings()
                .first()
            )

    def touch(self, token_id: int, now: datetime) -> None:
        """Record a use, at most once per :data:`TOUCH_EVERY_S` (a no-op UPDATE otherwise)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(api_tokens)
                .where(
                    api_tokens.c.id == token_id,
                    or_(
                        api_tokens.c.last_used_at.is_(None),
                        api_tokens.c.last_used_at < now - timedelta(seconds=TOUCH_EVERY_S),
                    ),
                )
                .values(last_used_at=now)
            )

    # --- service tokens: heartbeats:write for one service, the API of /services/{name}/tokens ----

    def create_service_token(
        self, service: str, label: str | None = None, *, audit: AuditEntry | None = None
    ) -> IssuedApiToken:
        while True:  # a random suffix keeps names unique; a collision (2**-32) just tries again
            name = f"{service}-heartbeats-{secrets.token_hex(4)}"
            try:
                return self.create(
                    name,
                    HEARTBEATS_ONLY,
                    service=service,
                    label=label,
                    created_by="service token",
                    prefix=SERVICE_TOKEN_PREFIX,
                    audit=audit,
                )
            except TokenNameTaken:
                continue

    def service_tokens(self, service: str) -> list[RowMapping]:
        """The service's live tokens scoped exactly ``heartbeats:write``, oldest first."""
        return [row for row in self.list(service=service) if is_service_token(row)]

    def revoke_service_token(self, service: str, token_id: int, *, audit: AuditEntry | None = None) -> bool:
        if not any(row["id"] == token_id for row in self.service_tokens(service)):
            return False
        return self.revoke(token_id, service=service, audit=audit)

    def delete_service_tokens(self, service: str) -> int:
        """Forget the service's heartbeat-only tokens (the service itself was removed)."""
        ids = [row["id"] for row in self.service_tokens(service)]
        if not ids:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(delete(api_tokens).where(api_tokens.c.id.in_(ids))).rowcount


@dataclass(frozen=True)
class HeartbeatCredential:
    """A token offered with a heartbeat, checked by the heartbeat's own transaction.

    ``from_header`` is False for ``?token=``, which only heartbeat-only tokens may use.
    """

    digest: str = field(repr=False)
    from_header: bool

    @classmethod
    def of(cls, token: str, *, from_header: bool) -> HeartbeatCredential:
        return cls(digest=token_digest(token), from_header=from_header)


# What a heartbeat's token check answers: enough to name the principal.
BEAT_TOKEN_COLUMNS = (api_tokens.c.id, api_tokens.c.name, api_tokens.c.scopes, api_tokens.c.service)


def may_beat(row: Any, service: str, now: datetime, *, from_header: bool) -> bool:
    """Whether the live token ``row`` lets a heartbeat for ``service`` in (the rule in one place)."""
    scopes = tuple(row["scopes"])
    return (
        (row["expires_at"] is None or row["expires_at"] > now)
        and any(scope in scopes for scope in BEAT_SCOPES)
        and row["service"] in (None, service)
        and (from_header or scopes == HEARTBEATS_ONLY)
    )


def heartbeat_token(
    conn: Connection, credential: HeartbeatCredential, service: str, now: datetime
) -> RowMapping | None:
    """In the caller's transaction: the token's row if it lets a heartbeat for ``service`` in (its
    ``last_used_at`` touched when due), else None and nothing written. The general path's check;
    PostgreSQL's one-statement heartbeat uses :func:`heartbeat_token_cte` instead."""
    row = (
        conn.execute(
            select(*BEAT_TOKEN_COLUMNS, api_tokens.c.expires_at, api_tokens.c.last_used_at).where(
                api_tokens.c.digest == credential.digest, api_tokens.c.revoked_at.is_(None)
            )
        )
        .mappings()
        .first()
    )
    if row is None or not may_beat(row, service, now, from_header=credential.from_header):
        return None
    last = row["last_used_at"]
    if last is None or (now - last).total_seconds() > TOUCH_EVERY_S:  # as touch() and the CTE: "older than"
        conn.execute(update(api_tokens).where(api_tokens.c.id == row["id"]).values(last_used_at=now))
    return row


def heartbeat_token_cte() -> tuple[CTE, CTE]:
    """PostgreSQL: :func:`may_beat` as a CTE (``tok``: the token's row, or none) and the conditional
    ``last_used_at`` write as a data-modifying CTE (``touched``), for the heartbeat's own statement.

    Binds ``p_digest``, ``p_name`` (the service), ``p_now``, ``p_touch_before`` (``p_now`` minus
    :data:`TOUCH_EVERY_S`) and ``p_from_header``.
    """
    now = bindparam("p_now", type_=UTCDateTime())
    scopes = type_coerce(api_tokens.c.scopes, JSONB)
    tok = (
        select(*BEAT_TOKEN_COLUMNS)
        .where(
            api_tokens.c.digest == bindparam("p_digest", type_=String()),
            api_tokens.c.revoked_at.is_(None),
            or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > now),
            scopes.has_any(array([literal(scope) for scope in BEAT_SCOPES])),
            or_(api_tokens.c.service.is_(None), api_tokens.c.service == bindparam("p_name")),
            or_(
                bindparam("p_from_header", type_=Boolean()),
                scopes == cast(literal('["heartbeats:write"]'), JSONB),
            ),
        )
        .cte("tok")
    )
    touched = (
        update(api_tokens)
        .where(
            api_tokens.c.id == tok.c.id,
            or_(
                api_tokens.c.last_used_at.is_(None),
                api_tokens.c.last_used_at < bindparam("p_touch_before", type_=UTCDateTime()),
            ),
        )
        .values(last_used_at=now)
        .returning(api_tokens.c.id)
        .cte("touched")
    )
    return tok, touched


def is_service_token(row: Any) -> bool:
    return tuple(row["scopes"]) == HEARTBEATS_ONLY and row["service"] is not None
