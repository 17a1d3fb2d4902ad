"""Small builders for test data."""

from __future__ import annotations

from typing import Any

from mission_control.jobs.spec import JobSpec


def job_body(name: str = "nightly-report", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "service": "billing",
        "target": {"url": "https://billing.internal/tasks/report", "headers": {"X-Team": "billing"}},
        "schedule": {"cron": "30 2 * * *", "timezone": "Europe/Riga"},
        "timeout_s": 20,
        "expected_runtime_s": 5,
        "retry": {"max_attempts": 3, "backoff_s": 2, "backoff_max_s": 60, "jitter": 0.1},
    }
    body.update(overrides)
    return body


def job_spec(name: str = "nightly-report", **overrides: Any) -> JobSpec:
    return JobSpec.model_validate(job_body(name, **overrides))
