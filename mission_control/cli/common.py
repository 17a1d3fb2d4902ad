"""What every command that talks to the API shares: the global options, the client, the exit status and
the output (a table for people, the API's JSON with ``--json``).

Global options (``--url``, ``--token``, ``--json``) are accepted before the first command and after any
command at any depth: ``mission-control --token X jobs list``, ``mission-control jobs --token X list``
and ``mission-control jobs list --token X`` mean the same. :class:`ApiGroup` and :class:`ApiCommand`
give every level these options; each level records only what was given on its own command line into
the one :class:`GlobalOptions` the whole invocation shares (``ctx.meta``). Outer levels are parsed
first, so the innermost value given wins. The environment (MC_URL, MC_ADMIN_TOKEN) is read only for
an option no level gave.

Every failure of an API command leaves through :class:`CliFailure`: one line on stderr (a JSON object
with ``--json``) and an exit status from :class:`ExitCode`, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml
from click.core import ParameterSource

if TYPE_CHECKING:  # imported when a command calls the API, so `beat` and `web` never load the client
    from mission_control.client import MissionControl, MissionControlError

DEFAULT_URL = "http://127.0.0.1:8001"
ADMIN_TOKEN_ENV = ("MC_ADMIN_TOKEN",)
SERVICE_TOKEN_ENV = ("MC_SERVICE_TOKEN", "MC_ADMIN_TOKEN")


class ExitCode(IntEnum):
    """The exit status of every API command; scripts may rely on these numbers."""

    OK = 0
    ERROR = 1  # anything else: a server error, a rate limit, a waited-for run that did not succeed
    USAGE = 2  # click's own: an unknown command or option, a bad value; also no token at all
    NOT_FOUND = 3  # HTTP 404
    UNAUTHORIZED = 4  # HTTP 401 or 403: a missing, wrong or too narrow token
    UNREACHABLE = 5  # connection refused, DNS failure, no answer in time
    REFUSED = 6  # HTTP 400, 409, 413 or 422: invalid input, or in conflict with what exists


EXIT_CODES_HELP = """\b
Exit status:
  0  done
  1  any other failure: a server error, a rate limit, a waited-for run that did not succeed
  2  usage: an unknown command or option, a bad value, no token
  3  not found (HTTP 404)
  4  unauthorized: a missing, wrong or too narrow token (HTTP 401, 403)
  5  unreachable: connection refused, DNS failure, no answer in time
  6  refused: invalid input or a conflict with what exists (HTTP 400, 409, 413, 422)
With --json, stdout holds only JSON and an error is one JSON object on stderr:
{"error": {"code", "message", "field", "status", "exit_code"}}."""

_BY_STATUS = {
    400: ExitCode.REFUSED,
    401: ExitCode.UNAUTHORIZED,
    403: ExitCode.UNAUTHORIZED,
    404: ExitCode.NOT_FOUND,
    409: ExitCode.REFUSED,
    413: ExitCode.REFUSED,
    422: ExitCode.REFUSED,
}
_BY_CODE = {"unreachable": ExitCode.UNREACHABLE, "validation_error": ExitCode.REFUSED}


def exit_code_for(error: MissionControlError) -> ExitCode:
    """The exit status an API error ends a command with."""
    if error.status is not None:
        return _BY_STATUS.get(error.status, ExitCode.ERROR)
    return _BY_CODE.get(error.code, ExitCode.ERROR)


class CliFailure(click.ClickException):
    """A command failed: shown as one line on stderr, or one JSON object there with ``--json``."""

    def __init__(
        self,
        message: str,
        exit_code: int = ExitCode.ERROR,
        *,
        code: str = "error",
        status: int | None = None,
        field: str | None = None,
        details: list[dict[str, Any]] | None = None,
        as_json: bool | None = None,
    ) -> None:
        super().__init__(" ".join(message.split()))
        self.exit_code = int(exit_code)
        self.code = code
        self.status = status
        self.field = field
        self.details = details
        self.as_json = wants_json() if as_json is None else as_json

    @classmethod
    def of(cls, error: MissionControlError, *, as_json: bool | None = None) -> CliFailure:
        return cls(
            error.message,
            exit_code_for(error),
            code=error.code,
            status=error.status,
            field=error.field,
            as_json=as_json,
        )

    def show(self, file: Any = None) -> None:
        if self.as_json:
            error: dict[str, Any] = {
                "code": self.code,
                "message": self.message,
                "field": self.field,
                "status": self.status,
                "exit_code": self.exit_code,
            }
            if self.details is not None:
                error["details"] = self.details
            click.echo(json.dumps({"error": error}), file=file, err=True)
            return
        cause = f" (HTTP {self.status} {self.code})" if self.status else ""
        click.echo(f"Error: {self.message}{cause}", file=file, err=True)


# -- global options ------------------------------------------------------------------------------------


@dataclass
class GlobalOptions:
    """What the command line gave at any level (None: not given, so the environment decides)."""

    url: str | None = None
    token: str | None = None
    as_json: bool = False


_META_KEY = "mission_control.global_options"
GLOBAL_OPTION_NAMES = frozenset({"--url", "--token", "--json"})


def global_options(ctx: click.Context | None = None) -> GlobalOptions:
    ctx = ctx or click.get_current_context()
    return ctx.meta.setdefault(_META_KEY, GlobalOptions())  # type: ignore[no-any-return]


def _record(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if param.name and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
        setattr(global_options(ctx), param.name, value)
    return value


class GlobalOption(click.Option):
    """An option recorded into :class:`GlobalOptions` instead of being passed to the command."""

    def __init__(self, decls: Sequence[str], **attrs: Any) -> None:
        super().__init__(decls, expose_value=False, callback=_record, **attrs)


def global_params(
    token_env: Sequence[str] = ADMIN_TOKEN_ENV, token_help: str = "Admin token"
) -> list[click.Option]:
    return [
        GlobalOption(["--url"], metavar="URL", help=f"API base URL [env: MC_URL; default: {DEFAULT_URL}]"),
        GlobalOption(["--token"], metavar="TOKEN", help=f"{token_help} [env: {', '.join(token_env)}]"),
        GlobalOption(
            ["--json", "as_json"], is_flag=True, help="Print JSON on stdout; an error as JSON on stderr."
        ),
    ]


def wants_json() -> bool:
    ctx = click.get_current_context(silent=True)
    return ctx is not None and global_options(ctx).as_json


def _add_global_params(command: click.Command, token_env: Sequence[str], token_help: str) -> None:
    clashes = GLOBAL_OPTION_NAMES.intersection(
        name for param in command.params for name in getattr(param, "opts", [])
    )
    if clashes:
        raise TypeError(f"{command.name}: {', '.join(sorted(clashes))} is a global option; name it otherwise")
    command.params.extend(global_params(token_env, token_help))


def _format_options(
    command: click.Command,
    ctx: click.Context,
    formatter: click.HelpFormatter,
    title: str = "Global options (also accepted before the command)",
) -> None:
    """Options as click writes them, then the global ones in a section of their own."""
    own, shared = [], []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None and not isinstance(param, click.Argument):
            (shared if isinstance(param, GlobalOption) else own).append(record)
    if own:
        with formatter.section("Options"):
            formatter.write_dl(own)
    if shared:
        with formatter.section(title):
            formatter.write_dl(shared)


def _api_failures(ctx: click.Context, invoke: Callable[[], Any]) -> Any:
    from mission_control.client import MissionControlError

    try:
        return invoke()
    except MissionControlError as error:
        raise CliFailure.of(error, as_json=global_options(ctx).as_json) from None


class ApiCommand(click.Command):
    """A command that talks to the API: takes the global options, turns API errors into exit codes.

    ``token_env``: the environment variables a token is read from, first set wins.
    """

    def __init__(
        self,
        *args: Any,
        token_env: Sequence[str] = ADMIN_TOKEN_ENV,
        token_help: str = "Admin token",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.token_env = tuple(token_env)
        _add_global_params(self, self.token_env, token_help)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _format_options(self, ctx, formatter)

    def invoke(self, ctx: click.Context) -> Any:
        return _api_failures(ctx, lambda: super(ApiCommand, self).invoke(ctx))


class ApiGroup(click.Group):
    """A group of API commands: itself takes the global options, and so does every command under it."""

    command_class = ApiCommand
    group_class = type  # sub-groups are ApiGroups too
    global_options_title = "Global options (also accepted before the command)"

    def __init__(
        self,
        *args: Any,
        token_env: Sequence[str] = ADMIN_TOKEN_ENV,
        token_help: str = "Admin token",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.token_env = tuple(token_env)
        _add_global_params(self, self.token_env, token_help)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _format_options(self, ctx, formatter, self.global_options_title)
        self.format_commands(ctx, formatter)

    def invoke(self, ctx: click.Context) -> Any:
        return _api_failures(ctx, lambda: super(ApiGroup, self).invoke(ctx))


# -- the client and the output -------------------------------------------------------------------------


def api_client(*, timeout_s: float = 10.0) -> MissionControl:
    """A client for the URL and token the global options (or the environment) name."""
    from mission_control.client import MissionControl

    ctx = click.get_current_context()
    given = global_options(ctx)
    url = given.url or os.environ.get("MC_URL") or DEFAULT_URL
    if not url.startswith(("http://", "https://")):
        raise click.UsageError(f"--url {url!r}: expected http://HOST[:PORT] or https://HOST[:PORT]", ctx)
    token_env: tuple[str, ...] = getattr(ctx.command, "token_env", ADMIN_TOKEN_ENV)
    token = given.token or next((os.environ[name] for name in token_env if os.environ.get(name)), None)
    if not token:
        raise click.UsageError(f"no token: give --token or set {' or '.join(token_env)}", ctx)
    return MissionControl(url, token, timeout_s=timeout_s)


def output(data: Any, human: str | Callable[[], str]) -> None:
    """With ``--json``, ``data`` as JSON on stdout; otherwise ``human`` (text, or what makes it)."""
    if wants_json():
        click.echo(json.dumps(data, indent=2))
        return
    text = human() if callable(human) else human
    if text:
        click.echo(text)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    rows = [tuple(str(cell) for cell in row) for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in rows]) for i, header in enumerate(headers)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [tuple(headers), *rows]
    ]
    return "\n".join(lines)


def fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """``label  value`` lines, the labels aligned."""
    width = max(len(label) for label, _ in pairs)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in pairs)


def read_document(path: str) -> Any:
    """The YAML or JSON document in ``path`` (``-``: stdin; JSON if the name ends in .json)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise CliFailure(f"{path}: cannot read: {exc.strerror or exc}", code="unreadable_file") from None
    try:
        return json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise CliFailure(f"{path}: cannot parse: {exc}", ExitCode.REFUSED, code="invalid_file") from None
