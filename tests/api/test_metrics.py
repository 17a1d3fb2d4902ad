"""/metrics: Prometheus text that the official parser reads, behind the admin token, with live state."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import AUTH

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
