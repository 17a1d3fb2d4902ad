"""Signatures on outgoing requests, so a receiver can tell a request from Mission Control from a forgery.

``X-Mission-Control-Signature: t=<unix seconds>,v2=<hex HMAC-SHA256 of the signed text>`` where the
signed text binds everything that makes the request what it is::

    <t>\\n<METHOD>\\n<canonical URL>\\n<Idempotency-Key>\\n<raw body>

An attack showed why: the first scheme (``v1``) signed only ``<t>.<body>``, so a captured bodiless
trigger replayed to *another* endpoint of the same receiver verified. Binding method and URL stops
that; binding the idempotency key stops a captured request from being passed off as another run;
the timestamp bounds how long any capture stays usable. After a secret rotation a request carries
one ``v2`` per live secret, and a receiver holding either accepts it.

The URL is compared in a canonical form (:func:`canonical_url`) because a receiver rebuilds it from
what its server saw: scheme and host lower-case, the default port dropped, an empty path ``/``, the
path's percent-escapes decoded and re-encoded (a WSGI server hands the application a decoded
path; dot segments removed, as clients do before sending), the query's escapes decoded and
re-encoded except those of ``% & = + #`` (kept, hex upper-cased), the fragment dropped. Decoding the
path follows WSGI, where ``/a%2Fb`` and ``/a/b`` are the same path: a receiver whose router tells
them apart should not give them different meanings. ``canonical_url`` is small and hand-written
because the two sides must agree byte for byte; no library's normaliser promises the same output as
Werkzeug's ``request.url`` (tests/unit/test_signing.py checks it against a Flask receiver).

The Standard Webhooks header set (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``; see
standardwebhooks.com) is offered too, for receivers whose language has a ready-made verifier. It
signs ``<id>.<t>.<body>`` only, so a receiver using it should also check the URL it was called on.

This module is pure (standard library only). :func:`verify` never raises: any malformed header is
simply not a valid signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Literal
from urllib.parse import quote, unquote_to_bytes, urlsplit

SIGNATURE_HEADER = "X-Mission-Control-Signature"
# The header sets a job may ask for (``target.signature``).
SignatureScheme = Literal["mission-control", "standard-webhooks"]
DEFAULT_TOLERANCE_S = 300
# Standard Webhooks (https://www.standardwebhooks.com/): header names and the secret's prefix.
WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"
WHSEC_PREFIX = "whsec_"

_DEFAULT_PORTS = {"http": 80, "https": 443}
# What Werkzeug's request.url leaves unescaped in a path (werkzeug.urls._always_safe plus "/").
_PATH_SAFE = "!$&'()*+,/:;=@-._~"
_QUERY_SAFE = "!$&'()*+,;=:@/?-._~"
# Escapes of "%", "&", "=", "+" and "#": decoding them would change what the query says.
_STRUCTURAL_ESCAPE = re.compile(r"%(25|26|3[Dd]|2[Bb]|23)")
_MAX_HEADER_CHARS = 4096


def canonical_url(url: str) -> str:
    """The form of ``url`` that both sides sign (see the module docstring); ValueError if unusable."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    path = quote(_remove_dot_segments(unquote_to_bytes(parts.path or "/")), safe=_PATH_SAFE)
    query = _normalise_query(parts.query)
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")


def _remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 section 5.2.4, as HTTP clients apply it before sending (urllib3 sends ``/a/../b`` as
    ``/b``), so the path signed is the path the receiver sees."""
    output: list[bytes] = []
    segments = path.split(b"/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == b".":
            if last:
                output.append(b"")
        elif segment == b"..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append(b"")
        else:
            output.append(segment)
    result = b"/".join(output)
    return result if result.startswith(b"/") else b"/" + result


def _normalise_query(query: str) -> str:
    # Escapes of the characters that give a query its structure stay as they are (hex upper-cased);
    # every other escape is decoded, and whatever is not plainly allowed is encoded again. The result
    # does not change under Werkzeug's re-quoting and its URI-to-IRI decoding of request.url.
    pieces = _STRUCTURAL_ESCAPE.split(query)
    out: list[str] = []
    for index, piece in enumerate(pieces):
        if index % 2:
            out.append(f"%{piece.upper()}")
        else:
            out.append(quote(unquote_to_bytes(piece), safe=_QUERY_SAFE))
    return "".join(out)


def signed_text(timestamp: int, method: str, url: str, idempotency_key: str, body: bytes) -> bytes:
    """What a ``v2`` signature is the HMAC of."""
    head = f"{timestamp}\n{method.upper()}\n{canonical_url(url)}\n{idempotency_key}\n"
    return head.encode("utf-8", "surrogatepass") + body


def sign(
    secrets: str | Sequence[str], *, method: str, url: str, idempotency_key: str, body: bytes, timestamp: int
) -> str:
    """The ``X-Mission-Control-Signature`` value: one ``v2`` per secret (several during a rotation)."""
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    text = signed_text(timestamp, method, url, idempotency_key, body)
    digests = [hmac.new(key.encode(), text, hashlib.sha256).hexdigest() for key in keys]
    return ",".join([f"t={timestamp}", *(f"v2={digest}" for digest in digests)])


def signature_headers(
    secrets: str | Sequence[str],
    scheme: SignatureScheme,
    *,
    method: str,
    url: str,
    idempotency_key: str,
    body: bytes,
    timestamp: int,
) -> dict[str, str]:
    """The signature headers of one outgoing request in ``scheme``."""
    if scheme == "standard-webhooks":
        return standard_webhooks_headers(secrets, message_id=idempotency_key, body=body, timestamp=timestamp)
    value = sign(
        secrets, method=method, url=url, idempotency_key=idempotency_key, body=body, timestamp=timestamp
    )
    return {SIGNATURE_HEADER: value}


def verify(
    secret: str,
    header: str | None,
    *,
    method: str,
    url: str,
    idempotency_key: str,
    body: bytes,
    now: int,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> bool:
    """True when ``header`` signs this request with ``secret`` and is at most ``tolerance_s`` old.

    Compared in constant time; with several ``v2`` values (during a rotation) any may match. Never
    raises: a malformed header, timestamp or URL is just not a valid signature.
    """
    try:
        if not header or len(header) > _MAX_HEADER_CHARS:
            return False
        timestamp: int | None = None
        candidates: list[str] = []
        for part in header.split(","):
            key, _, value = part.strip().partition("=")
            if key == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
                timestamp = int(value)
            elif key == "v2" and value.isascii():
                candidates.append(value)
        if timestamp is None or not candidates or abs(now - timestamp) > tolerance_s:
            return False
        text = signed_text(timestamp, method, url, idempotency_key, body)
        expected = hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()
        return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
    except Exception:  # whatever the input, a verifier answers False, never raises
        return False


def _whsec_key(secret: str) -> bytes:
    """A Standard Webhooks key: the base64 after ``whsec_``; any other secret is used as its bytes."""
    if secret.startswith(WHSEC_PREFIX):
        try:
            return base64.b64decode(secret[len(WHSEC_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode()


def standard_webhooks_headers(
    secrets: str | Sequence[str], *, message_id: str, body: bytes, timestamp: int
) -> dict[str, str]:
    """The Standard Webhooks headers for ``body``: one ``v1,<base64>`` signature per secret."""
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    text = f"{message_id}.{timestamp}.".encode() + body
    signatures = [
        "v1," + base64.b64encode(hmac.new(_whsec_key(key), text, hashlib.sha256).digest()).decode()
        for key in keys
    ]
    return {
        WEBHOOK_ID: message_id,
        WEBHOOK_TIMESTAMP: str(timestamp),
        WEBHOOK_SIGNATURE: " ".join(signatures),
    }


def verify_standard_webhooks(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: int, tolerance_s: int = DEFAULT_TOLERANCE_S
) -> bool:
    """A Standard Webhooks verifier (what receivers' libraries do), for tests and Python receivers."""
    try:
        lowered = {key.lower(): value for key, value in headers.items()}
        message_id = lowered.get(WEBHOOK_ID, "")
        raw_timestamp = lowered.get(WEBHOOK_TIMESTAMP, "")
        signatures = lowered.get(WEBHOOK_SIGNATURE, "")
        if (
            not message_id
            or not (raw_timestamp.isascii() and raw_timestamp.isdigit())
            or len(raw_timestamp) > 12
        ):
            return False
        timestamp = int(raw_timestamp)
        if abs(now - timestamp) > tolerance_s or len(signatures) > _MAX_HEADER_CHARS:
            return False
        expected = standard_webhooks_headers(secret, message_id=message_id, body=body, timestamp=timestamp)
        want = expected[WEBHOOK_SIGNATURE]
        return any(hmac.compare_digest(want, candidate) for candidate in signatures.split(" ") if candidate)
    except Exception:  # as verify(): False, never an exception
        return False
