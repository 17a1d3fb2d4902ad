"""Engines configured for how Mission Control uses each database.

The pool sizes come from the process's settings (``MC_DB_POOL_SIZE``, ``MC_DB_MAX_OVERFLOW``, or the
share of ``MC_DB_MAX_CONNECTIONS``: :attr:`Settings.db_pool`) through
:func:`engine_for`; :func:`make_engine` alone uses their defaults and reads no environment.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url

from mission_control.base.config import DEFAULT_DB_MAX_OVERFLOW, DEFAULT_DB_POOL_SIZE, Settings


def engine_for(settings: Settings, **kwargs: Any) -> Engine:
    """The registry's engine with the pool the settings ask for (``kwargs`` as :func:`make_engine`)."""
    return make_engine(
        settings.database_url,
        pool_size=settings.db_pool,
        max_overflow=settings.db_max_overflow,
        **kwargs,
    )


def make_engine(
    url: str,
    *,
    pool_size: int = DEFAULT_DB_POOL_SIZE,
    max_overflow: int = DEFAULT_DB_MAX_OVERFLOW,
    **kwargs: Any,
) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so web, worker and beat can share one file.

    SQLite's driver opens transactions lazily and never for reads, which would let two writers
    interleave a read-then-write; we take the write lock at BEGIN (``BEGIN IMMEDIATE``) instead, the
    documented recipe, so a compare-and-set behaves as it does on PostgreSQL. ``pool_size`` and
    ``max_overflow`` size a PostgreSQL engine's pool; a SQLite engine keeps SQLAlchemy's own.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    # Batch UPDATE executemany (one claim advances up to a thousand jobs) into a few round trips.
    kwargs.setdefault("executemany_mode", "values_plus_batch")
    kwargs.setdefault("pool_recycle", 1800)
    # Threads hold a connection only for one short transaction (never while a request is in flight),
    # so a fixed pool they queue for serves hundreds of threads. Overflow connections would be closed
    # on return, and under load each would cost PostgreSQL a backend fork per run.
    return create_engine(url, pool_size=pool_size, max_overflow=max_overflow, **kwargs)


def make_autocommit_engine(url: str) -> Engine:
    """A one-connection engine for lone reads polled often (beat's idle tick): no BEGIN, no COMMIT.

    Setting the isolation level per checkout costs a round trip each time; set here, it is paid once
    per connection.
    """
    if make_url(url).get_backend_name() == "sqlite":
        # Per-connection options, which the BEGIN IMMEDIATE hook below can see and skip.
        return make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    # One connection, no overflow: its users (beat's peek, the housekeeping probe) are one thread, and
    # the connection budget (MC_DB_MAX_CONNECTIONS) counts exactly one per engine.
    return make_engine(url, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # a lone read: no transaction, no write lock
        connection.exec_driver_sql("BEGIN IMMEDIATE")
