"""The command line's shape, without a server: every API command takes the global options (``--json``
among them) at its own level, the exit statuses are documented, and an unreachable server or a
missing token ends a command with its own status and one line, never a traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from mission_control.cli import _COMMANDS, main
from mission_control.cli.common import ApiCommand, ApiGroup, ExitCode
from tests.conftest import free_port

# These run on the server's machine (processes, migrations), not through the API.
LOCAL_COMMANDS = {"beat", "db", "dev", "health", "web"}


def _api_commands() -> list[tuple[str, click.Command]]:
    """Every API command and group under ``main``, by its path (``services tokens list``)."""
    found: list[tuple[str, click.Command]] = []

    def walk(path: str, command: click.Command) -> None:
        found.append((path, command))
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                walk(f"{path} {name}", sub)

    ctx = click.Context(main)
    for name in sorted(set(_COMMANDS) - LOCAL_COMMANDS):
        walk(name, main.get_command(ctx, name))
    return found


API_COMMANDS = _api_commands()


@pytest.mark.parametrize(("path", "command"), API_COMMANDS, ids=[path for path, _ in API_COMMANDS])
def test_every_api_command_takes_the_global_options_at_its_own_level(path, command):
    assert isinstance(command, ApiCommand | ApiGroup), f"{path} is a plain click command"
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    assert {"--url", "--token", "--json"} <= options, path
    helped = CliRunner().invoke(main, [*path.split(), "--help"])
    assert helped.exit_code == 0, helped.output
    assert "Global options (also accepted before the command):" in helped.stdout


def test_the_command_tree_has_the_new_commands():
    paths = {path for path, _ in API_COMMANDS}
    assert {
        "channels list", "channels show", "channels add", "channels rm", "channels test", "channels notices",
        "services list", "services show", "services put", "services pause", "services resume", "services rm",
        "services events",
        "services tokens list", "services tokens create", "services tokens revoke",
        "alerts list", "alerts show", "alerts ack", "runs list", "runs show",
    } <= paths  # fmt: skip
    assert "runs cancel" not in paths  # the API cannot cancel a run yet


def test_the_main_help_documents_the_exit_statuses():
    helped = CliRunner().invoke(main, ["--help"])
    assert helped.exit_code == 0, helped.output
    for code in ExitCode:
        assert re.search(rf"^ +{code.value}  [a-z]", helped.stdout, re.MULTILINE), code
    assert "--json" in helped.stdout and "--token" in helped.stdout


@pytest.fixture
def closed_url() -> str:
    """A URL on this machine where nothing listens (the port was free a moment ago)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(
    "args",
    [
        ["--url", "{url}", "jobs", "list"],
        ["jobs", "--url", "{url}", "list"],
        ["jobs", "list", "--url", "{url}"],
        ["services", "tokens", "list", "billing", "--url", "{url}"],
        ["heartbeat", "billing", "--url", "{url}"],
    ],
    ids=["before", "on-the-group", "after", "two-levels-down", "heartbeat"],
)
def test_an_unreachable_server_exits_5_with_one_line_naming_it(closed_url, args):
    result = CliRunner().invoke(
        main, [a.format(url=closed_url) for a in args], env={"MC_ADMIN_TOKEN": "t", "MC_URL": None}
    )
    assert result.exit_code == ExitCode.UNREACHABLE == 5, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"Error: cannot reach {closed_url} (Connection refused)"]


def test_with_json_an_unreachable_server_is_a_json_error_on_stderr(closed_url):
    result = CliRunner().invoke(
        main, ["runs", "show", "1", "--json", "--url", closed_url], env={"MC_ADMIN_TOKEN": "t"}
    )
    assert result.exit_code == 5
    assert result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "unreachable" and error["exit_code"] == 5 and error["status"] is None
    assert closed_url in error["message"]


def test_the_url_given_last_wins(closed_url):
    other = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        main, ["--url", other, "jobs", "--url", other, "show", "x", "--url", closed_url],
        env={"MC_ADMIN_TOKEN": "t"},
    )  # fmt: skip
    assert result.exit_code == 5 and closed_url in result.stderr and other not in result.stderr


def test_the_environment_gives_the_url_when_no_level_does(closed_url):
    result = CliRunner().invoke(main, ["alerts", "list"], env={"MC_ADMIN_TOKEN": "t", "MC_URL": closed_url})
    assert result.exit_code == 5 and closed_url in result.stderr


def test_without_a_token_a_command_is_a_usage_error():
    result = CliRunner().invoke(
        main, ["jobs", "list"], env={"MC_ADMIN_TOKEN": None, "MC_SERVICE_TOKEN": None}
    )
    assert result.exit_code == ExitCode.USAGE == 2
    assert "no token: give --token or set MC_ADMIN_TOKEN" in result.stderr
    assert "Traceback" not in result.output


def test_a_url_without_a_scheme_is_a_usage_error():
    result = CliRunner().invoke(
        main, ["jobs", "list", "--url", "localhost:8001"], env={"MC_ADMIN_TOKEN": "t"}
    )
    assert result.exit_code == 2 and "expected http://HOST" in result.stderr


def test_an_unreadable_or_unparsable_file_is_named_without_a_traceback(tmp_path):
    broken = tmp_path / "jobs.yaml"
    broken.write_text("jobs: [\n")
    result = CliRunner().invoke(main, ["jobs", "put", str(broken)], env={"MC_ADMIN_TOKEN": "t"})
    assert result.exit_code == ExitCode.REFUSED
    assert result.stderr.startswith(f"Error: {broken}: cannot parse") and "Traceback" not in result.output
    missing = CliRunner().invoke(
        main, ["jobs", "put", str(tmp_path / "nope.yaml")], env={"MC_ADMIN_TOKEN": "t"}
    )
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_a_command_may_not_take_an_option_named_like_a_global_one():
    with pytest.raises(TypeError, match="--url is a global option"):
        ApiCommand("add", params=[click.Option(["--url"])])


def test_the_installed_command_exits_5_without_a_traceback(closed_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MC_")}
    result = subprocess.run(
        [sys.executable, "-m", "mission_control", "jobs", "list", "--url", closed_url, "--token", "t"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 5
    assert result.stdout == ""
    assert result.stderr == f"Error: cannot reach {closed_url} (Connection refused)\n"
