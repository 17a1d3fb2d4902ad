"""Migrations are the only way the schema is made: they build it from empty, undo it, and match tables.py."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from mission_control.db import migrate
from mission_control.db.engine import make_engine
from mission_control.db.tables import metadata


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'empty.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres").create("migrations")
    )
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_upgrade_from_empty_builds_the_schema(empty_engine):
    assert migrate.current_revision(empty_engine) is None
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    inspector = inspect(empty_engine)
    assert "jobs" in inspector.get_table_names()
    indexes = {index["name"]: index for index in inspector.get_indexes("jobs")}
    assert indexes["ix_jobs_next_run_at"]["column_names"] == ["next_run_at"]
    unique = {tuple(c["column_names"]) for c in inspector.get_unique_constraints("jobs")}
    assert ("name",) in unique


def test_downgrade_to_base_and_upgrade_again_round_trips(empty_engine):
    migrate.upgrade(empty_engine)
    migrate.downgrade(empty_engine, "base")
    assert migrate.current_revision(empty_engine) is None
    assert "jobs" not in inspect(empty_engine).get_table_names()
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision()


def test_migrations_produce_exactly_the_tables_the_code_declares(empty_engine):
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        differences = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        )
    assert differences == []
