"""Cron-scheduled services, fail thresholds and early heartbeats (issue 17).

* ``services.schedule_cron``/``schedule_timezone``: a service expected on a cron schedule instead of
  every ``interval_s`` (now NULL for such a service; exactly one of the two is set).
* ``services.fail_threshold`` (default 1) and ``fail_count``: ``service_down`` opens only after that
  many failures in a row; a success resets the count.
* ``services.early_tolerance_s``, ``expected_at`` (when the next heartbeat is expected, kept by every
  heartbeat so the plain heartbeat can tell an early one in its single statement) and ``early_at``
  (the last early heartbeat, for resolving ``service_early`` after a clean period).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.types import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.alter_column("interval_s", existing_type=sa.Float(), nullable=True)
        batch.add_column(sa.Column("schedule_cron", sa.String(256), nullable=True))
        batch.add_column(sa.Column("schedule_timezone", sa.String(64), nullable=True))
        for column, default in (("fail_threshold", "1"), ("fail_count", "0")):
            batch.add_column(sa.Column(column, sa.Integer(), server_default=sa.text(default), nullable=False))
        batch.add_column(sa.Column("early_tolerance_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("expected_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("early_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.drop_column("early_at")
        batch.drop_column("expected_at")
        batch.drop_column("early_tolerance_s")
        batch.drop_column("fail_count")
        batch.drop_column("fail_threshold")
        batch.drop_column("schedule_timezone")
        batch.drop_column("schedule_cron")
    # A cron service has no interval; it comes back as a daily one.
    op.execute("UPDATE services SET interval_s = 86400 WHERE interval_s IS NULL")
    with op.batch_alter_table("services") as batch:
        batch.alter_column("interval_s", existing_type=sa.Float(), nullable=False)
