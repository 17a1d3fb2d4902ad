"""What the CLI tests that call a real server share: a Click runner, the environment that points the
CLI at the module's gunicorn (``web_server``, tests/conftest.py) with its admin token, and ``ok``."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def env(web_server) -> dict[str, str | None]:
    return {"MC_URL": web_server.url, "MC_ADMIN_TOKEN": web_server.token, "MC_SERVICE_TOKEN": None}


def ok(result: Result) -> Result:
    """The command succeeded (else its output, for the failure's message)."""
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result
