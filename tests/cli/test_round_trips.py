"""The API commands round trip through a real server: jobs, runs, heartbeats, services, alerts and
missions, as people use them."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from mission_control.cli import main


@pytest.mark.slow
def test_jobs_commands_round_trip_through_a_real_server(web_server, tmp_path):
    env = {"MC_URL": web_server.url, "MC_ADMIN_TOKEN": web_server.token}
    runner = CliRunner()

    jobs_file = tmp_path / "jobs.yaml"
    jobs_file.write_text(
        yaml.safe_dump(
            {
                "jobs": [
                    {
                        "name": "billing.report",
                        "service": "billing",
                        "target": {"url": "https://billing.internal/report"},
                        "schedule": {"cron": "@daily", "timezone": "America/New_York"},
                    },
                    {
                        "name": "billing.sync",
                        "service": "billing",
                        "target": {"url": "https://billing.internal/sync"},
                        "schedule": {"every_s": 30},
                    },
                ]
            }
        )
    )
    put = runner.invoke(main, ["jobs", "put", str(jobs_file)], env=env)
    assert put.exit_code == 0, put.output
    assert "billing.report: created" in put.output

    again = runner.invoke(main, ["jobs", "put", str(jobs_file)], env=env)
    assert "billing.report: registered" in again.output

    listed = runner.invoke(main, ["jobs", "list"], env=env)
    assert listed.exit_code == 0
    header, *rows = listed.output.strip().splitlines()
    assert header.split()[:2] == ["NAME", "SERVICE"]
    assert [row.split()[0] for row in rows] == ["billing.report", "billing.sync"]

    as_json = json.loads(
        runner.invoke(main, ["jobs", "list", "--json", "--service", "billing"], env=env).output
    )
    assert {job["name"] for job in as_json} == {"billing.report", "billing.sync"}

    paused = runner.invoke(main, ["jobs", "pause", "billing.sync"], env=env)
    assert paused.exit_code == 0
    shown = json.loads(runner.invoke(main, ["jobs", "show", "billing.sync", "--json"], env=env).output)
    assert shown["enabled"] is False
    assert runner.invoke(main, ["jobs", "resume", "billing.sync"], env=env).exit_code == 0
    assert "every 30 seconds" in runner.invoke(main, ["jobs", "show", "billing.sync"], env=env).output

    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"name": "bad", "service": "x", "target": {"url": "ftp://x"}, "schedule": {"every_s": 5}})
    )
    refused = runner.invoke(main, ["jobs", "put", str(bad)], env=env)
    assert refused.exit_code == 6  # refused input
    assert "target.url" in refused.stderr

    triggered = runner.invoke(main, ["jobs", "trigger", "billing.report"], env=env)
    assert triggered.exit_code == 0, triggered.output
    assert "queued" in triggered.output
    history = runner.invoke(main, ["runs", "--job", "billing.report"], env=env)
    assert history.exit_code == 0
    header, row = history.output.strip().splitlines()
    assert header.split()[:3] == ["ID", "JOB", "SLOT"]
    assert row.split()[1:5:3] == ["billing.report", "queued"]
    run_id = row.split()[0]
    shown = runner.invoke(main, ["runs", "show", run_id], env=env)
    assert f"run {run_id} of billing.report: queued" in shown.output

    assert runner.invoke(main, ["jobs", "rm", "billing.sync"], env=env).exit_code == 0
    missing = runner.invoke(main, ["jobs", "show", "billing.sync"], env=env)
    assert missing.exit_code == 3 and "no job named" in missing.stderr

    wrong = runner.invoke(main, ["jobs", "list"], env={**env, "MC_ADMIN_TOKEN": "nope"})
    assert wrong.exit_code == 4 and "admin token" in wrong.stderr


@pytest.mark.slow
def test_heartbeat_services_and_alerts_commands_against_a_real_server(web_server):
    from mission_control.client import MissionControl

    env = {"MC_URL": web_server.url, "MC_ADMIN_TOKEN": web_server.token}
    runner = CliRunner()

    failed = runner.invoke(main, ["heartbeat", "cli-svc", "--fail", "-m", "disk full"], env=env)
    assert failed.exit_code == 0, failed.output
    assert failed.output.strip() == "cli-svc: down"

    listing = runner.invoke(main, ["services"], env=env)
    assert listing.exit_code == 0 and "cli-svc" in listing.output and "down" in listing.output

    alerts = runner.invoke(main, ["alerts", "--open", "--json"], env=env)
    [alert] = [a for a in json.loads(alerts.output) if a["subject"] == "cli-svc"]
    assert alert["kind"] == "service_down"
    acked = runner.invoke(main, ["alerts", "ack", str(alert["id"]), "-m", "replacing the disk"], env=env)
    assert acked.exit_code == 0 and "acknowledged" in acked.output

    token = MissionControl(web_server.url, web_server.token)._call("POST", "/api/v1/services/cli-svc/tokens")[
        "token"
    ]
    scoped = {"MC_URL": web_server.url, "MC_SERVICE_TOKEN": token}
    ok = runner.invoke(main, ["heartbeat", "cli-svc"], env=scoped)
    assert ok.exit_code == 0 and ok.output.strip() == "cli-svc: up"
    other = runner.invoke(main, ["heartbeat", "someone-else"], env=scoped)
    assert other.exit_code == 4 and "may only beat for 'cli-svc'" in other.stderr


def test_missions_commands_round_trip_through_a_real_server(web_server, tmp_path):
    env = {"MC_URL": web_server.url, "MC_ADMIN_TOKEN": web_server.token}
    runner = CliRunner()
    definition = tmp_path / "approval.yaml"
    definition.write_text(
        "name: cli-approval\n"
        "input_schema: {type: object, required: [who]}\n"
        "steps:\n"
        "  - {name: approve, kind: wait_for, schema: {type: object, required: [ok]}}\n"
        "  - {name: pause, kind: sleep, seconds: 3600}\n"
    )
    defined = runner.invoke(main, ["missions", "define", str(definition)], env=env)
    assert defined.exit_code == 0, defined.output
    assert "cli-approval version 1 registered" in defined.output
    assert "unchanged" in runner.invoke(main, ["missions", "define", str(definition)], env=env).output

    bad = runner.invoke(main, ["missions", "start", "cli-approval", "--input", '{"nobody": 1}'], env=env)
    assert bad.exit_code == 6 and "input" in bad.stderr
    started = runner.invoke(
        main, ["missions", "start", "cli-approval", "--input", '{"who": "ops"}', "--id", "cli-1"], env=env
    )
    assert started.exit_code == 0, started.output
    assert "cli-1 waiting for signal approve at approve" in started.output

    wrong = runner.invoke(
        main, ["missions", "signal", "cli-1", "approve", "--payload", '{"ok": "x"}'], env=env
    )
    assert wrong.exit_code == 0, wrong.output  # the schema only requires the key
    assert "waiting for timer at pause" in wrong.output
    refused = runner.invoke(main, ["missions", "signal", "cli-1", "approve", "--payload", "{}"], env=env)
    assert refused.exit_code == 6 and "not waiting for a signal" in refused.stderr

    shown = runner.invoke(main, ["missions", "show", "cli-1"], env=env)
    assert shown.exit_code == 0 and "signal_received" in shown.output and '{"ok":"x"}' in shown.output
    as_json = json.loads(runner.invoke(main, ["missions", "show", "cli-1", "--json"], env=env).output)
    assert as_json["signals"][0]["payload"] == {"ok": "x"}

    cancelled = runner.invoke(main, ["missions", "cancel", "cli-1", "-m", "not needed"], env=env)
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.output
    listed = runner.invoke(main, ["missions", "list", "--status", "cancelled"], env=env)
    assert "cli-1" in listed.output and "cli-approval" in listed.output
    missing = runner.invoke(main, ["missions", "show", "nope"], env=env)
    assert missing.exit_code == 3 and "no mission" in missing.stderr
