"""``mission-control badges create|list|revoke`` and the client's badge methods against a real server
(gunicorn over its own PostgreSQL database): the printed URL serves the image without a token until
the badge is revoked."""

from __future__ import annotations

import json

import pytest
import requests

from mission_control.cli import main
from mission_control.client import MissionControl
from tests.cli.conftest import ok

pytestmark = pytest.mark.slow


def test_a_badge_is_created_served_listed_and_revoked_from_the_cli(web_server, runner, env):
    client = MissionControl(web_server.url, web_server.token)
    client.put_service("badged", interval_s=60)
    made = ok(runner.invoke(main, ["badges", "create", "--service", "badged"], env=env))
    url = made.stdout.strip()
    assert url.startswith(f"{web_server.url}/badge/") and url.endswith(".svg")
    assert "shown once" in made.stderr
    image = requests.get(url, timeout=5)
    assert image.status_code == 200 and b"badged" in image.content

    listed = json.loads(ok(runner.invoke(main, ["badges", "list", "--json"], env=env)).stdout)
    [badge] = [b for b in listed if b["subject"] == "badged"]
    assert badge["kind"] == "service" and "key" not in badge
    ok(runner.invoke(main, ["badges", "revoke", str(badge["id"])], env=env))
    assert requests.get(url, timeout=5).status_code == 404
    assert badge["id"] in [b["id"] for b in client.badges(include_revoked=True)]
    assert badge["id"] not in [b["id"] for b in client.badges()]

    tag = client.create_badge(tag="team:badged")
    assert requests.get(client.badge_url(tag["json_url"]), timeout=5).json()["status"] == "unknown"
    refused = runner.invoke(main, ["badges", "create", "--service", "a", "--tag", "b"], env=env)
    assert refused.exit_code == 2 and "exactly one" in refused.stderr
