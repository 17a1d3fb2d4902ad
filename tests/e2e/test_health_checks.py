"""The containers' health checks against real processes: each ``mission-control health <kind>`` that
docker/compose.yaml declares answers 0 while its process runs and 1, with one line on stderr, once it is
stopped (beat: also while its loop is frozen, and again 0 when it resumes). Redis's check is run against
a real redis-server too.

The probes run as Docker runs them, as commands of their own with the service's environment.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import free_port, stop, wait_until
from tests.e2e.conftest import REPO, RedisServer, Stack

pytestmark = pytest.mark.slow


def probe(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mission_control", "health", *args],
        env=stack.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )


def healthy(stack: Stack, *args: str) -> bool:
    return probe(stack, *args).returncode == 0


def assert_unhealthy(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(word in lines[0] for word in words), lines


def compose_command(service: str) -> list[str]:
    return yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())["services"][service]["command"]


def test_web_is_healthy_while_it_serves_and_not_once_stopped(stack):
    port = free_port()
    stack.extra_env["PORT"] = str(port)  # as the image sets it; the probe reads it too
    stack.start("web", "-m", "mission_control", "web", "--host", "127.0.0.1", "--workers", "1",
                command=(sys.executable,))  # fmt: skip
    wait_until(lambda: healthy(stack, "web"), 30, "web's probe to pass", interval_s=0.2)
    assert f"http://127.0.0.1:{port}/healthz answered 200" in probe(stack, "web").stdout
    stack.stop("web")
    assert_unhealthy(probe(stack, "web"), f"127.0.0.1:{port}/healthz", "no answer", "refused")


def test_a_worker_answers_its_ping_by_this_hosts_node_name_and_not_once_stopped(stack):
    # compose's worker command as it is (no -n: the node is celery@<hostname>), with fewer threads
    command = compose_command("worker")
    assert command[0] == "celery" and "-n" not in command
    arguments = command[command.index("worker") :]
    arguments[arguments.index("-c") + 1] = "4"
    log = stack.logs / "worker.log"
    stack.start("worker", *arguments)
    wait_until(lambda: log.exists() and "ready." in log.read_text(), 30, "the worker to be ready")

    result = probe(stack, "worker")
    assert result.returncode == 0, result.stderr
    assert "celery@" in result.stdout and "'ok': 'pong'" in result.stdout
    assert_unhealthy(probe(stack, "worker", "-d", "nobody@%h", "--timeout", "0.5"), "nobody@", "no pong")
    stack.stop("worker")
    assert_unhealthy(probe(stack, "worker", "--timeout", "0.5"), "celery@", "no pong within 0.5 s")

    stack.redis.stop()  # and with no broker at all, it fails within its deadline, with one line
    assert_unhealthy(probe(stack, "worker", "--timeout", "0.5"), "cannot ask the broker")


def test_beat_is_healthy_while_its_loop_runs_not_while_frozen_and_not_once_stopped(stack, tmp_path):
    mark = tmp_path / "beat.alive"
    log = stack.logs / "beat.log"
    process = stack.start("beat", "-m", "mission_control", "beat", "-l", "info", "--liveness-file", str(mark),
                          command=(sys.executable,))  # fmt: skip
    check = ("beat", "--liveness-file", str(mark), "--max-age", "2")
    wait_until(lambda: healthy(stack, *check), 30, "beat's first mark", interval_s=0.2)
    assert "the scheduler loop runs" in probe(stack, *check).stdout

    os.killpg(process.pid, signal.SIGSTOP)  # a loop that no longer turns: a hang, a deadlock
    try:
        wait_until(lambda: probe(stack, *check).returncode == 1, 15, "the frozen beat's mark to age")
        assert_unhealthy(probe(stack, *check), "last registry pass", "stopped or stuck")
    finally:
        os.killpg(process.pid, signal.SIGCONT)
    wait_until(lambda: healthy(stack, *check), 15, "the resumed beat's mark", interval_s=0.2)

    stack.stop("beat")
    assert "beat: Starting" in log.read_text()
    assert not mark.exists()  # a stopped beat takes its mark away: unhealthy at once, not in 30 s
    assert_unhealthy(probe(stack, *check), "no liveness mark", str(mark))


@pytest.mark.skipif(importlib.util.find_spec("flower") is None, reason="the flower extra is not installed")
def test_flower_is_healthy_while_it_serves_without_credentials_and_not_once_stopped(stack):
    port = free_port()
    stack.extra_env["FLOWER_BASIC_AUTH"] = "ops:secret-pw"  # the probe needs none
    stack.start("flower", "flower", "--address=127.0.0.1", f"--port={port}")
    check = ("flower", "--port", str(port))
    wait_until(lambda: healthy(stack, *check), 60, "Flower's probe to pass", interval_s=0.2)
    stack.stop("flower")
    assert_unhealthy(probe(stack, *check), f"127.0.0.1:{port}/healthcheck", "no answer")


def test_the_beat_probe_reads_the_mark_beat_writes_by_default(stack, tmp_path):
    # No option on either side, as compose runs them: both resolve the same file in the temp directory.
    stack.extra_env["TMPDIR"] = str(tmp_path)  # a temp directory of this test's own
    stack.beat()
    wait_until(lambda: healthy(stack, "beat"), 30, "beat's default mark", interval_s=0.2)
    assert (Path(tmp_path) / "mission-control-beat.alive").exists()
    stack.stop("beat")
    assert_unhealthy(probe(stack, "beat"), "no liveness mark")


def test_the_redis_check_wants_a_pong_not_just_an_answer(tmp_path):
    # redis-cli exits 0 on an error reply (LOADING while Redis starts, NOAUTH here), so compose's check
    # pipes it through grep; run it against a real redis-server that answers every ping with an error.
    server = RedisServer(tmp_path)
    assert server.binary is not None
    cli = server.binary.with_name("redis-cli")
    if not cli.exists():
        pytest.skip(f"no redis-cli beside {server.binary}")
    check = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())["services"]["redis"]["healthcheck"]
    assert check["test"][0] == "CMD-SHELL" and check["test"][1].startswith("redis-cli ")
    shell = check["test"][1].replace("redis-cli", f"{cli} -p {server.port}", 1)
    locked = subprocess.Popen(
        [server.binary, *server.arguments(), "--requirepass", "not-given"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        bare = [str(cli), "-p", str(server.port), "ping"]
        wait_until(
            lambda: "NOAUTH" in subprocess.run(bare, capture_output=True, text=True).stdout, 10, "Redis"
        )
        assert subprocess.run(bare, capture_output=True).returncode == 0  # what the pipe guards against
        assert subprocess.run(["sh", "-c", shell]).returncode == 1
    finally:
        stop(locked)
    server.start()
    try:
        assert subprocess.run(["sh", "-c", shell]).returncode == 0
    finally:
        server.stop()
