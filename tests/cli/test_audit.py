"""``mission-control audit`` and the client's ``audit`` against a real server: a change made with a
named token is listed with its actor, filters narrow it, --json carries the change, a bad cursor is 400."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mission_control.cli import main
from mission_control.client import MissionControl, MissionControlError


@pytest.mark.slow
def test_changes_are_listed_by_the_audit_command_and_the_client(web_server):
    env = {"MC_URL": web_server.url, "MC_ADMIN_TOKEN": web_server.token}
    runner = CliRunner()
    admin = MissionControl(web_server.url, token=web_server.token)
    made = admin.create_token("cli-auditor", ["services:write"])
    ops = MissionControl(web_server.url, token=made["token"])
    ops._call("PUT", "/api/v1/services/audited-svc", body={"interval_s": 60, "grace_s": 30})
    ops._call("POST", "/api/v1/services/audited-svc/pause")

    listed = runner.invoke(main, ["audit", "--subject", "service:audited-svc", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["actor"], r["action"]) for r in rows] == [
        ("cli-auditor", "service.pause"),
        ("cli-auditor", "service.put"),
    ]
    assert rows[0]["change"]["after"]["paused_at"] is not None

    narrowed = runner.invoke(main, ["audit", "--actor", "cli-auditor", "--action", "service.put"], env=env)
    assert narrowed.exit_code == 0, narrowed.output
    lines = narrowed.stdout.splitlines()
    assert lines[0].split()[:3] == ["AT", "(UTC)", "ACTOR"]
    assert len(lines) == 2 and "service:audited-svc" in lines[1]

    assert [r["action"] for r in admin.audit(subject="audited-svc", limit=1)] == ["service.pause"]
    with pytest.raises(MissionControlError) as refused:
        admin._call("GET", "/api/v1/audit", params={"cursor": "nope"})
    assert refused.value.status == 400
