"""Named API tokens with scopes, optionally bound to one service; missions remember their service;
dashboard sessions remember the token that opened them.

Every ``service_tokens`` row becomes an ``api_tokens`` row scoped ``["heartbeats:write"]`` for its
service, with the same id, label, creation time and SHA-256 digest, so the secret a service holds keeps
working; then ``service_tokens`` goes. Downgrading copies back the live tokens that are exactly such
service tokens of a registered service, and drops the rest.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.types import UTCDateTime, json_type

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HEARTBEATS_ONLY = ["heartbeats:write"]


def upgrade() -> None:
    api_tokens = op.create_table(
        "api_tokens",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("scopes", json_type(), nullable=False),
        sa.Column("service", sa.String(128), nullable=True),
        sa.Column("label", sa.String(128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("name", name="uq_api_tokens_name"),
        sa.UniqueConstraint("digest", name="uq_api_tokens_digest"),
    )
    op.create_index("ix_api_tokens_service", "api_tokens", ["service"])

    conn = op.get_bind()
    old = sa.table(
        "service_tokens",
        sa.column("id", Id),
        sa.column("service_id", Id),
        sa.column("digest", sa.String),
        sa.column("label", sa.String),
        sa.column("created_at", UTCDateTime()),
    )
    services = sa.table("services", sa.column("id", Id), sa.column("name", sa.String))
    rows = conn.execute(
        sa.select(old.c.id, old.c.digest, old.c.label, old.c.created_at, services.c.name).join(
            services, services.c.id == old.c.service_id
        )
    ).all()
    if rows:
        op.bulk_insert(
            api_tokens,
            [
                {
                    "id": row.id,
                    "name": f"{row.name}-heartbeats-{row.id}",
                    "digest": row.digest,
                    "scopes": HEARTBEATS_ONLY,
                    "service": row.name,
                    "label": row.label,
                    "created_at": row.created_at,
                    "created_by": "service token (migrated)",
                }
                for row in rows
            ],
        )
        if conn.dialect.name == "postgresql":  # the copied ids must not be handed out again
            conn.execute(
                sa.text(
                    "SELECT setval(pg_get_serial_sequence('api_tokens', 'id'), "
                    "(SELECT max(id) FROM api_tokens))"
                )
            )
    op.drop_index("ix_service_tokens_service_id", table_name="service_tokens")
    op.drop_table("service_tokens")

    with op.batch_alter_table("missions") as batch:
        batch.add_column(sa.Column("service", sa.String(128), nullable=True))
    op.create_index("ix_missions_service_created_at_id", "missions", ["service", "created_at", "id"])
    with op.batch_alter_table("dashboard_sessions") as batch:
        batch.add_column(sa.Column("token_id", Id, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dashboard_sessions") as batch:
        batch.drop_column("token_id")
    op.drop_index("ix_missions_service_created_at_id", table_name="missions")
    with op.batch_alter_table("missions") as batch:
        batch.drop_column("service")

    service_tokens = op.create_table(
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
    conn = op.get_bind()
    tokens = sa.table(
        "api_tokens",
        sa.column("id", Id),
        sa.column("digest", sa.String),
        sa.column("scopes", json_type()),
        sa.column("service", sa.String),
        sa.column("label", sa.String),
        sa.column("created_at", UTCDateTime()),
        sa.column("revoked_at", UTCDateTime()),
    )
    services = sa.table("services", sa.column("id", Id), sa.column("name", sa.String))
    rows = conn.execute(
        sa.select(tokens.c.id, services.c.id.label("service_id"), tokens.c.digest, tokens.c.label,
                  tokens.c.created_at, tokens.c.scopes)
        .join(services, services.c.name == tokens.c.service)
        .where(tokens.c.revoked_at.is_(None))
    ).all()  # fmt: skip
    kept = [
        {key: row._mapping[key] for key in ("id", "service_id", "digest", "label", "created_at")}
        for row in rows
        if list(row.scopes) == HEARTBEATS_ONLY
    ]
    if kept:
        op.bulk_insert(service_tokens, kept)
        if conn.dialect.name == "postgresql":
            conn.execute(
                sa.text(
                    "SELECT setval(pg_get_serial_sequence('service_tokens', 'id'), "
                    "(SELECT max(id) FROM service_tokens))"
                )
            )
    op.drop_index("ix_api_tokens_service", table_name="api_tokens")
    op.drop_table("api_tokens")
