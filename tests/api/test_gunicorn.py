"""Smoke test of the real server process: gunicorn, real sockets, real PostgreSQL."""

from __future__ import annotations

import pytest
import requests

from tests.factories import job_body

pytestmark = pytest.mark.slow


def test_a_job_registered_over_http_is_served_back(web_server):
    auth = {"Authorization": f"Bearer {web_server.token}"}
    url = f"{web_server.url}/api/v1/jobs/smoke"
    created = requests.put(url, json=job_body("smoke"), headers=auth, timeout=10)
    assert created.status_code == 201
    fetched = requests.get(url, headers=auth, timeout=10)
    assert fetched.json() == created.json()
    assert requests.get(f"{web_server.url}/api/v1/jobs", timeout=10).status_code == 401
    assert requests.delete(url, headers=auth, timeout=10).status_code == 204


def test_a_10_mb_request_gets_a_413_over_a_real_socket(web_server):
    auth = {"Authorization": f"Bearer {web_server.token}", "Content-Type": "application/json"}
    response = requests.put(
        f"{web_server.url}/api/v1/jobs/huge",
        data=b'{"x": "' + b"x" * 10_000_000 + b'"}',
        headers=auth,
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert requests.get(f"{web_server.url}/healthz", timeout=5).status_code == 200


def test_errors_are_json_not_html(web_server):
    response = requests.get(
        f"{web_server.url}/api/v1/nowhere", headers={"Authorization": "Bearer x" * 3}, timeout=5
    )
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
