"""Housekeeping sent only when there is work: beat asks the database first, with one indexed read.

Beat sends ``check_services`` every second, ``reconcile`` every five and ``repeat_notices`` every fifteen.
On an idle system each finds nothing, yet each costs a broker message, a delivery, a task run and a
transaction: on the dev stack's SQLite broker about 18 ms of CPU per ``check_services``, so 1.8 % of a
core for nothing (issue 14), and 86,400 empty messages a day into Redis in production. An entry whose
schedule is a :class:`WhenDue` keeps its period, but when the period comes the registry scheduler
(:meth:`mission_control.runtime.beat.RegistryScheduler.apply_entry`) sends the task only if the probe
finds something the task would act on; the period counts as run either way (a plain Celery scheduler
sends it every period, as before). The probes ask for a superset of what the tasks select, so no work is
ever skipped, only the empty passes:

* ``services_due``: a service whose ``deadline_at`` has passed (``check_stale`` reads exactly those).
* ``runs_unfinished``: a run queued or running (the reconciler requeues overdue queued runs, flags late
  ones, and retries or fails running ones whose lease expired: all among those).
* ``alerts_unresolved``: an open or acknowledged alert (repeats are for open ones; re-routing a lost
  first notice is for open or acknowledged ones).

A probe that fails (database down) answers "work": the task is sent and reports the failure as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from celery.schedules import schedule

log = logging.getLogger(__name__)


class WhenDue(schedule):  # type: ignore[misc]
    """Every ``run_every``; sent only when the probe named ``probe`` (in :data:`PROBES`) finds work.

    Due exactly as a plain ``schedule`` is: skipping happens when the entry is applied, so the period
    still counts as run and the scheduler's heap moves on to the other entries.
    """

    def __init__(
        self,
        run_every: float | timedelta,
        probe: str,
        relative: bool = False,
        nowfun: Callable[[], datetime] | None = None,
        app: Any = None,
    ) -> None:
        if probe not in PROBES:
            raise ValueError(f"unknown probe {probe!r}; known: {sorted(PROBES)}")
        super().__init__(run_every=run_every, relative=relative, nowfun=nowfun, app=app)
        self.probe = probe

    def work_found(self) -> bool:
        return work_found(self.probe)

    def __repr__(self) -> str:
        return f"<freq: {self.human_seconds}, when {self.probe}>"

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return self.__class__, (self.run_every, self.probe, self.relative, self.nowfun)


def work_found(probe: str) -> bool:
    """Whether the probe finds work; True when it cannot tell (the task then runs and reports why)."""
    from mission_control.runtime.context import get_runtime

    try:
        runtime = get_runtime()
        with _probe_engine(runtime.settings.database_url).connect() as conn:
            return bool(PROBES[probe](conn, runtime.clock.now()))
    except Exception as exc:  # fail open: skipping work on an error would hide the error
        log.debug("housekeeping probe %s failed (%s); sending the task", probe, type(exc).__name__)
        return True


def services_due(conn: Any, now: datetime) -> bool:
    """A service whose deadline has passed: what ``ServiceRegistry.check_stale`` examines."""
    return conn.execute(_queries()["services_due"], {"now": now}).first() is not None


def runs_unfinished(conn: Any, now: datetime) -> bool:
    """A run queued or running: the reconciler's whole domain."""
    return conn.execute(_queries()["runs_unfinished"]).first() is not None


def alerts_unresolved(conn: Any, now: datetime) -> bool:
    """An open or acknowledged alert: what repeats and re-routing look at."""
    return conn.execute(_queries()["alerts_unresolved"]).first() is not None


PROBES: dict[str, Callable[[Any, datetime], bool]] = {
    "services_due": services_due,
    "runs_unfinished": runs_unfinished,
    "alerts_unresolved": alerts_unresolved,
}
_QUERIES: dict[str, Any] = {}


def _queries() -> dict[str, Any]:
    """The probes' statements, built once (imported late: every process reads the beat schedule, and
    only beat probes)."""
    if not _QUERIES:
        from sqlalchemy import bindparam, select

        from mission_control.db.alerts import UNRESOLVED_STATES
        from mission_control.db.tables import alerts, runs, services
        from mission_control.jobs.runstate import RunStatus

        unfinished = [RunStatus.QUEUED.value, RunStatus.RUNNING.value]
        _QUERIES.update(
            services_due=select(services.c.id)
            .where(services.c.deadline_at <= bindparam("now", type_=services.c.deadline_at.type))
            .limit(1),
            runs_unfinished=select(runs.c.id).where(runs.c.status.in_(unfinished)).limit(1),
            alerts_unresolved=select(alerts.c.id).where(alerts.c.state.in_(UNRESOLVED_STATES)).limit(1),
        )
    return _QUERIES


_engines: dict[str, Any] = {}
_engines_lock = threading.Lock()


def _probe_engine(database_url: str) -> Any:
    """One autocommit engine per process and database: a probe is a lone read (no BEGIN, no lock)."""
    from mission_control.db.engine import make_autocommit_engine

    with _engines_lock:
        engine = _engines.get(database_url)
        if engine is None:
            engine = _engines[database_url] = make_autocommit_engine(database_url)
        return engine
