"""The process supervisor of ``mission-control dev``: start a few processes, show their output, stop them all.

What it guarantees (issue 14: closing the terminal left web, worker, beat and Flower running):

* Each process runs in a process group of its own, so the terminal's Ctrl-C and hang-up reach the
  supervisor alone and nothing is signalled twice. On SIGINT, SIGTERM or SIGHUP the supervisor sends
  SIGTERM to each group in the reverse order of their start (the worker finishes its triggers while the
  web still answers them), then SIGKILL to what is still there ``stop_grace_s`` after the first (or at
  once on a second Ctrl-C). Signalling a group reaches what a process started itself (gunicorn's
  workers).
* If the supervisor itself is killed (even by SIGKILL), the kernel sends each process it started SIGTERM
  (``PR_SET_PDEATHSIG``, Linux). A process whose supervisor died before it could ask exits at once.
* If the process that started the supervisor exits (``make`` killed), the supervisor stops everything as
  on SIGTERM. It watches a pidfd of its parent (Linux 5.3+) in ``select``, which is per process (a
  parent *thread* ending does not count, unlike ``PR_SET_PDEATHSIG``).
* Under ``nohup`` (SIGHUP ignored when it starts) SIGHUP stays ignored and the parent is not watched:
  the processes outlive the terminal, as nohup asks.
* When one process exits by itself, the others are stopped and the exit status is 1.
* Idle, it costs nothing: it blocks in ``select`` until a process writes, exits, or a signal arrives.
  Writing to a terminal that has gone (EIO after a hang-up, EPIPE) never stops it from stopping the rest.

It imports only the standard library. ``mission-control dev`` prepares everything, then replaces itself
(``exec``) with this module run as a script (``python -S -P``: no site-packages, no package), given what
to run on a file descriptor (:func:`exec_supervisor`). The process that lives as long as the stack then
holds no click, pydantic or SQLAlchemy: about 12 MB instead of 18 (or 64 for honcho's).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, BinaryIO, NoReturn

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_GRACE_S = 10.0
# After SIGKILL only zombies can remain (an init that does not reap them): not waited for longer than this.
KILLED_GONE_S = 2.0


def pdeathsig_setter() -> Callable[[int], bool] | None:
    """``prctl(PR_SET_PDEATHSIG, sig)`` as a callable safe between fork and exec; None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.restype = ctypes.c_int
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return lambda sig: bool(prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0)


class StopSignals:
    """Records the first stop request (SIGINT, SIGTERM, SIGHUP) and wakes a ``select`` on ``wake_fd``.

    A second Ctrl-C (SIGINT) while stopping asks for the processes to be killed at once.

    A context manager: the previous handlers (and wake-up fd) are back when it exits. Under nohup
    (SIGHUP ignored on entry) SIGHUP stays ignored. SIGCHLD only wakes the ``select``.
    """

    def __init__(self, parent: int | None = None) -> None:
        self.received: int | None = None
        self.again = False  # Ctrl-C again while stopping: kill now
        self.nohup = signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        # The process that started us, read first (before it can die unseen), or handed over by the
        # image that read it before exec.
        self.parent = os.getppid() if parent is None else parent
        self.wake_fd, self._wake_w = os.pipe()
        self._previous: dict[int, Any] = {}
        self._previous_wakeup = -1

    def watched(self) -> tuple[signal.Signals, ...]:
        stops = (signal.SIGINT, signal.SIGTERM) + (() if self.nohup else (signal.SIGHUP,))
        return (*stops, signal.SIGCHLD)

    def __enter__(self) -> StopSignals:
        os.set_blocking(self.wake_fd, False)
        os.set_blocking(self._wake_w, False)
        self._previous_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in self.watched():
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._previous_wakeup)
        os.close(self.wake_fd)
        os.close(self._wake_w)

    def _handle(self, signum: int, _frame: Any) -> None:
        if signum == signal.SIGCHLD:
            return
        if self.received is None:
            self.received = signum
        elif signum == signal.SIGINT:
            # Only a second Ctrl-C hurries the stop: tools such as timeout(1) send SIGTERM to the
            # process and to its group, so one request may arrive twice.
            self.again = True

    def request(self, signum: int) -> None:
        """Ask for a stop as if ``signum`` had arrived."""
        self._handle(signum, None)

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_fd, 512):
                pass


class _Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.process: subprocess.Popen[bytes] | None = None
        self.partial = b""
        self.returncode: int | None = None
        self.heard_from = False  # it has written something: it is past its imports
        self.terminated = False  # SIGTERM sent to its group

    def group_alive(self) -> bool:
        """Whether any process of this child's group exists (the group's id is the child's pid)."""
        if self.process is None:
            return False
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


class Supervisor:
    """Runs processes with their output prefixed by name and time, and stops all of them together."""

    def __init__(self, signals: StopSignals, out: BinaryIO | None = None, stop_grace_s: float = STOP_GRACE_S):
        self.signals = signals
        self.out = out if out is not None else sys.stdout.buffer
        self.stop_grace_s = stop_grace_s
        self.out_broken = False
        self.children: list[_Child] = []
        self.selector = selectors.DefaultSelector()
        self.selector.register(signals.wake_fd, selectors.EVENT_READ, None)
        self.width = len("system")
        self.status = 0
        self.stopping_since: float | None = None
        self.last_output = time.monotonic()
        self.set_pdeathsig = pdeathsig_setter()
        if not signals.nohup:
            self._watch_parent()

    def add(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.children.append(_Child(name, argv, env))
        self.width = max(self.width, len(name))

    def say(self, text: str) -> None:
        """Print ``text`` as it is (the banner), if the terminal is still there."""
        self._write(text.encode() + (b"" if text.endswith("\n") else b"\n"))

    def run(
        self, ready: Callable[[], bool], on_ready: Callable[[], None], quiet_s: float, wait_s: float
    ) -> int:
        """Start every process; stop them all when asked or when one exits; the exit status.

        ``on_ready`` is called once ``ready()`` holds, every process has written something and none has
        for ``quiet_s`` (their start-up lines are over), or after ``wait_s`` whatever happens."""
        try:
            for child in self.children:
                if self.signals.received is None:
                    self._start(child)
        except OSError as exc:
            self._line("system", f"could not start {child.name}: {exc}".encode())
            self.status = 1
            self._begin_stop("a process could not start")
        announce_by = time.monotonic() + wait_s
        announced = False
        killed_at: float | None = None
        while True:
            waiting_to_announce = not announced and self.stopping_since is None
            busy = waiting_to_announce or self.stopping_since is not None
            for key, _ in self.selector.select(0.1 if busy else None):
                if key.data is None:
                    self.signals.drain()
                elif key.data == "parent":
                    self.selector.unregister(key.fd)
                    os.close(key.fd)
                    self._line("system", b"the process that started this one has exited")
                    self.signals.request(signal.SIGTERM)
                else:
                    self._read(key.data)
            for child in self.children:
                if child.process is not None and child.returncode is None:
                    child.returncode = child.process.poll()
                    if child.returncode is not None and self.stopping_since is None:
                        self.status = 1
                        self._begin_stop(f"{child.name} exited with status {child.returncode}")
            now = time.monotonic()
            if self.stopping_since is None:
                if self.signals.received is not None:
                    self._begin_stop(signal.Signals(self.signals.received).name)
                elif waiting_to_announce and ((self._settled(quiet_s, now) and ready()) or now > announce_by):
                    on_ready()
                    announced = True
                continue
            self._stop_next()
            if killed_at is None and (self.signals.again or now - self.stopping_since > self.stop_grace_s):
                self._line("system", b"killing what has not stopped")
                self._signal_all(signal.SIGKILL)
                killed_at = now
            if not any(child.group_alive() for child in self.children):
                break
            if killed_at is not None and now - killed_at > KILLED_GONE_S:
                break
        self._drain_output()
        self._line("system", b"stopped")
        if self.out_broken:
            # Nothing may be written at exit either (an interpreter flushing into a dead terminal).
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), self.out.fileno())
        return self.status

    def _settled(self, quiet_s: float, now: float) -> bool:
        return all(child.heard_from for child in self.children) and now - self.last_output >= quiet_s

    # -- processes ------------------------------------------------------------------------------------

    def _start(self, child: _Child) -> None:
        set_pdeathsig = self.set_pdeathsig
        supervisor = os.getpid()

        def in_child() -> None:  # between fork and exec
            if set_pdeathsig is not None:
                set_pdeathsig(signal.SIGTERM)
            if os.getppid() != supervisor:  # it died before we asked: nobody would tell us
                os._exit(1)

        child.process = subprocess.Popen(
            child.argv,
            env=child.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=in_child,
        )
        assert child.process.stdout is not None
        os.set_blocking(child.process.stdout.fileno(), False)
        self.selector.register(child.process.stdout.fileno(), selectors.EVENT_READ, child)
        self._line("system", f"{child.name} started (pid {child.process.pid})".encode())

    def _watch_parent(self) -> None:
        parent = self.signals.parent
        if os.getppid() != parent:  # it exited before we looked
            self.signals.request(signal.SIGTERM)
            return
        if parent <= 1 or not hasattr(os, "pidfd_open"):
            return
        try:
            fd = os.pidfd_open(parent)
        except OSError:
            return
        if os.getppid() != parent:  # the pid may already name another process
            os.close(fd)
            self.signals.request(signal.SIGTERM)
            return
        self.selector.register(fd, selectors.EVENT_READ, "parent")

    def _signal_all(self, sig: int) -> None:
        for child in self.children:
            if child.process is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.process.pid, sig)

    def _begin_stop(self, why: str) -> None:
        self._line("system", f"{why}: stopping everything".encode())
        self.stopping_since = time.monotonic()
        self._stop_next()

    def _stop_next(self) -> None:
        """SIGTERM to the last started process still there, once those after it are gone: the worker
        finishes its triggers while the web they call still answers."""
        for child in reversed(self.children):
            if child.group_alive():
                if not child.terminated and child.process is not None:
                    child.terminated = True
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(child.process.pid, signal.SIGTERM)
                return

    # -- output ---------------------------------------------------------------------------------------

    def _line(self, name: str, line: bytes) -> None:
        stamp = time.strftime("%H:%M:%S").encode()
        self._write(b"%s %s | %s\n" % (stamp, name.ljust(self.width).encode(), line.rstrip(b"\r")))

    def _write(self, data: bytes) -> None:
        if self.out_broken:
            return
        try:
            self.out.write(data)
            self.out.flush()
        except (OSError, ValueError):
            self.out_broken = True  # the terminal has gone (EIO) or the reader left (EPIPE): carry on

    def _read(self, child: _Child) -> None:
        assert child.process is not None and child.process.stdout is not None
        fd = child.process.stdout.fileno()
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # every writer has gone (the child and what it started)
            self.selector.unregister(fd)
            if child.partial:
                self._line(child.name, child.partial)
                child.partial = b""
            return
        self.last_output = time.monotonic()
        child.heard_from = True
        *lines, child.partial = (child.partial + data).split(b"\n")
        for line in lines:
            self._line(child.name, line)

    def _drain_output(self) -> None:
        """Print what the stopped processes wrote last (a pipe ends once every writer is gone)."""
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and any(
            isinstance(key.data, _Child) for key in self.selector.get_map().values()
        ):
            for key, _ in self.selector.select(0.1):
                if isinstance(key.data, _Child):
                    self._read(key.data)
                elif key.data is None:
                    self.signals.drain()


# --- this module as the supervisor process -------------------------------------------------------------


def exec_supervisor(spec: dict[str, Any]) -> NoReturn:
    """Replace this process with the supervisor, running ``spec`` (see :func:`main`); never returns.

    The pid stays the same, so whoever started ``mission-control dev`` still signals the supervisor.
    ``spec`` (environments included, so secrets) goes through an unlinked temporary file, never argv.
    """
    import tempfile

    with tempfile.TemporaryFile() as handle:
        handle.write(json.dumps(spec).encode())
        handle.flush()
        fd = os.dup(handle.fileno())  # the file lives on as long as this descriptor
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    sys.stdout.flush()
    sys.stderr.flush()
    script = os.path.abspath(__file__)
    os.execv(sys.executable, [sys.executable, "-S", "-P", script, "--spec-fd", str(fd)])


def main(argv: list[str]) -> int:
    """``--spec-fd N``: read the spec from file descriptor N and supervise it; the exit status.

    The spec: ``children`` (each ``name``, ``argv``, ``env``), ``parent`` (the pid that started the
    command), ``starting`` and ``banner`` (printed at start and once ready), ``ready`` (host and port that
    accept connections once the web is up), ``quiet_s`` and ``wait_s`` (see :meth:`Supervisor.run`).
    """
    fd = int(argv[argv.index("--spec-fd") + 1])
    with os.fdopen(fd, "rb") as handle:
        spec = json.loads(handle.read())
    host, port = spec["ready"]
    with StopSignals(parent=spec["parent"]) as signals:
        supervisor = Supervisor(signals)
        for child in spec["children"]:
            supervisor.add(child["name"], child["argv"], child["env"])
        supervisor.say(spec["starting"])
        return supervisor.run(
            ready=lambda: accepts(host, port),
            on_ready=lambda: supervisor.say(spec["banner"]),
            quiet_s=spec["quiet_s"],
            wait_s=spec["wait_s"],
        )


def accepts(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
