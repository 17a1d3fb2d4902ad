"""The test session's own guard: connections beyond this machine are refused before anything is sent."""

from __future__ import annotations

import errno
import socket

import pytest

from tests.network_guard import is_this_machine, local_names_only, loopback_only, no_reverse_lookups


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", True),
        ("localhost", True),
        ("169.254.169.254", False),
        ("10.0.0.1", False),
        ("192.0.2.1", False),
        ("64:ff9b::7f00:1", False),  # NAT64: would leave the host
        ("::7f00:1", False),  # IPv4-compatible: would leave the host
        ("fd00:ec2::254", False),
        ("example.com", False),  # names are not resolved
    ],
)
def test_which_peers_count_as_this_machine(host, local):
    assert is_this_machine(host) is local


def test_the_guard_refuses_before_calling_connect():
    calls = []
    guarded = loopback_only(lambda sock, address: calls.append(address))
    guarded_ex = loopback_only(lambda sock, address: calls.append(address) or 0, returns_errno=True)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(OSError) as refused:
            guarded(sock, ("169.254.169.254", 80))
        assert refused.value.errno == errno.ENETUNREACH
        assert guarded_ex(sock, ("10.0.0.1", 80)) == errno.ENETUNREACH
        guarded(sock, ("127.0.0.1", 9))
    assert calls == [("127.0.0.1", 9)]


def test_the_session_is_guarded():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(OSError) as refused:
        sock.connect(("169.254.169.254", 80))
    assert refused.value.errno == errno.ENETUNREACH


def test_names_are_refused_before_any_query():
    calls = []
    guarded = local_names_only(lambda host, *args, **kwargs: calls.append(host) or [])
    with pytest.raises(socket.gaierror):
        guarded("pypi.org", 443)
    with pytest.raises(socket.gaierror):
        guarded(b"metadata.google.internal", 80)
    guarded("localhost", 80)
    guarded("127.0.0.1", 80)
    guarded("169.254.169.254", 80)  # a literal is parsed, not resolved; connecting to it is refused
    assert calls == ["localhost", "127.0.0.1", "169.254.169.254"]


def test_the_session_resolves_no_names():
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("example.com", 443)
    with pytest.raises(socket.gaierror):
        socket.gethostbyname("example.com")


def test_the_session_makes_no_reverse_lookups():
    """A stdlib HTTPServer asks getfqdn for its address when it binds: a PTR query to the resolver,
    off this machine. The session refuses it before any query, and getfqdn keeps the literal."""
    with pytest.raises(socket.herror):
        socket.gethostbyaddr("127.0.0.1")
    assert socket.getfqdn("127.0.0.1") == "127.0.0.1"
    calls = []
    guarded = no_reverse_lookups(lambda address: calls.append(address))
    with pytest.raises(socket.herror):
        guarded("10.0.0.1")
    assert calls == []
