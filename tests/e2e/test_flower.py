"""Flower, as the Procfile runs it: it lists a running worker and its queues, and the runs as tasks (a
failed run a failed task, named by job and run), without the housekeeping passes."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from mission_control.jobs.registry import JobRegistry
from tests.conftest import free_port, wait_until
from tests.e2e.conftest import runs_of
from tests.factories import job_spec

pytestmark = pytest.mark.slow


def test_flower_lists_the_worker(stack):
    stack.worker(name="inspected")
    port = free_port()
    stack.extra_env["FLOWER_BASIC_AUTH"] = "ops:secret-pw"  # as the Procfile's environment gives it
    stack.start("flower", "flower", "--address=127.0.0.1", f"--port={port}")
    url = f"http://127.0.0.1:{port}/api/workers?refresh=1"

    def lists_the_worker() -> bool:
        try:
            answer = requests.get(url, auth=("ops", "secret-pw"), timeout=5)
        except requests.RequestException:
            return False
        return answer.status_code == 200 and any(name.startswith("inspected@") for name in answer.json())

    wait_until(lists_the_worker, 60, "Flower to list the worker")
    assert requests.get(url, timeout=5).status_code == 401  # basic auth is enforced

    # The queue view picks its Redis inspector by the broker URL's scheme (our transport keeps it).
    lengths = requests.get(f"http://127.0.0.1:{port}/api/queues/length", auth=("ops", "secret-pw"), timeout=5)
    assert lengths.status_code == 200, lengths.text
    assert {queue["name"] for queue in lengths.json()["active_queues"]} >= {"triggers", "default"}


def test_flower_shows_runs_as_tasks_failed_ones_failed_and_no_housekeeping(stack, e2e_engine, target):
    stack.extra_env["MC_PRUNE_INTERVAL_S"] = "1"  # housekeeping every second, to show it stays out
    stack.extra_env["FLOWER_BASIC_AUTH"] = "ops:secret-pw"
    port = free_port()
    # Flower turns the workers' task events on itself (its enable_events broadcast): no -E needed.
    stack.start("flower", "flower", "--address=127.0.0.1", f"--port={port}")
    stack.worker(name="inspected")
    api = f"http://127.0.0.1:{port}/api"

    def get(path: str) -> Any:
        try:
            answer = requests.get(f"{api}/{path}", auth=("ops", "secret-pw"), timeout=5)
        except requests.RequestException:
            return None
        return answer.json() if answer.status_code == 200 else None

    wait_until(lambda: get("workers?refresh=1"), 60, "Flower to list the worker", interval_s=0.5)
    registry = JobRegistry(e2e_engine)
    registry.put(job_spec("fine", target={"url": f"{target.url}/ok"}, schedule={"every_s": 1}))
    registry.put(
        job_spec(
            "broken", target={"url": f"{target.url}/status/404"}, schedule={"every_s": 1}, concurrency="allow"
        )
    )
    stack.beat()

    def triggers_by_state() -> dict[str, list[dict[str, Any]]]:
        tasks = (get("tasks") or {}).values()
        by_state: dict[str, list[dict[str, Any]]] = {}
        for task in tasks:
            by_state.setdefault(task["state"], []).append(task)
        return by_state

    wait_until(
        lambda: {"SUCCESS", "FAILURE"} <= set(triggers_by_state()),
        60,
        "a succeeded and a failed trigger",
        interval_s=0.5,
    )
    # A trigger is named by its run and job, "(run 7, job fine)"; a requeue or a retry by its run alone,
    # "(run 7)" (a loaded machine requeues now and then). Failed tasks are runs of the broken job that
    # failed, succeeded ones runs of the fine job.
    by_state = triggers_by_state()  # before the runs: every task listed has its run in the database
    runs_by_job = {job: {run.id: run for run in runs_of(e2e_engine, job)} for job in ("fine", "broken")}
    for state, job in (("FAILURE", "broken"), ("SUCCESS", "fine")):
        for task in by_state[state]:
            assert task["name"] == "mission_control.trigger"
            named = re.fullmatch(r"\(run (\d+)(?:, job (\S+))?\)", task["args"])
            assert named is not None, task["args"]
            assert int(named[1]) in runs_by_job[job] and named[2] in (None, job), (state, task["args"])
    assert any("job broken" in task["args"] for task in by_state["FAILURE"])
    assert all(runs_by_job["broken"][int(re.findall(r"\d+", t["args"])[0])].status == "failed"
               for t in by_state["FAILURE"])  # fmt: skip

    # Housekeeping ran on the worker (its own counters say so) but is not in the task list.
    def pruned() -> bool:
        worker = next(iter((get("workers?refresh=1") or {}).values()), {})
        return worker.get("stats", {}).get("total", {}).get("mission_control.prune_runs", 0) >= 2

    wait_until(pruned, 30, "the worker to prune twice", interval_s=0.5)
    names = {task["name"] for task in (get("tasks") or {}).values()}
    assert names <= {"mission_control.trigger"}, names
