"""The command line's local commands: db upgrade, and web refusing to start without secrets (the API
commands are tested in tests/cli/)."""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner

from mission_control.cli import main
from mission_control.db import migrate
from mission_control.db.engine import make_engine


def test_db_upgrade_migrates_the_configured_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = CliRunner().invoke(main, ["db", "upgrade"], env={"MC_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert f"revision {migrate.head_revision()}" in result.output
    engine = make_engine(url)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()
    again = CliRunner().invoke(main, ["db", "upgrade"], env={"MC_DATABASE_URL": url})
    assert again.exit_code == 0 and "(was" not in again.output


def test_web_refuses_to_start_without_secrets(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MC_")}
    env["MC_DATABASE_URL"] = f"sqlite:///{tmp_path / 'x.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "mission_control", "web", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "MC_ADMIN_TOKEN" in result.stderr
