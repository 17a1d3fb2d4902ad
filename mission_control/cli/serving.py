"""The gunicorn worker of ``mission-control web``: ``gthread`` that reads each request before a thread.

Why it exists (security issue 13, item 4). Stock ``gthread`` hands a connection to its thread pool as
soon as the first byte arrives; the thread then blocks in the parser until the whole head has come,
and in the app until the declared body has. Sixteen clients sending a byte now and then therefore hold
all sixteen threads of a worker, and heartbeats from everyone else wait forever (no token needed).

gunicorn has no read timeout for ``gthread`` (``timeout`` only restarts a worker whose main loop stops,
and the main loop keeps running here); its ``sync`` and ``gthread`` workers assume a buffering proxy in
front, which a Heroku-style router or a plain TCP load balancer is not. ``gevent``/``eventlet`` would
not hold a thread per connection, but need psycopg2 patched for cooperative I/O and monkey-patch the
whole process (Celery clients, SQLAlchemy pools). So this is hand-written, and it guarantees:

* No thread is given to a connection until its request head (up to ``\\r\\n\\r\\n``) *and* its body (by
  Content-Length, or to the last chunk of a chunked one) are in memory. Reading happens in the worker's
  selector loop, a non-blocking ``recv`` per readable event, for new and keep-alive connections alike.
* The head must arrive within ``read_timeout_s`` of the connection (or of a keep-alive connection's
  first new byte), the body within ``read_timeout_s`` of the head; otherwise the connection is closed
  (408 if it had sent something). An idle new connection is closed too (stock gthread keeps it).
* Memory is bounded: a head beyond ``max_head_bytes`` (at most gunicorn's own limit from
  limit_request_line/fields/field_size) is answered 431 and closed; a body is buffered up to
  ``max_body_bytes`` per request and ``max_buffered_bytes`` per worker. A request beyond those is handed
  to a thread with what has arrived, and that thread's reads of the rest still end at the deadline
  (then the body ends early: the app answers 400 and the connection is closed).
* The parser gets exactly the bytes of one request; it never reads the socket for a request that was
  buffered whole (a read past them is end of input, so a body without Content-Length is empty, as
  HTTP/1.1 says). Bytes of a pipelined next request close the connection after the answer (the client
  retries on a new one). ``Expect: 100-continue`` is answered here, and removed from the head so gunicorn
  does not answer it twice.

With TLS terminated by gunicorn itself (``certfile``) the worker behaves like stock ``gthread``: the
handshake needs blocking I/O. Mission Control is meant to sit behind a TLS-terminating proxy.
"""

from __future__ import annotations

import contextlib
import errno
import re
import selectors
import socket
import time
from concurrent import futures
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn.workers.gthread import TConn, ThreadWorker

READ_CHUNK = 65536
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
MAX_BUFFERED_BYTES = 64 * 1024 * 1024

_HEX = re.compile(rb"[0-9A-Fa-f]+")
_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_BAD_FRAMING = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
MAX_TRAILER_BYTES = 8192
# Outcomes of scanning a chunked body: not finished yet, or framing gunicorn will refuse anyway.
_MORE = -1
_INVALID = -2


class _DeadlineSocket:
    """What the parser reads through: nothing past a request buffered whole, else until a deadline.

    Only ``recv`` is used by gunicorn's ``SocketUnreader``; answers are written to the real socket.
    """

    def __init__(self, conn: BufferedConn) -> None:
        self.conn = conn

    def recv(self, size: int) -> bytes:
        conn = self.conn
        if conn.complete:
            return b""  # the request is all in the parser's buffer: more is the next one's
        remaining = conn.deadline - time.monotonic()
        if remaining <= 0:
            conn.must_close = True
            return b""  # as if the client stopped sending: the body ends short, the app answers 400
        conn.sock.settimeout(remaining)
        try:
            return bytes(conn.sock.recv(size))
        except TimeoutError:
            conn.must_close = True
            return b""
        finally:
            conn.sock.settimeout(None)


class BufferedConn(TConn):  # type: ignore[misc]
    """A connection and the request being read into memory for it."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.data = bytearray()
        self.deadline = 0.0
        self.head_end = -1  # index just past the head's \r\n\r\n, once found
        self.scanned = 0  # the head search resumes here (each byte is looked at about once)
        self.body_length: int | None = None  # Content-Length; None: chunked or no body
        self.chunked = False
        self.chunk_pos = 0  # where the next chunk-size line starts
        self.request_end = -1  # index just past the request, once known
        self.complete = False  # the parser's buffer holds the whole request
        self.must_close = False  # close after the answer (pipelined bytes, a body cut short)
        self.reading = False
        self.started = 0.0  # time.monotonic() when this request began to be read

    def start(self, read_timeout_s: float) -> None:
        self.data = bytearray()
        self.started = time.monotonic()
        self.deadline = self.started + read_timeout_s
        self.head_end = self.request_end = -1
        self.scanned = 0
        self.body_length = None
        self.chunked = self.complete = self.must_close = False
        self.reading = True


class BufferingThreadWorker(ThreadWorker):  # type: ignore[misc]
    """``gthread`` whose selector loop reads whole requests before the thread pool sees them."""

    read_timeout_s: float = 10.0
    # At the connection limit, a connection is evicted only once it has been reading this long, so a
    # newcomer has that long to send its request (a client descheduled between connect and send on a
    # busy machine was otherwise the next one out while slow clients kept arriving).
    eviction_grace_s: float = 0.5
    max_head_bytes: int = MAX_HEAD_BYTES
    max_body_bytes: int = MAX_BODY_BYTES
    max_buffered_bytes: int = MAX_BUFFERED_BYTES

    @classmethod
    def configured(
        cls,
        *,
        read_timeout_s: float,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_buffered_bytes: int = MAX_BUFFERED_BYTES,
    ) -> type[BufferingThreadWorker]:
        """A subclass with these limits (gunicorn takes a worker class, not its arguments)."""
        return type(
            cls.__name__,
            (cls,),
            {
                "__module__": cls.__module__,
                "read_timeout_s": read_timeout_s,
                "max_body_bytes": max_body_bytes,
                "max_buffered_bytes": max_buffered_bytes,
            },
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading: set[BufferedConn] = set()
        self._buffered = 0
        cfg = self.cfg
        field_size = cfg.limit_request_field_size if cfg.limit_request_field_size > 0 else 8190
        fields = cfg.limit_request_fields if 0 < cfg.limit_request_fields <= 32768 else 32768
        line = cfg.limit_request_line if 0 < cfg.limit_request_line < 8190 else 8190
        self._max_head = min(self.max_head_bytes, line + 2 + fields * (field_size + 2) + 4)
        self._passthrough = bool(cfg.is_ssl)

    def run(self) -> None:
        """gthread's main loop, except that a worker at its connection limit keeps reading.

        Stock gthread stops polling altogether at ``worker_connections`` and only waits for a request
        to finish. Connections still being read count toward that limit, so a thousand slow clients
        froze the worker (nothing read, nothing accepted) until their deadlines, over and over. Here
        the listeners leave the selector instead, every other socket keeps being served, and the
        connection that has been reading longest is closed so that a newcomer can be accepted, once it
        has been reading ``eviction_grace_s`` (until then the loop waits for that, or for any event).
        """
        if self._passthrough:
            return super().run()  # type: ignore[no-any-return]
        listeners = []
        for sock in self.sockets:
            sock.setblocking(False)
            # Captured once: during a graceful shutdown the listener's name may be gone.
            listeners.append((sock, partial(self.accept, sock.getsockname())))
        accepting = False
        while self.alive:
            self.notify()
            full = self.nr_conns >= self.worker_connections
            wait_s = 1.0
            if full and self._reading:
                oldest = min(self._reading, key=lambda c: c.started)
                age = time.monotonic() - oldest.started
                if age >= self.eviction_grace_s:
                    self._drop(oldest, _TIMEOUT if oldest.data else None)
                    full = self.nr_conns >= self.worker_connections
                else:
                    wait_s = self.eviction_grace_s - age
            if full == accepting:
                with self._lock:
                    for sock, acceptor in listeners:
                        if full:
                            self.poller.unregister(sock)
                        else:
                            self.poller.register(sock, selectors.EVENT_READ, acceptor)
                accepting = not full
            for key, _ in self.poller.select(wait_s):
                key.data(key.fileobj)
            result = futures.wait(self.futures, timeout=0, return_when=futures.FIRST_COMPLETED)
            for future in result.done:
                self.futures.remove(future)
            if not self.is_parent_alive():
                break
            self.murder_keepalived()
        self.tpool.shutdown(False)
        self.poller.close()
        for sock in self.sockets:
            sock.close()
        futures.wait(self.futures, timeout=self.cfg.graceful_timeout)
        return None

    # --- connections in the selector ---------------------------------------------------------------

    def accept(self, server: Any, listener: socket.socket) -> None:
        if self._passthrough:
            return super().accept(server, listener)  # type: ignore[no-any-return]
        try:
            sock, client = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return None
        conn = BufferedConn(self.cfg, sock, client, server)
        conn.start(self.read_timeout_s)
        self.nr_conns += 1
        self._reading.add(conn)
        with self._lock:
            self.poller.register(
                conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn)
            )
        return None

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        if not isinstance(conn, BufferedConn):
            return super().on_client_socket_readable(conn, client)  # type: ignore[no-any-return]
        if not conn.reading:
            with self._lock:  # a keep-alive connection's next request begins
                try:
                    self._keep.remove(conn)
                except ValueError:
                    return  # closed by murder_keepalived meanwhile
            conn.start(self.read_timeout_s)
            self._reading.add(conn)
        try:
            data = conn.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return None
        conn.data += data
        self._buffered += len(data)
        self._advance(conn)
        return None

    def _advance(self, conn: BufferedConn) -> None:
        """Look at what has arrived: wait for more, hand the request to a thread, or refuse it."""
        if conn.head_end < 0:
            end = conn.data.find(b"\r\n\r\n", max(0, conn.scanned - 3))
            conn.scanned = len(conn.data)
            if end < 0:
                if len(conn.data) > self._max_head:
                    self._drop(conn, _TOO_LARGE)
                elif self._buffered > self.max_buffered_bytes:
                    self._dispatch(conn)  # short of memory: a thread reads the rest, within the deadline
                return
            if end + 4 > self._max_head:
                self._drop(conn, _TOO_LARGE)
                return
            conn.head_end = end + 4
            framing = self._frame(conn)
            if framing == "refuse":
                self._drop(conn, _BAD_FRAMING)
                return
            if framing == "none":
                self._dispatch(conn)  # no body: the request is complete
                return
            conn.deadline = time.monotonic() + self.read_timeout_s
        if conn.body_length is not None:
            if len(conn.data) >= conn.head_end + conn.body_length:
                conn.request_end = conn.head_end + conn.body_length
        else:
            end = _chunked_end(conn)
            if end == _INVALID:
                self._drop(conn, _BAD_FRAMING)
                return
            if end >= 0:
                conn.request_end = end
        if conn.request_end >= 0:
            self._dispatch(conn)
        elif len(conn.data) - conn.head_end > self.max_body_bytes or self._buffered > self.max_buffered_bytes:
            self._dispatch(conn)  # too large to hold: a thread reads the rest, within the deadline

    def _frame(self, conn: BufferedConn) -> str:
        """From the head: ``"body"`` (and how it ends), ``"none"``, or ``"refuse"`` for framing two
        parties could read differently; drops an Expect after answering it.

        Refused, as RFC 9112 section 6.1 allows, with 400 and a closed connection: Transfer-Encoding
        together with Content-Length, a coding list that does not end in ``chunked`` (gunicorn would
        read ``identity`` + Content-Length by the length, a proxy in front perhaps not: a desync), and
        a Content-Length that is repeated or not a plain number.
        """
        head = bytes(conn.data[: conn.head_end])
        lines = head[:-4].split(b"\r\n")
        lengths: list[bytes] = []
        codings: list[bytes] = []
        expect = -1
        for i, line in enumerate(lines[1:], start=1):
            name, sep, value = line.partition(b":")
            if not sep:
                continue
            name = name.strip().lower()
            if name == b"content-length":
                lengths.append(value.strip())
            elif name == b"transfer-encoding":
                codings += [c.strip().lower() for c in value.split(b",")]
            elif name == b"expect" and value.strip().lower() == b"100-continue":
                expect = i
        if codings:
            if lengths or codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
                return "refuse"
            conn.chunked = True
            conn.chunk_pos = conn.head_end
        elif lengths:
            if len(lengths) != 1 or not (lengths[0].isdigit() and len(lengths[0]) <= 18):
                return "refuse"
            conn.body_length = int(lengths[0])
            if conn.body_length == 0:
                conn.request_end = conn.head_end
                return "none"
        else:
            conn.request_end = conn.head_end  # HTTP/1.1: no body without Content-Length or chunked
            return "none"
        if expect > 0 and lines[0].endswith(b"HTTP/1.1"):
            with contextlib.suppress(OSError):
                conn.sock.send(_CONTINUE)
            del lines[expect]
            new_head = b"\r\n".join(lines) + b"\r\n\r\n"
            conn.data[: conn.head_end] = new_head
            shift = len(new_head) - conn.head_end
            conn.chunk_pos += shift
            conn.head_end += shift
            self._buffered += shift
        return "body"

    def _dispatch(self, conn: BufferedConn) -> None:
        """Give the connection to the thread pool with a parser over what was read."""
        self._forget(conn)
        with self._lock:
            self.poller.unregister(conn.sock)
        if conn.request_end >= 0:
            conn.complete = True
            if len(conn.data) > conn.request_end:
                conn.must_close = True  # pipelined: answered after this one is, on a new connection
                del conn.data[conn.request_end :]
        conn.initialized = True
        conn.sock.setblocking(True)
        conn.parser = http.RequestParser(self.cfg, _DeadlineSocket(conn), conn.client)
        conn.parser.unreader.unread(bytes(conn.data))
        conn.data = bytearray()
        future = self.tpool.submit(self.handle, conn)
        self._wrap_future(future, conn)

    def _forget(self, conn: BufferedConn) -> None:
        if conn.reading:
            conn.reading = False
            self._reading.discard(conn)
            self._buffered -= len(conn.data)

    def _drop(self, conn: BufferedConn, answer: bytes | None = None) -> None:
        """Close a connection still being read (answering ``answer`` if the socket takes it now)."""
        self._forget(conn)
        with self._lock, contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        if answer is not None:
            with contextlib.suppress(OSError):
                conn.sock.send(answer)
        self.nr_conns -= 1
        conn.close()

    def murder_keepalived(self) -> None:
        super().murder_keepalived()
        now = time.monotonic()
        for conn in [c for c in self._reading if c.deadline <= now]:
            self.log.debug("Closing %s: request not read within %s s", conn.client, self.read_timeout_s)
            self._drop(conn, _TIMEOUT if conn.data else None)

    # --- in a thread --------------------------------------------------------------------------------

    def handle(self, conn: Any) -> tuple[bool, Any]:
        keepalive, conn = super().handle(conn)
        if isinstance(conn, BufferedConn):
            if conn.must_close or not conn.complete:
                keepalive = False
            conn.parser = None  # a new one, over the next request's bytes
        return keepalive, conn


def _chunked_end(conn: BufferedConn) -> int:
    """Where a chunked body ends (index past its trailer section), _MORE, or _INVALID framing."""
    data = conn.data
    pos = conn.chunk_pos
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return _INVALID if len(data) - pos > 4096 else _MORE
        size_text = bytes(data[pos:eol]).split(b";", 1)[0].rstrip(b" \t")
        if not _HEX.fullmatch(size_text):
            return _INVALID
        size = int(size_text, 16)
        if size == 0:
            if data[eol + 2 : eol + 4] == b"\r\n":
                return eol + 4
            end = data.find(b"\r\n\r\n", eol, eol + MAX_TRAILER_BYTES)
            if end < 0:
                return _INVALID if len(data) - eol > MAX_TRAILER_BYTES else _MORE
            return end + 4
        next_pos = eol + 2 + size + 2
        if next_pos > len(data):
            return _MORE
        conn.chunk_pos = pos = next_pos
