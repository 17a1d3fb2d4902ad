"""``mission-control beat``: the Celery beat process with the registry scheduler, without Celery's CLI.

``celery beat`` loads every Celery sub-command first (and, through them, click-repl, prompt_toolkit,
pygments and any installed plugin such as Flower): about 15 MB a beat never uses. This starts the same
``celery.apps.beat.Beat`` service directly.
"""

from __future__ import annotations

import click

SCHEDULER = "mission_control.scheduler:RegistryScheduler"


@click.command()
@click.option(
    "-l",
    "--loglevel",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False),
)
def beat(loglevel: str) -> None:
    """Run the scheduler: claim due slots from the registry and enqueue their runs (any number may run)."""
    from mission_control.runtime.app import app

    app.Beat(scheduler=SCHEDULER, loglevel=loglevel.upper()).run()
