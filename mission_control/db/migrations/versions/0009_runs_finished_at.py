"""An index of finished runs by finish time, for web's ``/metrics`` (issue 16).

``mc_runs_finished_last_hour{status}`` counts the runs that finished in the last hour on every scrape;
with this index that is an index-only range scan over the last hour's runs, whatever the history holds
(without it, a sequential scan of every retained run: ~160 ms at a million runs). Partial: unfinished
runs have no finish time and stay out of it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FINISHED = "finished_at IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_runs_finished_at_status",
        "runs",
        ["finished_at", "status"],
        postgresql_where=sa.text(FINISHED),
        sqlite_where=sa.text(FINISHED),
    )


def downgrade() -> None:
    op.drop_index("ix_runs_finished_at_status", table_name="runs")
