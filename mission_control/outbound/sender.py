"""Sending one trigger request with a hard, total deadline (DESIGN.md invariant 6).

``requests`` only bounds each socket operation: a target that answers one byte per second never trips
a read timeout, and a worker thread could be held for as long as the target likes. Here every request
runs inside a *scope*; the sockets it uses are registered with the scope, and one watchdog thread per
process shuts those sockets down when the deadline passes. Whatever the request was blocked in
(connect, send, reading headers or body) then fails at once, and the attempt is recorded
``timed_out``. That lets a thread pool serve hundreds of slow targets without any of them holding a
thread past its ``timeout_s`` (plus the watchdog's reaction time, milliseconds).

The same connection classes enforce the outbound policy (:mod:`mission_control.outbound.policy`, the SSRF
guard): a host is resolved, every address it resolves to is judged, and the socket connects only to an
allowed one, so the address checked is the address used. Nothing else opens these sessions' sockets.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Literal

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util.connection import allowed_gai_family
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from mission_control.outbound.policy import DEFAULT_POLICY, DestinationRefused, OutboundPolicy

# urllib3 logs every request line, query string included, at DEBUG; query strings carry credentials
# (tokens in webhook URLs, API keys in trigger URLs), so its pool logger never goes below INFO, even
# when an operator turns everything else up to DEBUG.
logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)

# "refused": the outbound policy denied every address of the host; nothing was sent, and retrying
# cannot change that.
OutcomeKind = Literal["response", "timeout", "connection_error", "refused", "error"]

# Response headers worth keeping with an attempt; the rest is noise or could carry secrets.
HEADERS_OF_NOTE = ("content-type", "content-length", "location", "retry-after", "x-request-id")


@dataclass(frozen=True)
class HttpOutcome:
    """What one attempt produced, in the terms the run history records."""

    kind: OutcomeKind
    duration_ms: float
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    excerpt: str | None = None
    truncated: bool = False
    error_class: str | None = None
    error_message: str | None = None
    retry_after_s: float | None = None


class _Scope:
    """The sockets of one request, and whether its deadline has passed."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self.done = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.expired:
                _shutdown(sock)
            elif sock not in self._sockets:
                self._sockets.append(sock)

    def expire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    # socket.socket.shutdown, not SSLSocket.shutdown: we only want the blocked call to return, and the
    # TLS object must not be torn down under the thread that is using it.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Watchdog:
    """One thread per process that expires request scopes at their deadlines."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Scope]] = []
        self._cond = threading.Condition()
        self._sequence = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def arm(self, scope: _Scope) -> None:
        with self._cond:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._heap = []  # a forked child must not inherit the parent's scopes or its dead thread
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="mc-http-watchdog", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (scope.deadline, next(self._sequence), scope))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait_s = self._heap[0][0] - time.monotonic()
                if wait_s > 0:
                    self._cond.wait(wait_s)
                    continue
                _, _, scope = heapq.heappop(self._heap)
            scope.expire()


WATCHDOG = Watchdog()
_current = threading.local()


def _watch_current(sock: socket.socket | None) -> None:
    scope = getattr(_current, "scope", None)
    if scope is not None:
        scope.watch(sock)


def _connect_allowed(conn: HTTPConnection, policy: OutboundPolicy) -> socket.socket:
    """urllib3's ``HTTPConnection._new_conn``, with the outbound policy judged between resolving the
    host and connecting.

    The socket connects to the very address that was judged (never to the name, which a second lookup
    could answer differently: DNS rebinding). Addresses the policy denies are skipped; if every one is
    denied, :class:`DestinationRefused` is raised before any socket exists. urllib3's own errors are
    kept for everything else, so timeouts and refused connections are classified as before.
    """
    host = conn._dns_host.strip("[]")  # an IPv6 literal arrives bracketed
    try:
        host.encode("idna")
    except UnicodeError:
        raise LocationParseError(f"'{host}', label empty or too long") from None
    try:
        found = socket.getaddrinfo(host, conn.port, allowed_gai_family(), socket.SOCK_STREAM)
        if not found:
            raise OSError("getaddrinfo returns an empty list")
        allowed = [info for info in found if policy.allows(str(info[4][0]))]
        if not allowed:
            refused = list(dict.fromkeys(str(info[4][0]) for info in found))
            raise DestinationRefused(conn.host.strip("[]"), refused)
        sock = _connect_first(allowed, conn.timeout, conn.source_address, conn.socket_options)
    except socket.gaierror as e:
        raise NameResolutionError(conn.host, conn, e) from e
    except TimeoutError as e:
        raise ConnectTimeoutError(
            conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
        ) from e
    except OSError as e:
        raise NewConnectionError(conn, f"Failed to establish a new connection: {e}") from e
    sys.audit("http.client.connect", conn, conn.host, conn.port)
    return sock


def _connect_first(
    addresses: list[tuple[Any, ...]],
    timeout: Any,
    source_address: tuple[str, int] | None,
    socket_options: Any,
) -> socket.socket:
    """Connect to the first address that answers, as ``urllib3.util.connection.create_connection``."""
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in addresses:
        sock = None
        try:
            sock = socket.socket(family, kind, proto)
            for option in socket_options or ():
                sock.setsockopt(*option)
            if timeout is not _DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            if sock is not None:
                sock.close()
    assert error is not None  # the caller passes at least one address
    raise error


class _WatchedHTTPConnection(HTTPConnection):
    def __init__(self, *args: Any, outbound_policy: OutboundPolicy = DEFAULT_POLICY, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outbound_policy = outbound_policy

    def _new_conn(self) -> socket.socket:
        return _connect_allowed(self, self.outbound_policy)

    def connect(self) -> None:
        super().connect()
        _watch_current(self.sock)

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _watch_current(self.sock)  # a reused keep-alive connection did not connect in this scope
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def __init__(self, *args: Any, outbound_policy: OutboundPolicy = DEFAULT_POLICY, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outbound_policy = outbound_policy

    def _new_conn(self) -> socket.socket:
        return _connect_allowed(self, self.outbound_policy)  # TLS then verifies the host name as usual

    def connect(self) -> None:
        super().connect()
        _watch_current(self.sock)

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _watch_current(self.sock)
        return super().getresponse(*args, **kwargs)


class _WatchedPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedTlsPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """Pools whose connections obey the watchdog and ``outbound_policy``.

    The policy reaches each connection as a pool keyword (urllib3 hands a pool's extra keywords to
    every connection it makes); the pool manager's own keywords cannot carry it, as they form the key
    pools are looked up by.
    """

    __attrs__ = [*HTTPAdapter.__attrs__, "outbound_policy"]

    def __init__(self, *args: Any, outbound_policy: OutboundPolicy = DEFAULT_POLICY, **kwargs: Any) -> None:
        self.outbound_policy = outbound_policy  # before super(): it calls init_poolmanager
        super().__init__(*args, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": functools.partial(_WatchedPool, outbound_policy=self.outbound_policy),
            "https": functools.partial(_WatchedTlsPool, outbound_policy=self.outbound_policy),
        }


def make_session(pool_size: int = 64, policy: OutboundPolicy = DEFAULT_POLICY) -> requests.Session:
    """A session for one worker process: pooled keep-alive connections, no cookies, no env proxies,
    and every connection judged by ``policy`` after DNS resolution (the default policy unless given).

    ``trust_env`` is off so a worker's environment (proxy variables, ~/.netrc credentials) cannot
    silently change where triggers go or what they carry. Processes pass
    ``policy_from(settings)``; the default keeps the SSRF guard on for any other caller.
    """
    session = requests.Session()
    session.trust_env = False
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    adapter = _WatchedAdapter(
        pool_connections=16, pool_maxsize=pool_size, max_retries=0, outbound_policy=policy
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def send(
    session: requests.Session,
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout_s: float,
    excerpt_bytes: int,
    now: datetime,
    watchdog: Watchdog = WATCHDOG,
) -> HttpOutcome:
    """Send one request and read at most ``excerpt_bytes`` of the answer, all within ``timeout_s``."""
    started = time.monotonic()
    scope = _Scope(started + timeout_s)
    watchdog.arm(scope)
    _current.scope = scope
    response: requests.Response | None = None
    try:
        response = session.request(
            method,
            url,
            headers=headers,
            data=body,
            timeout=(timeout_s, timeout_s),
            allow_redirects=False,
            stream=True,
        )
        excerpt, truncated = _read_excerpt(response, excerpt_bytes)
        kept = {
            name: storable(response.headers[name]) for name in HEADERS_OF_NOTE if name in response.headers
        }
        return HttpOutcome(
            kind="response",
            duration_ms=_ms_since(started),
            status=response.status_code,
            headers=kept,
            excerpt=excerpt,
            truncated=truncated,
            retry_after_s=parse_retry_after(response.headers.get("retry-after"), now),
        )
    except DestinationRefused as exc:  # raised before any socket was opened: nothing was sent
        return HttpOutcome(
            kind="refused",
            duration_ms=_ms_since(started),
            error_class=type(exc).__name__,
            error_message=storable(str(exc)[:500]),
        )
    except Exception as exc:  # every failure becomes a recorded attempt, never a crashed task
        if scope.expired or isinstance(exc, requests.Timeout):
            return HttpOutcome(
                kind="timeout",
                duration_ms=_ms_since(started),
                error_class="Timeout",
                error_message=f"no complete answer within {timeout_s:g} s",
            )
        kind: OutcomeKind = "connection_error" if isinstance(exc, requests.ConnectionError) else "error"
        return HttpOutcome(
            kind=kind,
            duration_ms=_ms_since(started),
            error_class=type(exc).__name__,
            error_message=_describe(exc),
        )
    finally:
        scope.done = True
        _current.scope = None
        if response is not None:
            response.close()


def _read_excerpt(response: requests.Response, limit: int) -> tuple[str, bool]:
    """Up to ``limit`` bytes of the body; beyond it the connection is dropped rather than drained."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = response.raw.read(min(65_536, limit + 1 - size), decode_content=True)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    truncated = len(data) > limit
    return storable(data[:limit].decode("utf-8", errors="replace")), truncated


def storable(text: str) -> str:
    """Text from a target, made safe to store: PostgreSQL text cannot hold NUL characters."""
    return text.replace("\x00", "\ufffd")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a Retry-After header asks for: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)


def _describe(exc: BaseException) -> str:
    # The innermost cause says what happened ("Connection refused"); requests wraps it thrice.
    while exc.__cause__ is not None or exc.__context__ is not None:
        inner = exc.__cause__ or exc.__context__
        assert inner is not None
        exc = inner
    text = str(exc) or type(exc).__name__
    return storable(text[:500])


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000.0, 3)
