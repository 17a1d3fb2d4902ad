"""Slow clients against the real server (security issue 13, item 4).

Hundreds of connections that trickle their request head a byte at a time, or send the head and then
trickle the body they declared, must not stop heartbeats and API calls from other clients; the server
closes them once the read deadline (WEB_READ_TIMEOUT) passes. Stock gunicorn ``gthread`` gives each of
them a thread that blocks in the parser, so 16 of them stop a worker.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conftest import PostgresDatabases, RunningWeb, serving, wait_until

pytestmark = pytest.mark.slow

READ_TIMEOUT_S = 3
SLOW_HEADS = 160
SLOW_BODIES = 30
SLOW_CHUNKED = 10


@pytest.fixture(scope="module")
def web(postgres: PostgresDatabases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    with serving(postgres, tmp_path_factory, "slow", WEB_READ_TIMEOUT=str(READ_TIMEOUT_S)) as server:
        yield server


@dataclass
class SlowConnection:
    """One client that sends ``prefix`` at once and then ``trickle`` one byte per round."""

    sock: socket.socket
    trickle: bytes
    opened_at: float
    sent: int = 0
    closed_by_server_at: float | None = None

    def step(self) -> None:
        """Notice whether the server closed us (EOF, reset, or an error answer); else send a byte."""
        if self.closed_by_server_at is not None:
            return
        try:
            if self.sock.recv(4096, socket.MSG_DONTWAIT) is not None:  # b"" or a 408/4xx: closed
                self.closed_by_server_at = time.monotonic()
                return
        except BlockingIOError:
            pass
        except OSError:
            self.closed_by_server_at = time.monotonic()
            return
        try:
            self.sock.send(self.trickle[self.sent % len(self.trickle) : self.sent % len(self.trickle) + 1])
            self.sent += 1
        except BlockingIOError:
            pass
        except OSError:
            self.closed_by_server_at = time.monotonic()


@dataclass
class Slowloris:
    """Keeps ``count`` slow connections open (replacing those the server closes) until stopped."""

    port: int
    service_token: str
    heads: int = SLOW_HEADS
    bodies: int = SLOW_BODIES
    chunked: int = SLOW_CHUNKED
    opened: list[SlowConnection] = field(default_factory=list)
    replacing: bool = True
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def kinds(self) -> list[tuple[bytes, bytes]]:
        head = (
            b"POST /api/v1/heartbeats/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + self.service_token.encode() + b"\r\nContent-Type: text/plain\r\n"
        )
        slow_head = (b"", head + b"X-Padding: " + b"a" * 4000 + b"\r\n\r\n")
        slow_body = (head + b"Content-Length: 100000\r\n\r\n", b"x" * 100_000)
        slow_chunks = (head + b"Transfer-Encoding: chunked\r\n\r\n", b"1\r\nx\r\n" * 10_000)
        return [slow_head] * self.heads + [slow_body] * self.bodies + [slow_chunks] * self.chunked

    def open(self, prefix: bytes, trickle: bytes) -> SlowConnection:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.setblocking(False)
        if prefix:
            _send_all(sock, prefix)
        connection = SlowConnection(sock, trickle, time.monotonic())
        self.opened.append(connection)
        return connection

    def start(self) -> list[SlowConnection]:
        first = [self.open(prefix, trickle) for prefix, trickle in self.kinds()]
        for connection in first:
            connection.step()  # every one has sent something: stock gthread hands it to a thread
        self._thread = threading.Thread(target=self._run, args=(first,), daemon=True)
        self._thread.start()
        return first

    def _run(self, current: list[SlowConnection]) -> None:
        kinds = self.kinds()
        while not self._stop.wait(0.2):
            for i, connection in enumerate(current):
                connection.step()
                if connection.closed_by_server_at is not None and self.replacing:
                    with contextlib.suppress(OSError):
                        current[i] = self.open(*kinds[i])

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for connection in self.opened:
            connection.sock.close()


def _send_all(sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    deadline = time.monotonic() + 5
    while view and time.monotonic() < deadline:
        try:
            view = view[sock.send(view) :]
        except BlockingIOError:
            time.sleep(0.01)


def service_token(web: RunningWeb, name: str) -> str:
    auth = {"Authorization": f"Bearer {web.token}"}
    put = requests.put(f"{web.url}/api/v1/services/{name}", json={"interval_s": 60}, headers=auth, timeout=10)
    assert put.status_code in (200, 201)
    made = requests.post(f"{web.url}/api/v1/services/{name}/tokens", json={}, headers=auth, timeout=10)
    assert made.status_code == 201
    return str(made.json()["token"])


def test_slow_clients_do_not_stop_heartbeats(web: RunningWeb, tmp_path: Path) -> None:
    port = int(web.url.rsplit(":", 1)[1])
    slowloris = Slowloris(port, service_token(web, "slow"))
    token = service_token(web, "busy")
    admin = {"Authorization": f"Bearer {web.token}"}
    try:
        first = slowloris.start()
        assert len(first) == SLOW_HEADS + SLOW_BODIES + SLOW_CHUNKED == 200
        answered: list[int] = []
        deadline = time.monotonic() + 15
        with requests.Session() as keep_alive:
            for i in range(50):
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"only {len(answered)} of 50 heartbeats answered before the deadline"
                try:
                    if i % 5 == 4:
                        response = keep_alive.get(
                            f"{web.url}/api/v1/services", headers=admin, timeout=remaining
                        )
                    elif i % 2:
                        response = keep_alive.post(
                            f"{web.url}/api/v1/heartbeats/busy",
                            headers={"Authorization": f"Bearer {token}"},
                            data=f"beat {i}",
                            timeout=remaining,
                        )
                    else:
                        response = requests.get(
                            f"{web.url}/api/v1/heartbeats/busy", params={"token": token}, timeout=remaining
                        )
                except requests.RequestException as exc:
                    raise AssertionError(
                        f"request {i} failed after {len(answered)} answers: {exc!r}"
                    ) from None
                assert 200 <= response.status_code < 300, response.text
                answered.append(response.status_code)
        assert len(answered) == 50
        # The slow ones are closed by the server once their read deadline passes (head: from the
        # connection; body: from the head), not kept forever.
        slowloris.replacing = False
        wait_until(
            lambda: all(c.closed_by_server_at is not None for c in first),
            3 * READ_TIMEOUT_S + 5,
            "the server to close every slow connection",
            interval_s=0.2,
        )
        beats = requests.get(f"{web.url}/api/v1/services/busy", headers=admin, timeout=10).json()
        assert beats["heartbeat_count"] >= 40
    finally:
        slowloris.stop()
    assert requests.get(f"{web.url}/healthz", timeout=5).status_code == 200
    log = web.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]


def exchange(port: int, data: bytes, wait_s: float = 10) -> bytes:
    """Send ``data`` and read until the server closes the connection (or ``wait_s`` passes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(data)
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
        return received


def test_requests_are_framed_before_a_thread_takes_them(web: RunningWeb) -> None:
    port = int(web.url.rsplit(":", 1)[1])
    token = service_token(web, "framed").encode()
    beat = b"POST /api/v1/heartbeats/framed HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token
    close = b"\r\nConnection: close"
    chunked = exchange(
        port, beat + close + b"\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
    )
    assert chunked.startswith(b"HTTP/1.1 200 ")
    # Expect: 100-continue is answered once, before the body is sent.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(beat + close + b"\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ") and b"100 Continue" not in answer
    # No Content-Length, no Transfer-Encoding: no body (the thread does not wait for one).
    assert exchange(port, beat + close + b"\r\n\r\n").startswith(b"HTTP/1.1 200 ")
    # Two requests in one packet: the first is answered, then the connection closes.
    pipelined = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
    assert pipelined.count(b"HTTP/1.1 200 ") == 1
    # Too large a head: 431 at once; half a head or half a body: 408 at the deadline.
    assert exchange(port, b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n").startswith(
        b"HTTP/1.1 431 "
    )
    assert exchange(port, b"GET /healthz HTTP/1.1\r\n").startswith(b"HTTP/1.1 408 ")
    assert exchange(port, beat + b"\r\nContent-Length: 10\r\n\r\nabc").startswith(b"HTTP/1.1 408 ")
    # A body larger than MC_MAX_REQUEST_BYTES still reaches the app (a heartbeat keeps its start).
    big = requests.post(
        f"{web.url}/api/v1/heartbeats/framed",
        data=b"y" * 3_000_000,
        headers={"Authorization": f"Bearer {token.decode()}"},
        timeout=10,
    )
    assert big.status_code == 200 and big.json()["truncated"] is True
    with requests.Session() as keep_alive:  # and keep-alive connections keep working
        assert [keep_alive.get(f"{web.url}/healthz", timeout=5).status_code for _ in range(3)] == [200] * 3


@pytest.mark.parametrize(
    "framing",
    [
        b"Transfer-Encoding: identity\r\nContent-Length: 30",  # read by length here, by EOF elsewhere
        b"Transfer-Encoding: chunked\r\nContent-Length: 30",
        b"Transfer-Encoding: chunked, identity",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
        b"Content-Length: 30\r\nContent-Length: 30",
        b"Content-Length: +30",
    ],
)
def test_framing_two_parties_could_read_differently_is_refused_and_closed(
    web: RunningWeb, framing: bytes
) -> None:
    """A front proxy and this server must never disagree on where a request ends (request smuggling):
    such a request is answered 400 and its connection closed, so the bytes after it are never read
    as another request."""
    port = int(web.url.rsplit(":", 1)[1])
    smuggled = b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = exchange(port, b"POST /healthz HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n\r\n" + smuggled)
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.count(b"HTTP/1.1 ") == 1, answer[:300]


def test_chunked_trailers_are_bounded(web: RunningWeb) -> None:
    port = int(web.url.rsplit(":", 1)[1])
    head = b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
    answer = exchange(port, head + b"X-T: " + b"t" * 20_000 + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")


@pytest.fixture(scope="module")
def small_web(postgres: PostgresDatabases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    """One worker that holds at most 40 connections."""
    with serving(
        postgres,
        tmp_path_factory,
        "slow_small",
        WEB_READ_TIMEOUT=str(READ_TIMEOUT_S),
        WEB_CONCURRENCY="1",
        WEB_MAX_CONNECTIONS="40",
    ) as server:
        yield server


def test_a_worker_full_of_slow_clients_still_takes_newcomers(small_web: RunningWeb) -> None:
    """At its connection limit stock gthread stops reading and accepting until slow clients reach their
    deadline; here the client that has been reading longest makes room, so a heartbeat is answered
    well before any read deadline passes."""
    port = int(small_web.url.rsplit(":", 1)[1])
    token = service_token(small_web, "crowded")
    slowloris = Slowloris(port, service_token(small_web, "slow"), heads=60, bodies=0, chunked=0)
    try:
        slowloris.start()
        for i in range(10):
            try:
                response = requests.post(
                    f"{small_web.url}/api/v1/heartbeats/crowded",
                    headers={"Authorization": f"Bearer {token}"},
                    data=f"beat {i}",
                    timeout=READ_TIMEOUT_S * 0.8,  # before any slow client's deadline frees a place
                )
            except requests.RequestException as exc:
                raise AssertionError(f"heartbeat {i} not answered: {exc!r}") from None
            assert response.status_code == 200, response.text
    finally:
        slowloris.stop()


def test_a_newcomer_slow_to_send_is_not_evicted_at_the_limit(small_web: RunningWeb) -> None:
    """At the limit the longest-reading connection is evicted to take a newcomer, and slow clients keep
    arriving; a newcomer itself gets ``eviction_grace_s`` (0.5 s) before it can be the one evicted, so
    an honest client that pauses between connect and send (a busy machine deschedules it; here it
    waits 0.3 s on purpose) is answered. Before the grace it was closed without an answer once the
    slow clients had been replaced around it."""
    port = int(small_web.url.rsplit(":", 1)[1])
    token = service_token(small_web, "hesitant")
    request = (
        b"POST /api/v1/heartbeats/hesitant HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 4\r\n\r\nbeat"
    )
    slowloris = Slowloris(port, service_token(small_web, "slow"), heads=60, bodies=0, chunked=0)
    pause = threading.Event()
    try:
        slowloris.start()
        for i in range(5):
            with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT_S) as sock:
                pause.wait(0.3)  # the stimulus: a client that hesitates after connecting
                sock.sendall(request)
                answer = b""
                with contextlib.suppress(TimeoutError):
                    while chunk := sock.recv(65536):
                        answer += chunk
            assert answer.startswith(b"HTTP/1.1 200 "), f"newcomer {i}: {answer[:80]!r}"
    finally:
        slowloris.stop()
