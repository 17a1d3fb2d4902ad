"""The counters and histograms processes add to as they work (prometheus-client instruments).

They sit at the bottom because every part observes something (the executor runs and attempt durations,
the beat its ticks, the web heartbeats) and none of those parts may import the runtime above them;
reading them out is the runtime's job: web's ``/metrics`` (:mod:`mission_control.runtime.metrics`,
which adds up its gunicorn processes' multiprocess files and the gauges read from the database at
scrape time) and a worker's or beat's own ``/metrics`` on ``MC_METRICS_PORT``
(:mod:`mission_control.runtime.metrics_server`).

Every label value a counter can take is created at import (at 0), so a series exists from a process's
start and ``rate()``/``increase()`` see its first increment instead of a series appearing at 1.
"""

from __future__ import annotations

import threading

from prometheus_client import Counter, Histogram

# Each run once, when it ends, by the status it ended in (succeeded, failed, timed_out, skipped,
# cancelled): an attempt that leaves it retrying is not a run's end. No job label: one series per job
# and status is 600k series at 100k jobs (runs per job are in the database and GET /api/v1/runs).
RUNS_FINISHED = Counter("mc_runs_total", "Runs by the status they finished in, counted once", ["status"])
# Per job, only when asked for (MC_METRICS_JOB_SERIES > 0), and bounded: the first that many jobs a
# process sees end get their own label, any later one counts as job_name="_other" (not "job":
# Prometheus renames a scraped "job" label to exported_job, its own "job" being the scrape job).
JOB_RUNS_FINISHED = Counter(
    "mc_job_runs_total",
    "Runs by job (a bounded set) and the status they finished in",
    ["job_name", "status"],
)
OTHER_JOBS = "_other"
_jobs_labelled: set[str] = set()
_jobs_labelled_lock = threading.Lock()
ATTEMPT_SECONDS = Histogram(
    "mc_attempt_duration_seconds",
    "Duration of HTTP attempts",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
FIRING_LAG_SECONDS = Histogram(
    "mc_firing_lag_seconds",
    "From a slot's instant to its first attempt's start",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
TICK_SECONDS = Histogram(
    "mc_scheduler_tick_seconds",
    "Duration of one scheduler tick",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
HEARTBEATS = Counter("mc_heartbeats_total", "Heartbeats recorded", ["status"])

FINAL_STATUSES = ("succeeded", "failed", "timed_out", "skipped", "cancelled")
for _status in FINAL_STATUSES:
    RUNS_FINISHED.labels(_status)
for _status in ("ok", "fail"):
    HEARTBEATS.labels(_status)


def count_run(job: str, status: str, job_series: int = 0) -> None:
    """Count one run that ended in ``status``: in ``mc_runs_total``, and in ``mc_job_runs_total`` under
    its job if ``job_series`` > 0 and this process labels fewer than ``job_series`` other jobs (else under
    ``_other``), so a process holds at most ``job_series`` + 1 jobs' series however many jobs there are."""
    RUNS_FINISHED.labels(status).inc()
    if job_series <= 0:
        return
    if job not in _jobs_labelled:
        with _jobs_labelled_lock:
            if job not in _jobs_labelled and len(_jobs_labelled) < job_series:
                _jobs_labelled.add(job)
        if job not in _jobs_labelled:
            job = OTHER_JOBS
    JOB_RUNS_FINISHED.labels(job, status).inc()
