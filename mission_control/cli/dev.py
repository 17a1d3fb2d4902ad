"""``mission-control dev``: the whole system on embedded defaults, for a first look with nothing installed."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path

import click
from honcho.manager import Manager

from mission_control.base.config import MIN_SECRET_LENGTHS, ConfigError, Settings
from mission_control.db import migrate
from mission_control.db.engine import make_engine
from mission_control.jobs.registry import JobRegistry
from mission_control.jobs.spec import JobSpec

STATE_DIR = Path(".mission-control")


@click.command()
@click.option("--port", type=int, default=None, help="Default: $PORT, else 8001.")
@click.option("--concurrency", type=int, default=8, show_default=True, help="Worker threads.")
@click.option("--no-demo", is_flag=True, help="Do not register the demo job.")
def dev(port: int | None, concurrency: int, no_demo: bool) -> None:
    """Run web, worker and beat in the foreground on embedded defaults; Ctrl-C stops them all.

    The registry is a SQLite file and the broker kombu's SQL transport on another, so nothing needs
    installing; set MC_DATABASE_URL and MC_BROKER_URL to use PostgreSQL and Redis instead. Secrets are
    generated once and kept in .mission-control/dev.env (mode 0600), so the token survives restarts;
    `source .mission-control/dev.env` gives another shell MC_URL and the token. A demo job fires every
    ten seconds at the web app's own /demo/echo, which checks the request's signature.
    """
    env_file = STATE_DIR / "dev.env"
    saved = _read_env(env_file)
    # Generated secrets (43 characters) meet every minimum; a saved one that does not (written by an
    # older version, or copied from the environment then) is replaced rather than refused.
    admin_token = os.environ.get("MC_ADMIN_TOKEN") or _saved_secret(saved, "MC_ADMIN_TOKEN")
    signing_secret = os.environ.get("MC_SIGNING_SECRET") or _saved_secret(saved, "MC_SIGNING_SECRET")
    try:
        settings = Settings.from_env()
        # Secrets given in the environment must meet the minimums too: web and worker would refuse them.
        settings.model_copy(
            update={"admin_token": admin_token, "signing_secret": signing_secret}
        ).require_secrets()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    port = port or settings.port
    url = f"http://127.0.0.1:{port}"
    _write_env(env_file, {"MC_URL": url, "MC_ADMIN_TOKEN": admin_token, "MC_SIGNING_SECRET": signing_secret})

    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        if not no_demo:
            JobRegistry(engine).put(_demo_job(url))
    finally:
        engine.dispose()

    # One directory where web, worker and beat write their metrics for the web's /metrics to add up;
    # emptied at each start, as prometheus-client's multiprocess mode requires.
    metrics_dir = STATE_DIR / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir.resolve()),
        "MC_LOG_FORMAT": os.environ.get("MC_LOG_FORMAT", "text"),  # people read these
        "MC_ADMIN_TOKEN": admin_token,
        "MC_SIGNING_SECRET": signing_secret,
        "MC_DATABASE_URL": settings.database_url,
        "MC_BROKER_URL": settings.broker_url,
        "MC_DEMO_ECHO": "1",
        "PYTHONUNBUFFERED": "1",
    }
    click.echo(
        f"\nMission Control is starting on {url}\n"
        f"  registry:    {settings.database_url}\n"
        f"  broker:      {settings.broker_url}\n"
        f"  admin token: {admin_token}\n"
        f"  in another shell: source {env_file}   (sets MC_URL and MC_ADMIN_TOKEN)\n"
        "  then: .venv/bin/mission-control runs      (the demo job fires every 10 s)\n"
        "Ctrl-C stops everything.\n"
    )
    python = sys.executable
    celery = f"{python} -m celery -A mission_control.celery_app"
    manager = Manager()
    manager.add_process(
        "web", f"{python} -m mission_control web --host 127.0.0.1 --port {port} --workers 1", env=env
    )
    manager.add_process(
        "worker",
        f"{celery} worker -P threads -c {concurrency} -Q triggers,default -l info"
        " --without-mingle --without-gossip",
        env=env,
    )
    manager.add_process("beat", f"{python} -m mission_control beat -l info", env=env)
    if _flower_usable(settings.broker_url):
        # Queue inspection needs broadcast messages, which the serverless SQL broker cannot carry.
        manager.add_process(
            "flower",
            f"{celery} flower --address=127.0.0.1 --port=5555",
            # Flower reads its basic auth from the environment: never on a command line `ps` shows.
            env={**env, "FLOWER_BASIC_AUTH": f"admin:{admin_token}"},
            quiet=True,
        )
        click.echo("Flower (queues and workers): http://127.0.0.1:5555 (user admin, the admin token)\n")
    manager.loop()
    sys.exit(manager.returncode)


def _flower_usable(broker_url: str) -> bool:
    if not broker_url.startswith(("redis://", "rediss://")):
        return False
    try:
        import flower  # noqa: F401  (the `flower` extra; `make dev` installs it)
    except ImportError:
        return False
    return True


def _demo_job(url: str) -> JobSpec:
    return JobSpec.model_validate(
        {
            "name": "demo.echo",
            "service": "demo",
            "target": {"url": f"{url}/demo/echo", "body": {"hello": "from mission control"}},
            "schedule": {"every_s": 10},
            "timeout_s": 5,
            "expected_runtime_s": 1,
        }
    )


def _saved_secret(saved: dict[str, str], name: str) -> str:
    """The secret kept in dev.env when it is long enough, else a new one."""
    value = saved.get(name, "")
    return value if len(value) >= MIN_SECRET_LENGTHS[name] else secrets.token_urlsafe(32)


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
