"""Signing in to the dashboard: a token with ``admin`` or ``read``, once, for a server-side session; CSRF.

An attack showed why each piece is here. The cookie used to be Flask's signed session with a key
derived from ``MC_SIGNING_SECRET``, which every target and webhook receiver holds, so any receiver
could sign itself an admin session. Now:

* The cookie's key is the session secret alone: ``MC_SESSION_SECRET``, or one generated on first use
  and kept in the database (``app_secrets``) so every web process shares it. Nothing a target holds
  derives it.
* The cookie carries only a random session id; the session lives in ``dashboard_sessions`` under the
  id's SHA-256. Signing out deletes the row, which ends the session wherever the cookie was copied,
  and a cookie signed by someone who learned the key still names no session.
* A session records a keyed fingerprint of the token that opened it; when ``MC_ADMIN_TOKEN`` changes,
  no session opened with the old one matches any more. A session opened with an API token records
  its id, and ends as soon as that token is revoked or expires (checked on every request). The
  session acts as that token (``g.principal``): a ``read`` token's session sees but changes nothing.
* Its lifetime is absolute (``SESSION_HOURS`` from sign-in): using the dashboard never extends it,
  and the cookie is not re-sent on every request.

The cookie is ``HttpOnly``, ``SameSite=Strict`` and ``Secure`` (browsers accept Secure cookies from
http://localhost and 127.0.0.1, so the dev stack works; set ``MC_DASHBOARD_INSECURE_COOKIE=1`` only
to serve plain HTTP to other hosts, which a production deployment never does). Every form carries the
session's CSRF token, compared in constant time. A request without a session cookie (every API call)
never touches the session store, so probes and heartbeats keep answering while the database is down.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from datetime import timedelta
from typing import Any

from flask import Flask, abort, current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from mission_control.db.app_secrets import get_or_create_secret
from mission_control.db.tables import api_tokens, dashboard_sessions
from mission_control.web.api.scopes import BOOTSTRAP, Principal

SESSION_HOURS = 12
SESSION_SECRET_NAME = "dashboard_session_key"


class _LazyKeySessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, with its key read when a cookie is first signed or checked.

    The key may live in the database, which need not be up when the app is built (nor for requests
    that carry no session cookie), so it is fetched on first need and kept for the process.
    """

    def __init__(self, engine: Engine, configured: str | None) -> None:
        self._engine = engine
        self._key: bytes | None = configured.encode() if configured else None
        self._lock = threading.Lock()

    def key(self) -> bytes:
        if self._key is None:
            with self._lock:
                if self._key is None:
                    value = get_or_create_secret(
                        self._engine, SESSION_SECRET_NAME, lambda: secrets.token_urlsafe(48)
                    )
                    self._key = value.encode()
        return self._key

    def get_signing_serializer(self, app: Flask) -> Any:
        app.secret_key = self.key()
        return super().get_signing_serializer(app)

    def open_session(self, app: Flask, request: Any) -> Any:
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        try:
            return super().open_session(app, request)
        except SQLAlchemyError:
            # The key lives in a database that is down: the request goes on signed out, so a browser
            # holding a cookie still gets /healthz and the sign-in page's 503, not a crash.
            return self.session_class()


def configure(
    app: Flask,
    engine: Engine,
    session_secret: str | None,
    admin_token: str,
    *,
    insecure_cookie: bool = False,
) -> None:
    """Install the session store on ``app``: its key (``session_secret`` or a generated, stored one)
    and the token whose change ends every session; ``insecure_cookie`` (the settings'
    ``MC_DASHBOARD_INSECURE_COOKIE``) drops the cookie's ``Secure`` flag."""
    interface = _LazyKeySessionInterface(engine, session_secret)
    app.session_interface = interface
    app.extensions["mission_control.sessions"] = _Sessions(engine, interface, admin_token)
    app.config.update(
        SESSION_COOKIE_NAME="mc_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=not insecure_cookie,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        # The lifetime is absolute: an unmodified session is not re-sent with a fresh expiry.
        SESSION_REFRESH_EACH_REQUEST=False,
    )


class _Sessions:
    def __init__(self, engine: Engine, interface: _LazyKeySessionInterface, admin_token: str) -> None:
        self.engine = engine
        self.interface = interface
        self._admin_token = admin_token

    def credential(self, token_id: int | None = None) -> str:
        """The fingerprint of the admin token (or of an API token's id) under the session key: changing
        either ends sessions."""
        material = b"admin\0" + self._admin_token.encode() if token_id is None else b"token\0%d" % token_id
        return hmac.new(self.interface.key(), material, hashlib.sha256).hexdigest()


def _sessions() -> _Sessions:
    return current_app.extensions["mission_control.sessions"]  # type: ignore[no-any-return]


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _now() -> Any:
    return current_app.extensions["mission_control"].clock.now()


def sign_in(token_id: int | None = None) -> None:
    """Open a session for the admin token (``token_id`` None) or an API token (the caller checked
    it may sign in); drop expired sessions meanwhile."""
    store = _sessions()
    now = _now()
    session_id = secrets.token_urlsafe(32)
    credential = store.credential(token_id)  # may read the key from the database: not inside the transaction
    with store.engine.begin() as conn:
        conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.expires_at <= now))
        conn.execute(
            insert(dashboard_sessions).values(
                id_digest=_digest(session_id),
                credential=credential,
                csrf=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + timedelta(hours=SESSION_HOURS),
                token_id=token_id,
            )
        )
    session.clear()
    session.permanent = True
    session["sid"] = session_id


def sign_out() -> None:
    session_id = session.get("sid")
    if isinstance(session_id, str):
        with _sessions().engine.begin() as conn:
            conn.execute(
                delete(dashboard_sessions).where(dashboard_sessions.c.id_digest == _digest(session_id))
            )
    session.clear()


def _current() -> Any:
    """This request's live session row, or None (no cookie, signed out, expired, token changed,
    revoked or expired); sets ``g.principal`` to whom the session acts as."""
    if "mc_session_row" in g:
        return g.mc_session_row
    row = None
    session_id = session.get("sid")
    if isinstance(session_id, str):
        store = _sessions()
        now = _now()
        with store.engine.connect() as conn:
            row = conn.execute(
                select(dashboard_sessions).where(dashboard_sessions.c.id_digest == _digest(session_id))
            ).first()
            token = None
            if row is not None and row.token_id is not None:
                token = conn.execute(
                    select(api_tokens).where(
                        api_tokens.c.id == row.token_id, api_tokens.c.revoked_at.is_(None)
                    )
                ).first()
        if row is not None and (
            row.expires_at <= now or not hmac.compare_digest(row.credential, store.credential(row.token_id))
        ):
            row = None
        if row is not None and row.token_id is not None:
            if token is None or (token.expires_at is not None and token.expires_at <= now):
                row = None
            else:
                g.principal = Principal(
                    id=token.id,
                    name=token.name,
                    scopes=frozenset(token.scopes),
                    service=token.service,
                    kind="token",
                )
        elif row is not None:
            g.principal = BOOTSTRAP
    g.mc_session_row = row
    return row


def signed_in() -> bool:
    return _current() is not None


def csrf_token() -> str:
    row = _current()
    return "" if row is None else str(row.csrf)


def check_csrf() -> None:
    """Abort 400 unless the form's token is this session's."""
    sent = request.form.get("csrf", "")
    expected = csrf_token()
    if not sent or not expected or not hmac.compare_digest(str(sent), expected):
        abort(400, description="the form has expired or did not come from this dashboard; reload the page")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site, or ``/``.

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so ``/\\t/evil.example``
    and ``/\\evil.example`` are ``//evil.example`` to them: anything but plain printable ASCII that
    starts with one slash not followed by a slash or backslash is refused.
    """
    if not target or not target.isascii() or not target.isprintable():
        return "/"
    if not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return "/"
    return target


SECURITY_HEADERS: dict[str, Any] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
