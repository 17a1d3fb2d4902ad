"""Column types that keep the storage invariants whatever the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An instant, stored in UTC and read back as an aware UTC datetime.

    PostgreSQL keeps it in a ``timestamptz``; SQLite has no time type, so the value is stored as a
    naive UTC string in SQLAlchemy's fixed-width format, which keeps string comparison equal to time
    order (the scheduler's ``next_run_at <= now`` relies on that). Naive values are refused on the way
    in: a wall time without a zone is a bug, not a UTC time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"refusing to store naive datetime {value.isoformat()}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type() -> Any:
    """JSON that is JSONB on PostgreSQL (indexable, compact) and plain JSON text elsewhere."""
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
