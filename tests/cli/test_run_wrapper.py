"""``mission-control run SERVICE -- CMD`` as a crontab runs it: a real process against a real server.

The command's output reaches the wrapper's stdout and stderr unchanged, its exit status is the
wrapper's, the run is reported (start with a fresh rid, then the exit code, the output's last 10 KiB
and a duration), and a server that refuses connections or never answers costs the command nothing
but a bounded wait and one line on stderr.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from mission_control.client import MissionControl
from tests.servers import free_port

pytestmark = pytest.mark.slow

PY = sys.executable


def wrapper(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [PY, "-m", "mission_control", "run", *args],
        env=env,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def mc(web_server) -> MissionControl:
    return MissionControl(web_server.url, web_server.token)


@pytest.fixture
def service(mc) -> str:
    name = f"cron-{uuid.uuid4().hex[:8]}"
    mc.put_service(name, interval_s=3600, grace_s=60, max_runtime_s=600)
    return name


@pytest.fixture
def env(web_server, mc, service) -> dict[str, str]:
    token = mc.create_service_token(service)["token"]
    base = {k: v for k, v in os.environ.items() if not k.startswith("MC_")}
    return {**base, "MC_URL": web_server.url, "MC_SERVICE_TOKEN": token}


def test_a_successful_command_is_reported_as_a_measured_run(mc, service, env):
    script = "import sys, time; print('to stdout'); print('to stderr', file=sys.stderr); time.sleep(0.2)"
    done = wrapper(service, "--", PY, "-c", script, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"to stdout\n"
    assert done.stderr == b"to stderr\n"  # nothing of the wrapper's own: every ping was delivered
    end, start = mc.events(service, limit=2)
    assert (start["status"], end["status"], end["exit_code"]) == ("start", "ok", 0)
    assert end["rid"] == start["rid"] and uuid.UUID(end["rid"])
    assert 0.2 <= end["duration_s"] < 30
    assert "to stdout" in end["message"] and "to stderr" in end["message"]
    assert mc.service(service)["state"] == "up" and mc.service(service)["open_runs"] == 0


def test_the_command_exit_status_is_kept_and_returned(mc, service, env):
    done = wrapper(service, "--", PY, "-c", "import sys; sys.exit(3)", env=env)
    assert done.returncode == 3 and done.stderr == b""
    [end] = mc.events(service, limit=1)
    assert (end["status"], end["exit_code"]) == ("fail", 3)
    assert mc.service(service)["state"] == "down"


def test_options_after_the_command_are_the_command_s(mc, service, env):
    done = wrapper(service, "--", PY, "-c", "import sys; print(sys.argv[1:])", "--url", "x", "-h", env=env)
    assert done.returncode == 0 and done.stdout == b"['--url', 'x', '-h']\n"


def test_only_the_last_10_kib_of_the_output_is_sent_but_all_of_it_is_passed_through(mc, service, env):
    script = "import sys; sys.stdout.write('a' * 50000 + 'THE END'); sys.stdout.flush()"
    done = wrapper(service, "--", PY, "-c", script, env=env)
    assert done.returncode == 0 and len(done.stdout) == 50007
    [end] = mc.events(service, limit=1)
    assert end["message"].endswith("THE END") and len(end["message"].encode()) == 10 * 1024
    assert end["truncated"] is False


def test_a_command_that_cannot_start_exits_127_and_is_reported(mc, service, env):
    done = wrapper(service, "--", "/nonexistent/command-xyz", env=env)
    assert done.returncode == 127
    assert done.stderr.decode().count("\n") == 1 and "command-xyz" in done.stderr.decode()
    [end] = mc.events(service, limit=1)
    assert (end["status"], end["exit_code"]) == ("fail", 127)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port on 127.0.0.1 that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.mark.parametrize("server", ["refused", "silent"])
def test_a_server_down_costs_a_bounded_wait_and_one_line(env, request, server):
    url = (
        f"http://127.0.0.1:{free_port()}" if server == "refused" else request.getfixturevalue("silent_server")
    )
    script = "import time, sys; print(time.time()); sys.exit(5)"
    launched = time.time()
    done = wrapper("--ping-budget", "2", "cron-down", "--", PY, "-c", script, env={**env, "MC_URL": url})
    elapsed = time.time() - launched
    assert done.returncode == 5
    started_after = float(done.stdout.decode()) - launched
    assert started_after < 5, started_after  # the start ping did not hold the command back
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mission-control run: cron-down"), lines
    assert elapsed < 2 + 2 + 8, elapsed  # start's budget, then the end's, plus the interpreters' start-up


def test_without_a_token_the_command_still_runs(env):
    bare = {k: v for k, v in env.items() if k not in ("MC_SERVICE_TOKEN", "MC_ADMIN_TOKEN")}
    done = wrapper("svc", "--", PY, "-c", "print('ran')", env=bare)
    assert done.returncode == 0 and done.stdout == b"ran\n"
    assert len(done.stderr.decode().splitlines()) == 1 and "no token" in done.stderr.decode()


def test_a_sigterm_to_the_wrapper_reaches_the_command_and_its_end_is_reported(mc, service, env):
    import select
    import signal

    script = "import time; print('ready', flush=True); time.sleep(60)"
    process = subprocess.Popen(
        [PY, "-m", "mission_control", "run", service, "--", PY, "-c", script],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert select.select([process.stdout], [], [], 30)[0], "the command never started"
        assert process.stdout.readline() == b"ready\n"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
    [end] = mc.events(service, limit=1)
    assert (end["status"], end["exit_code"]) == ("fail", 143)
