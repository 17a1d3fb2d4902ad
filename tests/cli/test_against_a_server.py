"""The API commands against a real server (gunicorn over its own PostgreSQL database): global options
wherever they are given, the new commands (channels, services put/show/pause/resume/rm, alerts show,
runs list), an exit status per kind of failure, and ``--json`` on each group."""

from __future__ import annotations

import json

import pytest
from click.testing import Result

from mission_control.cli import main
from mission_control.client import MissionControl
from tests.cli.conftest import ok as succeeded

pytestmark = pytest.mark.slow

WRONG_TOKEN = "not-the-admin-token-0123456789abcdef"


def ok(result: Result) -> Result:
    """Succeeded, and said nothing on stderr but a secret's "shown once" notice."""
    succeeded(result)
    assert result.stderr == "" or "shown once" in result.stderr
    return result


def as_json(result: Result) -> object:
    return json.loads(ok(result).stdout)


@pytest.mark.parametrize(
    "args",
    [
        ["--url", "{url}", "--token", "{token}", "services", "tokens", "list", "cli-global"],
        ["services", "--url", "{url}", "--token", "{token}", "tokens", "list", "cli-global"],
        ["services", "tokens", "--url", "{url}", "list", "cli-global", "--token", "{token}"],
        ["services", "tokens", "list", "cli-global", "--url", "{url}", "--token", "{token}"],
        ["jobs", "list", "--token", "{token}", "--url", "{url}"],
        ["--token", "{token}", "jobs", "list", "--url", "{url}"],
        ["heartbeat", "cli-global", "--url", "{url}", "--token", "{token}"],
    ],
    ids=[
        "before",
        "on-the-group",
        "on-the-sub-group",
        "two-levels-down",
        "after",
        "before-and-after",
        "heartbeat",
    ],
)
def test_global_options_are_taken_before_and_after_the_command_at_any_depth(web_server, runner, args):
    MissionControl(web_server.url, web_server.token).put_service("cli-global", interval_s=60)
    given = [a.format(url=web_server.url, token=web_server.token) for a in args]
    # The environment names no server and a wrong token: only the options can make this work.
    result = runner.invoke(main, given, env={"MC_URL": None, "MC_ADMIN_TOKEN": WRONG_TOKEN})
    ok(result)


def test_the_innermost_token_given_wins(web_server, runner):
    url = ["--url", web_server.url]
    inner_right = [
        "--token",
        WRONG_TOKEN,
        "jobs",
        "--token",
        WRONG_TOKEN,
        "list",
        "--token",
        web_server.token,
    ]
    ok(runner.invoke(main, [*inner_right, *url]))
    inner_wrong = ["--token", web_server.token, "jobs", "list", "--token", WRONG_TOKEN]
    refused = runner.invoke(main, [*inner_wrong, *url])
    assert refused.exit_code == 4, refused.output


def test_a_command_line_token_beats_the_environment(web_server, runner):
    result = runner.invoke(
        main,
        ["runs", "list", "--token", web_server.token],
        env={"MC_URL": web_server.url, "MC_ADMIN_TOKEN": WRONG_TOKEN},
    )
    ok(result)


def test_each_kind_of_failure_has_its_own_exit_status_and_one_line(runner, env):
    unknown = runner.invoke(main, ["jobs", "show", "no-such-job"], env=env)
    assert unknown.exit_code == 3
    assert unknown.stdout == ""
    assert unknown.stderr.splitlines() == ["Error: name: no job named 'no-such-job' (HTTP 404 not_found)"]

    unauthorized = runner.invoke(main, ["jobs", "list"], env={**env, "MC_ADMIN_TOKEN": WRONG_TOKEN})
    assert unauthorized.exit_code == 4
    assert len(unauthorized.stderr.splitlines()) == 1 and "HTTP 401" in unauthorized.stderr

    invalid = runner.invoke(
        main, ["services", "put", "cli-bad", "--interval", str(10 * 366 * 86_400)], env=env
    )
    assert invalid.exit_code == 6
    assert len(invalid.stderr.splitlines()) == 1 and "HTTP 422 validation_error" in invalid.stderr

    ok(
        runner.invoke(
            main, ["channels", "add", "cli-twice", "--kind", "email", "--to", "a@example.com"], env=env
        )
    )
    conflict = runner.invoke(
        main, ["channels", "add", "cli-twice", "--kind", "email", "--to", "b@example.com"], env=env
    )
    assert conflict.exit_code == 6
    assert conflict.stderr.splitlines() == [
        "Error: name: a channel named 'cli-twice' exists (HTTP 409 conflict)"
    ]
    assert "Traceback" not in unknown.output + unauthorized.output + invalid.output + conflict.output


@pytest.mark.parametrize(
    ("args", "status", "exit_code"),
    [
        (["jobs", "show", "no-such-job"], 404, 3),
        (["runs", "show", "999999"], 404, 3),
        (["channels", "rm", "999999"], 404, 3),
        (["services", "pause", "no-such-service"], 404, 3),
        (["missions", "show", "no-such-mission"], 404, 3),
        (["alerts", "ack", "999999"], 404, 3),
    ],
)
def test_with_json_a_failure_is_one_json_object_on_stderr(runner, env, args, status, exit_code):
    result = runner.invoke(main, [*args, "--json"], env=env)
    assert result.exit_code == exit_code
    assert result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["status"] == status and error["exit_code"] == exit_code and error["code"] == "not_found"
    assert error["message"] and "field" in error


def test_with_json_a_wrong_token_is_a_json_error_too(runner, env):
    result = runner.invoke(main, ["--json", "alerts"], env={**env, "MC_ADMIN_TOKEN": WRONG_TOKEN})
    assert result.exit_code == 4
    assert json.loads(result.stderr)["error"]["status"] == 401


def test_channels_are_added_listed_shown_tested_and_removed(runner, env):
    added = as_json(
        runner.invoke(
            main,
            [
                "channels", "add", "cli-ops", "--kind", "webhook", "--webhook-url", "http://127.0.0.1:9/hooks/secret",
                "--alert-kind", "service_down", "--alert-kind", "job_failed", "--subjects", "billing-*",
                "--repeat", "3600", "--json",
            ],
            env=env,
        )
    )  # fmt: skip
    assert added["name"] == "cli-ops" and added["alert_kinds"] == ["service_down", "job_failed"]
    assert "secret" not in json.dumps(added)  # the URL is a credential: shown to its host only
    channel_id = added["id"]

    mail = ok(
        runner.invoke(
            main, ["channels", "add", "cli-mail", "--kind", "email", "--to", "ops@example.com"], env=env
        )
    )
    assert mail.stdout.startswith("channel ") and "added" in mail.stdout

    listed = as_json(runner.invoke(main, ["channels", "list", "--json"], env=env))
    assert {"cli-ops", "cli-mail"} <= {c["name"] for c in listed}
    table = ok(runner.invoke(main, ["channels", "list"], env=env)).stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "NAME", "KIND"]
    assert any(line.split()[1:3] == ["cli-ops", "webhook"] for line in table[1:])

    shown = ok(runner.invoke(main, ["channels", "show", str(channel_id)], env=env)).stdout
    assert "billing-*" in shown and "every 3600 s while open" in shown
    assert as_json(runner.invoke(main, ["channels", "show", str(channel_id), "--json"], env=env)) == added

    notice = as_json(runner.invoke(main, ["channels", "test", str(channel_id), "--json"], env=env))
    assert notice["event"] == "test"
    notices = as_json(runner.invoke(main, ["channels", "notices", str(channel_id), "--json"], env=env))
    assert [n["id"] for n in notices] == [notice["id"]]
    assert "test" in ok(runner.invoke(main, ["channels", "notices", str(channel_id)], env=env)).stdout

    removed = as_json(runner.invoke(main, ["channels", "rm", str(channel_id), "--json"], env=env))
    assert removed == {"ok": True, "removed": [channel_id]}
    gone = runner.invoke(main, ["channels", "show", str(channel_id)], env=env)
    assert gone.exit_code == 3 and f"no channel with id {channel_id}" in gone.stderr

    no_url = runner.invoke(main, ["channels", "add", "cli-nourl", "--kind", "webhook"], env=env)
    assert no_url.exit_code == 6 and "url" in no_url.stderr


def test_a_cron_service_is_put_and_listed_with_its_schedule(runner, env):
    args = ["services", "put", "cli-svc-cron", "--cron", "30 2 * * *", "--timezone", "Europe/Riga"]
    args += ["--grace", "900", "--fail-threshold", "3", "--early-tolerance", "60"]
    put = ok(runner.invoke(main, args, env=env))
    assert (
        put.stdout.strip() == "cli-svc-cron: heartbeat after cron 30 2 * * * (Europe/Riga), grace 900 s (new)"
    )
    shown = as_json(runner.invoke(main, ["services", "show", "cli-svc-cron", "--json"], env=env))
    assert (shown["schedule"]["cron"], shown["interval_s"], shown["fail_threshold"]) == (
        "30 2 * * *",
        None,
        3,
    )
    assert shown["early_tolerance_s"] == 60
    listed = ok(runner.invoke(main, ["services", "list"], env=env)).stdout
    assert "cron 30 2 * * * (Europe/Riga)" in listed
    both = runner.invoke(
        main, ["services", "put", "cli-svc-cron", "--cron", "* * * * *", "--interval", "5"], env=env
    )
    assert both.exit_code != 0 and "exactly one of --interval and --cron" in both.output


def test_services_are_put_shown_paused_resumed_and_removed(runner, env):
    put = ok(
        runner.invoke(main, ["services", "put", "cli-svc-put", "--interval", "60", "--grace", "30"], env=env)
    )
    assert put.stdout.strip() == "cli-svc-put: heartbeat every 60 s, grace 30 s (new)"
    changed = as_json(
        runner.invoke(main, ["services", "put", "cli-svc-put", "--interval", "120", "--json"], env=env)
    )
    assert (changed["interval_s"], changed["grace_s"]) == (120, 0)

    ok(runner.invoke(main, ["heartbeat", "cli-svc-put", "-m", "hello"], env=env))
    shown = ok(runner.invoke(main, ["services", "show", "cli-svc-put"], env=env)).stdout
    assert "hello" in shown and "HEARTBEAT" in shown

    paused = as_json(runner.invoke(main, ["services", "pause", "cli-svc-put", "--json"], env=env))
    assert [s["paused"] for s in paused] == [True]
    listed = as_json(runner.invoke(main, ["services", "list", "--state", "paused", "--json"], env=env))
    assert "cli-svc-put" in {s["name"] for s in listed}
    resumed = ok(runner.invoke(main, ["services", "resume", "cli-svc-put"], env=env))
    assert resumed.stdout.startswith("cli-svc-put: resumed")
    assert (
        as_json(runner.invoke(main, ["services", "show", "cli-svc-put", "--json"], env=env))["paused"]
        is False
    )

    removed = as_json(runner.invoke(main, ["services", "rm", "cli-svc-put", "--json"], env=env))
    assert removed == {"ok": True, "removed": ["cli-svc-put"]}
    assert runner.invoke(main, ["services", "show", "cli-svc-put"], env=env).exit_code == 3


def test_alerts_show_and_runs_list(web_server, runner, env):
    ok(runner.invoke(main, ["heartbeat", "cli-alerting", "--fail", "-m", "disk full"], env=env))
    [alert] = as_json(runner.invoke(main, ["alerts", "list", "--subject", "cli-alerting", "--json"], env=env))
    shown = ok(runner.invoke(main, ["alerts", "show", str(alert["id"])], env=env)).stdout
    assert "service_down" in shown and "cli-alerting" in shown
    acked = as_json(
        runner.invoke(main, ["alerts", "ack", str(alert["id"]), "-m", "on it", "--json"], env=env)
    )
    assert acked["state"] == "acknowledged" and acked["ack_comment"] == "on it"

    MissionControl(web_server.url, web_server.token).put_job(
        {
            "name": "cli-runs",
            "service": "cli",
            "target": {"url": "http://127.0.0.1:9/x"},
            "schedule": {"every_s": 3600},
        }
    )
    run = as_json(runner.invoke(main, ["jobs", "trigger", "cli-runs", "--json"], env=env))
    runs = as_json(runner.invoke(main, ["runs", "list", "--job", "cli-runs", "--json"], env=env))
    assert [r["id"] for r in runs] == [run["id"]]
    assert (
        as_json(runner.invoke(main, ["runs", "--job", "cli-runs", "--json"], env=env)) == runs
    )  # the group lists too


@pytest.mark.parametrize(
    ("args", "shape"),
    [
        (["jobs", "list"], list),
        (["runs", "list"], list),
        (["services", "list"], list),
        (["services", "tokens", "list", "cli-json"], list),
        (["services", "signing-secrets", "list", "cli-json"], list),
        (["alerts", "list"], list),
        (["channels", "list"], list),
        (["missions", "list"], list),
        (["heartbeat", "cli-json"], dict),
        (["services", "put", "cli-json", "--interval", "60"], dict),
        (["services", "tokens", "create", "cli-json"], dict),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_json_is_machine_readable_on_each_group(web_server, runner, env, args, shape):
    MissionControl(web_server.url, web_server.token).put_service("cli-json", interval_s=60)
    for placed in ([*args, "--json"], ["--json", *args]):
        result = ok(runner.invoke(main, placed, env=env))
        assert result.stderr == ""  # nothing for people in JSON mode, not even "shown once"
        assert isinstance(json.loads(result.stdout), shape)


def test_jobs_put_registers_what_it_can_and_names_what_was_refused(runner, env, tmp_path):
    jobs = tmp_path / "jobs.json"
    good = {
        "name": "cli-put-good",
        "service": "cli",
        "target": {"url": "http://127.0.0.1:9/x"},
        "schedule": {"every_s": 60},
    }
    bad = {**good, "name": "cli-put-bad", "target": {"url": "ftp://x"}}
    jobs.write_text(json.dumps([good, bad]))
    result = runner.invoke(main, ["jobs", "put", str(jobs), "--json"], env=env)
    assert result.exit_code == 6
    assert [job["name"] for job in json.loads(result.stdout)] == ["cli-put-good"]
    error = json.loads(result.stderr)["error"]
    assert error["message"] == "1 of 2 jobs were not registered"
    assert [(d["name"], d["status"], d["field"]) for d in error["details"]] == [
        ("cli-put-bad", 422, "target.url")
    ]
