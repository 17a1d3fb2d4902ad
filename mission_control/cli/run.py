"""``mission-control run SERVICE -- CMD ARGS...``: one crontab line instead of ``cmd && curl``.

It reports a start (with a fresh run id), runs the command, and reports its exit status with the
last 10 KiB of its output (stdout and stderr together, in the order they arrived) and how long it
took, all through the client library (:meth:`MissionControl.start`, :meth:`~MissionControl.exit_status`).
Monitoring must never change the job it watches, so:

* the command starts at once: the start is sent from a thread while it runs (the end waits for it,
  so the server sees them in order);
* its output reaches this process's stdout and stderr unchanged as it comes (the tail is a copy);
* each ping is retried on network errors and 429/5xx with growing pauses (0.5, 1, 2... s), each
  attempt limited to what is left: the start for at most ``--ping-budget`` seconds (default
  :data:`PING_BUDGET_S`) from the command's start, and once the command has ended, the start still
  under way and the end together for at most that long again; so a dead server delays the command's
  own end by at most the budget;
* the exit status is the command's own (128 + N if a signal N ended it, 127 if it could not be
  started), whatever became of the pings; pings that were not delivered leave one line on stderr.

URL and token come as for every API command: ``--url``/MC_URL, ``--token``/MC_SERVICE_TOKEN then
MC_ADMIN_TOKEN. Without a token the command still runs (and the line on stderr says why nothing was
reported).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from typing import IO, Any

import click

from mission_control.cli.common import SERVICE_TOKEN_ENV, ApiCommand, api_client

TAIL_BYTES = 10 * 1024  # what the server keeps of a message
PING_BUDGET_S = 10.0  # per ping, retries included
NOT_STARTED = 127  # as a shell answers for a command it cannot run


class Tail:
    """The last ``size`` bytes written to it, from any thread."""

    def __init__(self, size: int = TAIL_BYTES) -> None:
        self.size = size
        self._data = bytearray()
        self._lock = threading.Lock()

    def write(self, chunk: bytes) -> None:
        with self._lock:
            self._data += chunk
            if len(self._data) > 2 * self.size:
                del self._data[: len(self._data) - self.size]

    def text(self) -> str:
        with self._lock:
            data = bytes(self._data[-self.size :])
        # A cut may split a character at the start; drop that fragment, replace anything else.
        return data.decode("utf-8", errors="replace").lstrip("\ufffd")


def _pump(source: IO[bytes], sink: IO[bytes], tail: Tail) -> None:
    """Copy a child's pipe to our own stream as it comes, keeping a copy of the end."""
    while True:
        chunk = source.read1(65536) if hasattr(source, "read1") else source.read(65536)
        if not chunk:
            break
        tail.write(chunk)
        try:
            sink.write(chunk)
            sink.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass  # our own reader went away: the command still runs to its end
    source.close()


def run_command(argv: Sequence[str], tail: Tail) -> tuple[int, str | None]:
    """Run ``argv`` with its output copied to ours and into ``tail``: (exit status, why it could not
    start or None).

    Waits as a shell would: a SIGTERM or SIGHUP sent to this wrapper is passed on to the command
    (handlers set before it starts, so none is lost), and Ctrl-C, which the terminal sends the
    command too, does not stop the waiting, so the command's end is still reported.
    """
    children: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, frame: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous: dict[int, Any] = {}
    main = threading.current_thread() is threading.main_thread()
    try:
        if main:
            for signum in (signal.SIGTERM, signal.SIGHUP):
                previous[signum] = signal.signal(signum, forward)
        try:
            child = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            return NOT_STARTED, f"{argv[0]}: {exc.strerror or exc}"
        children.append(child)
        if main:  # after the start: an ignored signal would stay ignored in the command
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
        assert child.stdout is not None and child.stderr is not None
        pumps = [
            threading.Thread(target=_pump, args=(child.stdout, sys.stdout.buffer, tail), daemon=True),
            threading.Thread(target=_pump, args=(child.stderr, sys.stderr.buffer, tail), daemon=True),
        ]
        for pump in pumps:
            pump.start()
        status = child.wait()
        for pump in pumps:
            pump.join()
        return (128 - status if status < 0 else status), None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _Pinger:
    """The pings of one run; remembers the first failure to report it once."""

    def __init__(self, client: Any, service: str, rid: str, budget_s: float) -> None:
        self.client = client
        self.service = service
        self.rid = rid
        self.budget_s = budget_s
        self.failure: str | None = None

    def start(self) -> None:
        self._send(lambda: self.client.start(self.service, rid=self.rid, retry_for_s=self.budget_s))

    def end(self, status: int, message: str, duration_s: float, budget_s: float) -> None:
        self._send(
            lambda: self.client.exit_status(
                self.service,
                min(status, 255),
                rid=self.rid,
                message=message,
                duration_s=duration_s,
                retry_for_s=budget_s,
            )
        )

    def _send(self, ping: Any) -> None:
        from mission_control.client import MissionControlError

        try:
            ping()
        except MissionControlError as error:
            self.failure = self.failure or f"{error.code}: {error}"
        except Exception as error:  # never let monitoring break the command's own exit status
            self.failure = self.failure or f"{type(error).__name__}: {error}"


@click.command(
    cls=ApiCommand,
    token_env=SERVICE_TOKEN_ENV,
    token_help="This service's token or the admin token",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option(
    "--ping-budget",
    "budget_s",
    type=click.FloatRange(min=0.5, max=300),
    default=PING_BUDGET_S,
    show_default=True,
    metavar="SECONDS",
    help="How long the pings may be retried after the command ended (the start: from its start).",
)
@click.argument("service")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(service: str, command: tuple[str, ...], budget_s: float) -> None:
    """Run COMMAND as a measured run of SERVICE: report its start, then its exit status with the end
    of its output; exit with COMMAND's own status.

    \b
    crontab:  30 2 * * *  mission-control run backup -- /usr/local/bin/backup --full
    """
    argv = list(command[1:] if command and command[0] == "--" else command)
    if not argv:
        raise click.UsageError("give the command after --: mission-control run SERVICE -- CMD ARGS...")
    try:
        client = api_client(timeout_s=5)
    except click.UsageError as error:
        pinger = None
        why = error.format_message()
    else:
        pinger = _Pinger(client, service, str(uuid.uuid4()), budget_s)
        why = None
    starting = threading.Thread(target=pinger.start, daemon=True) if pinger else None
    if starting is not None:
        starting.start()
    began = time.monotonic()
    tail = Tail()
    status, not_started = run_command(argv, tail)
    duration_s = time.monotonic() - began
    if not_started:
        click.echo(f"mission-control run: {not_started}", err=True)
        tail.write(f"mission-control run: {not_started}\n".encode())
    if pinger is not None and starting is not None:
        deadline = time.monotonic() + budget_s
        starting.join(budget_s)  # the server should see the start before the end
        pinger.end(status, tail.text(), duration_s, max(1.0, deadline - time.monotonic()))
        why = pinger.failure
    if why:
        click.echo(f"mission-control run: {service}'s run was not (fully) reported: {why}", err=True)
    click.get_current_context().exit(status)
