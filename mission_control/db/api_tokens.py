"""API tokens as rows: issued (the secret shown once, its SHA-256 kept), listed, revoked, looked up.

Every credential but the bootstrap ``MC_ADMIN_TOKEN`` lives here, each with its scopes and optionally
the one service it acts for (what the scopes mean is :mod:`mission_control.web.api.scopes`'s business).
Revoking stamps ``revoked_at``: the row stays for the record, and the next lookup no longer finds it,
so a revoked token is refused on its very next request in every process (there is no cache).

``last_used_at`` is written by a conditional UPDATE that matches only when the stored value is more
than :data:`TOUCH_EVERY_S` old, so a token in constant use costs one write a minute, not one a request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.exc import IntegrityError

from mission_control.base.clock import Clock
from mission_control.db.audit import AuditEntry
from mission_control.db.audit import write as write_audit
from mission_control.db.tables import api_tokens

TOKEN_PREFIX = "mct_"
SERVICE_TOKEN_PREFIX = "mcs_"  # the prefix service tokens always had, kept so they stay recognisable
HEARTBEATS_ONLY = ("heartbeats:write",)
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


def is_service_token(row: Any) -> bool:
    return tuple(row["scopes"]) == HEARTBEATS_ONLY and row["service"] is not None
