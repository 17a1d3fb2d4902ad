"""``mission-control dev``: the whole system on embedded defaults, for a first look with nothing installed.

What it guarantees (issue 14, "the first hour"):

* Nothing starts while a port the stack needs is taken. Every port is checked first, and a taken one
  ends the command at once with one line naming the port and the variable that moves it (PORT, or
  FLOWER_PORT with ``--flower``): a second stack must not fire its demo job at the first.
* Every way the stack stops takes all of it down: Ctrl-C, SIGTERM, SIGHUP (the terminal closing), the
  supervisor being killed, the process that started it dying (see :mod:`mission_control.cli.dev_supervisor`).
* A missing PostgreSQL database (MC_DATABASE_URL) is created, or the command says in one line why it
  cannot be and how to create it.
* It costs little while it waits (issue 14's target: under 1 % of a core and 250 MB; ``bench/idle_cost.py``
  measures it): the supervisor, the web (gunicorn: master and one worker) and a worker with beat as one
  of its threads (:mod:`mission_control.cli.dev_worker`); Flower only with ``--flower``. Once settings,
  ports and database are done, the command replaces itself (exec, same pid) with the supervisor, a
  standard-library-only script, so nothing it loaded (click, pydantic, SQLAlchemy, Alembic) stays for
  the life of the stack.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path
from typing import Any

import click

from mission_control.cli.dev_supervisor import exec_supervisor

STATE_DIR = Path(".mission-control")
HOST = "127.0.0.1"
DEFAULT_FLOWER_PORT = 5555
# The banner comes once the web accepts connections and the processes' start-up lines have stopped for
# this long (so they do not push it out of sight), or after BANNER_WAIT_S whatever happens.
BANNER_QUIET_S = 1.0
BANNER_WAIT_S = 30.0


@click.command()
@click.option("--port", type=int, default=None, help="Default: $PORT, else 8001.")
@click.option("--concurrency", type=int, default=8, show_default=True, help="Worker threads.")
@click.option("--no-demo", is_flag=True, help="Do not register the demo job.")
@click.option(
    "--flower",
    is_flag=True,
    help=f"Run Flower too, on $FLOWER_PORT (default {DEFAULT_FLOWER_PORT}); needs a Redis broker.",
)
def dev(port: int | None, concurrency: int, no_demo: bool, flower: bool) -> None:
    """Run web, worker and beat in the foreground on embedded defaults; Ctrl-C stops them all.

    The registry is a SQLite file and the broker kombu's SQL transport on another, so nothing needs
    installing; set MC_DATABASE_URL and MC_BROKER_URL to use PostgreSQL and Redis instead (a missing
    PostgreSQL database is created). Secrets are generated once and kept in .mission-control/dev.env
    (mode 0600), so the token survives restarts; `source .mission-control/dev.env` gives another shell
    MC_URL and the token. A demo job fires every ten seconds at the web app's own /demo/echo, which checks
    the request's signature. Closing the terminal, SIGTERM, or the end of the process that started it
    stop everything too.
    """
    # Until the supervisor takes over nothing runs but this process, so a signal may end it as it would
    # any command. Who started it is read now, before it can die unseen: the supervisor watches it.
    parent = os.getppid()
    plan = _prepare(port, flower, no_demo)
    exec_supervisor(_supervised(plan, concurrency, parent=parent))


def _prepare(port: int | None, flower: bool, no_demo: bool) -> dict[str, Any]:
    """Everything before the processes start: settings, secrets, ports (first), database, metrics."""
    import shutil

    from mission_control.base.config import ConfigError, Settings

    env_file = STATE_DIR / "dev.env"
    saved = _read_env(env_file)
    # Generated secrets (43 characters) meet every minimum; a saved one that does not (written by an
    # older version, or copied from the environment then) is replaced rather than refused.
    admin_token = os.environ.get("MC_ADMIN_TOKEN") or _saved_secret(saved, "MC_ADMIN_TOKEN")
    signing_secret = os.environ.get("MC_SIGNING_SECRET") or _saved_secret(saved, "MC_SIGNING_SECRET")
    try:
        # Secrets given in the environment must meet the minimums too: web and worker would refuse them.
        settings = Settings.from_env(
            {**os.environ, "MC_ADMIN_TOKEN": admin_token, "MC_SIGNING_SECRET": signing_secret}
        )
        settings.require_secrets()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    ports = [_Port(port or settings.port, "--port" if port else "PORT")]
    if flower:
        _require_flower(settings.broker_url)
        ports.append(_Port(_flower_port(), "FLOWER_PORT", what="Flower's port"))
    _check_ports(ports)
    url = f"http://{HOST}:{ports[0].number}"
    _write_env(env_file, {"MC_URL": url, "MC_ADMIN_TOKEN": admin_token, "MC_SIGNING_SECRET": signing_secret})
    _prepare_database(settings.database_url, None if no_demo else url)
    # One directory where web, worker and beat write their metrics for the web's /metrics to add up;
    # emptied at each start, as prometheus-client's multiprocess mode requires.
    metrics_dir = STATE_DIR / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    return {
        "url": url,
        "web_port": ports[0].number,
        "flower_port": ports[1].number if flower else None,
        "database_url": settings.database_url,
        "broker_url": settings.broker_url,
        "admin_token": admin_token,
        "signing_secret": signing_secret,
        "env_file": str(env_file),
        "metrics_dir": str(metrics_dir.resolve()),
    }


def _supervised(plan: dict[str, Any], concurrency: int, parent: int) -> dict[str, Any]:
    """What the supervisor runs: web, worker (with beat) and perhaps Flower, and what it prints."""
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": plan["metrics_dir"],
        "MC_LOG_FORMAT": os.environ.get("MC_LOG_FORMAT", "text"),  # people read these
        "MC_ADMIN_TOKEN": plan["admin_token"],
        "MC_SIGNING_SECRET": plan["signing_secret"],
        "MC_DATABASE_URL": plan["database_url"],
        "MC_BROKER_URL": plan["broker_url"],
        "MC_DEMO_ECHO": "1",
        "PYTHONUNBUFFERED": "1",
    }
    python, port = sys.executable, str(plan["web_port"])
    children = [
        {
            "name": "web",
            "argv": [
                python,
                "-m",
                "mission_control",
                "web",
                "--host",
                HOST,
                "--port",
                port,
                "--workers",
                "1",
            ],
            "env": env,
        },
        {
            "name": "worker",
            "argv": [python, "-m", "mission_control.cli.dev_worker", "--concurrency", str(concurrency)],
            "env": env,
        },
    ]
    banner = (
        f"\nMission Control is running on {plan['url']}\n"
        f"  registry:    {plan['database_url']}\n"
        f"  broker:      {plan['broker_url']}\n"
        f"  admin token: {plan['admin_token']}\n"
        f"  in another shell: source {plan['env_file']}   (sets MC_URL and MC_ADMIN_TOKEN)\n"
        "  then: .venv/bin/mission-control runs      (the demo job fires every 10 s)\n"
    )
    if plan["flower_port"] is not None:
        flower = ["flower", f"--address={HOST}", f"--port={plan['flower_port']}"]
        children.append(
            {
                "name": "flower",
                "argv": [python, "-m", "celery", "-A", "mission_control.celery_app", *flower],
                # Flower reads its basic auth from the environment: never on a command line `ps` shows.
                "env": {**env, "FLOWER_BASIC_AUTH": f"admin:{plan['admin_token']}"},
            }
        )
        banner += f"  Flower:      http://{HOST}:{plan['flower_port']} (user admin, the admin token)\n"
    banner += "Ctrl-C (or closing this terminal) stops everything.\n"
    return {
        "children": children,
        "parent": parent,
        "starting": f"Mission Control is starting on {plan['url']} ...",
        "banner": banner,
        "ready": [HOST, plan["web_port"]],
        "quiet_s": BANNER_QUIET_S,
        "wait_s": BANNER_WAIT_S,
    }


# --- before anything starts ----------------------------------------------------------------------------


class _Port:
    """A port the stack will bind, and what moves it (a variable, or the option given)."""

    def __init__(self, number: int, variable: str, what: str = "port") -> None:
        self.number, self.variable, self.what = number, variable, what

    def hint(self, alternative: int) -> str:
        if self.variable.startswith("--"):
            return f"pass {self.variable} {alternative} to use another"
        return f"set {self.variable}={alternative} to use another"


def _check_ports(ports: list[_Port]) -> None:
    """Refuse, in one line, a port that is taken (or given twice) before anything binds or starts."""
    numbers = {port.number for port in ports}
    for index, port in enumerate(ports):
        if any(other.number == port.number for other in ports[:index]):
            problem = f"is {ports[0].variable} too"
        else:
            reason = _bind_error(port.number)
            if reason is None:
                continue
            in_use = reason == "in use"
            problem = "is in use (another Mission Control?)" if in_use else f"cannot be used ({reason})"
        alternative = _free_port_after(port.number, numbers)
        raise click.ClickException(f"{port.what} {port.number} {problem}; {port.hint(alternative)}")


def _bind_error(port: int) -> str | None:
    """Why ``port`` cannot be bound on HOST now (None: it can), as the web and Flower will bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn and tornado do
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            return "in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc)).lower()
    return None


def _free_port_after(port: int, taken: set[int]) -> int:
    for candidate in range(port + 1, min(port + 200, 65536)):
        if candidate not in taken and _bind_error(candidate) is None:
            return candidate
    return port + 1


def _flower_port() -> int:
    raw = os.environ.get("FLOWER_PORT") or str(DEFAULT_FLOWER_PORT)
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise click.ClickException(f"FLOWER_PORT must be a port number (1-65535), got {raw!r}")
    return int(raw)


def _require_flower(broker_url: str) -> None:
    if not broker_url.startswith(("redis://", "rediss://")):
        # Queue inspection needs broadcast messages, which the serverless SQL broker cannot carry.
        raise click.ClickException(
            "--flower needs a Redis broker (MC_BROKER_URL=redis://...): the SQL broker cannot carry "
            "Flower's broadcast messages"
        )
    try:
        import flower  # noqa: F401  (the `flower` extra; `make dev` installs it)
    except ImportError:
        raise click.ClickException("Flower is not installed: .venv/bin/pip install -e '.[flower]'") from None


def _prepare_database(database_url: str, demo_url: str | None) -> None:
    """Create a missing PostgreSQL database, apply the migrations, register the demo job."""
    from sqlalchemy.exc import OperationalError

    from mission_control.db import migrate
    from mission_control.db.engine import make_engine
    from mission_control.jobs.registry import JobRegistry

    if ensure_database(database_url):
        click.echo(f"created the database {_safe(database_url)}")
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine)
        if demo_url is not None:
            JobRegistry(engine).put(_demo_job(demo_url))
    except OperationalError as exc:
        raise click.ClickException(
            f"cannot use the registry database {_safe(database_url)}: {_first_line(exc)}"
        ) from None
    finally:
        engine.dispose()


def ensure_database(database_url: str) -> bool:
    """Create the PostgreSQL database ``database_url`` names if it does not exist; True if it was created.

    Connects to the server's ``postgres`` database with the same credentials to look and create. Raises
    :class:`click.ClickException` with one line (what failed, and the ``createdb`` command that would fix
    it) when the database cannot be reached or created; other databases are left to their driver.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    url = make_url(database_url)
    if url.get_backend_name() != "postgresql" or not url.database:
        return False
    name = url.database
    target = create_engine(url, poolclass=NullPool)
    try:
        with target.connect():
            return False
    except SQLAlchemyError as exc:
        unreachable = f"cannot connect to the registry database {_safe(database_url)}: {_first_line(exc)}"
    finally:
        target.dispose()
    where = f"-h {url.host or 'localhost'} -p {url.port or 5432}"
    where += f" -U {url.username}" if url.username else ""
    admin = create_engine(url.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    exists = text("SELECT 1 FROM pg_database WHERE datname = :name")
    try:
        with admin.connect() as conn:
            if conn.execute(exists, {"name": name}).first() is not None:
                raise click.ClickException(unreachable)  # it exists: the problem is elsewhere
            try:
                conn.exec_driver_sql(f"CREATE DATABASE {admin.dialect.identifier_preparer.quote(name)}")
            except SQLAlchemyError as exc:
                if conn.execute(exists, {"name": name}).first() is None:  # else another start made it
                    raise click.ClickException(
                        f'database "{name}" does not exist and could not be created ({_first_line(exc)}); '
                        f"create it with: createdb {where} {name}"
                    ) from None
    except SQLAlchemyError:
        raise click.ClickException(unreachable) from None  # the server itself is not reachable
    finally:
        admin.dispose()
    return True


def _first_line(exc: BaseException) -> str:
    """The driver's own message, first line, without SQLAlchemy's statement and background link."""
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__


def _safe(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(database_url).render_as_string(hide_password=True)


def _demo_job(url: str) -> Any:
    from mission_control.jobs.spec import JobSpec

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
    import secrets

    from mission_control.base.config import MIN_SECRET_LENGTHS

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
