"""Measured runs and exit codes over HTTP (issue 17): /start, /fail, /log, /{code}, ?rid=, the events
listing, max_runtime_s on a service, and bad input that answers 422 naming the field and changes nothing."""

from __future__ import annotations

import pytest

from tests.api.conftest import AUTH

pytestmark = pytest.mark.usefixtures("engine")

RID = "3f2c6a8e-6a8f-4a43-9d0c-2d8c6c0f1e11"


@pytest.fixture
def client(app):
    client = app.test_client()
    response = client.put(
        "/api/v1/services/backup",
        headers=AUTH,
        json={"interval_s": 3600, "grace_s": 60, "max_runtime_s": 120},
    )
    assert response.status_code == 201, response.get_json()
    return client


def ping(client, path, *, token=None, method="post", **kwargs):
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return getattr(client, method)(f"/api/v1/heartbeats/backup{path}", headers=headers, **kwargs)


def service_token(client):
    return client.post("/api/v1/services/backup/tokens", headers=AUTH).get_json()["token"]


def events(client, **query):
    response = client.get("/api/v1/services/backup/events", headers=AUTH, query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_start_then_exit_code_zero_measures_the_run(client, clock):
    token = service_token(client)
    started = ping(client, "/start", token=token)
    assert started.status_code == 200, started.get_json()
    assert started.get_json()["event"] == "start" and started.get_json()["state"] == "new"
    assert client.get("/api/v1/services/backup", headers=AUTH).get_json()["open_runs"] == 1
    clock.advance(7)
    done = ping(client, "/0", token=token, headers={"Content-Type": "text/plain"}, data="all good\n")
    body = done.get_json()
    assert done.status_code == 200 and body["event"] == "ok" and body["state"] == "up"
    assert body["duration_s"] == 7 and body["exit_code"] == 0
    [end, start] = events(client)["events"]
    assert (end["status"], end["exit_code"], end["duration_s"], end["message"]) == ("ok", 0, 7, "all good\n")
    assert start["status"] == "start"


def test_a_nonzero_exit_code_is_a_failure_that_keeps_the_code(client, notified):
    failed = ping(client, "/3", headers=AUTH, json={"message": "rsync: connection reset"})
    assert failed.status_code == 200 and failed.get_json()["state"] == "down"
    assert failed.get_json()["exit_code"] == 3
    assert [(c.kind, c.event) for c in notified] == [("service_down", "opened")]
    [event] = events(client)["events"]
    assert (event["status"], event["exit_code"]) == ("fail", 3)
    assert ping(client, "/fail", headers=AUTH).get_json()["state"] == "down"


def test_get_head_and_query_string_token_work_for_signals(client, clock):
    token = service_token(client)
    assert ping(client, "/start", method="get", query_string={"token": token, "rid": RID}).status_code == 200
    assert ping(client, "/log", method="head", token=token).status_code == 200
    clock.advance(2)
    done = ping(client, "/0", method="get", query_string={"token": token, "rid": RID})
    assert done.status_code == 200 and done.get_json()["duration_s"] == 2
    assert [e["status"] for e in events(client)["events"]] == ["ok", "log", "start"]
    assert events(client)["events"][0]["rid"] == RID


def test_a_plain_heartbeat_with_rid_ends_that_run(client, clock):
    ping(client, "/start", headers=AUTH, query_string={"rid": RID})
    clock.advance(4)
    plain = ping(client, "", headers=AUTH, query_string={"rid": RID})
    assert plain.status_code == 200 and plain.get_json()["duration_s"] == 4


def test_a_log_changes_nothing_but_the_events(client):
    before = client.get("/api/v1/services/backup", headers=AUTH).get_json()
    logged = ping(client, "/log", headers=AUTH, json={"message": "half way"})
    assert logged.status_code == 200 and logged.get_json()["event"] == "log"
    after = client.get("/api/v1/services/backup", headers=AUTH).get_json()
    assert (after["state"], after["last_seen_at"]) == (before["state"], before["last_seen_at"])
    assert after["heartbeats"][0]["message"] == "half way"


def test_a_hung_run_opens_service_hung_through_the_check(client, app, clock, notified):
    ping(client, "/start", headers=AUTH, query_string={"rid": RID})
    clock.advance(121)
    check = app.extensions["mission_control"].services.check_stale()
    assert [(c.kind, c.event) for c in check.changes] == [("service_hung", "opened")]
    alerts = client.get("/api/v1/alerts", headers=AUTH, query_string={"kind": "service_hung"}).get_json()
    [alert] = alerts["alerts"]
    assert alert["subject"] == "backup" and alert["state"] == "open"
    ended = ping(client, "/0", headers=AUTH, query_string={"rid": RID})
    assert [(c.kind, c.event) for c in notified][-1] == ("service_hung", "resolved")
    assert ended.get_json()["duration_s"] == 121


def test_events_page_newest_first_with_a_cursor(client):
    for i in range(5):
        ping(client, "/log", headers=AUTH, json={"message": f"m{i}"})
    first = events(client, limit=2)
    assert [e["message"] for e in first["events"]] == ["m4", "m3"] and first["next_cursor"]
    second = events(client, limit=10, cursor=first["next_cursor"])
    assert [e["message"] for e in second["events"]] == ["m2", "m1", "m0"] and second["next_cursor"] is None
    assert client.get("/api/v1/services/ghost/events", headers=AUTH).status_code == 404


def test_a_service_token_reads_no_events_and_signals_only_its_own_service(client):
    token = service_token(client)
    client.put("/api/v1/services/search", headers=AUTH, json={"interval_s": 60})
    assert (
        client.get("/api/v1/services/backup/events", headers={"Authorization": f"Bearer {token}"}).status_code
        == 403
    )
    other = client.post("/api/v1/heartbeats/search/start", headers={"Authorization": f"Bearer {token}"})
    assert other.status_code == 403 and other.get_json()["error"]["field"] == "service"


def test_max_runtime_is_shown_and_refused_when_bad(client):
    service = client.get("/api/v1/services/backup", headers=AUTH).get_json()
    assert service["max_runtime_s"] == 120
    bad = client.put("/api/v1/services/backup", headers=AUTH, json={"interval_s": 60, "max_runtime_s": 0})
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "max_runtime_s"
    assert client.get("/api/v1/services/backup", headers=AUTH).get_json()["max_runtime_s"] == 120


@pytest.mark.parametrize(
    ("path", "kwargs", "field"),
    [
        ("/256", {}, "code"),
        ("/start", {"query_string": {"rid": "not-a-uuid"}}, "rid"),
        ("/0", {"query_string": {"rid": "12"}}, "rid"),
        ("", {"query_string": {"rid": "nope"}}, "rid"),
        ("/log", {"json": {"status": "ok"}}, "status"),
        ("/start", {"query_string": {"nonsense": "1"}}, "nonsense"),
    ],
)
def test_bad_signals_are_422_naming_the_field_and_change_nothing(client, path, kwargs, field):
    response = ping(client, path, headers=AUTH, **kwargs)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["field"] == field
    assert events(client)["events"] == []
    assert client.get("/api/v1/services/backup", headers=AUTH).get_json()["heartbeat_count"] == 0


def test_a_signal_registers_an_unknown_service_only_with_services_write(client):
    created = client.post("/api/v1/heartbeats/fresh/start", headers=AUTH, query_string={"interval_s": "60"})
    assert created.status_code == 201 and created.get_json()["created"] is True
    token = service_token(client)
    refused = client.post("/api/v1/heartbeats/other/start", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403
    assert client.get("/api/v1/services/other", headers=AUTH).status_code == 404


def test_a_sender_measured_duration_is_kept_only_when_no_start_pairs(client, clock):
    alone = ping(client, "/0", headers=AUTH, json={"duration_s": 12.5, "message": "start was lost"})
    assert alone.status_code == 200 and alone.get_json()["duration_s"] == 12.5
    ping(client, "/start", headers=AUTH)
    clock.advance(3)
    paired = ping(client, "/0", headers=AUTH, json={"duration_s": 99})
    assert paired.get_json()["duration_s"] == 3  # the server's own measure wins
    bad = ping(client, "/0", headers=AUTH, json={"duration_s": -1})
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "duration_s"


def test_the_dashboard_strip_tells_starts_and_logs_from_failures(app, client):
    from tests.conftest import ADMIN_TOKEN

    ping(client, "/start", headers=AUTH)
    ping(client, "/log", headers=AUTH)
    ping(client, "/4", headers=AUTH)
    browser = app.test_client()
    assert browser.post("/login", data={"token": ADMIN_TOKEN}).status_code == 302
    page = browser.get("/services").get_data(as_text=True)
    strip = page[page.index('class="strip"') :]
    strip = strip[: strip.index("</span>")]
    assert strip.count("s-failed") == 1 and "(exit 4)" in strip  # the exit code's failure only
    assert "s-running" in strip and "s-pending" in strip  # the start and the log
