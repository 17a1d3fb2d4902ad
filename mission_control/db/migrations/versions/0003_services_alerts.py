"""Services, their tokens, heartbeat ring and state flips; alerts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.types import UTCDateTime, json_type

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UNRESOLVED = sa.text("state IN ('open', 'acknowledged')")


def upgrade() -> None:
    op.create_table(
        "services",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("interval_s", sa.Float(), nullable=False),
        sa.Column("grace_s", sa.Float(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_changed_at", UTCDateTime(), nullable=False),
        sa.Column("deadline_at", UTCDateTime(), nullable=True),
        sa.Column("last_seen_at", UTCDateTime(), nullable=True),
        sa.Column("last_status", sa.String(8), nullable=True),
        sa.Column("last_message", sa.Text(), nullable=True),
        sa.Column("heartbeat_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("paused_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_services"),
        sa.UniqueConstraint("name", name="uq_services_name"),
    )
    op.create_index("ix_services_deadline_at", "services", ["deadline_at"])
    op.create_table(
        "service_tokens",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("service_id", Id, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("label", sa.String(128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name="fk_service_tokens_service_id_services", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_service_tokens"),
        sa.UniqueConstraint("digest", name="uq_service_tokens_digest"),
    )
    op.create_index("ix_service_tokens_service_id", "service_tokens", ["service_id"])
    op.create_table(
        "heartbeats",
        sa.Column("service_id", Id, nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("truncated", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name="fk_heartbeats_service_id_services", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("service_id", "slot", name="pk_heartbeats"),
    )
    op.create_table(
        "service_flips",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("service_id", Id, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name="fk_service_flips_service_id_services", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_service_flips"),
    )
    op.create_index("ix_service_flips_service_id_id", "service_flips", ["service_id", "id"])
    op.create_table(
        "alerts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", json_type(), nullable=True),
        sa.Column("occurrences", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("ack_comment", sa.Text(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("last_notified_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index(
        "uq_alerts_unresolved",
        "alerts",
        ["kind", "subject"],
        unique=True,
        postgresql_where=UNRESOLVED,
        sqlite_where=UNRESOLVED,
    )
    op.create_index("ix_alerts_subject_id", "alerts", ["subject", "id"])
    op.create_index("ix_alerts_state_id", "alerts", ["state", "id"])


def downgrade() -> None:
    op.drop_table("alerts")
    op.drop_table("service_flips")
    op.drop_table("heartbeats")
    op.drop_table("service_tokens")
    op.drop_index("ix_services_deadline_at", table_name="services")
    op.drop_table("services")
