"""Which missions are due a look: the beat's share of the mission engine.

Kept apart from :mod:`mission_control.missions` so beat imports only SQLAlchemy and the tables, not
the definitions' validation stack (pydantic, jsonschema-rs).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from mission_control.db.tables import missions


def claim_due(engine: Engine, now: datetime, *, batch: int, requeue_after_s: float) -> list[str]:
    """Ids of missions whose ``wake_at`` has come, pushed ``requeue_after_s`` ahead so the next tick does
    not send them again while a worker handles them (the document keeps the original due time)."""
    later = now + timedelta(seconds=requeue_after_s)
    with engine.begin() as conn:
        due = select(missions.c.id).where(missions.c.wake_at <= now).order_by(missions.c.wake_at).limit(batch)
        if conn.dialect.name == "postgresql":
            ids = (
                conn.execute(
                    update(missions)
                    .where(missions.c.id.in_(due.with_for_update(skip_locked=True).scalar_subquery()))
                    .values(wake_at=later)
                    .returning(missions.c.id)
                )
                .scalars()
                .all()
            )
        else:
            ids = conn.execute(due).scalars().all()
            if ids:
                conn.execute(update(missions).where(missions.c.id.in_(ids)).values(wake_at=later))
    return list(ids)


NEXT_MISSION_WAKE = select(func.min(missions.c.wake_at)).where(missions.c.wake_at.is_not(None))
