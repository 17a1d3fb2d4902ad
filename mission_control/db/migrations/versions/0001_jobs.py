"""The job registry.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.types import UTCDateTime, json_type

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("target", json_type(), nullable=False),
        sa.Column("schedule", json_type(), nullable=False),
        sa.Column("timeout_s", sa.Float(), nullable=False),
        sa.Column("expected_runtime_s", sa.Float(), nullable=True),
        sa.Column("retry", json_type(), nullable=False),
        sa.Column("concurrency", sa.String(16), nullable=False),
        sa.Column("misfire", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", UTCDateTime(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("name", name="uq_jobs_name"),
    )
    op.create_index("ix_jobs_next_run_at", "jobs", ["next_run_at"])
    op.create_index("ix_jobs_service_name", "jobs", ["service", "name"])


def downgrade() -> None:
    op.drop_index("ix_jobs_service_name", table_name="jobs")
    op.drop_index("ix_jobs_next_run_at", table_name="jobs")
    op.drop_table("jobs")
