"""``mission-control silences list|add|expire`` and ``channels add --kind pagerduty|apprise`` against a
real server (gunicorn over its own PostgreSQL database); no notice is sent to anything here."""

from __future__ import annotations

import json

import pytest

from mission_control.cli import main
from tests.cli.conftest import ok

pytestmark = pytest.mark.slow
ROUTING_KEY = "Pd" * 16


def test_silences_are_added_listed_and_expired(runner, env):
    added = json.loads(
        ok(
            runner.invoke(
                main,
                ["silences", "add", "-m", "db migration", "--alert-kind", "service_down", "--subjects",
                 "billing-*", "--tags", "team:*", "--duration", "2h", "--json"],
                env=env,
            )
        ).stdout
    )  # fmt: skip
    assert added["state"] == "active" and added["alert_kinds"] == ["service_down"]
    assert added["tag_pattern"] == "team:*"
    later = ok(
        runner.invoke(
            main,
            [
                "silences",
                "add",
                "-m",
                "xmas",
                "--start",
                "2999-12-24T18:00:00Z",
                "--end",
                "2999-12-27T08:00:00Z",
            ],
            env=env,
        )
    ).stdout
    assert "(pending)" in later
    table = ok(runner.invoke(main, ["silences", "list", "--state", "active"], env=env)).stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "STATE", "ALERTS"]
    assert any(line.split()[:2] == [str(added["id"]), "active"] for line in table[1:])
    expired = ok(runner.invoke(main, ["silences", "expire", str(added["id"])], env=env)).stdout
    assert f"silence {added['id']}: expired" in expired
    listing = runner.invoke(main, ["silences", "list", "--state", "expired", "--json"], env=env)
    listed = json.loads(ok(listing).stdout)
    assert added["id"] in [s["id"] for s in listed]
    bad = runner.invoke(main, ["silences", "add", "-m", "x", "--duration", "soon"], env=env)
    assert bad.exit_code == 2 and "30m, 2h, 1d" in bad.stderr
    missing = runner.invoke(main, ["silences", "expire", "999999"], env=env)
    assert missing.exit_code != 0


def test_pagerduty_and_apprise_channels_from_the_command_line(runner, env):
    pd = json.loads(
        ok(
            runner.invoke(
                main,
                ["channels", "add", "cli-pd", "--kind", "pagerduty", "--routing-key", "-", "--events-url",
                 "http://127.0.0.1:9/v2/enqueue", "--json"],
                env=env, input=f"{ROUTING_KEY}\n",
            )
        ).stdout
    )  # fmt: skip
    assert pd["kind"] == "pagerduty" and pd["destination"] == "http://127.0.0.1:9/…"
    apprise = json.loads(
        ok(
            runner.invoke(
                main,
                ["channels", "add", "cli-ntfy", "--kind", "apprise", "--apprise-url", "ntfy://127.0.0.1:9/topic-secret",
                 "--json"],
                env=env,
            )
        ).stdout
    )  # fmt: skip
    assert apprise["kind"] == "apprise" and apprise["destination"] == "ntfy://127.0.0.1:9/…"
    listing = ok(runner.invoke(main, ["channels", "list"], env=env)).stdout
    assert ROUTING_KEY not in listing and "topic-secret" not in listing
