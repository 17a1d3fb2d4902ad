"""``mission-control``: the command line of Mission Control."""

from __future__ import annotations

import click

from mission_control import __version__
from mission_control.cli.db import db
from mission_control.cli.dev import dev
from mission_control.cli.jobs import jobs
from mission_control.cli.runs import runs
from mission_control.cli.web import web


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mission-control")
def main() -> None:
    """Mission Control: a registry of scheduled jobs, the scheduler that fires them, and their history."""


main.add_command(db)
main.add_command(web)
main.add_command(dev)
main.add_command(jobs)
main.add_command(runs)
