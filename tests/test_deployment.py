"""Deployment files: the compose file validates with `docker compose config` and has every process."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker" / "compose.yaml"
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
