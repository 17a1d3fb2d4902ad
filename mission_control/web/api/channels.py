"""``/api/v1/channels``: where alert notices go, a test notice, and the delivery log.

A channel's URL and a PagerDuty channel's routing key are never answered: ``ChannelOut.of`` shows the
destination through ``notices.destination`` (host and port only, see ``redacted_url``; an Apprise
URL's host only when it is a host). An Apprise URL is checked against Apprise's plugins on the way
in, so one it cannot use is a 422 naming ``url``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app, jsonify

from mission_control.monitoring.notifications.apprise_channel import apprise_url_known
from mission_control.monitoring.notifications.notices import (
    ChannelExists,
    ChannelSpec,
    add_test_notice,
    create_channel,
    delete_channel,
    get_channel,
    list_channels,
    list_notices,
)
from mission_control.monitoring.notifications.pagerduty import DEFAULT_EVENTS_URL
from mission_control.web.api.audit import entry
from mission_control.web.api.bodies import json_object, validate
from mission_control.web.api.errors import ApiError
from mission_control.web.api.openapi import ApiBlueprint
from mission_control.web.api.responses import secret_box
from mission_control.web.api.schemas import ChannelIn, ChannelList, ChannelOut, NoticeList, NoticeOut

bp = ApiBlueprint("channels", __name__, tag="channels")
CHANNEL_ID = "<id:channel_id>"


def _state():  # type: ignore[no-untyped-def]
    return current_app.extensions["mission_control"]


T = TypeVar("T")
_FIELD_PREFIX = re.compile(r"([a-z_]+(?:\.[a-z0-9_]+)*): ")


def named_field(validating: Callable[[], T]) -> T:
    """``validating()``, with a 422 that a whole-body check raised (``"url: a … channel needs …"``)
    naming its field as the others do."""
    try:
        return validating()
    except ApiError as exc:
        found = _FIELD_PREFIX.match(str(exc)) if exc.field is None else None
        if found is None:
            raise
        raise ApiError(exc.status, exc.code, str(exc), found.group(1)) from None


def _not_found(channel_id: int) -> ApiError:
    return ApiError(404, "not_found", f"channel_id: no channel with id {channel_id}", "channel_id")


@bp.operation("GET", "/channels", summary="List notification channels", responses={200: ChannelList})
def list_all_channels() -> Response:
    rows = list_channels(_state().engine)
    return jsonify(ChannelList(channels=[ChannelOut.of(r) for r in rows]).model_dump(mode="json"))


@bp.operation(
    "POST", "/channels", summary="Add a channel (webhook, slack, email, pagerduty or apprise)",
    body=ChannelIn, responses={201: ChannelOut}, errors=(409,),
)  # fmt: skip
def add_channel() -> Response:
    body = named_field(lambda: validate(ChannelIn, json_object(), strict=True))
    target: dict[str, Any]
    if body.kind == "email":
        target = {"to": body.to}
    elif body.kind == "pagerduty":
        target = {"routing_key": body.routing_key, "events_url": body.events_url or DEFAULT_EVENTS_URL}
    else:
        target = {"url": body.url}
    if body.kind == "apprise" and not apprise_url_known(str(body.url)):
        raise ApiError(
            422, "validation_error", "url: not an Apprise URL of a service Apprise supports", "url"
        )
    spec = ChannelSpec(
        name=body.name,
        kind=body.kind,
        target=target,
        alert_kinds=list(body.alert_kinds) if body.alert_kinds else None,
        subject_pattern=body.subject_pattern,
        repeat_interval_s=body.repeat_interval_s,
        enabled=body.enabled,
        tag_pattern=body.tag_pattern,
    )
    try:
        row = create_channel(
            _state().engine,
            spec,
            _state().clock.now(),
            secret_box(_state().settings),
            audit=entry("channel.create"),
        )
    except ChannelExists:
        raise ApiError(409, "conflict", f"name: a channel named {body.name!r} exists", "name") from None
    response = jsonify(ChannelOut.of(row).model_dump(mode="json"))
    response.status_code = 201
    return response


@bp.operation("GET", f"/channels/{CHANNEL_ID}", summary="One channel", responses={200: ChannelOut})
def get_one_channel(channel_id: int) -> Response:
    row = get_channel(_state().engine, channel_id)
    if row is None:
        raise _not_found(channel_id)
    return jsonify(ChannelOut.of(row).model_dump(mode="json"))


@bp.operation("DELETE", f"/channels/{CHANNEL_ID}", summary="Remove a channel", responses={204: None})
def remove_channel(channel_id: int) -> Response:
    if not delete_channel(
        _state().engine, channel_id, audit=entry("channel.delete"), now=_state().clock.now()
    ):
        raise _not_found(channel_id)
    return Response(status=204)


@bp.operation(
    "POST", f"/channels/{CHANNEL_ID}/test", summary="Send a test notice through this channel",
    responses={202: NoticeOut},
)  # fmt: skip
def send_test_notice(channel_id: int) -> Response:
    notice_id = add_test_notice(
        _state().engine, channel_id, _state().clock.now(), audit=entry("channel.test")
    )
    if notice_id is None:
        raise _not_found(channel_id)
    _state().deliver([[notice_id]])
    [row] = [n for n in list_notices(_state().engine, channel_id, limit=20) if n["id"] == notice_id]
    response = jsonify(NoticeOut.of(row).model_dump(mode="json"))
    response.status_code = 202
    return response


@bp.operation(
    "GET", f"/channels/{CHANNEL_ID}/notices", summary="This channel's notices with every delivery attempt",
    responses={200: NoticeList},
)  # fmt: skip
def channel_notices(channel_id: int) -> Response:
    if get_channel(_state().engine, channel_id) is None:
        raise _not_found(channel_id)
    rows = list_notices(_state().engine, channel_id)
    return jsonify(NoticeList(notices=[NoticeOut.of(r) for r in rows]).model_dump(mode="json"))
