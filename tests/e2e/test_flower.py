"""Flower, as the Procfile runs it, starts against our broker, lists a running worker and its queues."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import free_port, wait_until

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
