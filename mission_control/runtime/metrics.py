"""Prometheus metrics: what processes count as they work, and what the database says at scrape time.

Counters and histograms live in the process that observes them (worker: runs and attempt durations,
firing lag; beat: tick duration; web: heartbeats). With ``PROMETHEUS_MULTIPROC_DIR`` set to one
directory shared by every process of a host (the Procfile and ``mission-control dev`` do this),
prometheus-client's multiprocess mode writes them to files there (prometheus-client reads the variable
itself, at import) and the web's ``/metrics`` adds them all up (the web takes the directory from its
settings, ``Settings.prometheus_multiproc_dir``); without it, ``/metrics`` shows the web process's own.
State (services by state, unresolved alerts by kind, unfinished runs, queue depth) is read from
PostgreSQL and Redis when scraped, so it is the same whichever web process answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from mission_control.db.tables import alerts, jobs, runs, services

__all__ = [
    "ATTEMPT_SECONDS",
    "FIRING_LAG_SECONDS",
    "HEARTBEATS",
    "RUNS_FINISHED",
    "TICK_SECONDS",
    "exposition",
]

from mission_control.base.instruments import (
    ATTEMPT_SECONDS,
    FIRING_LAG_SECONDS,
    HEARTBEATS,
    RUNS_FINISHED,
    TICK_SECONDS,
)

UNFINISHED_STATUSES = ("queued", "running", "retrying")


class StateCollector:
    """Gauges read from the database (and the broker) on every scrape."""

    def __init__(self, engine: Engine, broker_url: str) -> None:
        self.engine = engine
        self.broker_url = broker_url

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.engine.connect() as conn:
            by_state = dict(
                conn.execute(select(services.c.state, func.count()).group_by(services.c.state)).all()
            )
            open_alerts = dict(
                conn.execute(
                    select(alerts.c.kind, func.count())
                    .where(alerts.c.state.in_(("open", "acknowledged")))
                    .group_by(alerts.c.kind)
                ).all()
            )
            unfinished = dict(
                conn.execute(
                    select(runs.c.status, func.count())
                    .where(runs.c.status.in_(UNFINISHED_STATUSES))
                    .group_by(runs.c.status)
                ).all()
            )
            enabled = dict(conn.execute(select(jobs.c.enabled, func.count()).group_by(jobs.c.enabled)).all())
        yield _gauge(
            "mc_services", "Services by state", "state", by_state, ("new", "up", "late", "down", "paused")
        )
        yield _gauge(
            "mc_alerts_unresolved",
            "Open or acknowledged alerts by kind",
            "kind",
            open_alerts,
            ("service_down", "job_failed", "job_slow", "job_missed"),
        )
        yield _gauge(
            "mc_runs_unfinished",
            "Runs not yet finished, by status",
            "status",
            unfinished,
            UNFINISHED_STATUSES,
        )
        yield _gauge(
            "mc_jobs",
            "Registered jobs",
            "enabled",
            {str(k).lower(): v for k, v in enabled.items()},
            ("true", "false"),
        )
        depth = _queue_depth(self.broker_url)
        if depth is not None:
            yield _gauge("mc_queue_depth", "Messages waiting in the broker", "queue", depth, ())


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


class _ThisProcess:
    """This process's own metrics, when there is no multiprocess directory to read them all from."""

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()


def exposition(engine: Engine, broker_url: str, multiproc_dir: str | None = None) -> bytes:
    """The text exposition for one scrape: every process's metrics (multiprocess mode, when
    ``multiproc_dir`` is the settings' ``PROMETHEUS_MULTIPROC_DIR``) plus state.

    A registry per scrape, so concurrent scrapes in one process never share collector state.
    """
    registry = CollectorRegistry()
    if multiproc_dir:
        multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
    else:
        registry.register(_ThisProcess())  # type: ignore[arg-type]
    registry.register(StateCollector(engine, broker_url))  # type: ignore[arg-type]
    return generate_latest(registry)
