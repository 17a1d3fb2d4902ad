"""A real worker and a real beat serve their own /metrics on MC_METRICS_PORT, behind web's token rule.

Before, workers and beat had no endpoint: a worker's runs and attempt durations and beat's tick
durations were counted in processes nobody could scrape (web's /metrics showed no runs after 70 had
run). Now each serves its own, a worker and a beat on one host on different ports, and only a token
that may read web's /metrics (MC_ADMIN_TOKEN, or an unbound API token with ``metrics`` or ``admin``)
gets in.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from mission_control.base.clock import SYSTEM_CLOCK
from mission_control.db.api_tokens import ApiTokenStore
from mission_control.jobs.registry import JobRegistry
from tests.conftest import ADMIN_TOKEN, free_port, wait_until
from tests.e2e.conftest import runs_of
from tests.factories import job_spec

pytestmark = pytest.mark.slow


def scrape(port: int, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=10)


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def answers(port: int) -> bool:
    try:
        return scrape(port, None).status_code == 401
    except requests.ConnectionError:
        return False


def test_worker_and_beat_serve_their_own_metrics_behind_the_metrics_token(stack, e2e_engine, target):
    tokens = ApiTokenStore(e2e_engine, SYSTEM_CLOCK)
    metrics_token = tokens.create("prometheus", ["metrics"]).token
    reader = tokens.create("reader", ["read"]).token
    bound = tokens.create("billing-metrics", ["metrics"], service="billing").token
    revoked = tokens.create("old-prometheus", ["metrics"])
    tokens.revoke(revoked.row["id"])
    expired = tokens.create(
        "expired", ["metrics"], expires_at=SYSTEM_CLOCK.now() - timedelta(seconds=1)
    ).token

    JobRegistry(e2e_engine).put(job_spec("tick", target={"url": f"{target.url}/ok"}, schedule={"every_s": 1}))
    worker_port, beat_port = free_port(), free_port()
    stack.extra_env["MC_METRICS_ADDRESS"] = "127.0.0.1"
    stack.extra_env["MC_METRICS_PORT"] = str(worker_port)
    stack.worker()
    stack.extra_env["MC_METRICS_PORT"] = str(beat_port)  # the same variable, its own value on this host
    stack.beat()
    wait_until(lambda: answers(worker_port) and answers(beat_port), 20, "both endpoints to answer")

    for port in (worker_port, beat_port):
        assert scrape(port, None).status_code == 401
        assert scrape(port, "not-a-token").status_code == 401
        assert scrape(port, revoked.token).status_code == 401
        assert scrape(port, expired).status_code == 401
        assert scrape(port, reader).status_code == 403  # read does not grant /metrics on web either
        assert scrape(port, bound).status_code == 403  # bound to a service: web refuses it too
        assert scrape(port, ADMIN_TOKEN).status_code == 200
        assert scrape(port, metrics_token).status_code == 200
    assert requests.get(f"http://127.0.0.1:{worker_port}/other", timeout=10).status_code == 404

    def succeeded() -> int:
        return sum(run.status == "succeeded" for run in runs_of(e2e_engine, "tick"))

    wait_until(lambda: succeeded() >= 2, 30, "two runs of tick to succeed")

    def worker_counted() -> bool:
        found = values(scrape(worker_port, metrics_token).text)
        return found[("mc_runs_total", (("status", "succeeded"),))] >= 2

    wait_until(worker_counted, 10, "the worker to count its runs")
    found = values(scrape(worker_port, metrics_token).text)
    assert found[("mc_attempt_duration_seconds_count", ())] >= 2
    assert found[("mc_firing_lag_seconds_count", ())] >= 2
    assert found[("mc_runs_total", (("status", "failed"),))] == 0  # each final status from the start

    beat = values(scrape(beat_port, metrics_token).text)
    assert beat[("mc_scheduler_tick_seconds_count", ())] >= 1
    assert beat.get(("mc_runs_total", (("status", "succeeded"),)), 0) == 0  # the worker's, not beat's
    assert tokens.lookup(metrics_token)["last_used_at"] is not None  # touched as web touches it
