"""Secrets too short to be safe stop every process that reads them at start-up: one line saying which
variable and how long it must be (never its value), a non-zero exit status, and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mission_control.base.config import MIN_SECRET_LENGTHS, ConfigError, Settings
from mission_control.cli import main
from mission_control.cli.dev import _saved_secret
from mission_control.web.api import create_app

GOOD = {"admin_token": "a" * 16, "signing_secret": "s" * 32}
SHORT_SIGNING = "short-signing-SECRET-value-31ch"  # 31 characters
assert len(SHORT_SIGNING) == 31


@pytest.mark.parametrize(
    ("overrides", "variable", "minimum"),
    [
        ({"admin_token": "a" * 15}, "MC_ADMIN_TOKEN", 16),
        ({"signing_secret": SHORT_SIGNING}, "MC_SIGNING_SECRET", 32),
        ({"signing_secret": "x"}, "MC_SIGNING_SECRET", 32),
        ({"session_secret": "z" * 31}, "MC_SESSION_SECRET", 32),
        ({"encryption_keys": ("k" * 32, "y" * 31)}, "MC_ENCRYPTION_KEY", 32),
    ],
)
def test_a_short_secret_is_refused_with_one_line_naming_it(overrides, variable, minimum):
    with pytest.raises(ConfigError) as raised:
        Settings(**{**GOOD, **overrides}).require_secrets()
    message = str(raised.value)
    assert message.startswith(f"{variable} must be at least {minimum} characters long")
    assert "\n" not in message
    for value in overrides.values():
        for part in value if isinstance(value, tuple) else (value,):
            assert part not in message


def test_secrets_at_their_minimum_lengths_are_accepted():
    assert MIN_SECRET_LENGTHS == {
        "MC_ADMIN_TOKEN": 16,
        "MC_SIGNING_SECRET": 32,
        "MC_SESSION_SECRET": 32,
        "MC_ENCRYPTION_KEY": 32,
    }
    Settings(**GOOD, encryption_keys=("k" * 32, "y" * 40)).require_secrets()
    Settings(**GOOD).require_secrets()
    Settings(**GOOD, session_secret="z" * 32).require_secrets()
    Settings(**GOOD, session_secret=None).require_secrets()  # unset: generated and stored instead
    Settings(signing_secret="s" * 32).require_signing_secret()


def test_create_app_refuses_a_short_signing_secret():
    with pytest.raises(ConfigError, match="MC_SIGNING_SECRET must be at least 32"):
        create_app(
            Settings(database_url="sqlite://", broker_url="memory://", **{**GOOD, "signing_secret": "s" * 31})
        )


def _env(tmp_path: Path, **secrets: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MC_")}
    env.update(MC_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", MC_BROKER_URL="memory://", **secrets)
    return env


def _assert_refused(returncode: int | None, stderr: str, fragment: str) -> None:
    assert returncode not in (0, None), stderr
    assert fragment in stderr
    assert "Traceback" not in stderr
    assert SHORT_SIGNING not in stderr


def test_web_refuses_a_short_signing_secret(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mission_control", "web", "--host", "127.0.0.1", "--port", "1"],
        env=_env(tmp_path, MC_ADMIN_TOKEN="a" * 32, MC_SIGNING_SECRET=SHORT_SIGNING),
        capture_output=True,
        text=True,
        timeout=60,
    )
    _assert_refused(
        result.returncode, result.stderr, "Error: MC_SIGNING_SECRET must be at least 32 characters"
    )


def test_web_refuses_a_short_session_secret(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mission_control", "web", "--host", "127.0.0.1", "--port", "1"],
        env=_env(tmp_path, MC_ADMIN_TOKEN="a" * 32, MC_SIGNING_SECRET="s" * 32, MC_SESSION_SECRET="z" * 8),
        capture_output=True,
        text=True,
        timeout=60,
    )
    _assert_refused(
        result.returncode, result.stderr, "Error: MC_SESSION_SECRET must be at least 32 characters"
    )


def _worker(tmp_path: Path, **secrets: str) -> tuple[int | None, str]:
    """Start a worker on the in-memory broker; its exit status (None: still running at the deadline,
    then stopped) and its stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "mission_control.celery_app", "worker", "-P", "solo",
         "--without-mingle", "--without-gossip", "-l", "warning"],
        env=_env(tmp_path, **secrets),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        _, stderr = process.communicate(timeout=45)
        return process.returncode, stderr
    except subprocess.TimeoutExpired:  # it started: the refusal the test expects did not happen
        process.kill()
        _, stderr = process.communicate(timeout=30)
        return None, stderr


@pytest.mark.parametrize(
    ("secrets", "fragment"),
    [
        ({"MC_SIGNING_SECRET": SHORT_SIGNING}, "Error: MC_SIGNING_SECRET must be at least 32 characters"),
        ({}, "Error: MC_SIGNING_SECRET must be set"),
    ],
    ids=["short", "missing"],
)
def test_a_worker_refuses_to_start_without_a_long_enough_signing_secret(tmp_path, secrets, fragment):
    returncode, stderr = _worker(tmp_path, **secrets)
    _assert_refused(returncode, stderr, fragment)


class _NoProcesses:
    """Stands in for dev's supervisor: a dev that failed to refuse would start nothing real."""

    started: list[str] = []

    def __init__(self, spec: dict[str, list[dict[str, object]]]) -> None:
        self.started.extend(str(child["name"]) for child in spec["children"])


def test_dev_refuses_a_short_secret_from_the_environment_before_starting_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("mission_control.cli.dev.exec_supervisor", _NoProcesses)
    _NoProcesses.started = []
    env = {"MC_ADMIN_TOKEN": "a" * 32, "MC_SIGNING_SECRET": SHORT_SIGNING, "MC_SESSION_SECRET": ""}
    result = CliRunner().invoke(main, ["dev", "--no-demo"], env=env)
    assert result.exit_code == 1
    assert "MC_SIGNING_SECRET must be at least 32 characters" in result.output
    assert not (tmp_path / ".mission-control").exists()
    assert _NoProcesses.started == []


def test_dev_keeps_saved_secrets_that_are_long_enough_and_replaces_the_others():
    kept = "k" * 40
    assert _saved_secret({"MC_SIGNING_SECRET": kept}, "MC_SIGNING_SECRET") == kept
    for saved in ({}, {"MC_SIGNING_SECRET": "s" * 31}):
        generated = _saved_secret(saved, "MC_SIGNING_SECRET")
        assert len(generated) >= 32 and generated != saved.get("MC_SIGNING_SECRET")
    assert len(_saved_secret({"MC_ADMIN_TOKEN": "a" * 15}, "MC_ADMIN_TOKEN")) >= 32
