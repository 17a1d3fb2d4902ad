"""/metrics: Prometheus text that the official parser reads, behind a metrics token, with the fleet's state
read from the database at scrape time."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, select, update

from mission_control.base.instruments import FINAL_STATUSES
from mission_control.db.tables import alerts, jobs, missions, runs
from tests.api.conftest import AUTH
from tests.factories import job_body

pytestmark = pytest.mark.usefixtures("engine")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_need_the_admin_token_and_parse_cleanly(app, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    client.post("/api/v1/heartbeats/metered", headers=AUTH, json={"status": "ok"})
    client.post("/api/v1/heartbeats/broken", headers=AUTH, json={"status": "fail"})

    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    found = samples(response.get_data(as_text=True))
    assert found[("mc_services", (("state", "up"),))] == 1
    assert found[("mc_services", (("state", "down"),))] == 1
    assert found[("mc_services", (("state", "late"),))] == 0
    assert found[("mc_alerts_unresolved", (("kind", "service_down"),))] == 1
    assert found[("mc_heartbeats_total", (("status", "fail"),))] >= 1
    assert ("mc_runs_unfinished", (("status", "queued"),)) in found


def _settings_with(app, **changes):
    state = app.extensions["mission_control"]
    app.extensions["mission_control"] = dataclasses.replace(
        state, settings=state.settings.model_copy(update=changes)
    )


def test_fleet_figures_are_read_from_the_database_at_scrape_time(app, engine, clock, monkeypatch):
    """Runs by final status (the last hour), jobs failing and behind schedule, missions by status: the
    database's, so every web process answers the same; no per-job series unless asked for."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    for name in ("alpha", "bravo", "charlie"):
        assert app.test_client().post("/api/v1/jobs", headers=AUTH, json=job_body(name)).status_code == 201
    now = clock.now()
    with engine.begin() as conn:
        ids = dict(conn.execute(select(jobs.c.name, jobs.c.id)).all())

        def run(job: str, status: str, finished_ago_s: float | None, slot: int) -> dict:
            finished = None if finished_ago_s is None else now - timedelta(seconds=finished_ago_s)
            return dict(
                job_id=ids[job], job_name=job, scheduled_for=now - timedelta(hours=3, minutes=slot),
                trigger="schedule", status=status, max_attempts=1, created_at=now - timedelta(hours=3),
                finished_at=finished,
            )  # fmt: skip

        conn.execute(
            insert(runs),
            [
                run("alpha", "succeeded", 60, 1),
                run("alpha", "succeeded", 120, 2),
                run("alpha", "failed", 30, 3),
                run("bravo", "timed_out", 600, 4),
                run("bravo", "succeeded", 2 * 3600, 5),  # finished before the last hour
                run("charlie", "running", None, 6),
            ],
        )
        conn.execute(
            insert(alerts).values(
                kind="job_failed", subject="alpha", state="open", message="failed",
                opened_at=now, last_seen_at=now,
            )
        )  # fmt: skip
        conn.execute(update(jobs).where(jobs.c.name == "bravo").values(next_run_at=now - timedelta(hours=1)))
        conn.execute(
            insert(missions),
            [
                dict(id=f"m{i}", definition="d", version=1, status=status, doc={}, revision=1,
                     created_at=now, updated_at=now)
                for i, status in enumerate(["waiting", "waiting", "completed"])
            ],
        )  # fmt: skip

    found = samples(app.test_client().get("/metrics", headers=AUTH).get_data(as_text=True))
    finished = {s: found[("mc_runs_finished_last_hour", (("status", s),))] for s in FINAL_STATUSES}
    assert finished == {"succeeded": 2, "failed": 1, "timed_out": 1, "skipped": 0, "cancelled": 0}
    assert found[("mc_runs_unfinished", (("status", "running"),))] == 1
    assert found[("mc_jobs_failing", ())] == 1
    assert found[("mc_jobs_behind_schedule", ())] == 1
    assert found[("mc_missions", (("status", "waiting"),))] == 2
    assert found[("mc_missions", (("status", "completed"),))] == 1
    assert found[("mc_missions", (("status", "failed"),))] == 0
    assert not any(name == "mc_job_last_success_timestamp_seconds" for name, _ in found)

    # Per-job series only with MC_METRICS_JOB_SERIES, and only that many (the first enabled by name).
    _settings_with(app, metrics_job_series=2)
    found = samples(app.test_client().get("/metrics", headers=AUTH).get_data(as_text=True))
    last = {
        dict(labels)["job_name"]: value
        for (name, labels), value in found.items()
        if name == "mc_job_last_success_timestamp_seconds"
    }
    assert last == {
        "alpha": (now - timedelta(seconds=60)).timestamp(),
        "bravo": (now - timedelta(hours=2)).timestamp(),
    }


def test_a_metrics_only_token_reads_metrics(api, app, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    token = api.post("/api/v1/tokens", json={"name": "prometheus", "scopes": ["metrics"]}).get_json()["token"]
    client = app.test_client()
    assert client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 403
