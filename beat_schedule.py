"""Periodic housekeeping tasks that Celery beat runs beside the registry's own jobs.

The registry's jobs are not listed here: RegistryScheduler reads them from the database. This table
holds Mission Control's own periodic work. Each task is idempotent, so several beats may send it. The
frequent ones are sent only when one indexed read finds them work (``WhenDue``, see
mission_control/runtime/housekeeping.py): an idle system sends no housekeeping messages.
"""

from typing import Any

from mission_control.base.config import Settings
from mission_control.runtime.housekeeping import WhenDue

# How often finished runs are pruned (MC_PRUNE_INTERVAL_S); a soak test shortens it to show growth
# levelling off.
PRUNE_INTERVAL_S = Settings.from_env().prune_interval_s

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Re-enqueue runs whose message was lost; retry or fail runs whose worker died.
    "reconcile-runs": {
        "task": "mission_control.reconcile",
        "schedule": WhenDue(5.0, "runs_unfinished"),
        "options": {"expires": 5},
    },
    # Services whose heartbeat deadline passed turn late, then down (flagged within ~1 s of it).
    "check-services": {
        "task": "mission_control.check_services",
        "schedule": WhenDue(1.0, "services_due"),
        "options": {"expires": 2},
    },
    # Alerts still open and unacknowledged are notified again per their channel's repeat interval.
    "repeat-notices": {
        "task": "mission_control.repeat_notices",
        "schedule": WhenDue(15.0, "alerts_unresolved"),
        "options": {"expires": 15},
    },
    # Prune finished runs past MC_RUN_RETENTION_DAYS or MC_RUN_RETENTION_PER_JOB.
    "prune-runs": {
        "task": "mission_control.prune_runs",
        "schedule": PRUNE_INTERVAL_S,
        "options": {"expires": min(600.0, PRUNE_INTERVAL_S)},
    },
}
