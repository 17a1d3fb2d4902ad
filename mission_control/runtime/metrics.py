"""Prometheus metrics: what processes count as they work, and what the database says at scrape time.

Two kinds of figures, read out in two places:

* **Fleet figures**, read from PostgreSQL (and the broker) on every scrape of web's ``/metrics`` by
  :class:`StateCollector`, so they are the same whichever web process answers: runs that finished in
  the last hour by status, unfinished runs, jobs (enabled, failing, behind schedule, and the last
  success of a bounded set of them), missions, services, unresolved alerts, queue depth. Each query is
  an index range scan whose cost grows with the runs of the last hour or the rows it returns, never
  with the whole history (see :data:`RECENT_WINDOW_S` and :meth:`StateCollector.collect`).
* **Per-process figures**, the counters and histograms of :mod:`mission_control.base.instruments`,
  counted in the process that observes them: a worker's runs, attempt durations and firing lag, beat's
  tick durations, the web's heartbeats. A worker or a beat serves its own on ``MC_METRICS_PORT``
  (:mod:`mission_control.runtime.metrics_server`). The web's gunicorn processes share one
  ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode; ``mission-control web`` makes a
  private one when the variable is unset, see :mod:`mission_control.cli.web`), and web's ``/metrics``
  adds them all up with :class:`~prometheus_client.multiprocess.MultiProcessCollector`, so a counter
  does not depend on which gunicorn process answers. Where an operator points every process of a host
  at one shared directory (``mission-control dev`` does), web's ``/metrics`` adds up the workers' and
  beat's too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import and_, func, select, true
from sqlalchemy.engine import Connection, Engine

from mission_control.base.instruments import FINAL_STATUSES
from mission_control.db.alerts import AlertKind
from mission_control.db.tables import alerts, jobs, missions, runs, services

__all__ = ["RECENT_WINDOW_S", "StateCollector", "exposition", "process_registry"]

UNFINISHED_STATUSES = ("queued", "running", "retrying")
UNRESOLVED_ALERTS = ("open", "acknowledged")
MISSION_STATUSES = ("running", "waiting", "completed", "failed", "cancelled")
# Runs that finished this recently are counted by status on every scrape. A window, not the whole
# retained history: counting a million retained runs takes ~160 ms of PostgreSQL per scrape, the last
# hour's a few hundred microseconds (ix_runs_finished_at_status, an index-only range scan).
RECENT_WINDOW_S = 3600


class StateCollector(Collector):
    """Gauges read from the database (and the broker) on every scrape.

    ``job_series`` (``MC_METRICS_JOB_SERIES``) bounds the per-job series: the first that many enabled
    jobs by name get ``mc_job_last_success_timestamp_seconds{job_name}``, so 100k jobs never mean 100k
    series unless asked for. ``grace_s`` (``MC_MISFIRE_GRACE_S``) is how late a slot may be before its
    job counts as behind schedule.
    """

    def __init__(
        self,
        engine: Engine,
        broker_url: str,
        *,
        job_series: int = 0,
        grace_s: float = 15,
        now: datetime | None = None,
    ) -> None:
        self.engine = engine
        self.broker_url = broker_url
        self.job_series = job_series
        self.grace_s = grace_s
        self.now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.now or datetime.now(UTC)
        with self.engine.connect() as conn:
            by_state = _counts(conn, select(services.c.state, func.count()).group_by(services.c.state))
            open_alerts = _counts(
                conn,
                select(alerts.c.kind, func.count())
                .where(alerts.c.state.in_(UNRESOLVED_ALERTS))
                .group_by(alerts.c.kind),
            )
            unfinished = _counts(
                conn,
                select(runs.c.status, func.count())
                .where(runs.c.status.in_(UNFINISHED_STATUSES))
                .group_by(runs.c.status),
            )
            recent = _counts(
                conn,
                select(runs.c.status, func.count())
                .where(runs.c.finished_at >= now - timedelta(seconds=RECENT_WINDOW_S))
                .group_by(runs.c.status),
            )
            enabled = _counts(conn, select(jobs.c.enabled, func.count()).group_by(jobs.c.enabled))
            failing = conn.execute(
                select(func.count())
                .select_from(alerts.join(jobs, jobs.c.name == alerts.c.subject))
                .where(
                    alerts.c.kind == "job_failed",
                    alerts.c.state.in_(UNRESOLVED_ALERTS),
                    jobs.c.enabled.is_(true()),
                )
            ).scalar_one()
            # next_run_at is NULL for a paused job, so the range scan of ix_jobs_next_run_at is all.
            behind = conn.execute(
                select(func.count()).where(jobs.c.next_run_at < now - timedelta(seconds=self.grace_s))
            ).scalar_one()
            by_mission = _counts(conn, select(missions.c.status, func.count()).group_by(missions.c.status))
            last_success = self._last_success(conn) if self.job_series > 0 else []
        yield _gauge(
            "mc_services", "Services by state", "state", by_state, ("new", "up", "late", "down", "paused")
        )
        yield _gauge(
            "mc_alerts_unresolved",
            "Open or acknowledged alerts by kind",
            "kind",
            open_alerts,
            tuple(kind.value for kind in AlertKind),
        )
        yield _gauge(
            "mc_runs_unfinished",
            "Runs not yet finished, by status",
            "status",
            unfinished,
            UNFINISHED_STATUSES,
        )
        yield _gauge(
            "mc_runs_finished_last_hour",
            "Runs that finished in the last hour, by the status they finished in (from the database)",
            "status",
            recent,
            FINAL_STATUSES,
        )
        yield _gauge(
            "mc_jobs",
            "Registered jobs",
            "enabled",
            {str(k).lower(): v for k, v in enabled.items()},
            ("true", "false"),
        )
        yield GaugeMetricFamily(
            "mc_jobs_failing",
            "Enabled jobs with a run that failed since their last success (an unresolved job_failed alert)",
            value=float(failing),
        )
        yield GaugeMetricFamily(
            "mc_jobs_behind_schedule",
            "Jobs whose next slot is due longer ago than MC_MISFIRE_GRACE_S: no scheduler is firing them",
            value=float(behind),
        )
        yield _gauge("mc_missions", "Missions by status", "status", by_mission, MISSION_STATUSES)
        if self.job_series > 0:
            family = GaugeMetricFamily(
                "mc_job_last_success_timestamp_seconds",
                "When the job's latest successful run finished (Unix time), for the first "
                "MC_METRICS_JOB_SERIES enabled jobs by name; none for a job that never succeeded",
                # Not "job": Prometheus gives every series its scrape job's `job` label, and would
                # rename this one to exported_job.
                labels=["job_name"],
            )
            for name, finished_at in last_success:
                if finished_at is not None:
                    family.add_metric([name], finished_at.timestamp())
            yield family
        depth = _queue_depth(self.broker_url)
        if depth is not None:
            yield _gauge("mc_queue_depth", "Messages waiting in the broker", "queue", depth, ())

    def _last_success(self, conn: Connection) -> list[tuple[str, datetime | None]]:
        """The first ``job_series`` enabled jobs by name, each with its latest success's finish: a range
        of ix_runs_job_name_id per job (at most its MC_RUN_RETENTION_PER_JOB retained runs)."""
        chosen = (
            select(jobs.c.name)
            .where(jobs.c.enabled.is_(true()))
            .order_by(jobs.c.name)
            .limit(self.job_series)
            .subquery()
        )
        latest = (
            select(func.max(runs.c.finished_at))
            .where(and_(runs.c.job_name == chosen.c.name, runs.c.status == "succeeded"))
            .scalar_subquery()
        )
        return [
            (row[0], row[1]) for row in conn.execute(select(chosen.c.name, latest).order_by(chosen.c.name))
        ]


def _counts(conn: Connection, statement: Any) -> dict[Any, int]:
    return {key: int(count) for key, count in conn.execute(statement).all()}


def _gauge(
    name: str, text: str, label: str, values: dict[Any, Any], always: tuple[str, ...]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=[label])
    for key in sorted(set(always) | {str(k) for k in values}):
        family.add_metric([key], float(values.get(key, 0)))
    return family


def _queue_depth(broker_url: str) -> dict[str, int] | None:
    """Pending messages per queue on a Redis broker (kombu keeps a queue as a list of its name)."""
    if not broker_url.startswith(("redis://", "rediss://")):
        return None
    import redis

    try:
        client = redis.Redis.from_url(broker_url, socket_timeout=1, socket_connect_timeout=1)
        with client.pipeline(transaction=False) as pipe:
            for queue in ("triggers", "default"):
                pipe.llen(queue)
            counts = pipe.execute()
        client.close()
    except redis.RedisError:
        return None  # the broker is down: /readyz says so; the scrape still answers
    return dict(zip(("triggers", "default"), counts, strict=True))


class _ThisProcess(Collector):
    """This process's own metrics, when there is no multiprocess directory to read them all from."""

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()


def process_registry(multiproc_dir: str | None) -> CollectorRegistry:
    """A registry of the per-process figures: every process's that writes to ``multiproc_dir``
    (prometheus-client's multiprocess mode), else this process's own."""
    registry = CollectorRegistry()
    if multiproc_dir:
        multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
    else:
        registry.register(_ThisProcess())
    return registry


def exposition(
    engine: Engine,
    broker_url: str,
    multiproc_dir: str | None = None,
    *,
    job_series: int = 0,
    grace_s: float = 15,
    now: datetime | None = None,
) -> bytes:
    """Web's text exposition for one scrape: the per-process figures (all gunicorn processes' with
    ``multiproc_dir``) plus the fleet figures read from the database now.

    A registry per scrape, so concurrent scrapes in one process never share collector state.
    """
    registry = process_registry(multiproc_dir)
    registry.register(StateCollector(engine, broker_url, job_series=job_series, grace_s=grace_s, now=now))
    return generate_latest(registry)
