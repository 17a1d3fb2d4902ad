"""The missions API against security issue 13: remote ``$ref``s refused, hostile patterns and cursors.

A definition whose schemas reference anything outside themselves is a 422 naming where, and nothing
is stored or fetched (the local server on 127.0.0.2 stands for every forbidden address); a hostile
``pattern`` answers at once; a crafted ``cursor`` is a 400 naming it, never a 500.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from mission_control.missions.definition import MissionDefinition
from mission_control.missions.store import MissionStore
from tests.targets import SECRET, ForbiddenServer


def error(response: Any) -> dict[str, Any]:
    assert response.is_json, response.data
    return response.get_json()["error"]


def test_a_definition_referencing_outside_itself_is_refused_and_not_stored(
    api: Any, forbidden: ForbiddenServer
) -> None:
    cases = [
        ({"input_schema": {"$ref": f"{forbidden.base}/secret#/nowhere"}}, "input_schema.$ref"),
        (
            {
                "steps": [
                    {"name": "nap", "kind": "sleep", "seconds": 1},
                    {
                        "name": "w",
                        "kind": "wait_for",
                        "schema": {"properties": {"x": {"$ref": "file:///etc/shadow#/x"}}},
                    },
                ]
            },
            "steps.1.schema.properties.x.$ref",
        ),
        ({"input_schema": {"$schema": f"{forbidden.base}/meta"}}, "input_schema.$schema"),
    ]
    for extra, field in cases:
        body = {"steps": [{"name": "nap", "kind": "sleep", "seconds": 1}], **extra}
        response = api.put("/api/v1/mission-definitions/leaky", json=body)
        assert response.status_code == 422, response.get_json()
        assert error(response)["code"] == "validation_error" and error(response)["field"] == field
        assert "only references to the schema itself" in error(response)["message"] or "$schema" in field
    assert api.get("/api/v1/mission-definitions/leaky").status_code == 404
    assert forbidden.requests == []


def test_starting_a_stored_leaky_definition_fetches_nothing_and_quotes_nothing(
    api: Any, engine: Any, clock: Any, forbidden: ForbiddenServer
) -> None:
    leaky = {
        "name": "old-leaky",
        "input_schema": {"$ref": f"{forbidden.base}/secret#/nowhere"},
        "steps": [{"name": "nap", "kind": "sleep", "seconds": 1}],
    }
    MissionStore(engine, clock).put_definition(MissionDefinition.model_validate(leaky))  # as stored before
    response = api.post("/api/v1/missions", json={"definition": "old-leaky", "input": {}})
    assert response.status_code == 422 and error(response)["field"] == "input"
    assert "schema cannot be used" in error(response)["message"]
    assert SECRET not in response.get_data(as_text=True)
    assert forbidden.requests == []


@pytest.mark.timeout(30, method="signal")  # a backtracking engine would hold the web thread for years
def test_a_hostile_pattern_answers_at_once(api: Any) -> None:
    definition = {
        "steps": [
            {
                "name": "w",
                "kind": "wait_for",
                "schema": {
                    "type": "object",
                    "properties": {"text": {"type": "string", "pattern": "^(a|a)*$"}},
                },
            }
        ]
    }
    assert api.put("/api/v1/mission-definitions/redos", json=definition).status_code == 201
    assert api.post("/api/v1/missions", json={"definition": "redos", "id": "m-redos"}).status_code == 201
    response = api.post("/api/v1/missions/m-redos/signals/w", json={"text": "a" * 20_000 + "!"})
    assert response.status_code == 422 and error(response)["field"] == "payload.text"
    assert len(error(response)["message"]) <= 600
    accepted = api.post("/api/v1/missions/m-redos/signals/w", json={"text": "a" * 20_000})
    assert accepted.status_code == 200, accepted.get_json()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CRAFTED_CURSORS = [
    "zzz",  # not base64 of anything
    "!!!!",
    "%00",  # a NUL byte
    b64(b"\x00\x00\x00"),
    b64(b"\xff\xfe not utf-8"),
    b64(b"not json"),
    b64(b"{}"),
    b64(b"null"),
    b64(json.dumps([1, 2]).encode()),
    b64(json.dumps(["2026-03-01T12:00:00Z"]).encode()),
    b64(json.dumps(["2026-03-01T12:00:00Z", "m-1", "extra"]).encode()),
    b64(json.dumps({"2026-03-01T12:00:00Z": 1, "m-1": 2}).encode()),
    b64(json.dumps([1e308, "m-1"]).encode()),
    b64(b'[1e999999, "m-1"]'),  # infinity
    b64(b"[" + b"9" * 250 + b', "m-1"]'),
    b64(json.dumps(["9" * 40, "m-1"]).encode()),
    b64(json.dumps(["2026-03-01T12:00:00", "m-1"]).encode()),  # no offset
    b64(json.dumps(["0001-01-01T00:00:00+14:00", "m-1"]).encode()),  # before year 1 in UTC
    b64(json.dumps(["9999-12-31T23:59:59-14:00", "m-1"]).encode()),  # after year 9999 in UTC
    b64(json.dumps(["2026-03-01T12:00:00\u0000Z", "m-1"]).encode()),
    b64(json.dumps(["2026-03-01T12:00:00Z", "m\u00001"]).encode()),
    b64(json.dumps(["2026-03-01T12:00:00Z", ""]).encode()),
    b64(json.dumps(["2026-03-01T12:00:00Z", "a" * 200]).encode()),
    b64(json.dumps([["2026-03-01T12:00:00Z"], "m-1"]).encode()),
    b64(b"[" * 150 + b"]" * 150),
    "A" * 401,  # longer than any cursor the API gives out
]


def test_crafted_cursors_are_400_naming_the_cursor(api: Any) -> None:
    api.put("/api/v1/mission-definitions/c", json={"steps": [{"name": "nap", "kind": "sleep", "seconds": 9}]})
    for i in range(3):
        api.post("/api/v1/missions", json={"definition": "c", "id": f"m-{i}"})
    for cursor in CRAFTED_CURSORS:
        response = api.get("/api/v1/missions", query_string={"cursor": cursor} if cursor != "%00" else None)
        if cursor == "%00":
            response = api.get("/api/v1/missions?cursor=%00")
        assert response.status_code == 400, (cursor, response.status_code, response.get_data(as_text=True))
        assert error(response)["code"] == "invalid_cursor" and error(response)["field"] == "cursor", cursor
    first = api.get("/api/v1/missions?limit=2").get_json()
    page = api.get("/api/v1/missions", query_string={"limit": 2, "cursor": first["next_cursor"]})
    assert page.status_code == 200 and [m["id"] for m in page.get_json()["missions"]] == ["m-0"]
