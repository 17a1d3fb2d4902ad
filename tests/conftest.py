"""Shared fixtures: throwaway PostgreSQL databases, SQLite files, a pinned clock.

Every test session creates its own PostgreSQL databases (``mc_test_<pid>_<label>_<random>``) and drops
them at the end, so tests never touch another database. They live on the server at MC_TEST_PG_ADMIN_URL
(default: the machine's, postgres@127.0.0.1:5432) if it answers, else on a private server the session
starts and deletes (tests/servers.py, which prints which one at the session's start).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, delete
from sqlalchemy.engine import Engine, make_url

from mission_control.base.clock import FrozenClock
from mission_control.db import migrate
from mission_control.db.engine import make_engine
from mission_control.db.tables import metadata
from tests.network_guard import local_names_only, loopback_only, no_reverse_lookups
from tests.servers import (
    DEFAULT_PG_ADMIN_URL,
    PG_ADMIN_URL_VARIABLE,
    SessionServers,
    free_port,
    session_postgres_url,
    wait_until,
)
from tests.targets import ForbiddenServer, TargetServer

# The configured server; the session's may be a private one instead (tests/servers.py).
PG_ADMIN_URL = os.environ.get(PG_ADMIN_URL_VARIABLE, DEFAULT_PG_ADMIN_URL)
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SessionServers(PG_ADMIN_URL), "mission-control-session-servers")


@pytest.fixture(scope="session", autouse=True)
def _connect_only_to_this_machine() -> Iterator[None]:
    """Refuse, before any packet, a connection this process makes beyond loopback (see
    tests/network_guard.py): a regression that would reach out fails its test instead."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", loopback_only(socket.socket.connect))
        patch.setattr(
            socket.socket, "connect_ex", loopback_only(socket.socket.connect_ex, returns_errno=True)
        )
        patch.setattr(socket, "getaddrinfo", local_names_only(socket.getaddrinfo))
        patch.setattr(socket, "gethostbyname", local_names_only(socket.gethostbyname))
        patch.setattr(socket, "gethostbyname_ex", local_names_only(socket.gethostbyname_ex))
        patch.setattr(socket, "gethostbyaddr", no_reverse_lookups(socket.gethostbyaddr))
        yield


class PostgresDatabases:
    """Creates and drops throwaway databases on one PostgreSQL server."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        self.created: list[str] = []

    def create(self, label: str) -> str:
        name = f"mc_test_{os.getpid()}_{label}_{secrets.token_hex(3)}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres(pytestconfig: pytest.Config) -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(session_postgres_url(pytestconfig))
    try:
        yield databases
    finally:
        databases.drop_all()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database URL, once per backend per session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'registry.db'}"
    else:
        url = request.getfixturevalue("postgres").create("shared")
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def engine(backend_url: str) -> Iterator[Engine]:
    """An engine on a migrated database whose tables are emptied after each test."""
    engine = make_engine(backend_url)
    try:
        yield engine
    finally:
        with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(delete(table))
        engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'registry.db'}"


class RunningWeb:
    def __init__(
        self, url: str, token: str, process: subprocess.Popen[bytes], database_url: str, log_path: Path
    ) -> None:
        self.url = url
        self.token = token
        self.process = process
        self.database_url = database_url
        self.log_path = log_path


def start_web(database_url: str, log_path: Path, **extra_env: str) -> RunningWeb:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MC_")},
        "MC_DATABASE_URL": database_url,
        "MC_ADMIN_TOKEN": ADMIN_TOKEN,
        "MC_SIGNING_SECRET": SIGNING_SECRET,
        "MC_BROKER_URL": f"sqla+sqlite:///{log_path.parent / 'broker.db'}",
        **extra_env,
    }
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mission_control",
            "web",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"web exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            return requests.get(url + "/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_until(ready, 30, "gunicorn to answer /readyz")
    return RunningWeb(url, ADMIN_TOKEN, process, database_url, log_path)


def stop(process: subprocess.Popen[bytes], timeout_s: float = 10) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)


@contextlib.contextmanager
def serving(
    postgres: PostgresDatabases, tmp_path_factory: pytest.TempPathFactory, name: str, **extra_env: str
) -> Iterator[RunningWeb]:
    """``mission-control web`` over a new migrated PostgreSQL database ``name``, stopped on exit."""
    url = postgres.create(name)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    server = start_web(url, tmp_path_factory.mktemp(name) / "web.log", **extra_env)
    try:
        yield server
    finally:
        stop(server.process)


@pytest.fixture(scope="module")
def web_server(postgres: PostgresDatabases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    """A real gunicorn serving the app on a free port, over its own PostgreSQL database."""
    with serving(postgres, tmp_path_factory, "web") as server:
        yield server


@pytest.fixture
def forbidden() -> Iterator[ForbiddenServer]:
    """A server on 127.0.0.2 that stands for a forbidden address (deny it with MC_OUTBOUND_DENY)."""
    server = ForbiddenServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def target() -> Iterator[TargetServer]:
    """A real local HTTP server playing the targets jobs fire at (fast, failing, slow, silent...)."""
    with TargetServer() as server:
        yield server
