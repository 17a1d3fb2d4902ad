"""Silences match tags (issue 17): ``silences.tag_pattern``, an fnmatch pattern one of the alert's
subject's tags must match (``team:billing``, ``tier:*``); NULL matches regardless of tags.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("silences") as batch:
        batch.add_column(sa.Column("tag_pattern", sa.String(80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("silences") as batch:
        batch.drop_column("tag_pattern")
