"""Tags from the client library and the CLI against a real server (gunicorn over its own PostgreSQL
database): ``jobs(tags=)``/``services(tags=)`` and ``jobs list --tag``/``services list --tag`` page
through everything carrying all the tags given."""

from __future__ import annotations

import json

import pytest

from mission_control.cli import main
from mission_control.client import MissionControl
from tests.cli.conftest import ok
from tests.factories import job_body

pytestmark = pytest.mark.slow


def test_the_client_and_the_cli_filter_jobs_and_services_by_tag(web_server, runner, env):
    client = MissionControl(web_server.url, web_server.token)
    for index in range(5):
        tags = ["team:tagged"] + (["tier:1"] if index % 2 else [])
        client.put_job(job_body(f"tagged.job{index}", tags=tags))
        client._call("PUT", f"/api/v1/services/tagged-{index}", body={"interval_s": 60, "tags": tags})
    client.put_job(job_body("untagged.job"))

    # page_size 2: the filter holds across pages
    assert [job["name"] for job in client.jobs(tags=["team:tagged"], page_size=2)] == [
        f"tagged.job{i}" for i in range(5)
    ]
    assert [job["name"] for job in client.jobs(tags=["team:tagged", "tier:1"], page_size=2)] == [
        "tagged.job1", "tagged.job3"]  # fmt: skip
    assert [s["name"] for s in client.services(tags=["tier:1", "team:tagged"], page_size=1)] == [
        "tagged-1", "tagged-3"]  # fmt: skip

    listed = json.loads(ok(runner.invoke(main, ["jobs", "list", "--tag", "team:tagged", "--tag", "tier:1",
                                                "--json"], env=env)).stdout)  # fmt: skip
    assert [job["name"] for job in listed] == ["tagged.job1", "tagged.job3"]
    assert listed[0]["tags"] == ["team:tagged", "tier:1"]
    services = json.loads(
        ok(runner.invoke(main, ["services", "list", "--tag", "tier:1", "--json"], env=env)).stdout
    )
    assert [s["name"] for s in services] == ["tagged-1", "tagged-3"]
    refused = runner.invoke(main, ["jobs", "list", "--tag", "Not A Tag"], env=env)
    assert refused.exit_code != 0 and "tag" in refused.stderr


def test_channels_add_takes_a_tag_pattern(runner, env):
    args = ["channels", "add", "tagged-hook", "--kind", "webhook", "--webhook-url", "https://hooks.test/x",
            "--tags", "team:*", "--json"]  # fmt: skip
    made = json.loads(ok(runner.invoke(main, args, env=env)).stdout)
    assert made["tag_pattern"] == "team:*"
    shown = ok(runner.invoke(main, ["channels", "show", str(made["id"])], env=env)).stdout
    assert "team:*" in shown


def test_services_put_takes_tags_and_show_lists_them(web_server, runner, env):
    args = ["services", "put", "tagged-put", "--interval", "60", "--tag", "team:billing", "--tag", "tier:1"]
    ok(runner.invoke(main, [*args, "--json"], env=env))
    client = MissionControl(web_server.url, web_server.token)
    assert client.service("tagged-put")["tags"] == ["team:billing", "tier:1"]
    shown = ok(runner.invoke(main, ["services", "show", "tagged-put"], env=env)).stdout
    assert "team:billing, tier:1" in shown
    assert client.put_service("tagged-put", interval_s=60, tags=["tier:2"])["tags"] == ["tier:2"]
