"""Celery as people run it: `celery -A mission_control worker` and `... beat` with no -Q and no -S.

The configuration declares the queues and the beat scheduler, so the commands from Celery's own
documentation fire the registry's jobs (issue 16: a worker without -Q consumed only `default`, a beat
without -S ran Celery's file-backed scheduler, and nothing ever fired).
"""

from __future__ import annotations

import sys

import pytest

from mission_control.jobs.registry import JobRegistry
from tests.conftest import wait_until
from tests.e2e.conftest import runs_of
from tests.factories import job_spec

pytestmark = pytest.mark.slow

PLAIN = (sys.executable, "-m", "celery", "-A", "mission_control")


def test_plain_worker_and_beat_fire_the_registrys_jobs(stack, e2e_engine, target, tmp_path):
    JobRegistry(e2e_engine).put(
        job_spec("plain", target={"url": f"{target.url}/ok"}, schedule={"every_s": 1})
    )
    schedule_file = tmp_path / "celerybeat-schedule"
    stack.start("worker", "worker", "-P", "threads", "-c", "4", "-l", "info", command=PLAIN)
    stack.start("beat", "beat", "-l", "info", f"--schedule={schedule_file}", command=PLAIN)

    target.wait_for(1, "/ok", timeout_s=30)
    wait_until(
        lambda: any(run.status == "succeeded" for run in runs_of(e2e_engine, "plain")), 20, "a run to succeed"
    )
    assert not list(tmp_path.glob("celerybeat-schedule*"))  # the registry's scheduler, not Celery's own
