"""Tests talk only to this machine: every Python-level connect elsewhere is refused before a packet.

The rule is that no test, benchmark or probe sends traffic beyond 127.0.0.0/8 and ::1, not even by
accident. Several tests are about exactly that accident (the outbound policy refusing a metadata
address, a schema ``$ref`` that must never be fetched): if the code under test regressed, the request
would go out. So the test session wraps ``socket.socket.connect``/``connect_ex`` and refuses any
IPv4/IPv6 peer that is not a loopback (or unspecified, i.e. this host) address, with
``ENETUNREACH``: the regression then fails its test without sending anything. IPv6 spellings of an
IPv4 loopback (``::ffff:127.0.0.1``) count as loopback; NAT64 and IPv4-compatible forms do not
(packets to them would leave the host). Host names other than ``localhost`` are refused rather than
resolved (resolving one is traffic too), and so are reverse lookups (a PTR query is traffic too).

Only this process is covered: servers and workers the tests start as subprocesses, and the database
drivers' C code, connect without it (they are pointed at 127.0.0.1 by the tests themselves).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

_INET = (socket.AF_INET, socket.AF_INET6)


def is_this_machine(host: str) -> bool:
    """Whether a connection to ``host`` (an IP literal, or ``localhost``) stays on this machine."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a name: resolving it would already be traffic
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def loopback_only(connect: Callable[..., Any], *, returns_errno: bool = False) -> Callable[..., Any]:
    """``connect`` (or ``connect_ex`` with ``returns_errno``) refusing peers off this machine."""

    def guarded(sock: socket.socket, address: Any, *args: Any) -> Any:
        if sock.family in _INET and not is_this_machine(str(address[0])):
            if returns_errno:
                return errno.ENETUNREACH
            raise OSError(errno.ENETUNREACH, f"tests connect only to this machine, not to {address[0]!r}")
        return connect(sock, address, *args)

    guarded.__wrapped__ = connect  # type: ignore[attr-defined]
    return guarded


def local_names_only(getaddrinfo: Callable[..., Any]) -> Callable[..., Any]:
    """``socket.getaddrinfo`` refusing every name but ``localhost``.

    Resolving a name sends a query to the resolver, which is off this machine: that is traffic too, so
    a name is refused as unknown (``EAI_NONAME``) before any query. IP literals pass (parsing one sends
    nothing); a connect to one off this machine is refused by :func:`loopback_only`.
    """

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not _is_ip_literal(str(name)) and str(name) != "localhost":
            raise socket.gaierror(socket.EAI_NONAME, f"tests resolve no names but localhost, not {host!r}")
        return getaddrinfo(host, *args, **kwargs)

    guarded.__wrapped__ = getaddrinfo  # type: ignore[attr-defined]
    return guarded


def no_reverse_lookups(gethostbyaddr: Callable[..., Any]) -> Callable[..., Any]:
    """``socket.gethostbyaddr`` refusing every address (``herror``) before any query.

    A reverse lookup asks the resolver, off this machine, for a PTR record, even for 127.0.0.1:
    strace showed the test process querying it each time a stdlib ``HTTPServer`` (the local fakes and
    targets) bound, through ``socket.getfqdn`` in ``server_bind``. No test needs the answer, and
    ``getfqdn`` falls back to the address itself on ``herror``.
    """

    def guarded(address: Any, *args: Any, **kwargs: Any) -> Any:
        raise socket.herror(1, f"tests make no reverse lookups, not of {address!r}")

    guarded.__wrapped__ = gethostbyaddr  # type: ignore[attr-defined]
    return guarded


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True
