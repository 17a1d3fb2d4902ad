"""Bearer-token authentication for ``/api/v1``.

Tokens are compared as SHA-256 digests with :func:`hmac.compare_digest`: the comparison takes the same
time whatever the input, and hashing first means it does not even leak the token's length.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import request

from mission_control.api.errors import ApiError


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


def require_admin(expected_digest: bytes) -> None:
    if not is_admin(bearer_token(), expected_digest):
        raise ApiError(
            401,
            "unauthorized",
            "a valid admin token is required: send Authorization: Bearer <MC_ADMIN_TOKEN>",
            "Authorization",
            headers={"WWW-Authenticate": 'Bearer realm="mission-control"'},
        )
