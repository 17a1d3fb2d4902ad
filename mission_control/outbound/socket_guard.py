"""The outbound policy for code that opens its own connections: a library we hand a URL to (Apprise).

Our own senders enforce the policy in their connection classes (:mod:`mission_control.outbound.sender`).
A library such as Apprise makes its requests itself (``requests.post`` inside each of its plugins,
``smtplib`` for email, its own sockets for MQTT, XMPP or syslog), so no session of ours is involved.
Within :func:`guarded`, every ``socket.socket.connect``/``connect_ex`` to an IPv4 or IPv6 address is
judged by the policy first, on the *address actually being connected to*, i.e. after DNS
resolution and after any redirect: a name that resolves to a denied address, a record that changes
between a check and the connect (DNS rebinding) or a redirect to a metadata address are all refused
(:class:`DestinationRefused`, and nothing is sent). The guard also records what the library's
``requests`` calls answered (status codes, connection errors), so a caller can tell a transient
failure from a permanent one though the library only says yes or no.

How it is scoped: the two methods are wrapped once per process, and the wrappers do nothing unless a
:class:`contextvars.ContextVar` is set, which :func:`guarded` sets for the calling thread and which
follows the work into threads started with a copy of the context (Apprise 2 submits its service
calls to its thread pools with ``contextvars.copy_context().run``). Connections made by other
threads of the process at the same time are untouched.

What is not guaranteed: a connection made without Python's ``socket.socket`` (a C extension opening
its own socket), or from a thread the library starts without copying the context, is not judged.
Apprise's HTTP plugins (the great majority, through ``requests``), email, and the socket-based ones
connect through ``socket.socket`` in the calling context; the caller still judges the URL's own host
before handing it over (:func:`check_host`), as a second line for anything that slips past.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mission_control.outbound.policy import DestinationRefused, OutboundPolicy


@dataclass
class GuardRecord:
    """What happened to the connections and requests made under one :func:`guarded` block."""

    policy: OutboundPolicy
    refused: list[DestinationRefused] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # exception class names of failed requests
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


_ACTIVE: contextvars.ContextVar[GuardRecord | None] = contextvars.ContextVar(
    "mc_outbound_guard", default=None
)
_INSTALL_LOCK = threading.Lock()
_MARK = "_mission_control_guarded"


def _judge(record: GuardRecord, address: Any) -> None:
    if not isinstance(address, tuple) or not address or not isinstance(address[0], str):
        return  # a Unix socket path or an unusual family: not an internet destination
    host = address[0]
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return  # sockets are connected to addresses; a name here was resolved by the C library
    if not record.policy.allows(host):
        refused = DestinationRefused(host, [host])
        with record.lock:
            record.refused.append(refused)
        raise refused


def _wrap_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    def connect(self: socket.socket, address: Any) -> Any:
        record = _ACTIVE.get()
        if record is not None:
            _judge(record, address)
        return original(self, address)

    setattr(connect, _MARK, True)
    return connect


def _wrap_send(original: Callable[..., Any]) -> Callable[..., Any]:
    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        record = _ACTIVE.get()
        if record is None:
            return original(self, request, **kwargs)
        try:
            response = original(self, request, **kwargs)
        except DestinationRefused:
            raise
        except Exception as exc:
            with record.lock:
                record.errors.append(type(exc).__name__)
            raise
        with record.lock:
            record.statuses.append(int(response.status_code))
        return response

    setattr(send, _MARK, True)
    return send


def install() -> None:
    """Wrap ``socket.socket.connect``/``connect_ex`` and ``requests.Session.send`` (idempotent; again
    if someone replaced a wrapper since)."""
    import requests

    with _INSTALL_LOCK:
        for name in ("connect", "connect_ex"):
            current = getattr(socket.socket, name)
            if not getattr(current, _MARK, False):
                setattr(socket.socket, name, _wrap_connect(current))
        if not getattr(requests.Session.send, _MARK, False):
            requests.Session.send = _wrap_send(requests.Session.send)  # type: ignore[method-assign]


@contextlib.contextmanager
def guarded(policy: OutboundPolicy) -> Iterator[GuardRecord]:
    """Judge every connection made in this context by ``policy``; yields what was refused and answered."""
    install()
    record = GuardRecord(policy)
    token = _ACTIVE.set(record)
    try:
        yield record
    finally:
        _ACTIVE.reset(token)


def check_host(host: str, port: int | None, policy: OutboundPolicy) -> None:
    """Resolve ``host`` and raise :class:`DestinationRefused` when the policy denies any address of it
    (a literal address is judged as it is). A name that does not resolve passes: the library will fail
    on it by itself."""
    try:
        infos = socket.getaddrinfo(host, port or 0, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return
    addresses = sorted({str(info[4][0]) for info in infos})
    denied = [a for a in addresses if not policy.allows(a)]
    if denied:
        raise DestinationRefused(host, denied)
