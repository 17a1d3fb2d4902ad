"""The registry schema as SQLAlchemy Core tables.

This is the schema the Alembic migrations must produce; ``tests/test_migrations.py`` compares the two
so neither drifts. Change a table here and add a migration in the same commit.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

from mission_control.db.types import UTCDateTime, json_type

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# BIGINT on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
Id = BigInteger().with_variant(Integer(), "sqlite")

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("service", String(128), nullable=False),
    Column("target", json_type(), nullable=False),
    Column("schedule", json_type(), nullable=False),
    Column("timeout_s", Float, nullable=False),
    Column("expected_runtime_s", Float, nullable=True),
    Column("retry", json_type(), nullable=False),
    Column("concurrency", String(16), nullable=False),
    Column("misfire", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False),
    # NULL while paused or when a one-shot has nothing left to fire: the scheduler's due query is then
    # a plain range scan of this index, with no filter on `enabled`.
    Column("next_run_at", UTCDateTime(), nullable=True),
    # Bumped on every write; a compare-and-set on it makes concurrent edits safe without long locks.
    Column("revision", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_jobs_next_run_at", "next_run_at"),
    Index("ix_jobs_service_name", "service", "name"),
)
