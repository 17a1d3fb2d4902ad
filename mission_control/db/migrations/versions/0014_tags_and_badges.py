"""Tags on services and jobs, and status badges (issue 17).

* ``jobs.tags`` and ``services.tags``: the object's tags as it is answered (a JSON list, ``[]`` for
  every row that exists now).
* ``subject_tags``: one row per (kind, tag, name), the index a list filtered by tag walks in name
  order (keyset paging) on PostgreSQL and SQLite alike.
* ``badges``: one row per status badge (service, job or tag), the SHA-256 of its key, who made it,
  and when it was revoked.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.types import UTCDateTime, json_type

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    for table in ("jobs", "services"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("tags", json_type(), server_default=sa.text("'[]'"), nullable=False))
    op.create_table(
        "subject_tags",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("kind", "tag", "name", name="pk_subject_tags"),
    )
    op.create_index("ix_subject_tags_kind_name", "subject_tags", ["kind", "name"])
    op.create_table(
        "badges",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_badges"),
        sa.UniqueConstraint("digest", name="uq_badges_digest"),
    )


def downgrade() -> None:
    op.drop_table("badges")
    op.drop_index("ix_subject_tags_kind_name", table_name="subject_tags")
    op.drop_table("subject_tags")
    for table in ("services", "jobs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("tags")
