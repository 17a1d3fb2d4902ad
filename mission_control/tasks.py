"""Celery tasks: thin shells over the executor, the reconciler and retention (no logic lives here).

Beat imports this module too (Celery loads ``include`` everywhere) but only sends these tasks by
name, so what they need is imported when they run: the beat process stays small.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from mission_control.celery_app import app
from mission_control.queueing import TRIGGER_TASK, enqueue_runs
from mission_control.runtime import get_runtime


@shared_task(name=TRIGGER_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def trigger(run_id: int) -> str:
    """Execute one attempt of a run; duplicates and stale deliveries are no-ops."""
    from mission_control.executor import execute_run

    return execute_run(run_id, get_runtime().execution_context())


@shared_task(name="mission_control.reconcile", ignore_result=True)
def reconcile_runs() -> dict[str, Any]:
    """Re-enqueue overdue queued runs; retry or fail runs whose worker was lost."""
    from mission_control.reconciler import reconcile

    runtime = get_runtime()
    result = reconcile(runtime.engine, runtime.clock.now(), requeue_after_s=runtime.settings.requeue_after_s)
    enqueue_runs(app, result.requeue)
    return {"requeued": len(result.requeue), "retried": len(result.retried), "failed": len(result.failed)}


@shared_task(name="mission_control.prune_runs", ignore_result=True)
def prune_old_runs() -> int:
    """Apply the retention settings to finished runs."""
    from mission_control.history import prune_runs

    runtime = get_runtime()
    return prune_runs(
        runtime.engine,
        runtime.clock.now(),
        max_age_days=runtime.settings.run_retention_days,
        keep_per_job=runtime.settings.run_retention_per_job,
    )
