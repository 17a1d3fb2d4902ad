"""Periodic housekeeping tasks that Celery beat runs beside the registry's own jobs.

The registry's jobs are not listed here: RegistryScheduler reads them from the database. This table
holds Mission Control's own periodic work. Each task is idempotent, so several beats may send it.
"""

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Re-enqueue runs whose message was lost; retry or fail runs whose worker died.
    "reconcile-runs": {"task": "mission_control.reconcile", "schedule": 5.0, "options": {"expires": 5}},
    # Prune finished runs past MC_RUN_RETENTION_DAYS or MC_RUN_RETENTION_PER_JOB.
    "prune-runs": {"task": "mission_control.prune_runs", "schedule": 3600.0, "options": {"expires": 600}},
}
