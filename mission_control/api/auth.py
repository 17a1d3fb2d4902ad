"""Bearer-token authentication for ``/api/v1``.

Tokens are compared as SHA-256 digests with :func:`hmac.compare_digest`: the comparison takes the same
time whatever the input, and hashing first means it does not even leak the token's length.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, request

from mission_control.api.errors import ApiError
from mission_control.api.limits import too_many


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def is_admin(token: str | None, admin_digest: bytes) -> bool:
    """The one admin-token comparison (API, heartbeats, dashboard sign-in): digests, constant time."""
    return token is not None and hmac.compare_digest(token_digest(token), admin_digest)


def client_address() -> str:
    # The peer's address. Behind a reverse proxy this is the proxy's: every client there shares one
    # budget, which errs on the side of refusing guesses.
    return request.remote_addr or "unknown"


def check_auth_budget() -> None:
    """429 for a client whose failed-authentication budget is spent (MC_AUTH_FAILURES_PER_MIN)."""
    wait = current_app.extensions["mission_control"].auth_failures.wait_s(client_address())
    if wait is not None:
        raise too_many("too many failed authentications from this address", wait)


def count_failed_auth() -> None:
    current_app.extensions["mission_control"].auth_failures.take(client_address())


def require_admin(expected_digest: bytes) -> None:
    check_auth_budget()
    if not is_admin(bearer_token(), expected_digest):
        count_failed_auth()
        raise ApiError(
            401,
            "unauthorized",
            "a valid admin token is required: send Authorization: Bearer <MC_ADMIN_TOKEN>",
            "Authorization",
            headers={"WWW-Authenticate": 'Bearer realm="mission-control"'},
        )
