"""The client's measured-run pings (issue 17): start, exit_status, log and a heartbeat's rid go where the
API expects them, and ``retry_for_s`` repeats a ping after network errors with growing pauses, never
waiting longer than its budget in all (the wrapper's bound); without it a lost connection raises at once."""

from __future__ import annotations

import json

import pytest
import requests

from mission_control.client import MissionControl, Unavailable

RID = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


class FlakySession(requests.Session):
    """Refuses the first ``failures`` connections, then answers 200 with ``{}``; records each call."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.failures = failures
        self.calls: list[tuple[str, str, dict, object, float]] = []

    def request(self, method, url, params=None, data=None, timeout=None, **kwargs):  # type: ignore[no-untyped-def, override]
        self.calls.append((method, url, dict(params or {}), json.loads(data) if data else None, timeout))
        if self.failures:
            self.failures -= 1
            raise requests.ConnectionError("[Errno 111] Connection refused")
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "application/json"
        response._content = b"{}"
        return response


def client(failures: int = 0) -> tuple[MissionControl, FlakySession, list[float]]:
    slept: list[float] = []
    session = FlakySession(failures)
    return MissionControl("http://127.0.0.1:9", "t", session=session, sleep=slept.append), session, slept


def test_each_ping_goes_to_its_route_with_its_rid_and_body():
    mc, session, _ = client()
    mc.start("backup", rid=RID)
    mc.exit_status("backup", 2, rid=RID, message="tail", duration_s=1.23456)
    mc.log("backup", "half way")
    mc.heartbeat("backup", rid=RID)
    base = "http://127.0.0.1:9/api/v1/heartbeats/backup"
    assert [(c[1], c[2], c[3]) for c in session.calls] == [
        (f"{base}/start", {"rid": RID}, {}),
        (f"{base}/2", {"rid": RID}, {"message": "tail", "duration_s": 1.235}),
        (f"{base}/log", {}, {"message": "half way"}),
        (base, {"rid": RID}, {"status": "ok"}),
    ]


def test_a_refused_ping_is_retried_with_growing_pauses_until_delivered():
    mc, session, slept = client(failures=3)
    assert mc.start("backup", rid=RID, retry_for_s=10) == {}
    assert slept == [0.5, 1.0, 2.0] and len(session.calls) == 4
    assert all(call[4] <= mc.timeout_s for call in session.calls)


def test_retries_stop_within_the_budget():
    mc, _, slept = client(failures=100)
    with pytest.raises(Unavailable):
        mc.exit_status("backup", 0, retry_for_s=10)
    assert slept == [0.5, 1.0, 2.0, 4.0] and sum(slept) < 10  # the next pause (8 s) would pass 10 s


def test_without_a_budget_a_lost_connection_is_raised_at_once():
    mc, session, slept = client(failures=1)
    with pytest.raises(Unavailable):
        mc.start("backup")
    assert slept == [] and len(session.calls) == 1
