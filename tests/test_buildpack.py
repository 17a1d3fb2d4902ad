"""What a Heroku-style Python buildpack reads, and the app it builds run the way the platform runs it.

The buildpack installs ``requirements.txt`` (nothing else: no ``-c constraints.txt``, no extras) on the
Python of ``.python-version``, then the platform runs the Procfile's lines with only its own variables:
``DATABASE_URL`` (``postgres://``), ``REDIS_URL``, ``PORT`` and the app's config vars (app.json).
Before, the repository had none of these files and the buildpack refused it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mission_control.base.config import Settings
from tests.conftest import free_port, wait_until
from tests.e2e.conftest import RedisServer
from tests.servers import offline_pip_env
from tests.targets import TargetServer

REPO = Path(__file__).resolve().parents[1]
APP_JSON = json.loads((REPO / "app.json").read_text())


def procfile() -> dict[str, str]:
    lines = (REPO / "Procfile").read_text().splitlines()
    return {
        name.strip(): command.strip()
        for name, _, command in (line.partition(":") for line in lines if line.strip())
    }


def app_json_env() -> dict[str, str]:
    """The config vars app.json gives a new app, a generated secret as the platform makes one."""
    env = {}
    for name, spec in APP_JSON["env"].items():
        env[name] = secrets.token_hex(32) if spec.get("generator") == "secret" else spec["value"]
    return env


def test_requirements_txt_pins_the_runtime_part_of_constraints_txt():
    done = subprocess.run(
        [sys.executable, "scripts/requirements_txt.py", "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [
        line for line in (REPO / "requirements.txt").read_text().splitlines() if not line.startswith("#")
    ]
    assert lines[0] == ".[flower]"  # the Procfile's flower process starts on the platform too
    pinned = set((REPO / "constraints.txt").read_text().splitlines())
    assert set(lines[1:]) <= pinned
    assert "flower==" in {line.split("==")[0] + "==" for line in lines}
    assert not {"pytest==", "ruff==", "honcho==", "hypothesis=="} & {
        line.split("==")[0] + "==" for line in lines
    }


def test_python_version_is_the_one_ci_tests():
    version = (REPO / ".python-version").read_text().strip()
    assert version == "3.11" == f"{sys.version_info.major}.{sys.version_info.minor}"


def test_app_json_provisions_what_the_processes_need():
    plans = [addon["plan"] if isinstance(addon, dict) else addon for addon in APP_JSON["addons"]]
    assert any(plan.startswith("heroku-postgresql") for plan in plans)
    assert any(plan.startswith("heroku-redis") for plan in plans)
    assert set(APP_JSON["formation"]) == {"web", "worker", "beat", "flower"} == set(procfile()) - {"release"}
    assert APP_JSON["formation"]["flower"]["quantity"] == 0  # scaled up by an operator who wants it
    assert procfile()["release"] == "mission-control db upgrade"
    generated = {name for name, spec in APP_JSON["env"].items() if spec.get("generator") == "secret"}
    assert {"MC_ADMIN_TOKEN", "MC_SIGNING_SECRET", "MC_SECRET_KEY", "MC_SESSION_SECRET"} <= generated
    platform = {
        "DATABASE_URL": "postgres://u:p@db.example:5432/d",
        "REDIS_URL": "rediss://:p@r.example:6380",
        "PORT": "5000",
    }
    settings = Settings.from_env({**platform, **app_json_env()})
    settings.require_secrets()
    assert settings.db_pool * (settings.web_concurrency + 2) + 3 <= 20
    assert settings.broker_url.endswith("ssl_cert_reqs=none")


def _slug(destination: Path) -> Path:
    """The files a `git push` would send (tracked, and new ones not ignored), as the build directory."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def _connections(admin_url: str, database: str) -> int:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d"), {"d": database}
                ).scalar_one()
            )
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_buildpack_install_runs_release_web_worker_and_beat_and_a_job_succeeds(tmp_path, postgres):
    app = _slug(tmp_path / "app")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    install = subprocess.run([venv / "bin/pip", "install", "-q", "-r", "requirements.txt"], cwd=app,
                             env=offline_pip_env(), capture_output=True, text=True, timeout=240)  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    frozen = subprocess.run(
        [venv / "bin/pip", "freeze", "--exclude", "mission-control"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wanted = [line for line in (app / "requirements.txt").read_text().splitlines() if "==" in line]
    assert sorted(frozen.split(), key=str.lower) == sorted(wanted, key=str.lower)

    database_url = postgres.create("buildpack")
    database = make_url(database_url).database
    redis_server = RedisServer(tmp_path)
    target = TargetServer().start()
    logs = tmp_path / "logs"
    logs.mkdir()
    port = free_port()
    env = {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(app),
        "LANG": "C.UTF-8",
        "DATABASE_URL": "postgres://" + database_url.split("://", 1)[1],
        "PORT": str(port),
        **app_json_env(),
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str) -> subprocess.Popen[bytes]:
        log = (logs / f"{name}.log").open("ab")
        process = subprocess.Popen(["bash", "-c", procfile()[name]], cwd=app, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        processes[name] = process
        return process

    def alive() -> None:
        for name, process in processes.items():
            if process.poll() is not None:
                raise AssertionError(
                    f"{name} exited {process.returncode}:\n{(logs / f'{name}.log').read_text()[-3000:]}"
                )

    try:
        redis_server.start()
        env["REDIS_URL"] = redis_server.url
        release = start("release")
        assert release.wait(timeout=60) == 0, (logs / "release.log").read_text()[-3000:]
        processes.pop("release")
        env["FLOWER_PORT"] = str(free_port())
        for name in ("web", "worker", "beat", "flower"):
            start(name)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {env['MC_ADMIN_TOKEN']}"}

        def web_answers() -> bool:
            alive()
            try:
                return requests.get(f"{base}/api/v1/jobs", headers=headers, timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(web_answers, 30, "web to answer")

        def flower_answers() -> bool:
            alive()
            try:
                url = f"http://127.0.0.1:{env['FLOWER_PORT']}/healthcheck"
                return requests.get(url, timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(flower_answers, 30, "the Procfile's flower to answer")
        job = {"service": "billing", "target": {"url": f"{target.url}/ok"}, "schedule": {"every_s": 1}}
        put = requests.put(f"{base}/api/v1/jobs/billing.buildpack", json=job, headers=headers, timeout=5)
        assert put.status_code == 201, put.text
        most = 0

        def succeeded() -> bool:
            nonlocal most
            alive()
            most = max(most, _connections(postgres.admin_url, database))
            answer = requests.get(
                f"{base}/api/v1/runs", params={"job": "billing.buildpack"}, headers=headers, timeout=5
            )
            body = answer.json()
            runs = body["runs"]
            return any(run["status"] == "succeeded" for run in runs)

        wait_until(succeeded, 45, "a run of the job to succeed", interval_s=0.5)

        # Under load: 40 more jobs firing every second, and 16 API reads at a time on the web.
        def put(i: int) -> int:
            load_job = {**job, "service": "load"}
            return requests.put(
                f"{base}/api/v1/jobs/load.job-{i}", json=load_job, headers=headers, timeout=10
            ).status_code

        def read(_: int) -> int:
            return requests.get(f"{base}/api/v1/runs", headers=headers, timeout=10).status_code

        with ThreadPoolExecutor(16) as pool:
            assert set(pool.map(put, range(40))) == {201}
            sent = len(target.requests_to("/ok"))

            def loaded() -> bool:
                nonlocal most
                alive()
                assert set(pool.map(read, range(16))) == {200}
                most = max(most, _connections(postgres.admin_url, database))
                return len(target.requests_to("/ok")) >= sent + 120

            wait_until(loaded, 45, "120 more triggers under load", interval_s=0.1)
        assert 4 < most <= int(env["MC_DB_MAX_CONNECTIONS"])
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        redis_server.stop()
        target.stop()
