"""Channel URLs are credentials (issue 15): stored sealed, shown to their host only, still delivered.

The SMTP password is a setting (MC_SMTP_PASSWORD): never in the settings' repr, a delivery's detail or
a configuration error.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from mission_control.base.config import ConfigError, Settings
from mission_control.db.tables import channels
from mission_control.monitoring.notifications.notices import (
    ChannelSpec,
    DeliveryContext,
    add_test_notice,
    create_channel,
    deliver,
    reseal_channels,
)
from mission_control.monitoring.notifications.senders import SmtpServer, send_email
from mission_control.outbound.secretbox import SecretBox, is_sealed
from mission_control.outbound.sender import make_session
from tests.conftest import SIGNING_SECRET

HOOK = "ok?hook=SECRET-MARKER"
PASSWORD = "smtp-password-SECRET-MARKER"


def stored_target(engine, channel_id: int) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(channels.c.target).where(channels.c.id == channel_id)).scalar_one())


def delivery_context(session, box: SecretBox | None) -> DeliveryContext:
    return DeliveryContext(
        session=session,
        smtp=SmtpServer(None, 25, None, None, False),
        smtp_from="mc@example.test",
        signing_secret=SIGNING_SECRET,
        box=box,
    )


def test_a_webhook_url_is_stored_sealed_never_answered_and_still_delivered(api, engine, clock, target):
    created = api.post(
        "/api/v1/channels", json={"name": "ops", "kind": "webhook", "url": f"{target.url}/{HOOK}"}
    )
    assert created.status_code == 201, created.get_json()
    channel_id = created.get_json()["id"]

    stored = stored_target(engine, channel_id)
    assert "SECRET-MARKER" not in json.dumps(stored)
    assert is_sealed(stored["url"])
    for answer in (created, api.get("/api/v1/channels"), api.get(f"/api/v1/channels/{channel_id}")):
        assert "SECRET-MARKER" not in answer.get_data(as_text=True)
        assert "mc-sealed" not in answer.get_data(as_text=True)
    assert created.get_json()["destination"] == f"{target.url}/…"

    notice_id = add_test_notice(engine, channel_id, clock.now())
    session = make_session()
    try:
        box = SecretBox.from_settings(Settings(signing_secret=SIGNING_SECRET))
        attempted = deliver(engine, [notice_id], delivery_context(session, box), clock.now(), final=True)
        assert (attempted.outcome, attempted.detail) == ("sent", "HTTP 200")
    finally:
        session.close()
    [received] = target.requests_to("/ok")
    assert received.method == "POST"
    assert "SECRET-MARKER" not in api.get(f"/api/v1/channels/{channel_id}/notices").get_data(as_text=True)


def test_channels_stored_in_plaintext_are_sealed_by_the_command(engine, clock):
    spec = ChannelSpec("old", "webhook", {"url": f"https://hooks.example.test/{HOOK}"}, None, "*", None, True)
    row = create_channel(engine, spec, clock.now())  # no box: as stored before sealing existed
    assert HOOK in stored_target(engine, row["id"])["url"]

    old_box, new_box = SecretBox(("o" * 32,), None), SecretBox(("n" * 32, "o" * 32), None)
    assert reseal_channels(engine, old_box) == 1
    sealed_with_old = stored_target(engine, row["id"])
    assert reseal_channels(engine, new_box) == 1

    stored = stored_target(engine, row["id"])
    assert stored["shown"] == "https://hooks.example.test/…"
    assert stored["url"] != sealed_with_old["url"]
    assert SecretBox(("n" * 32,), None).open_value(stored["url"]) == f"https://hooks.example.test/{HOOK}"


def test_the_smtp_password_is_never_shown():
    settings = Settings.from_env(
        {"MC_SMTP_PASSWORD": PASSWORD, "MC_SMTP_HOST": "127.0.0.1", "MC_SMTP_PORT": "9"}
    )
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    try:
        Settings.from_env({"MC_SMTP_PASSWORD": PASSWORD, "MC_SMTP_PORT": "x"})
    except ConfigError as exc:
        assert PASSWORD not in str(exc)
    server = SmtpServer("127.0.0.1", 9, "mc", PASSWORD, False)  # nothing listens on port 9
    from email.message import EmailMessage

    message = EmailMessage()
    message["To"] = "a@example.test"
    message["From"] = "mc@example.test"
    delivered = send_email(server, message)
    assert delivered.outcome == "transient"
    assert PASSWORD not in delivered.detail
    assert PASSWORD not in repr(server)
