"""Mission definitions (every version) and missions (one JSON document each, indexed columns beside).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.types import UTCDateTime, json_type

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

WAKEABLE = sa.text("wake_at IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "mission_definitions",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", json_type(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name="pk_mission_definitions"),
    )
    op.create_table(
        "missions",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("definition", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("doc", json_type(), nullable=False),
        sa.Column("wake_at", UTCDateTime(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_missions"),
    )
    op.create_index(
        "ix_missions_wake_at", "missions", ["wake_at"], postgresql_where=WAKEABLE, sqlite_where=WAKEABLE
    )
    op.create_index("ix_missions_created_at_id", "missions", ["created_at", "id"])
    op.create_index("ix_missions_status_created_at_id", "missions", ["status", "created_at", "id"])
    op.create_index("ix_missions_definition_created_at_id", "missions", ["definition", "created_at", "id"])


def downgrade() -> None:
    op.drop_table("missions")
    op.drop_table("mission_definitions")
