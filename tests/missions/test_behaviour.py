"""What a mission does, asserted the same way against the testing kit and the durable engine."""

from __future__ import annotations

from typing import Any

import pytest

from mission_control.missions import StepFailed, mission
from mission_control.missions.machine import MissionConflict, PayloadInvalid
from mission_control.missions.store import DuplicateMission, MissionNotFound
from mission_control.testing import HttpReply
from tests.missions.conftest import Targets

APPROVAL_INPUT = {
    "type": "object",
    "required": ["email"],
    "properties": {"email": {"type": "string", "format": "email"}},
}
APPROVAL_SIGNAL = {
    "type": "object",
    "required": ["approved"],
    "properties": {"approved": {"type": "boolean"}},
}


def approval(base: str, **retry: Any) -> Any:
    return (
        mission("approval")
        .start(input_schema=APPROVAL_INPUT)
        .http("send-email", url=f"{base}/send", body={"to": "{{ input.email }}"}, retry=retry or None)
        .wait_for("receive-approval", schema=APPROVAL_SIGNAL, timeout_s=86_400)
        .sleep("cool-off", seconds=60)
        .http(
            "archive",
            url=f"{base}/archive/{{{{ steps.send-email.output.id }}}}",
            body={"approved": "{{ steps.receive-approval.output.approved }}"},
        )
        .end()
    )


def events(doc: dict[str, Any]) -> list[str]:
    return [entry["event"] for entry in doc["history"]]


def test_approval_flow_end_to_end(driver: Any, targets: Targets) -> None:
    targets.routes["/send"] = HttpReply(200, {"id": 41})
    targets.routes["/archive/41"] = HttpReply(200, {"archived": True})
    assert driver.register(approval(driver.base_url)) == 1

    started = driver.start("approval", {"email": "ops@example.com"}, id="m-approval")
    assert started["status"] == "waiting"
    assert started["version"] == 1
    assert started["waiting"]["kind"] == "signal"
    assert started["waiting"]["step"] == "receive-approval"
    assert started["steps"][0]["output"] == {"id": 41}
    assert driver.calls[0].body == {"to": "ops@example.com"}

    signalled = driver.signal("m-approval", "receive-approval", {"approved": True})
    assert signalled["status"] == "waiting"
    assert signalled["waiting"]["kind"] == "timer"
    assert signalled["signals"][0]["payload"] == {"approved": True}

    driver.advance(59.9)
    assert driver.show("m-approval")["status"] == "waiting"
    driver.advance(0.1)
    done = driver.show("m-approval")
    assert done["status"] == "completed", done
    assert done["steps"][3]["output"] == {"archived": True}
    assert driver.calls[1].body == {"approved": True}  # a whole-value reference keeps its type
    assert events(done) == [
        "created",
        "started",
        "step_succeeded",
        "waiting_for_signal",
        "signal_received",
        "timer_scheduled",
        "timer_fired",
        "step_succeeded",
        "completed",
    ]
    fired = next(t for t in done["timers"] if t["kind"] == "sleep")
    assert fired["due_at"] == fired["fired_at"]
    timeout = next(t for t in done["timers"] if t["kind"] == "timeout")
    assert timeout["status"] == "cancelled"
    assert [a["status"] for a in done["attempts"]] == ["succeeded", "succeeded"]
    assert done["waiting"] is None and done["error"] is None and done["finished_at"]


def test_invalid_start_input_creates_nothing(driver: Any, targets: Targets) -> None:
    driver.register(approval(driver.base_url))
    with pytest.raises(PayloadInvalid) as caught:
        driver.start("approval", {"email": 42}, id="m-bad")
    assert caught.value.field == "input.email"
    with pytest.raises(PayloadInvalid) as missing:
        driver.start("approval", {}, id="m-bad")
    assert missing.value.field == "input"
    with pytest.raises(MissionNotFound):
        driver.show("m-bad")
    assert driver.calls == []


def test_wrong_signal_name_and_signal_when_not_waiting_are_conflicts(driver: Any, targets: Targets) -> None:
    targets.routes["/send"] = HttpReply(200, {"id": 1})
    driver.register(approval(driver.base_url))
    driver.start("approval", {"email": "a@example.com"}, id="m-wrong")
    before = driver.show("m-wrong")
    with pytest.raises(MissionConflict) as wrong:
        driver.signal("m-wrong", "other-signal", {"approved": True})
    assert wrong.value.code == "wrong_signal"
    assert driver.show("m-wrong") == before

    driver.signal("m-wrong", "receive-approval", {"approved": False})  # now sleeping
    with pytest.raises(MissionConflict) as sleeping:
        driver.signal("m-wrong", "receive-approval", {"approved": True})
    assert sleeping.value.code == "not_waiting"


def test_invalid_signal_payload_leaves_the_mission_waiting_with_nothing_recorded(
    driver: Any, targets: Targets
) -> None:
    targets.routes["/send"] = HttpReply(200, {"id": 1})
    driver.register(approval(driver.base_url))
    driver.start("approval", {"email": "a@example.com"}, id="m-payload")
    before = driver.show("m-payload")
    with pytest.raises(PayloadInvalid) as caught:
        driver.signal("m-payload", "receive-approval", {"approved": "yes"})
    assert caught.value.field == "payload.approved"
    after = driver.show("m-payload")
    assert after == before
    assert after["status"] == "waiting" and after["signals"] == []


def test_step_retried_until_success_at_its_backoff_times_with_one_idempotency_key(
    driver: Any, targets: Targets
) -> None:
    targets.routes["/flaky"] = [HttpReply(503), HttpReply(503), HttpReply(200, {"ok": True})]
    driver.register(
        mission("flaky")
        .http(
            "call", url=f"{driver.base_url}/flaky", retry={"max_attempts": 5, "backoff_s": 2, "multiplier": 3}
        )
        .end()
    )
    first = driver.start("flaky", {}, id="m-flaky")
    assert first["status"] == "waiting"
    assert first["waiting"]["kind"] == "retry"
    driver.advance(1.9)
    assert len(driver.calls) == 1
    driver.advance(0.1)  # +2 s: second attempt, fails, next in 6 s
    assert len(driver.calls) == 2
    driver.advance(5.9)
    assert len(driver.calls) == 2
    driver.advance(0.1)
    done = driver.show("m-flaky")
    assert done["status"] == "completed", done
    assert [a["status"] for a in done["attempts"]] == ["failed", "failed", "succeeded"]
    assert [a["http_status"] for a in done["attempts"]] == [503, 503, 200]
    assert [c.attempt for c in driver.calls] == [1, 2, 3]
    assert len({c.idempotency_key for c in driver.calls}) == 1
    assert driver.calls[0].idempotency_key == "mission:m-flaky:call"
    assert events(done).count("retry_scheduled") == 2
    retries = [t for t in done["timers"] if t["kind"] == "retry"]
    assert all(t["status"] == "fired" and t["fired_at"] == t["due_at"] for t in retries)


def test_retries_exhausted_or_a_client_error_fail_the_mission(driver: Any, targets: Targets) -> None:
    targets.routes["/down"] = HttpReply(500, {"error": "down"})
    targets.routes["/gone"] = HttpReply(410, {"error": "gone"})
    driver.register(
        mission("down")
        .http("call", url=f"{driver.base_url}/down", retry={"max_attempts": 2, "backoff_s": 1})
        .end()
    )
    driver.register(mission("gone").http("call", url=f"{driver.base_url}/gone").end())
    driver.start("down", {}, id="m-down")
    driver.advance(1)
    down = driver.show("m-down")
    assert down["status"] == "failed"
    assert down["error"]["code"] == "http_error" and down["error"]["step"] == "call"
    assert "after 2 attempts" in down["error"]["message"]
    gone = driver.start("gone", {}, id="m-gone")
    assert gone["status"] == "failed" and len(gone["attempts"]) == 1
    assert "HTTP 410" in gone["error"]["message"]


def test_signal_timeout_fails_the_mission_at_its_deadline(driver: Any, targets: Targets) -> None:
    targets.routes["/send"] = HttpReply(200, {"id": 1})
    driver.register(approval(driver.base_url))
    driver.start("approval", {"email": "a@example.com"}, id="m-timeout")
    driver.advance(86_399)
    assert driver.show("m-timeout")["status"] == "waiting"
    driver.advance(1)
    failed = driver.show("m-timeout")
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "signal_timeout"
    assert failed["error"]["at"] == failed["timers"][0]["due_at"]
    with pytest.raises(MissionConflict):
        driver.signal("m-timeout", "receive-approval", {"approved": True})


def test_sleep_until_an_instant_from_the_input(driver: Any, clock: Any) -> None:
    driver.register(mission("later").sleep("until-then", until="{{ input.at }}").end())
    driver.start("later", {"at": "2026-03-01T13:00:00+01:00"}, id="m-past")  # 12:00Z: now, fires at once
    assert driver.show("m-past")["status"] == "completed"
    driver.start("later", {"at": "2026-03-01T12:30:00Z"}, id="m-later")
    driver.advance(1799)
    assert driver.show("m-later")["status"] == "waiting"
    driver.advance(1)
    assert driver.show("m-later")["status"] == "completed"
    driver.start("later", {"at": "tomorrow"}, id="m-bad-instant")
    bad = driver.show("m-bad-instant")
    assert bad["status"] == "failed" and bad["error"]["code"] == "template_error"


def test_cancel_with_a_reason(driver: Any, targets: Targets) -> None:
    targets.routes["/send"] = HttpReply(200, {"id": 1})
    driver.register(approval(driver.base_url))
    driver.start("approval", {"email": "a@example.com"}, id="m-cancel")
    cancelled = driver.cancel("m-cancel", "customer withdrew")
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancel_reason"] == "customer withdrew"
    assert events(cancelled)[-1] == "cancelled"
    assert all(t["status"] != "scheduled" for t in cancelled["timers"])
    with pytest.raises(MissionConflict):
        driver.signal("m-cancel", "receive-approval", {"approved": True})
    with pytest.raises(MissionConflict):
        driver.cancel("m-cancel", "again")
    driver.advance(100_000)  # its timeout timer must not fire
    assert driver.show("m-cancel")["status"] == "cancelled"


def test_duplicate_ids_are_refused_whatever_the_first_missions_state(driver: Any) -> None:
    driver.register(mission("quick").sleep("nap", seconds=0).end())
    assert driver.start("quick", {}, id="m-dup")["status"] == "completed"
    with pytest.raises(DuplicateMission):
        driver.start("quick", {}, id="m-dup")
    driver.register(mission("slow").sleep("nap", seconds=10).end())
    driver.start("slow", {}, id="m-dup-2")
    with pytest.raises(DuplicateMission):
        driver.start("quick", {}, id="m-dup-2")


def test_running_missions_keep_the_version_they_started_with(driver: Any, targets: Targets) -> None:
    targets.routes["/v1"] = HttpReply(200, {"v": 1})
    targets.routes["/v2"] = HttpReply(200, {"v": 2})
    assert (
        driver.register(
            mission("versioned").sleep("wait", seconds=5).http("go", url=f"{driver.base_url}/v1").end()
        )
        == 1
    )
    assert (
        driver.register(
            mission("versioned").sleep("wait", seconds=5).http("go", url=f"{driver.base_url}/v1").end()
        )
        == 1
    )
    driver.start("versioned", {}, id="m-v1")
    assert (
        driver.register(
            mission("versioned").sleep("wait", seconds=5).http("go", url=f"{driver.base_url}/v2").end()
        )
        == 2
    )
    driver.start("versioned", {}, id="m-v2")
    driver.advance(5)
    assert driver.show("m-v1")["version"] == 1 and driver.show("m-v1")["steps"][1]["output"] == {"v": 1}
    assert driver.show("m-v2")["version"] == 2 and driver.show("m-v2")["steps"][1]["output"] == {"v": 2}


def test_call_steps_run_registered_functions(driver: Any, functions: dict[str, Any]) -> None:
    seen: list[Any] = []

    def charge(args: Any) -> Any:
        seen.append(args)
        if len(seen) == 1:
            raise RuntimeError("card network hiccup")
        return {"charged": args["amount"]}

    def refuse(args: Any) -> Any:
        raise StepFailed("card declined")

    functions["billing.charge"] = charge
    functions["billing.refuse"] = refuse
    driver.register(
        mission("billing")
        .call(
            "charge", function="billing.charge", args={"amount": "{{ input.amount }}"}, retry={"backoff_s": 1}
        )
        .call("refuse", function="billing.refuse")
        .end()
    )
    first = driver.start("billing", {"amount": 12}, id="m-bill")
    assert first["waiting"]["kind"] == "retry"
    assert "card network hiccup" in first["attempts"][0]["error"]["message"]
    driver.advance(1)
    done = driver.show("m-bill")
    assert seen == [{"amount": 12}, {"amount": 12}]
    assert done["steps"][0]["output"] == {"charged": 12}
    assert done["status"] == "failed" and done["error"]["message"] == "card declined"
    assert len([a for a in done["attempts"] if a["step"] == "refuse"]) == 1


def test_a_reference_missing_at_run_time_fails_the_step(driver: Any, targets: Targets) -> None:
    targets.routes["/first"] = HttpReply(200, {"other": 1})
    driver.register(
        mission("refs")
        .http("first", url=f"{driver.base_url}/first")
        .http("second", url=f"{driver.base_url}/x/{{{{ steps.first.output.id }}}}")
        .end()
    )
    failed = driver.start("refs", {}, id="m-refs")
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "template_error" and failed["error"]["step"] == "second"
    assert len(driver.calls) == 1
