"""Hostile bytes at the two endpoints outsiders reach most: heartbeats and mission signals.

Random bytes (invalid UTF-8 included) under every content type, random query strings and header
values: the answer is always a JSON 2xx/4xx in our error shape, never a 5xx, and a refused signal
leaves its mission exactly as it was. Huge headers are sent to a real gunicorn, whose limits answer
before the app does, and the server keeps serving.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import AUTH

CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "",
        "multipart/form-data; boundary=x",
        "application/merge-patch+json",
    ]
)
HOSTILE = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_answered(response: Any) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    assert response.is_json, response.get_data()[:200]
    if response.status_code >= 400:
        error = response.get_json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)


@pytest.fixture
def waiting(app: Any) -> Any:
    client = app.test_client()
    definition = {
        "steps": [{"name": "approve", "kind": "wait_for", "schema": {"type": "object", "required": ["ok"]}}]
    }
    assert client.put("/api/v1/mission-definitions/fuzz", headers=AUTH, json=definition).status_code == 201
    assert (
        client.post("/api/v1/missions", headers=AUTH, json={"definition": "fuzz", "id": "m-f"}).status_code
        == 201
    )
    return client


@HOSTILE
@given(body=st.binary(max_size=300), content_type=CONTENT_TYPES, name=st.text(max_size=20))
def test_signals_survive_random_bytes(waiting: Any, body: bytes, content_type: str, name: str) -> None:
    before = waiting.get("/api/v1/missions/m-f", headers=AUTH).get_json()
    path = "/api/v1/missions/m-f/signals/" + (
        name.replace("/", "").replace("?", "").replace("#", "") or "approve"
    )
    response = waiting.post(path, headers={**AUTH, "Content-Type": content_type}, data=body)
    assert_answered(response)
    if response.status_code >= 400:
        assert waiting.get("/api/v1/missions/m-f", headers=AUTH).get_json() == before


@HOSTILE
@given(
    body=st.binary(max_size=300),
    content_type=CONTENT_TYPES,
    query=st.dictionaries(
        st.sampled_from(["status", "token", "interval_s", "grace_s", "x"]), st.text(max_size=12), max_size=3
    ),
    token=st.text(max_size=40),
)  # fmt: skip
def test_heartbeats_survive_random_bytes(
    app: Any, body: bytes, content_type: str, query: dict, token: str
) -> None:
    client = app.test_client()
    headers = {"Content-Type": content_type}
    if token.isprintable() and token.isascii():
        headers["Authorization"] = f"Bearer {token}"
    for auth in (headers, {**headers, **AUTH}):
        assert_answered(client.post("/api/v1/heartbeats/fuzzed", headers=auth, data=body, query_string=query))


@pytest.mark.slow
def test_huge_and_broken_headers_are_refused_by_a_real_server(web_server: Any) -> None:
    host, port = web_server.url.removeprefix("http://").split(":")
    requests_to_send = [
        b"POST /api/v1/heartbeats/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + b"a" * 100_000
        + b"\r\n\r\n",
        b"POST /api/v1/heartbeats/x HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: y\r\n" * 200 + b"\r\n",
        b"POST /api/v1/heartbeats/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\x00\r\n\r\n",
        b"POST /api/v1/missions/m/signals/\xff\xfe HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n\xff\x00{",
    ]
    for raw in requests_to_send:
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(raw)
            status_line = sock.recv(200).split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 4"), (raw[:60], status_line)
    with socket.create_connection((host, int(port)), timeout=10) as sock:  # and it still serves
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert sock.recv(200).startswith(b"HTTP/1.1 200")
