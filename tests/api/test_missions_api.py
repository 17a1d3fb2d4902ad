"""The missions API: definitions, start, signal, cancel, inspect, list, and every refusal's shape."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from mission_control.db.tables import missions

APPROVAL = {
    "input_schema": {"type": "object", "required": ["email"], "properties": {"email": {"type": "string"}}},
    "steps": [
        {
            "name": "receive-approval",
            "kind": "wait_for",
            "timeout_s": 3600,
            "schema": {
                "type": "object",
                "required": ["approved"],
                "properties": {"approved": {"type": "boolean"}},
            },
        },
        {"name": "archive", "kind": "http", "url": "http://archive.test/{{ input.email }}"},
    ],
}


def error(response: Any) -> dict[str, Any]:
    assert response.is_json, response.data
    return response.get_json()["error"]


@pytest.fixture
def registered(api: Any) -> None:
    response = api.put("/api/v1/mission-definitions/approval", json=APPROVAL)
    assert response.status_code == 201, response.get_json()


def count(engine: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(missions)).scalar()


def test_definitions_are_versioned_and_idempotent(api: Any) -> None:
    first = api.put("/api/v1/mission-definitions/approval", json=APPROVAL)
    assert first.status_code == 201 and first.get_json()["version"] == 1
    again = api.put("/api/v1/mission-definitions/approval", json={**APPROVAL, "name": "approval"})
    assert again.status_code == 200 and again.get_json()["version"] == 1
    changed = api.put("/api/v1/mission-definitions/approval", json={**APPROVAL, "description": "v2"})
    assert changed.status_code == 201 and changed.get_json()["version"] == 2
    assert api.get("/api/v1/mission-definitions/approval").get_json()["version"] == 2
    old = api.get("/api/v1/mission-definitions/approval?version=1").get_json()
    assert old["version"] == 1 and "description" not in old["definition"]
    listing = api.get("/api/v1/mission-definitions").get_json()["definitions"]
    assert [(d["name"], d["version"]) for d in listing] == [("approval", 2)]
    assert api.get("/api/v1/mission-definitions/nope").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**APPROVAL, "name": "other"}, "name"),
        (
            {
                "steps": [
                    {"name": "a", "kind": "sleep", "seconds": 1},
                    {"name": "a", "kind": "sleep", "seconds": 1},
                ]
            },
            "steps.1.name",
        ),
        ({"steps": [{"name": "a", "kind": "sleep", "seconds": -5}]}, "steps.0.seconds"),
        ({"steps": [{"name": "a", "kind": "http", "url": "http://x/{{ steps.b.output }}"}]}, "steps.0.url"),
        (
            {"steps": [{"name": "a", "kind": "http", "url": "http://x", "retry": {"max_attempts": 0}}]},
            "steps.0.retry.max_attempts",
        ),
    ],
)
def test_bad_definitions_are_422_naming_the_field(api: Any, body: dict[str, Any], field: str) -> None:
    response = api.put("/api/v1/mission-definitions/approval", json=body)
    assert response.status_code == 422
    assert error(response)["field"] == field
    assert api.get("/api/v1/mission-definitions/approval").status_code == 404


def test_start_signal_and_inspect(api: Any, registered: None, missions_enqueued: list[str]) -> None:
    started = api.post(
        "/api/v1/missions", json={"definition": "approval", "input": {"email": "a"}, "id": "m-1"}
    )
    assert started.status_code == 201
    doc = started.get_json()
    assert doc["status"] == "waiting" and doc["waiting"]["kind"] == "signal"
    assert doc["waiting"]["until"] == "2026-03-01T13:00:00Z"
    assert missions_enqueued == []  # nothing for a worker yet

    signalled = api.post("/api/v1/missions/m-1/signals/receive-approval", json={"approved": True})
    assert signalled.status_code == 200
    doc = signalled.get_json()
    assert doc["status"] == "running" and doc["cursor"] == "archive"
    assert missions_enqueued == ["m-1"]  # the archive step goes to a worker

    shown = api.get("/api/v1/missions/m-1").get_json()
    assert shown["signals"][0]["payload"] == {"approved": True}
    assert [e["event"] for e in shown["history"]][:4] == [
        "created",
        "started",
        "waiting_for_signal",
        "signal_received",
    ]
    assert "lease" not in shown and "step_index" not in shown


def test_start_refusals(api: Any, registered: None, engine: Any) -> None:
    api.post("/api/v1/missions", json={"definition": "approval", "input": {"email": "a"}, "id": "m-1"})
    duplicate = api.post(
        "/api/v1/missions", json={"definition": "approval", "input": {"email": "b"}, "id": "m-1"}
    )
    assert duplicate.status_code == 409 and error(duplicate)["code"] == "duplicate_id"
    bad_input = api.post("/api/v1/missions", json={"definition": "approval", "input": {"email": 5}})
    assert bad_input.status_code == 422 and error(bad_input)["field"] == "input.email"
    unknown = api.post("/api/v1/missions", json={"definition": "nope", "input": {}})
    assert unknown.status_code == 422 and error(unknown)["field"] == "definition"
    bad_id = api.post(
        "/api/v1/missions", json={"definition": "approval", "input": {"email": "a"}, "id": "a b"}
    )
    assert bad_id.status_code == 422 and error(bad_id)["field"] == "id"
    assert count(engine) == 1


def test_signal_refusals_change_nothing(api: Any, registered: None) -> None:
    api.post("/api/v1/missions", json={"definition": "approval", "input": {"email": "a"}, "id": "m-1"})
    before = api.get("/api/v1/missions/m-1").get_json()
    wrong = api.post("/api/v1/missions/m-1/signals/other", json={"approved": True})
    assert wrong.status_code == 409 and error(wrong)["code"] == "wrong_signal"
    invalid = api.post("/api/v1/missions/m-1/signals/receive-approval", json={"approved": "yes"})
    assert invalid.status_code == 422 and error(invalid)["field"] == "payload.approved"
    empty = api.post("/api/v1/missions/m-1/signals/receive-approval")
    assert empty.status_code == 422 and error(empty)["field"] == "payload"
    garbage = api.post(
        "/api/v1/missions/m-1/signals/receive-approval", data=b"\xff{", content_type="application/json"
    )
    assert garbage.status_code == 400 and error(garbage)["code"] == "malformed_json"
    missing = api.post("/api/v1/missions/nope/signals/receive-approval", json={})
    assert missing.status_code == 404
    assert api.get("/api/v1/missions/m-1").get_json() == before


def test_cancel(api: Any, registered: None) -> None:
    api.post("/api/v1/missions", json={"definition": "approval", "input": {"email": "a"}, "id": "m-1"})
    cancelled = api.post("/api/v1/missions/m-1/cancel", json={"reason": "no longer needed"})
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled"
    assert cancelled.get_json()["cancel_reason"] == "no longer needed"
    again = api.post("/api/v1/missions/m-1/cancel")
    assert again.status_code == 409 and error(again)["code"] == "finished"
    late = api.post("/api/v1/missions/m-1/signals/receive-approval", json={"approved": True})
    assert late.status_code == 409 and error(late)["code"] == "not_waiting"


def test_list_filters_and_pages(api: Any, registered: None, clock: Any) -> None:
    for i in range(5):
        clock.advance(1)
        api.post("/api/v1/missions", json={"definition": "approval", "input": {"email": "a"}, "id": f"m-{i}"})
    api.post("/api/v1/missions/m-3/cancel", json={"reason": "x"})
    first = api.get("/api/v1/missions?limit=2").get_json()
    assert [m["id"] for m in first["missions"]] == ["m-4", "m-3"]
    second = api.get(f"/api/v1/missions?limit=2&cursor={first['next_cursor']}").get_json()
    assert [m["id"] for m in second["missions"]] == ["m-2", "m-1"]
    third = api.get(f"/api/v1/missions?limit=2&cursor={second['next_cursor']}").get_json()
    assert [m["id"] for m in third["missions"]] == ["m-0"] and third["next_cursor"] is None
    cancelled = api.get("/api/v1/missions?status=cancelled").get_json()["missions"]
    assert [m["id"] for m in cancelled] == ["m-3"]
    assert api.get("/api/v1/missions?definition=other").get_json()["missions"] == []
    assert error(api.get("/api/v1/missions?cursor=zzz"))["field"] == "cursor"
    assert error(api.get("/api/v1/missions?status=lost"))["field"] == "status"


def test_missions_need_the_token(app: Any) -> None:
    response = app.test_client().get("/api/v1/missions")
    assert response.status_code == 401
