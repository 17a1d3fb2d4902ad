"""``mission-control dev``: the whole system on embedded defaults, for a first look with nothing installed."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import click
from honcho.manager import Manager

from mission_control.config import Settings
from mission_control.db import migrate
from mission_control.db.engine import make_engine

STATE_DIR = Path(".mission-control")


@click.command()
@click.option("--port", type=int, default=None, help="Default: $PORT, else 8001.")
def dev(port: int | None) -> None:
    """Migrate the SQLite registry and run the system in the foreground; Ctrl-C stops everything.

    Secrets are generated once and kept in .mission-control/dev.env (mode 0600), so the token stays the
    same across restarts; `source .mission-control/dev.env` gives another shell MC_URL and the token.
    """
    env_file = STATE_DIR / "dev.env"
    saved = _read_env(env_file)
    admin_token = os.environ.get("MC_ADMIN_TOKEN") or saved.get("MC_ADMIN_TOKEN") or secrets.token_urlsafe(32)
    signing_secret = (
        os.environ.get("MC_SIGNING_SECRET") or saved.get("MC_SIGNING_SECRET") or secrets.token_urlsafe(32)
    )
    settings = Settings.from_env()
    port = port or settings.port
    url = f"http://127.0.0.1:{port}"
    _write_env(env_file, {"MC_URL": url, "MC_ADMIN_TOKEN": admin_token, "MC_SIGNING_SECRET": signing_secret})

    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()

    env = {
        **os.environ,
        "MC_ADMIN_TOKEN": admin_token,
        "MC_SIGNING_SECRET": signing_secret,
        "MC_DATABASE_URL": settings.database_url,
        "MC_BROKER_URL": settings.broker_url,
        "PYTHONUNBUFFERED": "1",
    }
    click.echo(
        f"\nMission Control is starting on {url}\n"
        f"  registry:    {settings.database_url}\n"
        f"  admin token: {admin_token}\n"
        f"  in another shell: source {env_file}   (sets MC_URL and MC_ADMIN_TOKEN)\n"
        f'  try: curl -H "Authorization: Bearer $MC_ADMIN_TOKEN" $MC_URL/api/v1/jobs\n'
        "Ctrl-C stops everything.\n"
    )
    manager = Manager()
    python = sys.executable
    manager.add_process(
        "web", f"{python} -m mission_control web --host 127.0.0.1 --port {port} --workers 1", env=env
    )
    manager.loop()
    sys.exit(manager.returncode)


def _read_env(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.removeprefix("export ").partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("'\"")
    return values


def _write_env(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(f"export {key}={value}\n" for key, value in values.items()))
