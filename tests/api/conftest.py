from __future__ import annotations

from typing import Any

import pytest

from mission_control.base.config import Settings
from mission_control.web.api import create_app
from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def enqueued() -> list[int]:
    """Run ids the app handed to the broker (the real broker path is covered end to end)."""
    return []


@pytest.fixture
def notified() -> list:
    """Alert changes the app handed to the notification channels."""
    return []


@pytest.fixture
def delivered() -> list:
    """Notice ids the app handed to delivery."""
    return []


@pytest.fixture
def missions_enqueued() -> list[str]:
    """Mission ids the app handed to the workers."""
    return []


@pytest.fixture
def app(engine, clock, enqueued, notified, delivered, missions_enqueued):
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        admin_token=ADMIN_TOKEN,
        signing_secret=SIGNING_SECRET,
        broker_url="memory://",
        max_request_bytes=1024 * 1024,
        max_target_body_bytes=64 * 1024,
    )
    app = create_app(
        settings,
        clock=clock,
        engine=engine,
        enqueue=enqueued.extend,
        notify=notified.extend,
        deliver=delivered.extend,
        enqueue_missions=missions_enqueued.extend,
    )
    app.testing = True
    return app


class Api:
    """The Flask test client with the admin token attached."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, method: str) -> Any:
        call = getattr(self.client, method)

        def with_auth(path: str, **kwargs: Any) -> Any:
            kwargs["headers"] = {**AUTH, **kwargs.get("headers", {})}
            return call(path, **kwargs)

        return with_auth


@pytest.fixture
def api(app) -> Api:
    return Api(app.test_client())
