"""Each service's own signing secrets: issued, rotated with an overlap window, revoked, and looked up.

Why: with one ``MC_SIGNING_SECRET`` every receiver can sign requests that every other receiver
accepts. A service given its own secret (``POST /api/v1/services/{name}/signing-secrets``) gets
requests signed with that secret only; services without one keep the shared default.

Rotation never breaks a receiver: the new secret becomes current at once, and the ones it replaces
(the default included, the first time) stay *live* until ``overlap_s`` later. Requests are signed
with every live secret (one ``v2`` value, or one Standard Webhooks signature, each), so a receiver
that still holds the old secret and one already updated both verify; once the window ends only the
new one signs. At most ``MAX_LIVE`` secrets are live at once: rotating again and again inside a window
retires the oldest early rather than letting headers grow.

Secrets are stored sealed by :class:`~mission_control.outbound.secretbox.SecretBox`, shown once when issued,
and never listed. Workers read them through :class:`SigningKeys`, a per-process copy of every live
secret refreshed every few seconds, so signing costs no query per request; a rotation or revocation
reaches every worker within that.
"""

from __future__ import annotations

import secrets
import threading
import time
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, text, update
from sqlalchemy.engine import Engine

from mission_control.base.clock import Clock
from mission_control.base.config import Settings
from mission_control.db.audit import AuditEntry
from mission_control.db.audit import write as write_audit
from mission_control.db.tables import service_signing_secrets as table
from mission_control.outbound.secretbox import SecretBox
from mission_control.outbound.signing import WHSEC_PREFIX

# A row standing for MC_SIGNING_SECRET during the overlap of a service's first own secret.
DEFAULT_MARKER = "@default"
MAX_LIVE = 4
DEFAULT_OVERLAP_S = 86_400
MAX_OVERLAP_S = 30 * 86_400


@dataclass(frozen=True)
class IssuedSecret:
    id: int
    service: str
    secret: str
    created_at: datetime
    previous_expire_at: datetime  # when the secrets it replaced stop signing


def new_secret() -> str:
    """32 random bytes in the Standard Webhooks form (``whsec_`` + base64), usable by its libraries."""
    return WHSEC_PREFIX + b64encode(secrets.token_bytes(32)).decode()


def _live(now: datetime) -> Any:
    return or_(table.c.expires_at.is_(None), table.c.expires_at > now)


class ServiceSigningSecrets:
    def __init__(self, engine: Engine, clock: Clock, box: SecretBox) -> None:
        self.engine = engine
        self.clock = clock
        self.box = box

    def rotate(
        self, service: str, overlap_s: float = DEFAULT_OVERLAP_S, *, audit: AuditEntry | None = None
    ) -> IssuedSecret:
        """Issue a new current secret; the live ones it replaces verify for ``overlap_s`` more.

        ``audit``: recorded in the same transaction, by id and lifetimes only (never the secret).
        """
        now = self.clock.now()
        retire_at = now + timedelta(seconds=overlap_s)
        secret = new_secret()
        with self.engine.begin() as conn:
            # One rotation of a service at a time: two at once would both see the same live secrets
            # and both add a current one. PostgreSQL: a lock on the service's name for this
            # transaction; SQLite: the delete below takes the database's write lock before the read.
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext('mc-signing:' || :service))"),
                    {"service": service},
                )
            conn.execute(delete(table).where(table.c.service == service, table.c.expires_at <= now))
            live = conn.execute(
                select(table.c.id).where(table.c.service == service, _live(now)).order_by(table.c.id.desc())
            ).all()
            if not live:
                # The service was signed with MC_SIGNING_SECRET: that keeps verifying through the window.
                conn.execute(
                    insert(table).values(
                        service=service, ciphertext=DEFAULT_MARKER, created_at=now, expires_at=retire_at
                    )
                )
            keep = [row.id for row in live[: MAX_LIVE - 1]]
            if keep:
                conn.execute(
                    update(table)
                    .where(
                        table.c.id.in_(keep),
                        or_(table.c.expires_at.is_(None), table.c.expires_at > retire_at),
                    )
                    .values(expires_at=retire_at)
                )
            retired_early = [row.id for row in live[MAX_LIVE - 1 :]]
            if retired_early:
                conn.execute(update(table).where(table.c.id.in_(retired_early)).values(expires_at=now))
            new_id = conn.execute(
                insert(table)
                .values(service=service, ciphertext=self.box.seal(secret), created_at=now, expires_at=None)
                .returning(table.c.id)
            ).scalar_one()
            write_audit(conn, audit, at=now, subject_kind="service", subject_name=service, service=service,
                        after={"signing_secret_id": int(new_id), "secret": "****",
                               "previous_expire_at": retire_at})  # fmt: skip
        return IssuedSecret(
            id=int(new_id),
            service=service,
            secret=secret,
            created_at=now,
            previous_expire_at=retire_at,
        )

    def list(self, service: str) -> list[dict[str, Any]]:
        """The service's live secrets, newest first, without their values."""
        now = self.clock.now()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.id, table.c.ciphertext, table.c.created_at, table.c.expires_at)
                .where(table.c.service == service, _live(now))
                .order_by(table.c.id.desc())
            ).all()
        return [
            {
                "id": int(row.id),
                "kind": "default" if row.ciphertext == DEFAULT_MARKER else "own",
                "created_at": row.created_at,
                "expires_at": row.expires_at,
            }
            for row in rows
        ]

    def revoke(self, service: str, secret_id: int, *, audit: AuditEntry | None = None) -> bool:
        """Stop signing with one secret at once; False if the service has no such live secret."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            result = conn.execute(
                update(table)
                .where(and_(table.c.id == secret_id, table.c.service == service, _live(now)))
                .values(expires_at=now)
            )
            if result.rowcount == 1:
                write_audit(conn, audit, at=now, subject_kind="service", subject_name=service,
                            service=service, before={"signing_secret_id": secret_id},
                            after={"signing_secret_id": secret_id, "expires_at": now})  # fmt: skip
        return result.rowcount == 1

    def live_ciphertexts(self) -> dict[str, list[str]]:
        """Every service's live secrets, sealed, newest first: one query for the whole fleet (only
        services that have their own secrets have rows)."""
        now = self.clock.now()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.service, table.c.ciphertext)
                .where(_live(now))
                .order_by(table.c.service, table.c.id.desc())
            ).all()
        live: dict[str, list[str]] = {}
        for row in rows:
            live.setdefault(row.service, []).append(row.ciphertext)
        return live


class SigningKeys:
    """The secrets to sign a service's requests with, as one worker process sees them.

    The whole set of live secrets is read at most every ``ttl_s`` seconds, in one query, and each
    sealed secret is opened once: a lookup costs no query and no decryption however many services
    the worker fires for (one query per service had cost every trigger a round trip). A rotation or
    revocation therefore reaches a worker within ``ttl_s``.
    """

    def __init__(
        self,
        store: ServiceSigningSecrets,
        default: str,
        ttl_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._default = [default]
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._live: dict[str, list[str]] = {}
        self._fresh_until = float("-inf")
        self._opened: dict[str, str] = {}  # ciphertext -> secret
        self._lock = threading.Lock()

    def for_service(self, service: str) -> list[str]:
        """The service's live secrets, newest first; ``[MC_SIGNING_SECRET]`` if it has none."""
        if self._monotonic() >= self._fresh_until:
            self._refresh()
        return self._live.get(service, self._default)

    def _refresh(self) -> None:
        with self._lock:
            now = self._monotonic()
            if now < self._fresh_until:
                return  # another thread refreshed meanwhile
            sealed = self._store.live_ciphertexts()
            opened = {c: self._opened.get(c) or self._open(c) for cs in sealed.values() for c in cs}
            self._live = {service: [opened[c] for c in cs] for service, cs in sealed.items()}
            self._opened = opened  # secrets no longer live are forgotten
            self._fresh_until = now + self._ttl_s

    def _open(self, ciphertext: str) -> str:
        return self._default[0] if ciphertext == DEFAULT_MARKER else self._store.box.open(ciphertext)


def signing_keys(engine: Engine, clock: Clock, settings: Settings, ttl_s: float = 5.0) -> SigningKeys:
    """The signing keys of a process that sends requests: its services' own secrets, else
    MC_SIGNING_SECRET. Build one per process and share it, so its cache serves every request."""
    assert settings.signing_secret, "processes that sign refuse to start without MC_SIGNING_SECRET"
    box = SecretBox.from_settings(settings)
    return SigningKeys(ServiceSigningSecrets(engine, clock, box), settings.signing_secret, ttl_s)


def reseal_service_secrets(engine: Engine, box: SecretBox) -> int:
    """Every stored service signing secret sealed again with the newest key; returns how many."""
    rewritten = 0
    with engine.begin() as conn:
        rows = conn.execute(
            select(table.c.id, table.c.ciphertext).where(table.c.ciphertext != DEFAULT_MARKER)
        )
        for row in list(rows):
            conn.execute(
                update(table).where(table.c.id == row.id).values(ciphertext=box.rotate(row.ciphertext))
            )
            rewritten += 1
    return rewritten
