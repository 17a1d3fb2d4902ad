"""``mission-control beat``: the Celery beat process with the registry scheduler, without Celery's CLI.

``celery beat`` loads every Celery sub-command first (and, through them, click-repl, prompt_toolkit,
pygments and any installed plugin such as Flower): about 15 MB a beat never uses. This starts the same
``celery.apps.beat.Beat`` service directly.

``--liveness-file`` moves the mark beat leaves for ``mission-control health beat`` (see
:mod:`mission_control.runtime.liveness`); the probe takes the same option.
"""

from __future__ import annotations

import functools
from pathlib import Path

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
@click.option(
    "--liveness-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The liveness mark this beat rewrites after each registry pass, for `mission-control health "
    "beat` [default: mission-control-beat.alive in the temporary directory]",
)
def beat(loglevel: str, liveness_file: Path | None) -> None:
    """Run the scheduler: claim due slots from the registry and enqueue their runs (any number may run)."""
    from mission_control.runtime.app import app

    scheduler: object = SCHEDULER
    if liveness_file is not None:
        from mission_control.scheduler import RegistryScheduler

        scheduler = functools.partial(RegistryScheduler, liveness_file=liveness_file)
    app.Beat(scheduler=scheduler, loglevel=loglevel.upper()).run()
