"""The package's shape is a contract: its parts are folders, and a lower part never imports an upper one.

The rules themselves are import-linter contracts in setup.cfg (``[importlinter]``): the layers from
``cli`` down to ``base``, the pure core that imports nothing of Flask, Celery, kombu, SQLAlchemy or an
HTTP client, and a client library that needs nothing of the server. These tests run them, and prove on
a copy of the package that a forbidden import would be caught.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mission_control"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# The public faces: entry points users name in commands and imports. Everything else lives in a part.
TOP_LEVEL_MODULES = {"__init__", "__main__", "celery_app", "client", "scheduler", "signing", "testing"}
PARTS = {
    "_client",  # the client library's code, also published alone from clients/python (requests only)
    "base",
    "cli",
    "db",
    "execution",
    "jobs",
    "missions",
    "monitoring",
    "outbound",
    "runtime",
    "scheduling",
    "web",
}


def lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(cwd / "setup.cfg"), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_top_of_the_package_shows_the_parts_and_the_public_faces_only():
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    parts = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert modules == TOP_LEVEL_MODULES
    assert parts == PARTS


def test_every_import_contract_is_kept():
    result = lint_imports(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "forbidden_import", "contract"),
    [
        ("base/clock.py", "import mission_control.web.api", "A lower part never imports an upper one"),
        (
            "jobs/registry.py",
            "import mission_control.scheduling.claiming",
            "A lower part never imports an upper one",
        ),
        ("base/schedules.py", "import sqlalchemy", "The pure core imports nothing"),
        ("client.py", "import mission_control.db.tables", "The client library needs nothing of the server"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, forbidden_import, contract):
    copy = tmp_path / "mission_control"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "static", "templates"))
    shutil.copy(ROOT / "setup.cfg", tmp_path / "setup.cfg")
    target = copy / module
    target.write_text(target.read_text() + f"\n{forbidden_import}  # noqa\n")

    result = lint_imports(tmp_path, tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in broken
    assert forbidden_import.split()[-1] in broken


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("mission_control.client", "MissionControl"),
        ("mission_control.testing", None),
        ("mission_control.missions", "mission"),
        ("mission_control.signing", "verify"),
        ("mission_control.celery_app", "app"),
        ("mission_control.scheduler", "RegistryScheduler"),
    ],
)
def test_the_public_import_paths_users_rely_on_still_work(module, name):
    imported = importlib.import_module(module)
    if name is not None:
        assert getattr(imported, name) is not None
