"""A setting that cannot be used stops every process at start-up: one line naming the variable, status 1.

Each entry point a deployment runs (the Procfile's release, web, worker and beat) is started as a real
process with ``MC_DB_POOL_SIZE=abc``. Before the settings were read in one place that variable was
parsed only where PostgreSQL engines were built, so on SQLite these processes started regardless, and
elsewhere it ended in a bare ``ValueError`` traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mission_control.base.config import Settings

EXPECTED = "Error: MC_DB_POOL_SIZE must be an integer, got 'abc'"
DEADLINE_S = 45

ENTRY_POINTS = {
    "release": ["-m", "mission_control", "db", "upgrade"],
    "web": ["-m", "mission_control", "web", "--host", "127.0.0.1", "--port", "1"],
    "worker": ["-m", "celery", "-A", "mission_control.celery_app", "worker", "-P", "solo", "--without-mingle",
               "--without-gossip", "-l", "warning"],
    "beat": ["-m", "mission_control", "beat", "-l", "warning"],
    "celery beat": ["-m", "celery", "-A", "mission_control.celery_app", "beat", "-l", "warning"],
}  # fmt: skip


def _environment(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """This environment without any variable the settings read, then a complete local configuration."""
    read = {name for field in Settings.model_fields for name in Settings.env_names(field)}
    env = {k: v for k, v in os.environ.items() if k not in read and not k.startswith("MC_")}
    env.update(
        MC_DATABASE_URL=f"sqlite:///{tmp_path / 'registry.db'}",
        MC_BROKER_URL="memory://",
        MC_ADMIN_TOKEN="a" * 32,
        MC_SIGNING_SECRET="s" * 32,
        **overrides,
    )
    return env


def _start(arguments: list[str], tmp_path: Path, env: dict[str, str]) -> tuple[int | None, str]:
    """Its exit status (None: still running at the deadline, then stopped) and its stderr."""
    process = subprocess.Popen(
        [sys.executable, *arguments],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = process.communicate(timeout=DEADLINE_S)
        return process.returncode, stderr
    except subprocess.TimeoutExpired:  # it started: the refusal the test expects did not happen
        process.kill()
        _, stderr = process.communicate(timeout=30)
        return None, stderr


@pytest.mark.parametrize("entry_point", list(ENTRY_POINTS))
def test_a_process_meeting_a_bad_setting_exits_with_one_line_naming_it(tmp_path, entry_point):
    returncode, stderr = _start(
        ENTRY_POINTS[entry_point], tmp_path, _environment(tmp_path, MC_DB_POOL_SIZE="abc")
    )
    assert returncode == 1, stderr
    assert stderr.strip() == EXPECTED
    assert not (tmp_path / "registry.db").exists()  # refused before touching the database


def test_the_release_command_runs_with_good_settings(tmp_path):
    """The same environment, minus the bad variable, migrates: the refusal above is the setting's."""
    returncode, stderr = _start(ENTRY_POINTS["release"], tmp_path, _environment(tmp_path))
    assert returncode == 0, stderr
    assert (tmp_path / "registry.db").exists()
