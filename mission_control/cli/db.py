"""``mission-control db``: schema migrations (the Procfile's release phase runs ``db upgrade``)."""

from __future__ import annotations

import click
from sqlalchemy.engine import Engine

from mission_control.base.config import ConfigError, Settings
from mission_control.db import migrate
from mission_control.db.engine import make_engine


@click.group()
def db() -> None:
    """Create and migrate the registry database (MC_DATABASE_URL)."""


def _engine() -> Engine:
    """The registry's engine; a setting that cannot be used ends the command with one line naming it."""
    try:
        return make_engine(Settings.from_env().database_url)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@db.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
def upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    engine = _engine()
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine, revision)
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    click.echo(f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ('base' empties the database)."""
    engine = _engine()
    try:
        migrate.downgrade(engine, revision)
        click.echo(f"database at revision {migrate.current_revision(engine) or 'base'}")
    finally:
        engine.dispose()


@db.command()
def current() -> None:
    """Print the database's revision and the latest one this code knows."""
    engine = _engine()
    try:
        click.echo(f"current: {migrate.current_revision(engine) or 'empty'}  head: {migrate.head_revision()}")
    finally:
        engine.dispose()
