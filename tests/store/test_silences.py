"""Silences in routing: matching alerts still open and record, their notices are kept as silenced
(with the silence's id, on the notice and the alert) instead of sent; the window and matchers decide;
a resolve nobody heard the opening of stays silent; an alert still open when its silence ends is
notified then."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from mission_control.db.alerts import AlertKind, get_alert, open_alert, resolve_alerts
from mission_control.db.tables import notices
from mission_control.monitoring.notifications.notices import (
    ChannelSpec,
    create_channel,
    due_repeats,
    route,
    unrouted,
)
from mission_control.monitoring.silences import (
    SilenceSpec,
    create_silence,
    expire_silence,
    list_silences,
    state_of,
)


@pytest.fixture
def hook(engine, clock):
    spec = ChannelSpec("hook", "webhook", {"url": "http://127.0.0.1:9/hook"}, None, "*", 600, True)
    return create_channel(engine, spec, clock.now())


def silence(engine, clock, *, kinds=None, pattern="*", start_s=0.0, hours=1.0, tags=None):
    spec = SilenceSpec(
        alert_kinds=kinds,
        subject_pattern=pattern,
        tag_pattern=tags,
        starts_at=clock.now() + timedelta(seconds=start_s),
        ends_at=clock.now() + timedelta(seconds=start_s, hours=hours),
        comment="maintenance",
        created_by="ops",
    )
    return create_silence(engine, spec, clock.now())


def open_one(engine, clock, kind=AlertKind.SERVICE_DOWN, subject="billing"):
    with engine.begin() as conn:
        return open_alert(conn, kind, subject, clock.now(), f"{subject} is down")


def all_notices(engine):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(notices).order_by(notices.c.id)).mappings()]


def test_a_silenced_alert_opens_and_records_but_sends_nothing(engine, clock, hook):
    muted = silence(engine, clock, pattern="bill*")
    change = open_one(engine, clock)
    assert route(engine, [(change.alert_id, "opened")], clock.now()) == []
    [notice] = all_notices(engine)
    assert (notice["status"], notice["silence_id"], notice["event"]) == ("silenced", muted["id"], "opened")
    alert = get_alert(engine, change.alert_id)
    assert alert["state"] == "open" and alert["silence_id"] == muted["id"]
    assert alert["last_notified_at"] is None
    # Repeats while silenced are recorded as silenced too, never handed to delivery.
    clock.advance(600)
    assert due_repeats(engine, clock.now()) == []
    assert [n["status"] for n in all_notices(engine)] == ["silenced", "silenced"]


@pytest.mark.parametrize(
    ("kinds", "pattern", "start_s", "silenced"),
    [
        (None, "*", 0, True),
        (["service_down"], "billing", 0, True),
        (["job_failed"], "*", 0, False),  # another kind
        (None, "pay*", 0, False),  # another subject
        (None, "*", 60, False),  # pending: not yet
        (None, "*", -7200, False),  # over
    ],
)
def test_matchers_and_window_decide(engine, clock, hook, kinds, pattern, start_s, silenced):
    silence(engine, clock, kinds=kinds, pattern=pattern, start_s=start_s)
    change = open_one(engine, clock)
    sent = route(engine, [(change.alert_id, "opened")], clock.now())
    assert (sent == []) is silenced
    assert [n["status"] for n in all_notices(engine)] == ["silenced" if silenced else "pending"]


def test_a_resolve_nobody_heard_the_opening_of_stays_silent(engine, clock, hook):
    muted = silence(engine, clock, hours=1)
    change = open_one(engine, clock)
    route(engine, [(change.alert_id, "opened")], clock.now())
    clock.advance(2 * 3600)  # the silence is over, the alert resolves after it
    with engine.begin() as conn:
        [resolved] = resolve_alerts(conn, [AlertKind.SERVICE_DOWN], "billing", clock.now())
    assert route(engine, [(resolved.alert_id, "resolved")], clock.now()) == []
    assert [(n["event"], n["status"], n["silence_id"]) for n in all_notices(engine)] == [
        ("opened", "silenced", muted["id"]),
        ("resolved", "silenced", muted["id"]),
    ]


def test_an_alert_still_open_when_its_silence_ends_is_notified_then(engine, clock, hook):
    muted = silence(engine, clock, hours=1)
    change = open_one(engine, clock)
    route(engine, [(change.alert_id, "opened")], clock.now())
    clock.advance(60)
    assert unrouted(engine, clock.now()) == []  # still silenced: nothing more, not even a second row
    assert len(all_notices(engine)) == 1
    expire_silence(engine, muted["id"], clock.now())
    clock.advance(60)
    [sent] = unrouted(engine, clock.now())
    assert [(n["event"], n["status"]) for n in all_notices(engine)] == [
        ("opened", "silenced"),
        ("opened", "pending"),
    ]
    assert sent == all_notices(engine)[1]["id"]


def test_expiring_ends_a_silence_now_and_states_follow_the_clock(engine, clock):
    pending = silence(engine, clock, start_s=3600)
    active = silence(engine, clock)
    assert state_of(pending, clock.now()) == "pending" and state_of(active, clock.now()) == "active"
    expired = expire_silence(engine, active["id"], clock.now())
    assert state_of(expired, clock.now()) == "expired" and expired["expired_at"] == clock.now()
    never = expire_silence(engine, pending["id"], clock.now())
    assert state_of(never, clock.now()) == "expired"
    assert expire_silence(engine, 10**9, clock.now()) is None
    assert [s["id"] for s in list_silences(engine, clock.now(), "expired")] == [active["id"], pending["id"]]
    assert list_silences(engine, clock.now(), "active") == []


def test_a_tag_pattern_mutes_only_subjects_carrying_a_matching_tag(engine, clock, hook):
    from mission_control.db import tags as tag_index

    with engine.begin() as conn:
        tag_index.replace(conn, "service", "billing", ["team:billing", "tier:1"])
        tag_index.replace(conn, "job", "billing", ["team:search"])  # a job of the same name
        tag_index.replace(conn, "service", "search", ["team:search"])
    muted = silence(engine, clock, tags="team:bill*")
    billing = open_one(engine, clock, subject="billing")
    search = open_one(engine, clock, subject="search")
    untagged = open_one(engine, clock, subject="legacy")
    job = open_one(engine, clock, kind=AlertKind.JOB_FAILED, subject="billing")
    changes = [(a.alert_id, "opened") for a in (billing, search, untagged, job)]
    assert len(route(engine, changes, clock.now())) == 3
    silenced = {n["alert_id"] for n in all_notices(engine) if n["status"] == "silenced"}
    assert silenced == {billing.alert_id}
    assert get_alert(engine, billing.alert_id)["silence_id"] == muted["id"]
