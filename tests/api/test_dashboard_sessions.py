"""Dashboard sessions cannot be forged, outlive sign-out or a token change, or last forever.

Each test reproduces one finding of the outside attack (issue 13): a cookie signed with a key derived
from MC_SIGNING_SECRET (which every target holds) signed in as admin; a copied cookie outlived
sign-out; a session survived a change of the admin token; every request renewed the session; and
``next`` let a crafted sign-in link redirect off the site.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta

import pytest
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import func, select

from mission_control.db.engine import make_engine
from mission_control.db.tables import app_secrets, dashboard_sessions
from mission_control.jobs.registry import JobRegistry
from mission_control.web.api import create_app
from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET
from tests.factories import job_spec

pytestmark = pytest.mark.usefixtures("engine")


def _sign_in(app, token: str = ADMIN_TOKEN):
    client = app.test_client()
    answer = client.post("/login", data={"token": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def _cookie(client) -> str:
    return client.get_cookie("mc_session").value


def _with_cookie(app, value: str):
    client = app.test_client()
    client.set_cookie("mc_session", value)
    return client


def _signed_in(client) -> bool:
    answer = client.get("/jobs")
    return answer.status_code == 200


def _other_app(app, engine, clock, **changes):
    state = app.extensions["mission_control"]
    other = create_app(
        state.settings.model_copy(update=changes),
        clock=clock,
        engine=engine,
        enqueue=state.enqueue,
        notify=state.notify,
        deliver=state.deliver,
        enqueue_missions=state.enqueue_missions,
    )
    other.testing = True
    return other


def test_a_cookie_signed_with_the_signing_secret_is_not_a_session(app, engine, clock, enqueued):
    JobRegistry(engine, clock).put(job_spec("nightly-report"))
    # What the attack did: Flask's cookie format, keyed as the dashboard used to key it.
    legacy_key = hmac.new(
        SIGNING_SECRET.encode(), b"mission-control dashboard session", hashlib.sha256
    ).digest()
    app.secret_key = legacy_key
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    for forged in ({"admin": True, "csrf": "forged"}, {"sid": "forged", "csrf": "forged"}):
        client = _with_cookie(app, serializer.dumps(forged))
        assert not _signed_in(client)
        trigger = client.post("/jobs/nightly-report/trigger", data={"csrf": "forged"})
        assert trigger.status_code in (302, 400) and enqueued == []


def test_signing_out_ends_the_session_everywhere_the_cookie_was_copied(app):
    client = _sign_in(app)
    copied = _cookie(client)
    page = client.get("/").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)[1]
    assert client.post("/logout", data={"csrf": csrf}).status_code == 302
    assert not _signed_in(_with_cookie(app, copied))


def test_a_new_admin_token_ends_sessions_opened_with_the_old_one(app, engine, clock):
    copied = _cookie(_sign_in(app))
    assert _signed_in(_with_cookie(app, copied))
    rotated = _other_app(app, engine, clock, admin_token="a-brand-new-admin-token-0123456789")
    assert not _signed_in(_with_cookie(rotated, copied))
    assert _signed_in(_sign_in(rotated, "a-brand-new-admin-token-0123456789"))


def test_a_session_lasts_twelve_hours_from_sign_in_however_much_it_is_used(app, clock):
    signed_in_at = clock.now()
    client = _sign_in(app)
    for hours in (1, 6, 11.9):
        clock.set(signed_in_at + timedelta(hours=hours))
        answer = client.get("/")
        assert answer.status_code == 200
        assert "Set-Cookie" not in answer.headers  # using it neither renews nor re-sends it
    clock.set(signed_in_at + timedelta(hours=12, seconds=1))
    assert not _signed_in(client)


def test_the_session_key_is_generated_once_and_shared_and_a_configured_one_replaces_it(app, engine, clock):
    copied = _cookie(_sign_in(app))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(app_secrets)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(dashboard_sessions)).scalar() == 1
        stored = conn.execute(select(dashboard_sessions.c.id_digest)).scalar()
    assert stored != copied and len(stored) == 64  # the id's digest is kept, never the id
    second_process = _other_app(app, engine, clock)
    assert _signed_in(_with_cookie(second_process, copied))
    configured = _other_app(app, engine, clock, session_secret="s" * 48)
    assert not _signed_in(_with_cookie(configured, copied))


@pytest.mark.parametrize(
    "crafted",
    [
        "/%09/evil.example",
        "/%5Cevil.example",
        "/\\evil.example",
        "//evil.example",
        "https://evil.example",
        "/%0a/x",
    ],
)
def test_sign_in_never_redirects_off_the_site(app, crafted):
    client = app.test_client()
    answer = client.post(f"/login?next={crafted}", data={"token": ADMIN_TOKEN})
    assert answer.status_code == 302 and answer.headers["Location"] == "/"


def test_the_right_token_signs_in_even_when_the_address_spent_its_budget(app):
    client = app.test_client()
    budget = app.extensions["mission_control"].settings.auth_failures_per_min
    for _ in range(budget + 5):
        client.post("/login", data={"token": "not-the-token-at-all-xx"})
    assert client.post("/login", data={"token": "still-not-the-token-xx"}).status_code == 429
    assert client.post("/login", data={"token": ADMIN_TOKEN}).status_code == 302


def test_a_session_cookie_does_not_break_probes_while_the_database_is_down(app, tmp_path):
    state = app.extensions["mission_control"]
    down = make_engine(f"sqlite:///{tmp_path / 'missing' / 'registry.db'}")  # its directory does not exist
    broken = create_app(
        state.settings.model_copy(update={"database_url": str(down.url)}),
        clock=state.clock,
        engine=down,
        enqueue=state.enqueue,
        notify=state.notify,
        deliver=state.deliver,
        enqueue_missions=state.enqueue_missions,
    )
    client = broken.test_client()
    client.set_cookie("mc_session", "any.cookie.value")
    assert client.get("/healthz").status_code == 200
    assert client.get("/jobs").status_code == 302  # signed out: to the sign-in page
    down.dispose()
