from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine

from mission_control.base.clock import FrozenClock
from mission_control.db import migrate
from mission_control.db.engine import make_engine
from mission_control.db.tables import mission_definitions, missions
from mission_control.testing import HttpCall, HttpReply
from tests.conftest import PostgresDatabases
from tests.missions.drivers import DurableDriver, MemoryDriver


class Targets:
    """The suite's fake services: a reply per path, or a list of replies answered in turn."""

    def __init__(self) -> None:
        self.routes: dict[str, Any] = {}

    def __call__(self, call: HttpCall) -> HttpReply:
        path = "/" + call.url.split("/", 3)[3] if call.url.count("/") >= 3 else "/"
        route = self.routes.get(path.split("?")[0])
        if route is None:
            return HttpReply(404, {"error": "no such route"})
        if isinstance(route, list):
            return route.pop(0) if len(route) > 1 else route[0]
        if callable(route):
            return route(call)
        return route


@pytest.fixture
def targets() -> Targets:
    return Targets()


@pytest.fixture
def functions() -> dict[str, Callable[[Any], Any]]:
    return {}


@pytest.fixture(scope="session")
def mission_databases(
    postgres: PostgresDatabases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Engine]]:
    engines: dict[str, Engine] = {}
    for name in ("sqlite", "postgresql"):
        url = (
            f"sqlite:///{tmp_path_factory.mktemp('missions') / 'registry.db'}"
            if name == "sqlite"
            else postgres.create("missions")
        )
        engines[name] = make_engine(url)
        migrate.upgrade(engines[name])
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def driver(
    request: pytest.FixtureRequest, clock: FrozenClock, targets: Targets, functions: dict[str, Any]
) -> Iterator[MemoryDriver | DurableDriver]:
    """The same suite against the testing kit and the durable engine (on SQLite and PostgreSQL)."""
    if request.param == "memory":
        yield MemoryDriver(clock, targets, functions)
        return
    engine = request.getfixturevalue("mission_databases")[request.param]
    durable = DurableDriver(engine, clock, targets, functions)
    try:
        yield durable
    finally:
        durable.close()
        with engine.begin() as conn:
            conn.execute(delete(missions))
            conn.execute(delete(mission_definitions))
