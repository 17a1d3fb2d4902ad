"""Notification channels, the notices routed to them and every delivery attempt.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.types import UTCDateTime, json_type

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", json_type(), nullable=False),
        sa.Column("alert_kinds", json_type(), nullable=True),
        sa.Column("subject_pattern", sa.String(128), nullable=False),
        sa.Column("repeat_interval_s", sa.Float(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_channels"),
        sa.UniqueConstraint("name", name="uq_channels_name"),
    )
    op.create_table(
        "notices",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("channel_id", Id, nullable=False),
        sa.Column("alert_id", Id, nullable=True),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("dedup_key", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error_kind", sa.String(16), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name="fk_notices_channel_id_channels", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name="fk_notices_alert_id_alerts", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_notices"),
        sa.UniqueConstraint("dedup_key", name="uq_notices_dedup_key"),
    )
    op.create_index("ix_notices_channel_id_id", "notices", ["channel_id", "id"])
    op.create_index("ix_notices_alert_id", "notices", ["alert_id"])
    op.create_table(
        "notice_attempts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("notice_id", Id, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notices.id"], name="fk_notice_attempts_notice_id_notices", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_notice_attempts"),
        sa.UniqueConstraint("notice_id", "number", name="uq_notice_attempts_notice_id_number"),
    )


def downgrade() -> None:
    op.drop_table("notice_attempts")
    op.drop_index("ix_notices_alert_id", table_name="notices")
    op.drop_index("ix_notices_channel_id_id", table_name="notices")
    op.drop_table("notices")
    op.drop_table("channels")
