"""``mission-control services events NAME`` and the client's silence methods against a real server
(gunicorn over its own PostgreSQL database)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from mission_control.cli import main
from mission_control.client import MissionControl, NotFound
from tests.cli.conftest import ok

pytestmark = pytest.mark.slow


def test_services_events_lists_a_run_newest_first(runner, env, web_server):
    mc = MissionControl(web_server.url, web_server.token)
    mc.put_service("events-svc", interval_s=3600)
    rid = str(uuid.uuid4())
    mc.start("events-svc", rid=rid, message="starting")
    mc.exit_status("events-svc", 3, rid=rid, message="disk full")

    lines = ok(runner.invoke(main, ["services", "events", "events-svc"], env=env)).stdout.splitlines()
    assert lines[0].split() == ["TIME", "(UTC)", "EVENT", "RID", "DURATION", "EXIT", "MESSAGE"]
    newest, oldest = lines[1].split(), lines[2].split()
    assert newest[1:3] == ["fail", rid] and newest[-4:] == ["s", "3", "disk", "full"]
    assert oldest[1:] == ["start", rid, "-", "-", "starting"]
    assert len(lines) == 3

    listed = json.loads(
        ok(runner.invoke(main, ["services", "events", "events-svc", "--json"], env=env)).stdout
    )
    assert [(e["status"], e["rid"], e["exit_code"]) for e in listed] == [
        ("fail", rid, 3),
        ("start", rid, None),
    ]
    assert listed[0]["duration_s"] is not None and listed[0]["message"] == "disk full"
    limited = runner.invoke(main, ["services", "events", "events-svc", "--limit", "1", "--json"], env=env)
    assert [e["status"] for e in json.loads(ok(limited).stdout)] == ["fail"]
    missing = runner.invoke(main, ["services", "events", "no-such-svc"], env=env)
    assert missing.exit_code != 0


def test_the_client_adds_lists_shows_and_expires_silences(web_server):
    mc = MissionControl(web_server.url, web_server.token)
    now = datetime.now(UTC)
    added = mc.add_silence(
        ends_at=now + timedelta(hours=1),
        comment="client maintenance",
        alert_kinds=["service_down"],
        subject_pattern="client-silenced-*",
        tag_pattern="team:*",
    )
    assert added["state"] == "active" and added["alert_kinds"] == ["service_down"]
    assert added["subject_pattern"] == "client-silenced-*" and added["tag_pattern"] == "team:*"
    pending = mc.add_silence(
        starts_at="2999-12-24T18:00:00+00:00", ends_at="2999-12-25T18:00:00+00:00", comment="later"
    )
    assert pending["state"] == "pending" and pending["alert_kinds"] is None
    assert pending["subject_pattern"] == "*"

    assert mc.silence(added["id"])["comment"] == "client maintenance"
    assert added["id"] in [s["id"] for s in mc.silences(state="active")]
    assert pending["id"] in [s["id"] for s in mc.silences("pending")]
    assert {added["id"], pending["id"]} <= {s["id"] for s in mc.silences()}

    expired = mc.expire_silence(added["id"])
    assert expired["id"] == added["id"] and expired["state"] == "expired"
    assert mc.expire_silence(added["id"])["state"] == "expired"  # expiring again changes nothing
    assert added["id"] in [s["id"] for s in mc.silences("expired")]
    with pytest.raises(NotFound):
        mc.silence(999_999)
    with pytest.raises(NotFound):
        mc.expire_silence(999_999)
