"""``mission-control tokens create|list|revoke`` against a real server, and the client with a scoped token."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mission_control.cli import main
from mission_control.client import MissionControl, MissionControlError


@pytest.mark.slow
def test_tokens_are_created_listed_and_revoked_from_the_command_line(web_server):
    env = {"MC_URL": web_server.url, "MC_ADMIN_TOKEN": web_server.token}
    runner = CliRunner()

    created = runner.invoke(
        main,
        [
            "tokens",
            "create",
            "cli-deployer",
            "--scope",
            "jobs:write",
            "--scope",
            "runs:read",
            "--service",
            "cli-svc",
        ],
        env=env,
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("mct_") and "\n" not in token

    listed = runner.invoke(main, ["tokens", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    [mine] = [t for t in json.loads(listed.stdout) if t["name"] == "cli-deployer"]
    assert mine["scopes"] == ["jobs:write", "runs:read"] and mine["service"] == "cli-svc"
    assert token not in listed.output
    table = runner.invoke(main, ["tokens", "list"], env=env)
    assert table.stdout.splitlines()[0].split()[:4] == ["ID", "NAME", "SCOPES", "SERVICE"]

    scoped = MissionControl(web_server.url, token)  # the client takes any token
    assert all(job["service"] == "cli-svc" for job in scoped.jobs())
    with pytest.raises(MissionControlError) as refused:
        scoped.put_job({"name": "not-mine", "service": "other", "target": {"url": "http://127.0.0.1:9/"},
                        "schedule": {"every_s": 60}})  # fmt: skip
    assert refused.value.status == 403

    revoked = runner.invoke(main, ["tokens", "revoke", str(mine["id"])], env=env)
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    with pytest.raises(MissionControlError) as gone:
        list(scoped.jobs())
    assert gone.value.status == 401
    again = runner.invoke(main, ["tokens", "revoke", str(mine["id"])], env=env)
    assert again.exit_code == 3 and "no live token" in again.stderr
    bad = runner.invoke(main, ["tokens", "create", "x", "--scope", "nope"], env=env)
    assert bad.exit_code == 2
    everything = json.loads(runner.invoke(main, ["tokens", "list", "--all", "--json"], env=env).stdout)
    assert any(t["name"] == "cli-deployer" and t["revoked_at"] for t in everything)
