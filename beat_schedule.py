"""Periodic housekeeping tasks that Celery beat runs beside the registry's own jobs.

The registry's jobs are not listed here: RegistryScheduler reads them from the database. This table
holds Mission Control's own periodic work (staleness check, reconciler, retention) as it lands.
"""

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {}
