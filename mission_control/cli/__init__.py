"""``mission-control``: the command line of Mission Control.

Sub-commands are imported only when invoked, so a long-running process started through this command
(``beat``, ``web``) carries only its own imports. The global options of the API commands (``--url``,
``--token``, ``--json``; see :mod:`mission_control.cli.common`) are accepted here, before the command,
as well as after it; the exit statuses are listed in the help's epilog.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from mission_control import __version__
from mission_control.cli.common import EXIT_CODES_HELP, ApiGroup

_COMMANDS = {
    "alerts": "mission_control.cli.monitoring:alerts",
    "audit": "mission_control.cli.audit:audit",
    "badges": "mission_control.cli.badges:badges",
    "beat": "mission_control.cli.beat:beat",
    "channels": "mission_control.cli.channels:channels",
    "db": "mission_control.cli.db:db",
    "dev": "mission_control.cli.dev:dev",
    "health": "mission_control.cli.health:health",
    "heartbeat": "mission_control.cli.monitoring:heartbeat",
    "jobs": "mission_control.cli.jobs:jobs",
    "missions": "mission_control.cli.missions:missions",
    "run": "mission_control.cli.run:run",
    "runs": "mission_control.cli.runs:runs",
    "services": "mission_control.cli.monitoring:services",
    "silences": "mission_control.cli.silences:silences",
    "tokens": "mission_control.cli.tokens:tokens",
    "web": "mission_control.cli.web:web",
}


class _LazyGroup(ApiGroup):
    """A group whose sub-commands are imported on first use (click's documented lazy-loading recipe).

    It takes the API commands' global options too, so they may come before the command."""

    global_options_title = "Global options (of the API commands; also accepted after any of them)"

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> Any:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        return getattr(importlib.import_module(module), attribute)

    def invoke(self, ctx: click.Context) -> Any:
        # The API commands turn API errors into exit statuses themselves; this level must not import
        # the client for that, so `beat` and `web` start without it.
        return click.Group.invoke(self, ctx)


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    token_help="Admin token (for heartbeat: the service's token)",
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, prog_name="mission-control")
def main() -> None:
    """Mission Control: a registry of scheduled jobs, the scheduler that fires them, and their history."""
