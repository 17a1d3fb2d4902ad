"""Signing in to the dashboard: the admin token, once, for a signed HttpOnly session cookie; CSRF.

The cookie is Flask's signed session (key derived from MC_SIGNING_SECRET, so no new secret to manage),
``HttpOnly``, ``SameSite=Strict`` and ``Secure`` (browsers accept Secure cookies from
http://localhost and 127.0.0.1, so the dev stack works; set ``MC_DASHBOARD_INSECURE_COOKIE=1`` only
to serve plain HTTP to other hosts, which a production deployment never does). Every form carries a
per-session CSRF token, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import timedelta
from typing import Any

from flask import Flask, abort, request, session

SESSION_HOURS = 12


def configure(app: Flask, signing_secret: str) -> None:
    app.secret_key = hmac.new(
        signing_secret.encode(), b"mission-control dashboard session", hashlib.sha256
    ).digest()
    app.config.update(
        SESSION_COOKIE_NAME="mc_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=os.environ.get("MC_DASHBOARD_INSECURE_COOKIE", "") not in ("1", "true", "yes"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )


def sign_in() -> None:
    session.clear()
    session.permanent = True
    session["admin"] = True
    session["csrf"] = secrets.token_urlsafe(32)


def sign_out() -> None:
    session.clear()


def signed_in() -> bool:
    return bool(session.get("admin"))


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def check_csrf() -> None:
    """Abort 400 unless the form's token is this session's."""
    sent = request.form.get("csrf", "")
    expected = session.get("csrf", "")
    if not sent or not expected or not hmac.compare_digest(str(sent), str(expected)):
        abort(400, description="the form has expired or did not come from this dashboard; reload the page")


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
