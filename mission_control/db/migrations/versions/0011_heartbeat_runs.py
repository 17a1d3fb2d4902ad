"""Measured heartbeat runs (issue 17): ``/start``, exit codes, run ids and ``service_hung``.

* ``services.max_runtime_s``: how long a started run may take before it is hung (NULL: never);
  ``services.open_runs``: how many runs are started and not ended, so the plain heartbeat (the hot
  path) knows from the row it already updates whether it has a run to close, at no extra statement.
* ``heartbeats`` (the event ring) keeps each event's run id, measured duration and exit code;
  ``status`` now also holds ``start`` and ``log``.
* ``heartbeat_runs``: the runs started and not yet ended, one per (service, run id; '' for none),
  with the deadline past which the run is hung and when it was found hung.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.types import UTCDateTime

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("max_runtime_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("open_runs", sa.Integer(), server_default=sa.text("0"), nullable=False))
    with op.batch_alter_table("heartbeats") as batch:
        batch.add_column(sa.Column("rid", sa.String(36), nullable=True))
        batch.add_column(sa.Column("duration_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("exit_code", sa.Integer(), nullable=True))
    op.create_table(
        "heartbeat_runs",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("service_id", Id, nullable=False),
        sa.Column("rid", sa.String(36), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("deadline_at", UTCDateTime(), nullable=True),
        sa.Column("hung_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name="fk_heartbeat_runs_service_id_services", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_heartbeat_runs"),
        sa.UniqueConstraint("service_id", "rid", name="uq_heartbeat_runs_service_id_rid"),
    )


def downgrade() -> None:
    op.drop_table("heartbeat_runs")
    with op.batch_alter_table("heartbeats") as batch:
        batch.drop_column("exit_code")
        batch.drop_column("duration_s")
        batch.drop_column("rid")
    with op.batch_alter_table("services") as batch:
        batch.drop_column("open_runs")
        batch.drop_column("max_runtime_s")
