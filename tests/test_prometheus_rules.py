"""The shipped Prometheus rules and Grafana dashboard load, do what they say, and name only real series.

``examples/prometheus/alerts.yml`` goes through ``promtool check rules`` and its unit tests
(``alerts_test.yml``) through ``promtool test rules``; the dashboard's queries are checked by promtool
as recording rules. Then every ``mc_*`` name either uses is looked for in what a real
``mission-control web`` serves on /metrics and what a worker's or beat's endpoint serves, so a renamed
series cannot leave the examples behind. promtool is Debian's ``prometheus`` package.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, select

from mission_control.base.clock import SYSTEM_CLOCK
from mission_control.db import migrate
from mission_control.db.api_tokens import ApiTokenStore
from mission_control.db.engine import make_engine
from mission_control.db.tables import jobs, runs
from mission_control.jobs.registry import JobRegistry
from mission_control.runtime.metrics_server import MetricsAccess, MetricsServer, metrics_app
from tests.conftest import ADMIN_TOKEN, start_web, stop
from tests.e2e.conftest import RedisServer
from tests.factories import job_spec

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "examples" / "prometheus"
DASHBOARD = REPO / "examples" / "grafana" / "mission-control.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus) to check the rules"
)
METRIC = re.compile(r"\b(mc_[a-z0-9_]+)\b")


def promtool(*args: str, cwd: Path = RULES) -> None:
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def rule_expressions() -> list[str]:
    groups = yaml.safe_load((RULES / "alerts.yml").read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


@needs_promtool
def test_the_alerting_rules_load_and_pass_their_unit_tests() -> None:
    promtool("check", "rules", "alerts.yml")
    promtool("test", "rules", "alerts_test.yml")
    promtool("check", "config", "--syntax-only", "prometheus.yml")


@needs_promtool
def test_the_dashboards_queries_are_valid_promql(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": e}
                    for i, e in enumerate(dashboard_expressions())
                ],
            }
        ]
    }
    (tmp_path / "dashboard_rules.yml").write_text(yaml.safe_dump(rules))
    promtool("check", "rules", "dashboard_rules.yml", cwd=tmp_path)


def exposed_names(text: str) -> set[str]:
    """Every name a scrape of ``text`` can be queried by (samples, and families without samples yet)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
    return names


@pytest.fixture
def redis_broker(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_every_series_the_rules_and_dashboard_use_is_exposed(postgres, tmp_path: Path, redis_broker) -> None:
    url = postgres.create("rules")
    engine = make_engine(url)
    migrate.upgrade(engine)
    JobRegistry(engine).put(job_spec("nightly"))
    now = datetime.now(UTC)
    with engine.begin() as conn:
        job_id = conn.execute(select(jobs.c.id)).scalar_one()
        conn.execute(
            insert(runs).values(
                job_id=job_id, job_name="nightly", scheduled_for=now - timedelta(minutes=1), trigger="manual",
                status="succeeded", max_attempts=1, created_at=now, finished_at=now,
            )
        )  # fmt: skip
    web = start_web(url, tmp_path / "web.log", MC_BROKER_URL=redis_broker.url, MC_METRICS_JOB_SERIES="10")
    process = MetricsServer(
        metrics_app(MetricsAccess(ApiTokenStore(engine, SYSTEM_CLOCK), ADMIN_TOKEN)), "127.0.0.1", 0
    ).start()  # what a worker and a beat serve: this process holds the same instruments
    try:
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        web_text = requests.get(web.url + "/metrics", headers=auth, timeout=10).text
        process_text = requests.get(f"http://127.0.0.1:{process.port}/metrics", headers=auth, timeout=10).text
    finally:
        process.stop()
        stop(web.process)
        engine.dispose()
    exposed = exposed_names(web_text) | exposed_names(process_text)
    used = {name for expr in rule_expressions() + dashboard_expressions() for name in METRIC.findall(expr)}
    assert used, "no mc_ series found in the examples"
    assert used <= exposed, f"used by the examples but exposed by nothing: {sorted(used - exposed)}"
    # The per-process figures are the workers' and beat's to serve, not only web's own.
    assert {"mc_runs_total", "mc_attempt_duration_seconds_bucket", "mc_scheduler_tick_seconds_bucket"} <= (
        exposed_names(process_text)
    )
