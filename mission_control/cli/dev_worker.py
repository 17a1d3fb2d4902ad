"""The worker process of ``mission-control dev``: a Celery worker with the registry beat as a thread.

Why one process. An idle dev stack should cost little (issue 14: under 250 MB for all of it). A separate
beat is a second interpreter with the same imports (Celery, kombu, SQLAlchemy, the scheduler): about
70 MB for a loop that sleeps a second at a time. As a thread it adds a few MB to the worker. Beat here is
Celery's own ``EmbeddedService`` in thread mode, started and stopped as a worker bootstep, so it stops
(and closes its engines) before the worker does; it is the same ``RegistryScheduler`` as ``mission-control
beat``, and any number of beats may run beside it (row locks make each slot fire once).

Why not ``celery worker -B``: that forks beat into a process of its own again. Why not ``celery worker``:
Celery's command line loads every sub-command and plugin (click-repl, prompt_toolkit, Flower), about
15 MB the worker never uses; this starts the same ``celery.apps.worker.Worker`` directly, as
``mission-control beat`` does for beat. Production keeps worker and beat apart (Procfile): a beat must not
stop with a worker there, and workers scale out.
"""

from __future__ import annotations

import sys
from typing import Any

import click

QUEUES = ["triggers", "default"]


@click.command()
@click.option(
    "--concurrency", type=click.IntRange(min=1), default=8, show_default=True, help="Worker threads."
)
@click.option(
    "-l",
    "--loglevel",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False),
)
def main(concurrency: int, loglevel: str) -> None:
    """Run a worker (queues triggers and default, a thread pool) with the registry beat inside it."""
    from celery import bootsteps
    from celery.beat import EmbeddedService

    from mission_control.runtime.app import app
    from mission_control.runtime.beat import RegistryScheduler

    class RegistryBeat(bootsteps.StartStopStep):  # type: ignore[misc]
        """Beat as a thread of this worker: started after the worker's pool, stopped before it."""

        label = "RegistryBeat"

        def create(self, w: Any) -> Any:
            return EmbeddedService(app, thread=True, scheduler_cls=RegistryScheduler)

    app.steps["worker"].add(RegistryBeat)
    worker = app.Worker(
        pool_cls="threads",
        concurrency=concurrency,
        queues=QUEUES,
        loglevel=loglevel.upper(),
        without_mingle=True,
        without_gossip=True,
        quiet=True,  # no banner: the supervisor prints its own, and it should stay in sight
    )
    worker.start()
    sys.exit(worker.exitcode)


if __name__ == "__main__":
    main()
