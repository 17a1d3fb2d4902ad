"""Channels, and the notices routed to them: create, route, deliver, repeat, list.

Routing is idempotent: every notice has a dedup key (``<alert>:<event>:<channel>`` for opened,
resolved and acknowledged, ``<alert>:repeat<n>:<channel>`` for the n-th repeat, ``…:s<silence>`` for
one a silence kept), inserted with ON CONFLICT DO NOTHING, so a redelivered routing task or two
beats sending the repeat sweep never notify twice. Acknowledgements reach PagerDuty channels only
(:data:`EVENTS_FOR_KINDS`). A notice an active silence matches is stored with status ``silenced``
and the silence's id and never delivered (:mod:`mission_control.monitoring.silences`).

Channel kinds: ``webhook``, ``slack`` and ``email`` (:mod:`.senders`), ``pagerduty`` (Events API v2,
:mod:`.pagerduty`) and ``apprise`` (:mod:`.apprise_channel`). Their credentials are stored sealed
(:mod:`mission_control.outbound.secretbox`) and opened only to deliver: a webhook's, Slack's or
Apprise's URL (``{"url": <envelope>, "shown": "https://host/…"}``, shown only as its scheme and
host, :func:`destination`) and PagerDuty's routing key (``{"routing_key": <envelope>,
"events_url": …}``).
"""

from __future__ import annotations

import fnmatch
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, RowMapping

from mission_control.base.tags import any_tag_matches
from mission_control.db.alerts import AlertState
from mission_control.db.audit import AuditEntry
from mission_control.db.audit import write as write_audit
from mission_control.db.tables import alerts, channels, notice_attempts, notices
from mission_control.monitoring.notifications import apprise_channel, messages, pagerduty
from mission_control.monitoring.notifications.senders import Delivery, SmtpServer, post_json, send_email
from mission_control.monitoring.silences import (
    active_silences,
    silencing,
    subject_kind,
    subject_tags_of,
)
from mission_control.outbound.policy import DEFAULT_POLICY, OutboundPolicy
from mission_control.outbound.secretbox import SecretBox, SecretUnreadable, is_sealed

GROUP_SIZE = 100  # notices per message at most
TagsOf = Callable[[Any], Sequence[str]]  # an alert -> its subject's tags


class ChannelExists(ValueError):
    pass


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    kind: str  # webhook | slack | email | pagerduty | apprise
    target: dict[str, Any]
    alert_kinds: list[str] | None
    subject_pattern: str
    repeat_interval_s: float | None
    enabled: bool
    tag_pattern: str | None = None  # one of the subject's tags must match (fnmatch); None: any


@dataclass(frozen=True)
class DeliveryContext:
    session: requests.Session
    smtp: SmtpServer
    smtp_from: str
    signing_secret: str | None
    box: SecretBox | None = None  # opens sealed channel URLs
    # Judges what Apprise connects to (``session`` enforces the same policy for our own requests).
    policy: OutboundPolicy = DEFAULT_POLICY


# --- channels -----------------------------------------------------------------------------------


# The fields of a channel's target that are credentials, sealed at rest: a webhook's, Slack's or
# Apprise's URL, PagerDuty's routing key.
SECRET_FIELDS = ("url", "routing_key")


def sealed_target(target: dict[str, Any], box: SecretBox, kind: str | None = None) -> dict[str, Any]:
    """A channel target as stored: its credentials sealed, with what may be shown of it beside."""
    sealed = dict(target)
    for name in SECRET_FIELDS:
        value = target.get(name)
        if isinstance(value, str) and not is_sealed(value):
            sealed[name] = box.seal_value(value)
            if name == "url":
                sealed["shown"] = shown_url(value, kind)
    return sealed


def shown_url(url: str, kind: str | None) -> str:
    """What may be shown of a channel's URL: :func:`redacted_url`, and for an Apprise URL the host only
    when it is a host (a name with a dot, an IP address): many Apprise schemes carry a token where a
    host would be (``tgram://<bot token>/<chat>``, ``discord://<id>/<token>``), shown as ``tgram://…``."""
    shown = redacted_url(url)
    if kind != "apprise":
        return shown
    scheme, _, rest = shown.partition("://")
    host = rest.removesuffix("/…")
    if "." in host.split(":", 1)[0] or host.startswith("["):
        return shown
    return f"{scheme}://…"


def create_channel(
    engine: Engine,
    spec: ChannelSpec,
    now: datetime,
    box: SecretBox | None = None,
    *,
    audit: AuditEntry | None = None,
) -> RowMapping:
    """Store a channel; with ``box`` its URL is sealed (the API always passes one).

    Every write here takes ``audit``: the change is recorded in the same transaction, the channel
    shown as :func:`audit_view` shows it (its URL cut to scheme, host and port).
    """
    if box is not None:
        spec = ChannelSpec(**{**vars(spec), "target": sealed_target(spec.target, box, spec.kind)})
    with engine.begin() as conn:
        if conn.execute(select(channels.c.id).where(channels.c.name == spec.name)).first():
            raise ChannelExists(spec.name)
        channel_id = conn.execute(
            insert(channels).values(**vars(spec), created_at=now, updated_at=now).returning(channels.c.id)
        ).scalar_one()
        row = conn.execute(select(channels).where(channels.c.id == channel_id)).mappings().one()
        write_audit(
            conn, audit, at=now, subject_kind="channel", subject_name=spec.name, after=audit_view(row)
        )
        return row


def audit_view(row: Any) -> dict[str, Any]:
    """A channel as the audit trail may show it: never the URL's path, query or user information."""
    return {
        "id": row["id"],
        "name": row["name"],
        "kind": row["kind"],
        "destination": destination(row["target"]),
        "alert_kinds": row["alert_kinds"],
        "subject_pattern": row["subject_pattern"],
        "repeat_interval_s": row["repeat_interval_s"],
        "enabled": row["enabled"],
        **({"tag_pattern": row["tag_pattern"]} if row["tag_pattern"] is not None else {}),
    }


def list_channels(engine: Engine) -> list[RowMapping]:
    with engine.connect() as conn:
        return list(conn.execute(select(channels).order_by(channels.c.name)).mappings())


def get_channel(engine: Engine, channel_id: int) -> RowMapping | None:
    with engine.connect() as conn:
        return conn.execute(select(channels).where(channels.c.id == channel_id)).mappings().first()


def delete_channel(
    engine: Engine, channel_id: int, *, audit: AuditEntry | None = None, now: datetime | None = None
) -> bool:
    with engine.begin() as conn:
        row = conn.execute(select(channels).where(channels.c.id == channel_id)).mappings().first()
        if row is None or conn.execute(delete(channels).where(channels.c.id == channel_id)).rowcount != 1:
            return False
        if audit is not None:
            assert now is not None, "an audited delete needs the time"
            write_audit(
                conn, audit, at=now, subject_kind="channel", subject_name=row["name"], before=audit_view(row)
            )
        return True


# Where a URL's authority ends (RFC 3986 section 3.2), and the backslash WHATWG parsers also stop at.
_AUTHORITY_END = re.compile(r"[/?#\\]")


def redacted_url(url: str) -> str:
    """``url`` shown only to its host and port: ``https://hooks.example.com/…``.

    Webhook URLs are credentials (Slack's carry the secret in the path, others in the query string or
    the user information), so the path, query, fragment and user information are all cut, however the
    URL is shaped: ``https://h.example?token=s`` has no path, ``https://u:p@h.example#f`` none either.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return "…"
    authority = _AUTHORITY_END.split(rest, maxsplit=1)[0]
    return f"{scheme}://{authority.rpartition('@')[2]}/…"


def destination(target: dict[str, Any]) -> str:
    """Where a channel's notices go, as the API may show it: the redacted URL, or the recipients."""
    if "routing_key" in target:  # PagerDuty: the events URL is no secret, but shown as the others are
        return redacted_url(str(target.get("events_url") or ""))
    if "url" in target:
        if is_sealed(target["url"]):
            return str(target.get("shown") or "…")
        return redacted_url(target["url"])
    return ", ".join(target["to"])


# Events only some kinds of channel hear of: PagerDuty acknowledges its incident when we acknowledge
# the alert; a chat message or an email about it would only be noise.
EVENTS_FOR_KINDS = {"acknowledged": ("pagerduty",)}


def hears(channel: Any, event: str) -> bool:
    """Whether a channel of this kind is told about ``event`` at all."""
    kinds = EVENTS_FOR_KINDS.get(event)
    return kinds is None or channel.kind in kinds


def matches(channel: Any, kind: str, subject: str, tags: Sequence[str] = ()) -> bool:
    """Whether ``channel`` hears alerts of ``kind`` about ``subject``, which carries ``tags``."""
    if not channel.enabled:
        return False
    if channel.alert_kinds is not None and kind not in channel.alert_kinds:
        return False
    if channel.tag_pattern is not None and not any_tag_matches(channel.tag_pattern, tags):
        return False
    return fnmatch.fnmatchcase(subject, channel.subject_pattern)


def _tags_for(conn: Connection, targets: Sequence[Any], alerts_: Iterable[Any]) -> TagsOf:
    """The tags of the alerts' subjects, read only when a channel routes by tag."""
    if not any(channel.tag_pattern is not None for channel in targets):
        return lambda alert: ()
    found = subject_tags_of(conn, list(alerts_))
    return lambda alert: found.get((subject_kind(alert["kind"]), alert["subject"]), [])


# --- routing ------------------------------------------------------------------------------------


def route(engine: Engine, changes: Sequence[tuple[int, str]], now: datetime) -> list[int]:
    """Create one notice per matching channel for each (alert id, event); returns the ids of the new
    notices to deliver (silenced ones are stored, not returned: see :mod:`..silences`).

    One transaction and one multi-row INSERT however many alerts changed at once.
    """
    with engine.begin() as conn:
        ids = sorted({alert_id for alert_id, _ in changes})
        found = {a["id"]: a for a in conn.execute(select(alerts).where(alerts.c.id.in_(ids))).mappings()}
        targets = list(conn.execute(select(channels)))
        tags = _tags_for(conn, targets, found.values())
        rows = [
            _notice_row(c.id, alert_id, event, f"{alert_id}:{event}:{c.id}", now)
            for alert_id, event in changes
            if alert_id in found
            for c in targets
            if hears(c, event)
            and matches(c, found[alert_id]["kind"], found[alert_id]["subject"], tags(found[alert_id]))
        ]
        _silence(conn, rows, found, now)
        created = _add_notices(conn, rows)
        notified = sorted(
            {
                alert_id
                for alert_id, event in changes
                if event not in ("resolved", "acknowledged") and alert_id in found
            }
        )
        if created and notified:
            conn.execute(update(alerts).where(alerts.c.id.in_(notified)).values(last_notified_at=now))
    return created


def _silence(conn: Connection, rows: list[dict[str, Any]], found: dict[int, Any], now: datetime) -> None:
    """Mark the notice rows an active silence mutes (status ``silenced``, the silence's id, a dedup key
    of their own so the notice can still go once the silence is over), and the alerts with it.

    A resolve or acknowledgement to a channel that heard nothing but silenced notices about the alert
    is silenced too, by the silence that muted the last of them.
    """
    if not rows:
        return
    in_force = active_silences(conn, now)
    closing = sorted({r["alert_id"] for r in rows if r["event"] in ("resolved", "acknowledged")})
    heard: dict[tuple[int, int], tuple[bool, int | None]] = {}  # (channel, alert) -> (any sent, silence)
    if closing:
        for notice in conn.execute(
            select(notices.c.channel_id, notices.c.alert_id, notices.c.status, notices.c.silence_id)
            .where(notices.c.alert_id.in_(closing), notices.c.event.in_(["opened", "repeat"]))
            .order_by(notices.c.id)
        ):
            key = (notice.channel_id, notice.alert_id)
            sent, silence_id = heard.get(key, (False, None))
            if notice.status == "silenced":
                heard[key] = (sent, notice.silence_id)
            else:
                heard[key] = (True, silence_id)
    tags: dict[tuple[str, str], list[str]] = {}
    if any(s.tag_pattern is not None for s in in_force):
        tags = subject_tags_of(conn, [found[r["alert_id"]] for r in rows])
    muted: dict[int, int] = {}
    for row in rows:
        alert = found[row["alert_id"]]
        carried = tags.get((subject_kind(alert["kind"]), alert["subject"]), [])
        silence = silencing(in_force, alert["kind"], alert["subject"], now, carried)
        silence_id = silence.id if silence is not None else None
        if silence_id is None and row["event"] in ("resolved", "acknowledged"):
            sent, last_silence = heard.get((row["channel_id"], row["alert_id"]), (True, None))
            silence_id = None if sent else last_silence
        if silence_id is None:
            continue
        row.update(status="silenced", silence_id=silence_id, dedup_key=f"{row['dedup_key']}:s{silence_id}")
        muted[row["alert_id"]] = silence_id
    by_silence: dict[int, list[int]] = {}
    for alert_id, silence_id in muted.items():
        by_silence.setdefault(silence_id, []).append(alert_id)
    for silence_id, alert_ids in by_silence.items():  # one UPDATE per silence, not per alert
        conn.execute(update(alerts).where(alerts.c.id.in_(alert_ids)).values(silence_id=silence_id))


def add_test_notice(
    engine: Engine, channel_id: int, now: datetime, *, audit: AuditEntry | None = None
) -> int | None:
    """A notice with no alert, to check a channel end to end."""
    with engine.begin() as conn:
        name = conn.execute(select(channels.c.name).where(channels.c.id == channel_id)).scalar()
        if name is None:
            return None
        [notice_id] = _add_notices(
            conn, [_notice_row(channel_id, None, "test", f"test:{uuid.uuid4().hex}", now)]
        )
        write_audit(
            conn, audit, at=now, subject_kind="channel", subject_name=name, after={"notice_id": notice_id}
        )
        return notice_id


def due_repeats(engine: Engine, now: datetime) -> list[int]:
    """Repeat notices for open, unacknowledged alerts whose channel's repeat interval has passed.

    Three statements however many alerts are open: the repeating channels, the open alerts with the
    last notice and notice count per channel (one grouped read), and one insert of the repeats.
    """
    with engine.begin() as conn:
        repeating = list(conn.execute(select(channels).where(channels.c.repeat_interval_s.is_not(None))))
        if not repeating:
            return []
        open_alerts = (
            conn.execute(select(alerts).where(alerts.c.state == AlertState.OPEN.value)).mappings().all()
        )
        if not open_alerts:
            return []
        tags = _tags_for(conn, repeating, open_alerts)
        sent = {
            (row.channel_id, row.alert_id): (row.last, row.count)
            for row in conn.execute(
                select(
                    notices.c.channel_id,
                    notices.c.alert_id,
                    func.max(notices.c.created_at).label("last"),
                    func.count().label("count"),
                )
                .join(alerts, alerts.c.id == notices.c.alert_id)
                .where(alerts.c.state == AlertState.OPEN.value, notices.c.event.in_(["opened", "repeat"]))
                .group_by(notices.c.channel_id, notices.c.alert_id)
            )
        }
        rows = []
        for channel in repeating:
            for alert in open_alerts:
                if not matches(channel, alert["kind"], alert["subject"], tags(alert)):
                    continue
                last, count = sent.get((channel.id, alert["id"]), (None, 0))
                if now - (last or alert["opened_at"]) < timedelta(seconds=channel.repeat_interval_s):
                    continue
                key = f"{alert['id']}:repeat{count}:{channel.id}"
                rows.append(_notice_row(channel.id, alert["id"], "repeat", key, now))
        _silence(conn, rows, {a["id"]: a for a in open_alerts}, now)
        return _add_notices(conn, rows)


def unrouted(
    engine: Engine, now: datetime, *, older_than_s: float = 30, within_s: float = 86_400
) -> list[int]:
    """Route unresolved alerts whose routing task was lost (the broker was down when they opened).

    An alert routed to at least one channel has ``last_notified_at``; one that matched no channel is
    routed again each sweep and yields nothing (bounded to alerts opened in the last day).
    """
    with engine.connect() as conn:
        ids = list(
            conn.execute(
                select(alerts.c.id).where(
                    alerts.c.state.in_(("open", "acknowledged")),
                    alerts.c.last_notified_at.is_(None),
                    alerts.c.opened_at < now - timedelta(seconds=older_than_s),
                    alerts.c.opened_at > now - timedelta(seconds=within_s),
                )
            ).scalars()
        )
    return route(engine, [(alert_id, "opened") for alert_id in ids], now) if ids else []


def _notice_row(channel_id: int, alert_id: int | None, event: str, key: str, now: datetime) -> dict[str, Any]:
    return {
        "channel_id": channel_id,
        "alert_id": alert_id,
        "event": event,
        "dedup_key": key,
        "status": "pending",
        "created_at": now,
        "silence_id": None,
    }


def _add_notices(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert notices, skipping any whose dedup key exists (a redelivered routing task); the new ids of
    those to deliver (pending ones: a silenced notice is stored, never delivered)."""
    if not rows:
        return []
    insert_ = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert_(notices).values(rows).on_conflict_do_nothing(index_elements=[notices.c.dedup_key])
    inserted = conn.execute(statement.returning(notices.c.id, notices.c.status)).all()
    return sorted(row.id for row in inserted if row.status == "pending")


# --- delivery -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempted:
    notice_ids: list[int]  # the notices this attempt carried (pending ones only)
    outcome: str  # sent | transient | permanent | skipped
    detail: str


def group_by_channel(engine: Engine, notice_ids: Sequence[int], size: int = GROUP_SIZE) -> list[list[int]]:
    """Split notices into per-channel groups of at most ``size``: each group is one message."""
    if not notice_ids:
        return []
    with engine.connect() as conn:
        rows = conn.execute(
            select(notices.c.id, notices.c.channel_id)
            .where(notices.c.id.in_(list(notice_ids)))
            .order_by(notices.c.id)
        ).all()
    by_channel: dict[int, list[int]] = {}
    for notice_id, channel_id in rows:
        by_channel.setdefault(channel_id, []).append(notice_id)
    return [ids[i : i + size] for ids in by_channel.values() for i in range(0, len(ids), size)]


def deliver(
    engine: Engine, notice_ids: Sequence[int], ctx: DeliveryContext, now: datetime, *, final: bool
) -> Attempted:
    """Make one delivery attempt of a group of pending notices of one channel, as one message.

    Many alerts changing at once (a network partition: hundreds of services down in a second)
    become one webhook call, Slack message or email per channel and check, not hundreds. ``final``
    says no retry follows, so a transient failure then fails the notices for good.
    """
    with engine.connect() as conn:
        rows = (
            conn.execute(
                select(notices, channels.c.kind, channels.c.target)
                .join(channels, channels.c.id == notices.c.channel_id)
                .where(notices.c.id.in_(list(notice_ids)), notices.c.status == "pending")
                .order_by(notices.c.id)
            )
            .mappings()
            .all()
        )
        alert_ids = [r["alert_id"] for r in rows if r["alert_id"] is not None]
        found = {}
        if alert_ids:
            found = {
                a["id"]: dict(a)
                for a in conn.execute(select(alerts).where(alerts.c.id.in_(alert_ids))).mappings()
            }
    if not rows:
        return Attempted([], "skipped", "not pending")
    if len({r["channel_id"] for r in rows}) != 1:
        raise ValueError("a delivery carries the notices of one channel")
    items = [(r["event"], found.get(r["alert_id"])) for r in rows]
    result = _send(rows[0]["kind"], rows[0]["target"], items, ctx)
    if result.outcome == "sent":
        status: str = "sent"
    elif result.outcome == "permanent" or final:
        status = "failed"
    else:
        status = "pending"
    with engine.begin() as conn:
        conn.execute(
            insert(notice_attempts),
            [
                {
                    "notice_id": r["id"],
                    "number": r["attempts"] + 1,
                    "at": now,
                    "duration_ms": result.duration_ms,
                    "outcome": result.outcome,
                    "detail": result.detail,
                }
                for r in rows
            ],
        )
        conn.execute(
            update(notices)
            .where(and_(notices.c.id.in_([r["id"] for r in rows]), notices.c.status == "pending"))
            .values(
                status=status,
                attempts=notices.c.attempts + 1,
                error_kind=None if result.outcome == "sent" else result.outcome,
                last_error=None if result.outcome == "sent" else result.detail,
                sent_at=now if result.outcome == "sent" else None,
            )
        )
    return Attempted([r["id"] for r in rows], result.outcome, result.detail)


def _opened(target: dict[str, Any], name: str, ctx: DeliveryContext) -> str | Delivery:
    """The plaintext of a target's secret field, or the permanent failure that it cannot be read."""
    value = target[name]
    what = "URL" if name == "url" else "routing key"
    if not is_sealed(value):
        return str(value)
    if ctx.box is None:
        return Delivery("permanent", f"the channel's {what} is sealed and no key is at hand", 0.0)
    try:
        return ctx.box.open_value(value)
    except SecretUnreadable:
        return Delivery("permanent", f"the channel's {what} cannot be decrypted (MC_SECRET_KEY)", 0.0)


def _send(
    kind: str, target: dict[str, Any], items: list[tuple[str, dict[str, Any] | None]], ctx: DeliveryContext
) -> Delivery:
    if kind == "pagerduty":
        routing_key = _opened(target, "routing_key", ctx)
        if isinstance(routing_key, Delivery):
            return routing_key
        return pagerduty.send(ctx.session, target["events_url"], routing_key, items)
    if kind in ("webhook", "slack", "apprise"):
        url = _opened(target, "url", ctx)
        if isinstance(url, Delivery):
            return url
        if kind == "apprise":
            return apprise_channel.send(url, items, ctx.policy)
        if kind == "webhook":
            return post_json(ctx.session, url, messages.payload(items), secret=ctx.signing_secret)
        return post_json(ctx.session, url, messages.slack(items))
    if kind == "email":
        return send_email(ctx.smtp, messages.email(items, ctx.smtp_from, list(target["to"])))
    return Delivery("permanent", f"unknown channel kind {kind!r}", 0.0)


def list_notices(engine: Engine, channel_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The channel's notices, newest first, each with its delivery attempts."""
    with engine.connect() as conn:
        rows = [
            dict(r)
            for r in conn.execute(
                select(notices)
                .where(notices.c.channel_id == channel_id)
                .order_by(notices.c.id.desc())
                .limit(limit)
            ).mappings()
        ]
        ids = [r["id"] for r in rows]
        attempts: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        if ids:
            for a in conn.execute(
                select(notice_attempts)
                .where(notice_attempts.c.notice_id.in_(ids))
                .order_by(notice_attempts.c.number)
            ).mappings():
                attempts[a["notice_id"]].append(dict(a))
    for r in rows:
        r["delivery_attempts"] = attempts[r["id"]]
    return rows


def reseal_channels(engine: Engine, box: SecretBox) -> int:
    """Seal every plaintext channel URL and re-seal every sealed one with the newest key (one short
    transaction per channel); returns how many channels were rewritten."""
    with engine.connect() as conn:
        ids = list(conn.execute(select(channels.c.id).order_by(channels.c.id)).scalars())
    rewritten = 0
    for channel_id in ids:
        with engine.begin() as conn:
            row = conn.execute(
                select(channels.c.kind, channels.c.target)
                .where(channels.c.id == channel_id)
                .with_for_update()
            ).first()
            if row is None or not any(isinstance(row.target.get(f), str) for f in SECRET_FIELDS):
                continue
            target = dict(row.target)
            for name in SECRET_FIELDS:
                value = target.get(name)
                if isinstance(value, str):
                    target[name] = box.reseal_value(value)
            if isinstance(row.target.get("url"), str):
                target["shown"] = row.target.get("shown") or shown_url(row.target["url"], row.kind)
            conn.execute(update(channels).where(channels.c.id == channel_id).values(target=target))
            rewritten += 1
    return rewritten
