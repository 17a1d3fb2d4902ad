"""The counters and histograms processes add to as they work (prometheus-client instruments).

They sit at the bottom because every part observes something (the executor runs and attempt durations,
the beat its ticks, the web heartbeats) and none of those parts may import the runtime above them;
reading them out (``/metrics``, with the multiprocess files and the gauges read from the database at
scrape time) is :mod:`mission_control.runtime.metrics`' job.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Each run once, when it ends, by the status it ended in (succeeded, failed, timed_out, skipped,
# cancelled): an attempt that leaves it retrying is not a run's end. No job label: one series per job
# and status is 600k series at 100k jobs (runs per job are in the database and GET /api/v1/runs).
RUNS_FINISHED = Counter("mc_runs_total", "Runs by the status they finished in, counted once", ["status"])
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
