"""Channels route by tag (issue 17): ``channels.tag_pattern``, an fnmatch pattern one of the alert's
subject's tags must match (beside ``subject_pattern``); NULL routes whatever the tags.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("tag_pattern", sa.String(80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("tag_pattern")
