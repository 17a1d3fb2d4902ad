"""Run history: reading runs and their attempts for the API and CLI, and pruning old ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine

from mission_control.db.tables import attempts, jobs, runs
from mission_control.jobs.runstate import TERMINAL


@dataclass(frozen=True)
class RunFilter:
    job: str | None = None
    service: str | None = None  # only runs of this service's (current) jobs
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None  # the cursor: runs older than this one
    limit: int = 50


def list_runs(engine: Engine, where: RunFilter) -> list[dict[str, Any]]:
    """Runs newest first (by id, which follows creation order), filtered."""
    query = select(runs).order_by(runs.c.id.desc()).limit(where.limit)
    if where.job is not None:
        query = query.where(runs.c.job_name == where.job)
    if where.service is not None:
        query = query.where(runs.c.job_id.in_(select(jobs.c.id).where(jobs.c.service == where.service)))
    if where.status is not None:
        query = query.where(runs.c.status == where.status)
    if where.since is not None:
        query = query.where(runs.c.scheduled_for >= where.since)
    if where.until is not None:
        query = query.where(runs.c.scheduled_for < where.until)
    if where.before_id is not None:
        query = query.where(runs.c.id < where.before_id)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def get_run(engine: Engine, run_id: int) -> dict[str, Any] | None:
    """One run with every attempt, oldest attempt first."""
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            return None
        found = [
            dict(attempt._mapping)
            for attempt in conn.execute(
                select(attempts).where(attempts.c.run_id == run_id).order_by(attempts.c.number)
            )
        ]
    return {**row._mapping, "attempts": found}


def last_runs(engine: Engine, job_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The newest run of each job, for job listings."""
    if not job_ids:
        return {}
    newest = (
        select(func.max(runs.c.id))
        .where(runs.c.job_id.in_(job_ids))
        .group_by(runs.c.job_id)
        .scalar_subquery()
    )
    with engine.connect() as conn:
        rows = conn.execute(select(runs).where(runs.c.id.in_(newest))).all()
    return {row.job_id: dict(row._mapping) for row in rows}


def recent_runs(engine: Engine, job_ids: list[int], per_job: int = 20) -> dict[int, list[dict[str, Any]]]:
    """The newest ``per_job`` runs of each job, oldest first: the strip a dashboard row shows."""
    if not job_ids:
        return {}
    ranked = (
        select(
            runs.c.job_id,
            runs.c.id,
            runs.c.status,
            runs.c.scheduled_for,
            runs.c.started_at,
            runs.c.finished_at,
            func.row_number().over(partition_by=runs.c.job_id, order_by=runs.c.id.desc()).label("rank"),
        )
        .where(runs.c.job_id.in_(job_ids))
        .subquery()
    )
    out: dict[int, list[dict[str, Any]]] = {job_id: [] for job_id in job_ids}
    with engine.connect() as conn:
        for row in conn.execute(select(ranked).where(ranked.c.rank <= per_job).order_by(ranked.c.id)):
            out[row.job_id].append(dict(row._mapping))
    return out


def prune_runs(engine: Engine, now: datetime, *, max_age_days: int, keep_per_job: int) -> int:
    """Delete finished runs older than ``max_age_days`` or beyond the newest ``keep_per_job`` of a job.

    Unfinished runs are never pruned, whatever their age: they are work still owed.
    """
    finished = runs.c.status.in_([status.value for status in TERMINAL])
    ranked = (
        select(
            runs.c.id,
            func.row_number().over(partition_by=runs.c.job_name, order_by=runs.c.id.desc()).label("rank"),
        )
        .where(finished)
        .subquery()
    )
    with engine.begin() as conn:
        by_age = conn.execute(
            delete(runs).where(finished, runs.c.created_at < now - timedelta(days=max_age_days))
        ).rowcount
        by_count = conn.execute(
            delete(runs).where(runs.c.id.in_(select(ranked.c.id).where(ranked.c.rank > keep_per_job)))
        ).rowcount
    return int(by_age or 0) + int(by_count or 0)
