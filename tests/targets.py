"""A real HTTP server that plays the targets the scheduler fires requests at.

The executor's timeouts, retries and size limits only mean something against a real socket: a mock cannot
hold a connection open, trickle bytes or drop a client half way through. Everything here is stdlib so the
server can also run as a separate process (``python -m tests.targets``) that survives, and logs across,
restarts of the system under test.

Routes (any of GET, POST, PUT, PATCH, DELETE; the query string is ignored for routing):

``/ok``                          200 ``{"ok": true}``
``/status/<code>[?retry_after=s]`` that status (200-599), plus ``Retry-After: s`` when asked
``/sequence/<key>/<c1>,<c2>,...`` the n-th request to ``key`` answers the n-th code, then the last forever
``/sleep/<seconds>``             200 after that many (float) seconds
``/never``                       reads the request, never answers, holds the connection until ``stop()``
``/trickle-headers/<n>``         status line and headers one byte per second, then ``n`` body bytes at once
``/trickle-body/<n>``            headers at once (Content-Length n), then the body one byte per second
``/big/<n>``                     200 with an ``n`` byte body; byte ``i`` is ``i % 256``
``/redirect``                    302 to ``/ok``
``/echo``                        200 with the request's method, path, headers and body as JSON
anything else                    404
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, cast
from urllib.parse import parse_qs, urlsplit

#: Seconds between two trickled bytes. Slow enough to defeat a per-read timeout of about a second.
TRICKLE_INTERVAL_S = 1.0
#: How long ``stop()`` waits, in all, for handler threads; a wedged handler must not wedge the test run.
STOP_JOIN_TIMEOUT_S = 5.0
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# One 64 KiB chunk of the /big pattern: because 65536 is a multiple of 256, chunk boundaries never break it,
# so a client can check every byte it got without the server ever holding more than one chunk.
_BIG_CHUNK = bytes(range(256)) * 256
_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True)
class Recorded:
    """One request as the target saw it, so tests can assert on what the executor really sent."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float
    received_at_monotonic: float
    client: tuple[str, int] = ("", 0)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def url(self) -> str:
        """The URL as a receiver rebuilds it: scheme, the Host header and the request target."""
        host = next(value for name, value in self.headers.items() if name.lower() == "host")
        return f"http://{host}{self.path}"

    def signed_by(self, secret: str, now: float) -> bool:
        """Whether Mission Control's signature on this request verifies with ``secret`` at ``now``."""
        from mission_control.client import verify_signature

        return verify_signature(secret, self.method, self.url, self.headers, self.body, now=now)


class _HTTPServer(ThreadingHTTPServer):
    """Tracks every connection and its thread so ``stop()`` can end them instead of leaking them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], targets: TargetServer) -> None:
        self.targets = targets
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"target-{client_address[1]}",
            daemon=True,
        )
        self.targets._track(request, thread)
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.targets._untrack(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients under test hang up mid-response on purpose; only real bugs deserve a traceback.
        if isinstance(sys.exception(), ConnectionError) or self.targets.stopping:
            return
        super().handle_error(request, client_address)


class _ClientGone(Exception):
    """The client hung up or the server is stopping: abandon the response."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mission-control-targets"
    sys_version = ""
    # Headers and body go out in separate writes; with Nagle on, the body waits out the client's delayed ACK.
    disable_nagle_algorithm = True

    @property
    def targets(self) -> TargetServer:
        return cast(_HTTPServer, self.server).targets

    def log_message(self, format: str, *args: Any) -> None:
        """Hundreds of requests per test would drown pytest's output; the recorder is the log."""

    def _handle(self) -> None:
        received_at, received_mono = time.time(), time.monotonic()
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send_json(400, {"error": "malformed request body"})
            return
        self.targets._record(
            Recorded(
                method=self.command,
                path=self.path,
                headers=dict(self.headers.items()),
                body=body,
                received_at=received_at,
                received_at_monotonic=received_mono,
                client=(str(self.client_address[0]), int(self.client_address[1])),
            )
        )
        parts = urlsplit(self.path)
        try:
            for pattern, route in _ROUTES:
                match = pattern.fullmatch(parts.path)
                if match:
                    route(self, match, parts.query, body)
                    return
            self._send_json(404, {"error": "no such target", "path": parts.path})
        except (_ClientGone, ConnectionError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status in _NO_BODY_STATUSES:
            self.end_headers()
            return
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _pause(self, seconds: float | None) -> None:
        """Wait, but give up the moment the server stops or the client hangs up.

        A handler stuck on a dead connection would keep ``stop()`` waiting and, across hundreds of requests,
        pile up threads; so the wait watches both the connection and the server's wake-up socket.
        """
        targets = self.targets
        assert targets._wake_r is not None
        deadline = None if seconds is None else time.monotonic() + seconds
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.connection, selectors.EVENT_READ)
                selector.register(targets._wake_r, selectors.EVENT_READ)
                while not targets.stopping:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return
                    ready = {key.fileobj for key, _ in selector.select(remaining)}
                    if not ready:
                        return
                    if targets._wake_r in ready:
                        break
                    if self._client_gone():
                        raise _ClientGone
                    # The client sent more bytes (pipelining): stop watching it, only the server's stop.
                    selector.unregister(self.connection)
        except (OSError, ValueError) as exc:
            raise _ClientGone from exc
        raise _ClientGone

    def _client_gone(self) -> bool:
        try:
            return self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _write_big(self, n: int) -> None:
        remaining = n
        while remaining > 0:
            if self.targets.stopping:
                raise _ClientGone
            chunk = _BIG_CHUNK[: min(remaining, len(_BIG_CHUNK))]
            self.wfile.write(chunk)
            remaining -= len(chunk)

    def _trickle(self, data: bytes) -> None:
        for index in range(len(data)):
            self.wfile.write(data[index : index + 1])
            if index < len(data) - 1:
                self._pause(TRICKLE_INTERVAL_S)


# --- routes: each answers one request whose body has already been read and recorded -------------------


def _ok(handler: _Handler, match: re.Match[str], query: str, body: bytes) -> None:
    handler._send_json(200, {"ok": True})


def _status(handler: _Handler, match: re.Match[str], query: str, body: bytes) -> None:
    status = int(match[1])
    if not 200 <= status <= 599:
        # A 1xx as a final answer would leave the client waiting for the real one.
        handler._send_json(404, {"error": "status must be 200-599", "status": status})
        return
    headers = {}
    retry_after = parse_qs(query).get("retry_after")
    if retry_after:
        headers["Retry-After"] = retry_after[0]
    handler._send_json(status, {"status": status}, headers)


def _sequence(handler: _Handler, match: re.Match[str], query: str, body: bytes) -> None:
    key, codes = match[1], [int(code) for code in match[2].split(",") if code]
    if not codes or not all(200 <= code <= 599 for code in codes):
        handler._send_json(404, {"error": "codes must be 200-599", "codes": match[2]})
        return
    n = handler.targets._next_in_sequence(key)
    status = codes[min(n, len(codes) - 1)]
    handler._send_json(status, {"status": status, "key": key, "n": n + 1})


def _sleep(handler: _Handler, match: re.Match[str], query: str, body: bytes) -> None:
    seconds = float(match[1])
    handler._pause(seconds)
    handler._send_json(200, {"ok": True, "slept": seconds})


def _never(handler: _Handler, match: re.Match[str], query: str, body: bytes) -> None:
    handler._pause(None)


def _trickle_headers(handler: _Handler, match: re.Match[str], query: str, body: bytes) -> None:
    n = int(match[1])
    head = (
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {n}\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode()
    handler.close_connection = True
    handler._trickle(head)
    handler._write_big(n)


def _trickle_body(handler: _Handler, match: re.Match[str], query: str, body: bytes) -> None:
    n = int(match[1])
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(n))
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler._trickle(b"x" * n)


def _big(handler: _Handler, match: re.Match[str], query: str, body: bytes) -> None:
    n = int(match[1])
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(n))
    handler.end_headers()
    handler._write_big(n)


def _redirect(handler: _Handler, match: re.Match[str], query: str, body: bytes) -> None:
    handler._send_json(302, {"location": "/ok"}, {"Location": "/ok"})


def _echo(handler: _Handler, match: re.Match[str], query: str, body: bytes) -> None:
    handler._send_json(
        200,
        {
            "method": handler.command,
            "path": handler.path,
            "headers": dict(handler.headers.items()),
            "body": body.decode("utf-8", errors="replace"),
        },
    )


_Route = Callable[[_Handler, re.Match[str], str, bytes], None]
_ROUTES: list[tuple[re.Pattern[str], _Route]] = [
    (re.compile(r"/ok"), _ok),
    (re.compile(r"/status/(\d{3})"), _status),
    (re.compile(r"/sequence/(.+)/([\d,]+)"), _sequence),
    (re.compile(r"/sleep/(\d+(?:\.\d*)?|\.\d+)"), _sleep),
    (re.compile(r"/never"), _never),
    (re.compile(r"/trickle-headers/(\d+)"), _trickle_headers),
    (re.compile(r"/trickle-body/(\d+)"), _trickle_body),
    (re.compile(r"/big/(\d+)"), _big),
    (re.compile(r"/redirect"), _redirect),
    (re.compile(r"/echo"), _echo),
]


class TargetServer:
    """The targets, serving from a daemon thread; every request is recorded before it is answered."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, log_path: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.log_path = log_path
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[Recorded] = []
        self._sequences: dict[str, int] = {}
        self._connections: dict[Any, threading.Thread] = {}
        self._stopping = threading.Event()
        self._wake_r: socket.socket | None = None  # readable once stop() begins; created by start()
        self._wake_w: socket.socket | None = None
        self._httpd: _HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._log: IO[str] | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("TargetServer.url is only known after start()")
        return f"http://{self.host}:{self.port}"

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> TargetServer:
        if self._httpd is not None:
            raise RuntimeError("TargetServer already started")
        self._wake_r, self._wake_w = socket.socketpair()
        if self.log_path is not None:
            self._log = self.log_path.open("a", encoding="utf-8")
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = int(self._httpd.server_address[1])
        self._serve_thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="targets", daemon=True
        )
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Stop promptly, even with /never, /sleep or trickle requests in flight."""
        if self._httpd is None or self._stopping.is_set():
            return
        self._stopping.set()
        assert self._wake_r is not None and self._wake_w is not None
        self._wake_w.send(b"x")  # wakes every handler parked in _pause()
        self._httpd.shutdown()  # no new connections get accepted after this returns
        with self._lock:
            connections = dict(self._connections)
        for sock in connections:
            # Idle keep-alive connections sit in readline() on the socket; only a shutdown wakes them.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        deadline = time.monotonic() + STOP_JOIN_TIMEOUT_S
        for thread in [*connections.values(), self._serve_thread]:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        if self._log is not None:
            with self._lock:
                self._log.close()
                self._log = None
        if not any(thread.is_alive() for thread in connections.values()):
            self._wake_r.close()
            self._wake_w.close()

    def __enter__(self) -> TargetServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- what tests read ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path_prefix: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self._requests if r.path.startswith(path_prefix)]

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._connections)

    def wait_for(self, count: int, path_prefix: str = "", timeout_s: float = 10) -> list[Recorded]:
        """Every recorded request under ``path_prefix``, once there are at least ``count`` of them.

        Waits on a condition the recorder signals, so it returns the moment the request lands rather than
        on the next tick of a sleep loop.
        """
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                matching = [r for r in self._requests if r.path.startswith(path_prefix)]
                if len(matching) >= count:
                    return matching
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [f"{r.method} {r.path}" for r in self._requests[-20:]]
                    raise AssertionError(
                        f"timed out after {timeout_s} s waiting for {count} request(s) under "
                        f"{path_prefix or '/'!r}: got {len(matching)}; "
                        f"last {len(seen)} of {len(self._requests)} recorded: {seen}"
                    )
                self._changed.wait(remaining)

    def wait_for_idle(self, timeout_s: float = 10) -> None:
        """Wait until no connection is open, e.g. to prove a client hung up instead of leaking sockets."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self._connections:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout_s} s waiting for connections to close: "
                        f"{len(self._connections)} still open"
                    )
                self._changed.wait(remaining)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._sequences.clear()

    # --- called from handler threads ---------------------------------------------------------------

    def _record(self, request: Recorded) -> None:
        with self._changed:
            self._requests.append(request)
            if self._log is not None:
                line = {
                    "method": request.method,
                    "path": request.path,
                    "headers": request.headers,
                    "body": request.text,
                    "received_at": request.received_at,
                }
                self._log.write(json.dumps(line) + "\n")
                self._log.flush()
            self._changed.notify_all()

    def _next_in_sequence(self, key: str) -> int:
        with self._lock:
            n = self._sequences.get(key, 0)
            self._sequences[key] = n + 1
            return n

    def _track(self, sock: Any, thread: threading.Thread) -> None:
        with self._lock:
            self._connections[sock] = thread

    def _untrack(self, sock: Any) -> None:
        with self._changed:
            self._connections.pop(sock, None)
            self._changed.notify_all()


def read_log(path: Path) -> list[dict[str, Any]]:
    """The requests a server in another process logged, for asserting after the fact."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.targets", description="Serve the test targets.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", type=Path, default=None, help="append one JSON line per request here")
    args = parser.parse_args(argv)

    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with TargetServer(args.host, args.port, args.log) as server:
        print(f"listening on {server.url}", flush=True)
        while not done.wait(0.5):  # a timed wait keeps the main thread responsive to signals
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())


# What ForbiddenServer hands out: a test asserts it never shows up where a user could read it.
SECRET = "TOP-SECRET-7f3a"


class ForbiddenServer:
    """An HTTP server on 127.0.0.2 answering every GET with a JSON document holding :data:`SECRET`."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                body = json.dumps({"secret": SECRET, "type": "object"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.2:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
