"""``mission-control web`` honours gunicorn's own configuration: GUNICORN_CMD_ARGS and gunicorn.conf.py.

Before, ``web`` built a bare BaseApplication that read neither, so ``GUNICORN_CMD_ARGS="--workers 3"``
still booted WEB_CONCURRENCY's two. The settings Mission Control's safety rests on (the buffering
worker class, the access log line without query strings, trusting no forwarded headers) stay ours.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mission_control.base.config import Settings
from tests.conftest import stop, wait_until
from tests.servers import free_port


def _environment(tmp_path: Path, **overrides: str) -> dict[str, str]:
    read = {name for field in Settings.model_fields for name in Settings.env_names(field)}
    env = {k: v for k, v in os.environ.items() if k not in read and not k.startswith(("MC_", "GUNICORN"))}
    env.update(
        MC_DATABASE_URL=f"sqlite:///{tmp_path / 'registry.db'}",
        MC_BROKER_URL="memory://",
        MC_ADMIN_TOKEN="a" * 32,
        MC_SIGNING_SECRET="s" * 32,
        WEB_CONCURRENCY="2",
        **overrides,
    )
    return env


def _printed_config(tmp_path: Path, **env: str) -> dict[str, str]:
    """gunicorn's --print-config (given through GUNICORN_CMD_ARGS): its settings as name -> text."""
    done = subprocess.run(
        [sys.executable, "-m", "mission_control", "web", "--host", "127.0.0.1"],
        env=_environment(tmp_path, **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    settings = {}
    for line in done.stdout.splitlines():
        name, sep, value = line.partition(" = ")
        if sep:
            settings[name.strip()] = value.strip()
    return settings


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


@pytest.mark.slow
def test_gunicorn_cmd_args_workers_3_boots_three_workers(tmp_path):
    env = _environment(tmp_path, PORT=str(free_port()), GUNICORN_CMD_ARGS="--workers 3")
    process = subprocess.Popen(
        [sys.executable, "-m", "mission_control", "web", "--host", "127.0.0.1"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: len(_children(process.pid)) >= 3, 30, "three gunicorn workers")
        assert len(_children(process.pid)) == 3
    finally:
        stop(process)


def test_a_gunicorn_conf_py_in_the_working_directory_is_read(tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text("workers = 5\nthreads = 4\nkeepalive = 7\n")
    settings = _printed_config(tmp_path, GUNICORN_CMD_ARGS="--print-config")
    assert (settings["workers"], settings["threads"], settings["keepalive"]) == ("5", "4", "7")


def test_gunicorn_cmd_args_win_over_its_config_file_and_both_over_our_variables(tmp_path):
    (tmp_path / "other.py").write_text("workers = 5\ntimeout = 90\n")
    args = "--print-config -c other.py --workers 4"
    settings = _printed_config(tmp_path, GUNICORN_CMD_ARGS=args, WEB_THREADS="3")
    assert (settings["workers"], settings["timeout"], settings["threads"]) == ("4", "90", "3")


def test_the_settings_our_safety_rests_on_cannot_be_configured_away(tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text("worker_class = 'sync'\naccess_log_format = '%(r)s'\n")
    settings = _printed_config(
        tmp_path, GUNICORN_CMD_ARGS="--print-config --forwarded-allow-ips=*", FORWARDED_ALLOW_IPS="*"
    )
    assert settings["forwarded_allow_ips"] == "[]"
    assert "BufferingThreadWorker" in settings["worker_class"]
    assert "%(U)s" in settings["access_log_format"]
