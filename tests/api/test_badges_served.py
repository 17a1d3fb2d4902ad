"""Status badges from a real gunicorn (over its own PostgreSQL database): the image and its JSON are
served without a token with README-friendly caching and locked-down headers, a hostile name is
escaped, and an unknown key is a bare 404."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import requests
from sqlalchemy import insert

from mission_control.base.clock import SYSTEM_CLOCK
from mission_control.db.engine import make_engine
from mission_control.db.tables import services
from mission_control.monitoring.badges import BadgeStore
from tests.servers import wait_until

pytestmark = pytest.mark.slow
SVG = "{http://www.w3.org/2000/svg}"


def test_a_badge_is_served_without_a_token_and_an_unknown_key_is_a_bare_404(web_server) -> None:
    admin = {"Authorization": f"Bearer {web_server.token}"}
    put = requests.put(
        f"{web_server.url}/api/v1/services/served", json={"interval_s": 60}, headers=admin, timeout=5
    )
    assert put.status_code == 201, put.text
    assert (
        requests.post(f"{web_server.url}/api/v1/heartbeats/served", headers=admin, timeout=5).status_code
        == 200
    )
    made = requests.post(
        f"{web_server.url}/api/v1/badges", json={"service": "served"}, headers=admin, timeout=5
    )
    assert made.status_code == 201, made.text
    urls = made.json()

    image = requests.get(web_server.url + urls["svg_url"], timeout=5)  # no Authorization header
    assert image.status_code == 200
    assert image.headers["Content-Type"].startswith("image/svg+xml")
    assert image.headers["Cache-Control"] == "public, max-age=60"
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in image.headers["Content-Security-Policy"]
    root = ET.fromstring(image.content)
    assert [text.text for text in root.iter(f"{SVG}text")][1::2] == ["served", "up"]

    as_json = requests.get(web_server.url + urls["json_url"], timeout=5)
    assert as_json.json() == {"label": "served", "status": "up", "total": 1, "down": 0, "late": 0}

    # the key is a credential: the access log names the request with it masked
    wait_until(lambda: "/badge/***.svg" in web_server.log_path.read_text(), 10, "the access line")
    assert urls["key"] not in web_server.log_path.read_text()

    unknown = requests.get(f"{web_server.url}/badge/{'A' * 32}.svg", timeout=5)
    assert unknown.status_code == 404
    assert unknown.json() == {"error": {"code": "not_found", "message": "not found", "field": None}}
    assert unknown.headers["Cache-Control"] == "no-store"


def test_a_hostile_name_is_escaped_in_the_served_image(web_server) -> None:
    hostile = "<script>alert(1)</script>&co"
    now = SYSTEM_CLOCK.now()
    engine = make_engine(web_server.database_url)
    try:
        # No API path stores such a name; a row written by hand must still render inert.
        row = {"name": hostile, "interval_s": 60, "grace_s": 0, "state": "down", "state_changed_at": now,
               "created_at": now, "updated_at": now}  # fmt: skip
        with engine.begin() as conn:
            conn.execute(insert(services).values(row))
        key = BadgeStore(engine, SYSTEM_CLOCK).create("service", hostile, "test").key
    finally:
        engine.dispose()
    image = requests.get(f"{web_server.url}/badge/{key}.svg", timeout=5)
    assert image.status_code == 200
    assert b"<script>" not in image.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;&amp;co" in image.content
    root = ET.fromstring(image.content)
    assert [text.text for text in root.iter(f"{SVG}text")][1::2] == [hostile, "down"]
