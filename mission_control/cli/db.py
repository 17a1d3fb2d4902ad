"""``mission-control db``: schema migrations (the Procfile's release phase runs ``db upgrade``), and
``reencrypt-secrets``, the last step of rotating MC_SECRET_KEY."""

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


@db.command("reencrypt-secrets")
def reencrypt_secrets() -> None:
    """Seal every stored secret with the newest MC_SECRET_KEY key.

    Secret job headers and channel URLs stored in plaintext (before sealing existed) are sealed, and
    everything sealed, per-service signing secrets included, is sealed again with the first key of
    MC_SECRET_KEY. Rotating the key: put the new key first in MC_SECRET_KEY (the old one after it),
    deploy, run this, then drop the old key.
    """
    from mission_control.jobs.secrets import reseal_all
    from mission_control.monitoring.notifications.notices import reseal_channels
    from mission_control.outbound.secretbox import SecretBox, SecretUnreadable
    from mission_control.outbound.service_secrets import reseal_service_secrets

    try:
        settings = Settings.from_env()
        box = SecretBox.from_settings(settings)
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    engine = make_engine(settings.database_url)
    try:
        counts = (reseal_all(engine, box), reseal_channels(engine, box), reseal_service_secrets(engine, box))
    except SecretUnreadable as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(
        f"sealed with the newest key: {counts[0]} job(s), {counts[1]} channel(s), "
        f"{counts[2]} service signing secret(s)"
    )
