"""``mission-control services tokens list|create|revoke`` and ``services signing-secrets list|rotate|revoke``
against a real server."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mission_control.cli import main
from mission_control.client import MissionControl


@pytest.mark.slow
def test_service_tokens_are_created_listed_and_revoked_from_the_command_line(web_server):
    env = {"MC_URL": web_server.url, "MC_ADMIN_TOKEN": web_server.token}
    runner = CliRunner()
    MissionControl(web_server.url, web_server.token).put_service("cli-tokens", interval_s=60)

    created = runner.invoke(
        main, ["services", "tokens", "create", "cli-tokens", "--label", "host-1"], env=env
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("mcs_") and "\n" not in token
    kept = runner.invoke(main, ["services", "tokens", "create", "cli-tokens"], env=env).stdout.strip()

    listed = runner.invoke(main, ["services", "tokens", "list", "cli-tokens", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    tokens = json.loads(listed.stdout)
    assert [t["label"] for t in tokens] == ["host-1", None]
    assert token not in listed.output and kept not in listed.output
    table = runner.invoke(main, ["services", "tokens", "list", "cli-tokens"], env=env)
    assert table.stdout.splitlines()[0].split() == ["ID", "LABEL", "CREATED", "(UTC)"]

    scoped = {"MC_URL": web_server.url, "MC_SERVICE_TOKEN": token}
    assert runner.invoke(main, ["heartbeat", "cli-tokens"], env=scoped).exit_code == 0
    revoked = runner.invoke(
        main, ["services", "tokens", "revoke", "cli-tokens", str(tokens[0]["id"])], env=env
    )
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    refused = runner.invoke(main, ["heartbeat", "cli-tokens"], env=scoped)
    assert refused.exit_code != 0
    still = runner.invoke(main, ["heartbeat", "cli-tokens"], env={**scoped, "MC_SERVICE_TOKEN": kept})
    assert still.exit_code == 0, still.output

    again = runner.invoke(main, ["services", "tokens", "revoke", "cli-tokens", str(tokens[0]["id"])], env=env)
    assert again.exit_code == 3 and "no token with id" in again.stderr
    assert runner.invoke(main, ["services", "--json"], env=env).exit_code == 0  # the listing still works


@pytest.mark.slow
def test_signing_secrets_are_rotated_listed_and_revoked_from_the_command_line(web_server):
    env = {"MC_URL": web_server.url, "MC_ADMIN_TOKEN": web_server.token}
    runner = CliRunner()

    rotated = runner.invoke(
        main, ["services", "signing-secrets", "rotate", "cli-signed", "--overlap", "60"], env=env
    )
    assert rotated.exit_code == 0, rotated.output
    secret = rotated.stdout.strip()
    assert secret.startswith("whsec_") and "\n" not in secret

    listed = runner.invoke(main, ["services", "signing-secrets", "list", "cli-signed", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    secrets = json.loads(listed.stdout)
    assert [s["kind"] for s in secrets] == ["own", "default"]  # the default signs through the overlap
    assert secret not in listed.output

    revoked = runner.invoke(
        main, ["services", "signing-secrets", "revoke", "cli-signed", str(secrets[1]["id"])], env=env
    )
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    remaining = MissionControl(web_server.url, web_server.token).signing_secrets("cli-signed")
    assert [s["id"] for s in remaining] == [secrets[0]["id"]]
    bad = runner.invoke(
        main, ["services", "signing-secrets", "rotate", "cli-signed", "--overlap", "-1"], env=env
    )
    assert bad.exit_code == 2
