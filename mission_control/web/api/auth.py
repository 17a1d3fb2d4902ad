"""Bearer-token authentication for ``/api/v1`` and ``/metrics``: who the request acts as.

:func:`authenticate` turns the credential into a :class:`~mission_control.web.api.scopes.Principal`
(kept on ``flask.g.principal`` for the request): ``MC_ADMIN_TOKEN``, the bootstrap admin, or a live row
of ``api_tokens`` (looked up by digest on every request, so a revoked token is refused on its next
one; an expired one answers 401 saying so). What the principal may do is
:mod:`mission_control.web.api.scopes`'s business.

Tokens are compared as SHA-256 digests with :func:`hmac.compare_digest`: the comparison takes the same
time whatever the input, and hashing first means it does not even leak the token's length.

A refused credential spends its client address's failed-authentication budget (401, then 429 once it
is spent; MC_AUTH_FAILURES_PER_MIN, see :mod:`mission_control.web.api.limits`, which says what that does
and does not bound). The credential is checked first, so a valid token is never refused because
others from the same address (every client behind one proxy, say) guessed wrong. The address is
``request.remote_addr``: the peer, or with MC_PROXY_HOPS > 0 the client that many trusted proxies
back (werkzeug's ``ProxyFix`` around the app, see :func:`mission_control.web.api.create_app`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from flask import current_app, g, request

from mission_control.db.api_tokens import HEARTBEATS_ONLY, TOUCH_EVERY_S, HeartbeatCredential
from mission_control.web.api.errors import ApiError
from mission_control.web.api.limits import too_many
from mission_control.web.api.scopes import BOOTSTRAP, Principal, check

# Heartbeats check an API token in their own statement (see deferred_heartbeat_credential).
HEARTBEAT_ENDPOINTS = frozenset({"heartbeats.post_heartbeat", "heartbeats.get_heartbeat"})


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
    """The client's address: the peer's, or with MC_PROXY_HOPS > 0 the one ``ProxyFix`` trusted.

    Behind a proxy that is not counted in MC_PROXY_HOPS this is the proxy's: every client there shares
    one budget, which errs on the side of refusing guesses (valid credentials are never refused).
    """
    return request.remote_addr or "unknown"


def spend_auth_budget() -> float | None:
    """Charge one refused credential to this client: None if it had budget left, else the seconds
    until it will (answer 429 then; nothing is charged)."""
    return current_app.extensions["mission_control"].auth_failures.take(client_address())


def refused(error: ApiError) -> ApiError:
    """The answer to a refused credential: ``error`` (a 401) within budget, 429 once it is spent."""
    wait = spend_auth_budget()
    if wait is not None:
        return too_many("too many failed authentications from this address", wait)
    return error


def _unauthorized(message: str, field: str = "Authorization") -> ApiError:
    return refused(
        ApiError(
            401,
            "unauthorized",
            message,
            field,
            headers={"WWW-Authenticate": 'Bearer realm="mission-control"'},
        )
    )


def authenticate(*, query_token: str | None = None) -> Principal:
    """The principal this request's credential names; raises 401 (or 429, budget spent) otherwise.

    ``query_token`` (heartbeats' ``?token=``) is used when there is no Authorization header, and only
    for a token scoped to heartbeats alone: URLs end up in access logs and shell histories, so a token
    there must risk no more than one service's heartbeats.
    """
    state = current_app.extensions["mission_control"]
    header_token = bearer_token()
    token = header_token or query_token
    if token is None:
        raise _unauthorized(
            "a valid token is required: send Authorization: Bearer <the admin token or an API token>"
        )
    if is_admin(token, state.admin_digest):
        if header_token is None:
            raise ApiError(
                401,
                "unauthorized",
                "token: the admin token is accepted only in the Authorization header",
                "token",
            )
        return BOOTSTRAP
    row = state.tokens.lookup(token)
    if row is None:
        raise _unauthorized(
            "a valid token is required: send Authorization: Bearer <the admin token or an API token>"
        )
    now = state.clock.now()
    if row["expires_at"] is not None and row["expires_at"] <= now:
        raise _unauthorized(f"this token ({row['name']}) expired at {row['expires_at'].isoformat()}")
    if header_token is None and tuple(row["scopes"]) != HEARTBEATS_ONLY:
        raise ApiError(
            401,
            "unauthorized",
            "token: only heartbeat-only tokens are accepted in the query string; send Authorization: Bearer",
            "token",
        )
    last = row["last_used_at"]
    if last is None or (now - last).total_seconds() >= TOUCH_EVERY_S:
        state.tokens.touch(row["id"], now)
    return Principal(
        id=row["id"],
        name=row["name"],
        scopes=frozenset(row["scopes"]),
        service=row["service"],
        kind="token",
    )


def enforce(endpoint: str, who: Principal, owner_of: Callable[[str, dict[str, Any]], str | None]) -> None:
    """Raise the refusal (403, or 404 for another service's object on a read) if ``who`` may not
    call ``endpoint`` (:func:`mission_control.web.api.scopes.check`)."""
    refusal = check(endpoint, who, owner_of)
    if refusal is not None:
        status, message, field = refusal
        raise ApiError(status, "forbidden" if status == 403 else "not_found", message, field)


def authorize(
    endpoint: str, owner_of: Callable[[str, dict[str, Any]], str | None], *, query_token: str | None = None
) -> Principal:
    """:func:`authenticate` into ``g.principal``, then :func:`enforce` the endpoint's rule."""
    g.principal = authenticate(query_token=query_token)
    enforce(endpoint, g.principal, owner_of)
    return g.principal


def deferred_heartbeat_credential(query_token: str | None) -> HeartbeatCredential | None:
    """A heartbeat's API token, to be checked by the heartbeat's own statement instead of here.

    None when :func:`authenticate` must run now: no credential, or the admin token (which needs no
    lookup). The heartbeat view sets ``g.principal`` from the token its statement accepted, and on
    any refusal runs :func:`authorize`, so every answer (401 and its budget, 403, the expiry message,
    the query-string rule) is the one the full check gives.
    """
    header_token = bearer_token()
    token = header_token or query_token
    if token is None or is_admin(token, current_app.extensions["mission_control"].admin_digest):
        return None
    return HeartbeatCredential.of(token, from_header=header_token is not None)
