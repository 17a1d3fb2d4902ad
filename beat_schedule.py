"""Periodic housekeeping tasks that Celery beat runs beside the registry's own jobs.

The registry's jobs are not listed here: RegistryScheduler reads them from the database. This table
holds Mission Control's own periodic work. Each task is idempotent, so several beats may send it.
"""

from typing import Any

from mission_control.base.config import Settings

# How often finished runs are pruned (MC_PRUNE_INTERVAL_S); a soak test shortens it to show growth
# levelling off.
PRUNE_INTERVAL_S = Settings.from_env().prune_interval_s

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Re-enqueue runs whose message was lost; retry or fail runs whose worker died.
    "reconcile-runs": {"task": "mission_control.reconcile", "schedule": 5.0, "options": {"expires": 5}},
    # Services whose heartbeat deadline passed turn late, then down (flagged within ~1 s of it).
    "check-services": {"task": "mission_control.check_services", "schedule": 1.0, "options": {"expires": 2}},
    # Alerts still open and unacknowledged are notified again per their channel's repeat interval.
    "repeat-notices": {
        "task": "mission_control.repeat_notices",
        "schedule": 15.0,
        "options": {"expires": 15},
    },
    # Prune finished runs past MC_RUN_RETENTION_DAYS or MC_RUN_RETENTION_PER_JOB.
    "prune-runs": {
        "task": "mission_control.prune_runs",
        "schedule": PRUNE_INTERVAL_S,
        "options": {"expires": min(600.0, PRUNE_INTERVAL_S)},
    },
}
