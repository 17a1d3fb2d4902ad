"""Channels route by tag: ``tag_pattern`` (fnmatch, as ``subject_pattern``) must match one of the
alert's subject's tags (a service's for service alerts, a job's for job alerts), beside the kind and
subject rules; repeats follow the same rule."""

from __future__ import annotations

from sqlalchemy import select

from mission_control.db import tags as tag_index
from mission_control.db.alerts import AlertKind, open_alert
from mission_control.db.tables import notices
from mission_control.monitoring.notifications.notices import ChannelSpec, create_channel, due_repeats, route


def channel(engine, clock, name, **overrides):
    spec = ChannelSpec(
        name=name,
        kind="webhook",
        target={"url": f"https://hooks.test/{name}"},
        alert_kinds=overrides.pop("alert_kinds", None),
        subject_pattern=overrides.pop("subject_pattern", "*"),
        repeat_interval_s=overrides.pop("repeat_interval_s", None),
        enabled=True,
        tag_pattern=overrides.pop("tag_pattern", None),
    )
    return create_channel(engine, spec, clock.now())["id"]


def tagged(engine, kind, name, *tags):
    with engine.begin() as conn:
        tag_index.replace(conn, kind, name, list(tags))


def alert(engine, clock, kind, subject):
    with engine.begin() as conn:
        return open_alert(conn, kind, subject, clock.now(), f"{subject} failed").alert_id


def channels_of(engine, clock, alert_id):
    route(engine, [(alert_id, "opened")], clock.now())
    with engine.connect() as conn:
        return sorted(
            conn.execute(select(notices.c.channel_id).where(notices.c.alert_id == alert_id)).scalars()
        )


def test_a_tag_pattern_routes_only_subjects_carrying_a_matching_tag(engine, clock):
    tagged(engine, "service", "billing-api", "team:billing", "tier:1")
    tagged(engine, "job", "billing.sync", "team:billing")
    tagged(engine, "service", "search", "team:search", "tier:2")
    billing = channel(engine, clock, "billing", tag_pattern="team:billing")
    tier = channel(engine, clock, "tier", tag_pattern="tier:*", subject_pattern="billing-*")
    everyone = channel(engine, clock, "everyone")

    assert channels_of(engine, clock, alert(engine, clock, AlertKind.SERVICE_DOWN, "billing-api")) == sorted(
        [billing, tier, everyone]
    )
    assert channels_of(engine, clock, alert(engine, clock, AlertKind.JOB_FAILED, "billing.sync")) == sorted(
        [billing, everyone]
    )
    assert channels_of(engine, clock, alert(engine, clock, AlertKind.SERVICE_DOWN, "search")) == [everyone]
    # a job named like a tagged service does not borrow the service's tags
    assert channels_of(engine, clock, alert(engine, clock, AlertKind.JOB_FAILED, "billing-api")) == [everyone]
    assert channels_of(engine, clock, alert(engine, clock, AlertKind.SERVICE_DOWN, "untagged")) == [everyone]


def test_repeats_follow_the_tag_pattern(engine, clock):
    tagged(engine, "service", "billing-api", "team:billing")
    loud = channel(engine, clock, "loud", tag_pattern="team:billing", repeat_interval_s=600)
    channel(engine, clock, "other", tag_pattern="team:search", repeat_interval_s=600)
    first = alert(engine, clock, AlertKind.SERVICE_DOWN, "billing-api")
    assert channels_of(engine, clock, first) == [loud]
    clock.advance(600)
    assert len(due_repeats(engine, clock.now())) == 1
