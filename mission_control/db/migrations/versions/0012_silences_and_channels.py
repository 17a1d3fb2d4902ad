"""Silences, and what notices and alerts record of them (issue 17).

* ``silences``: matchers (alert kinds, a subject pattern), a window (``starts_at``, ``ends_at``), a
  comment, who made it and when; ``expired_at`` when someone ended it early (``ends_at`` is then that
  moment too). Indexed by ``ends_at``, so routing reads only silences not yet over.
* ``notices.silence_id``: the silence that kept a notice from being sent (its status ``silenced``).
* ``alerts.silence_id``: the silence that last muted a notice about the alert.

Channels need no column: PagerDuty's routing key and events URL and Apprise's URL live in the
channel's ``target`` document, sealed like webhook URLs.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.types import UTCDateTime, json_type

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "silences",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("alert_kinds", json_type(), nullable=True),
        sa.Column("subject_pattern", sa.String(128), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expired_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_silences"),
    )
    op.create_index("ix_silences_ends_at", "silences", ["ends_at"])
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("silence_id", Id, nullable=True))
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("silence_id", Id, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("silence_id")
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("silence_id")
    op.drop_index("ix_silences_ends_at", table_name="silences")
    op.drop_table("silences")
