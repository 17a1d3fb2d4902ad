"""``mission-control dev`` as a whole: every way it can be stopped stops all of it; a busy port stops it
before anything starts; a trigger is still picked up within a second; housekeeping is quiet at INFO.

Each stack runs in a temporary directory on spare ports, in a session of its own, so a test can find
every process it started (its session's members) and kill them all at the end whatever happened. A stop
test sends the stop the way a user would (Ctrl-C typed into its terminal, the terminal closed, SIGTERM,
kill -9, the process that launched it killed), then waits with a deadline until no process of the stack
is left and its ports can be bound again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy import select as sql_select
from sqlalchemy.engine import make_url

from mission_control.db.tables import attempts, runs
from tests.servers import free_port, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="reads /proc; the stop guarantees are Linux's"
    ),
]

SCRIPT = Path(sys.executable).parent / "mission-control"
MISSION_CONTROL = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "mission_control"]
PG_ADMIN_URL = os.environ.get(
    "MC_TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
READY_S = 90  # start-up imports on a busy two-core machine
GONE_S = 30  # STOP_GRACE_S (10) plus a margin for a loaded machine
BANNER = "Mission Control is running on"


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # from the state on: state ppid pgrp session ...


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"  # a zombie runs nothing and holds no port


def session_members(sid: int) -> list[int]:
    """The live processes of session ``sid``: everything a stack started, however reparented."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and fields[0] != "Z" and int(fields[3]) == sid:
                found.append(int(entry))
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Terminal:
    """A pseudo-terminal the stack runs in as its controlling terminal; what it printed is kept."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.data = bytearray()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)

    def start_reading(self) -> None:
        os.close(self.slave)
        self._reader.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: every process has closed the other side
                    return
                if not chunk:
                    return
                self.data += chunk

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        """Close the terminal, as closing its window does: the kernel hangs it up."""
        self._stop.set()
        self._reader.join(timeout=5)
        with contextlib.suppress(OSError):
            os.close(self.master)


class Stack:
    """One ``mission-control dev`` in its own directory and session, on spare ports."""

    def __init__(self, workdir: Path, *, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.flower_port = free_port()
        while self.flower_port == self.port:
            self.flower_port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MC_", "FLOWER_", "WEB_"))},
            "PORT": str(self.port),
            "FLOWER_PORT": str(self.flower_port),
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.terminal: Terminal | None = None
        self.log_path = workdir / "dev.log"
        self.seen: set[int] = set()  # every process of the stack seen so far

    @property
    def sid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *args: str, terminal: bool = False, launcher: bool = False, nohup: bool = False) -> Stack:
        """Start it: in a terminal of its own, or writing to a file; through a launcher process (the
        parent whose death is tested) or directly; with SIGHUP ignored (as nohup starts it) or not."""
        command = [*MISSION_CONTROL, "dev", *args]
        if launcher:
            command = [
                sys.executable,
                "-c",
                "import subprocess, sys; subprocess.call(sys.argv[1:])",
                *command,
            ]

        def in_child() -> None:
            if terminal:
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the session's controlling terminal
            # Ignored as nohup leaves it, or as a terminal leaves it: the default, whatever the test
            # run itself inherited (a suite started under nohup would otherwise start every stack so).
            signal.signal(signal.SIGHUP, signal.SIG_IGN if nohup else signal.SIG_DFL)

        if terminal:
            self.terminal = Terminal()
            out: int | object = self.terminal.slave
        else:
            out = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=self.workdir,
            env=self.env,
            stdin=self.terminal.slave if self.terminal else subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            preexec_fn=in_child,
        )
        if self.terminal:
            self.terminal.start_reading()
        else:
            out.close()  # type: ignore[attr-defined]
        return self

    def output(self) -> str:
        if self.terminal is not None:
            return self.terminal.data.decode(errors="replace")
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def supervisor(self) -> int:
        """The supervisor's pid: the launched process, or its child when a launcher started it."""
        members = session_members(self.sid)
        for pid in members:
            if "dev_supervisor" in command_line(pid):
                return pid
        raise AssertionError(f"no supervisor among {[command_line(pid) for pid in members]}")

    def wait_ready(self, roles: tuple[str, ...] = ("web", "dev_worker")) -> None:
        """Until the banner is out, the web answers, and a process of each role runs."""

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"mission-control dev exited ({self.process.returncode}):\n{self.output()}"
                )
            if BANNER not in self.output():
                return False
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code != 200:
                    return False
            except requests.RequestException:
                return False
            lines = [command_line(pid) for pid in session_members(self.sid)]
            return all(any(role in line for line in lines) for role in roles)

        wait_until(ready, READY_S, "mission-control dev to be ready", interval_s=0.2)
        self.seen.update(session_members(self.sid))

    def assert_all_gone(self, ports: tuple[int, ...] | None = None) -> None:
        """Every process of the stack ends, and its ports can be bound again, within GONE_S."""
        ports = (self.port,) if ports is None else ports
        assert len(self.seen) >= 4, f"the stack was not all there: {[command_line(p) for p in self.seen]}"

        def gone() -> bool:
            return (
                not any(alive(pid) for pid in self.seen)
                and not session_members(self.sid)
                and all(port_free(port) for port in ports)
            )

        try:
            wait_until(gone, GONE_S, "every process of the stack to end and its ports to be free")
        except AssertionError:
            left = [command_line(pid) for pid in {*self.seen, *session_members(self.sid)} if alive(pid)]
            raise AssertionError(f"still running: {left}\n--- output ---\n{self.output()[-4000:]}") from None

    def kill_everything(self) -> None:
        """Whatever is left of it, killed (a test's cleanup, whatever happened)."""
        if self.process is not None:
            for pid in {*self.seen, *session_members(self.sid)}:
                if alive(pid):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        if self.terminal is not None:
            self.terminal.close()


@pytest.fixture
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Stack]]:
    """Makes stacks (not started); every one is killed at the end of the test, whatever happened."""
    made: list[Stack] = []

    def make(env: dict[str, str] | None = None) -> Stack:
        stack = Stack(tmp_path_factory.mktemp("dev"), env=env)
        made.append(stack)
        return stack

    try:
        yield make
    finally:
        for stack in made:
            stack.kill_everything()


# --- every way it stops ---------------------------------------------------------------------------------


def test_ctrl_c_in_its_terminal_stops_every_process(stacks: Callable[..., Stack]) -> None:
    stack = stacks().start(terminal=True)
    stack.wait_ready()
    assert stack.terminal is not None
    stack.terminal.type(b"\x03")  # the terminal sends SIGINT to its foreground process group
    stack.assert_all_gone()
    assert "SIGINT: stopping everything" in stack.output()


def test_closing_its_terminal_stops_every_process_flower_included(
    stacks: Callable[..., Stack], private_redis: str
) -> None:
    stack = stacks(env={"MC_BROKER_URL": private_redis}).start("--flower", terminal=True)
    stack.wait_ready(roles=("web", "dev_worker", "flower"))
    assert stack.terminal is not None
    stack.terminal.close()  # a hang-up: SIGHUP, and every later write to the terminal fails (EIO)
    stack.assert_all_gone(ports=(stack.port, stack.flower_port))


def test_sigterm_stops_every_process(stacks: Callable[..., Stack]) -> None:
    stack = stacks().start()
    stack.wait_ready()
    os.kill(stack.supervisor(), signal.SIGTERM)
    stack.assert_all_gone()
    assert stack.process is not None and stack.process.wait(timeout=5) == 0


def test_kill_9_of_the_supervisor_stops_every_process(stacks: Callable[..., Stack]) -> None:
    stack = stacks().start()
    stack.wait_ready()
    os.kill(stack.supervisor(), signal.SIGKILL)  # nothing of it runs again: the kernel tells the rest
    stack.assert_all_gone()


def test_kill_9_of_the_process_that_launched_it_stops_every_process(stacks: Callable[..., Stack]) -> None:
    stack = stacks().start(launcher=True)  # as make launches it
    stack.wait_ready()
    supervisor = stack.supervisor()
    assert supervisor != stack.sid
    os.kill(stack.sid, signal.SIGKILL)
    stack.assert_all_gone()
    assert "the process that started this one has exited" in stack.output()


def test_under_nohup_a_hangup_leaves_it_running_and_sigterm_still_stops_it(
    stacks: Callable[..., Stack],
) -> None:
    stack = stacks().start(nohup=True)
    stack.wait_ready()
    supervisor = stack.supervisor()
    os.kill(supervisor, signal.SIGHUP)  # ignored, as nohup asks
    os.kill(supervisor, signal.SIGTERM)  # so this is the request that stops it
    stack.assert_all_gone()
    output = stack.output()
    assert "SIGTERM: stopping everything" in output and "SIGHUP" not in output


# --- a busy port ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def listening(port: int) -> Iterator[None]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield


def _refused(stack: Stack, *args: str) -> str:
    """Run ``mission-control dev`` expecting a refusal: its whole output, after checking it started
    nothing (no state written, no database made, no process left in its session)."""
    result = subprocess.run(
        [*MISSION_CONTROL, "dev", *args],
        cwd=stack.workdir,
        env=stack.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        start_new_session=True,
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 1, output
    assert not (stack.workdir / "mission-control.db").exists(), output
    assert not (stack.workdir / ".mission-control").exists(), output
    return output


def test_a_busy_port_stops_it_at_once_with_one_line_naming_port_and_variable(
    stacks: Callable[..., Stack],
) -> None:
    stack = stacks()
    with listening(stack.port):
        output = _refused(stack)
    match = re.fullmatch(
        rf"Error: port {stack.port} is in use \(another Mission Control\?\); set PORT=(\d+) to use another\n",
        output,
    )
    assert match, output
    assert int(match[1]) != stack.port


def test_a_busy_port_given_with_the_option_names_the_option(stacks: Callable[..., Stack]) -> None:
    stack = stacks()
    port = free_port()
    with listening(port):
        output = _refused(stack, "--port", str(port))
    assert re.fullmatch(
        rf"Error: port {port} is in use \(another Mission Control\?\); pass --port \d+ to use another\n",
        output,
    ), output


def test_a_busy_flower_port_names_flower_port(stacks: Callable[..., Stack]) -> None:
    # The broker is never contacted: the ports are checked before anything starts.
    stack = stacks(env={"MC_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"})
    with listening(stack.flower_port):
        output = _refused(stack, "--flower")
    assert re.fullmatch(
        rf"Error: Flower's port {stack.flower_port} is in use \(another Mission Control\?\); "
        r"set FLOWER_PORT=\d+ to use another\n",
        output,
    ), output


# --- a missing PostgreSQL database ------------------------------------------------------------------------


class PgAdmin:
    """Administrative SQL on the test server; what a test creates (or has created) is dropped after it."""

    def __init__(self) -> None:
        self.engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self.databases: list[str] = []
        self.roles: list[str] = []

    def create_role(self, name: str, options: str) -> None:
        self.roles.append(name)
        with self.engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE ROLE "{name}" {options}')

    def drop_afterwards(self, database: str) -> None:
        self.databases.append(database)

    def exists(self, database: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": database})
            return found.first() is not None

    def clean_up(self) -> None:
        with self.engine.connect() as conn:
            for name in self.databases:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for name in self.roles:
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')
        self.engine.dispose()


@pytest.fixture
def pg_admin() -> Iterator[PgAdmin]:
    admin = PgAdmin()
    try:
        yield admin
    finally:
        admin.clean_up()


def test_a_missing_postgresql_database_is_created(stacks: Callable[..., Stack], pg_admin: PgAdmin) -> None:
    name = f"mc_test_{os.getpid()}_devcreate_{secrets.token_hex(3)}"
    pg_admin.drop_afterwards(name)
    assert not pg_admin.exists(name)
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    stack = stacks(env={"MC_DATABASE_URL": url}).start()
    stack.wait_ready()
    assert f"created the database {make_url(url).render_as_string(hide_password=True)}" in stack.output()
    registry = create_engine(url)
    try:
        with registry.connect() as conn:
            assert conn.execute(text("SELECT name FROM jobs")).scalars().all() == ["demo.echo"]
    finally:
        registry.dispose()
    os.kill(stack.supervisor(), signal.SIGTERM)
    stack.assert_all_gone()


def test_a_missing_database_it_may_not_create_is_one_line_saying_how(
    stacks: Callable[..., Stack], pg_admin: PgAdmin
) -> None:
    role = f"mc_test_{os.getpid()}_nocreatedb_{secrets.token_hex(3)}"
    pg_admin.create_role(role, "LOGIN NOCREATEDB")
    name = f"{role}_db"
    pg_admin.drop_afterwards(name)  # in case it were created after all
    url = make_url(PG_ADMIN_URL).set(username=role, database=name)
    stack = stacks(env={"MC_DATABASE_URL": url.render_as_string(hide_password=False)})
    result = subprocess.run(
        [*MISSION_CONTROL, "dev"],
        cwd=stack.workdir,
        env=stack.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 1, output
    assert output.count("\n") == 1 and "Traceback" not in output, output
    assert output.startswith(f'Error: database "{name}" does not exist and could not be created ('), output
    assert output.endswith(f"create it with: createdb -h {url.host} -p {url.port or 5432} -U {role} {name}\n")
    assert not pg_admin.exists(name)


# --- what a running stack does ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("dev-running"))
    try:
        stack.start()
        stack.wait_ready()
        yield stack
    finally:
        stack.kill_everything()


def test_a_trigger_is_picked_up_within_a_second_of_its_slot(running: Stack) -> None:
    """The demo job (every 10 s): its first slot after start-up has its first attempt started within a
    second of the slot, as the registry recorded both."""
    ready_at = datetime.now(UTC)
    registry = create_engine(f"sqlite:///{running.workdir / 'mission-control.db'}")
    query = (
        sql_select(runs.c.scheduled_for, attempts.c.started_at)
        .join(attempts, attempts.c.run_id == runs.c.id)
        .where(attempts.c.number == 1)
        .order_by(runs.c.scheduled_for)
    )
    found: list[tuple[datetime, datetime]] = []

    def first_run_after_start() -> bool:
        with registry.connect() as conn:
            rows = conn.execute(query).all()
        found[:] = [
            (slot.replace(tzinfo=UTC), started.replace(tzinfo=UTC))
            for slot, started in rows
            if slot.replace(tzinfo=UTC) >= ready_at
        ]
        return bool(found)

    try:
        wait_until(first_run_after_start, 30, "a demo run due after start-up to start")
    finally:
        registry.dispose()
    slot, started = found[0]
    assert 0 <= (started - slot).total_seconds() < 1.0, (slot, started)


def test_housekeeping_is_quiet_at_info_unless_it_did_something(running: Stack) -> None:
    """Over several housekeeping periods, with a service that goes late and down meanwhile: the lines
    about real triggers are there, the service's change too, and no line about a housekeeping pass that
    found nothing, nor Celery's received/succeeded/sending lines for housekeeping tasks."""
    url = f"http://127.0.0.1:{running.port}/api/v1/heartbeats/quiet-check?interval_s=0.5&grace_s=0.5"
    token = (running.workdir / ".mission-control" / "dev.env").read_text()
    token = re.search(r"MC_ADMIN_TOKEN=(\S+)", token)[1]  # type: ignore[index]
    answer = requests.post(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert answer.status_code in (200, 201), answer.text
    wait_until(
        lambda: "check_services: " in running.output() and "quiet-check -> down" in running.output(),
        30,
        "the service to be flagged late, then down",
    )
    # Two more demo runs: more than ten seconds of housekeeping periods (1, 5 and 15 s).
    seen = running.output().count("Task mission_control.trigger[")
    wait_until(
        lambda: running.output().count("Task mission_control.trigger[") >= seen + 4, 40, "two triggers"
    )
    lines = running.output().splitlines()
    assert any(re.search(r"run \d+ of demo\.echo: attempt 1 HTTP 200", line) for line in lines)
    celery_lines = re.compile(
        r"Task mission_control\.(check_services|reconcile|repeat_notices|prune_runs)\[|Sending due task"
    )
    assert not [line for line in lines if celery_lines.search(line)]
    # Housekeeping's own lines at INFO are about a change; a pass that found nothing logs at DEBUG.
    summaries = [
        line for line in lines if re.search(r"(check_services|reconcile|repeat_notices|prune_runs): ", line)
    ]
    assert summaries and all(
        "check_services: " in line and "quiet-check -> " in line for line in summaries
    ), summaries


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test's own on a spare port (no test shares one)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: not port_free(port), 10, "redis-server to listen")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
