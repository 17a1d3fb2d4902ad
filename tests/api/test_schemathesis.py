"""Schemathesis against our own OpenAPI document: every operation, no 5xx, every answer as documented.

The schema is read from the app's ``/api/v1/openapi.json`` through WSGI (no server) and every request
carries the admin token. Generation is deterministic (``derandomize``), so CI sends the same requests
every time; a failure prints the request as a curl command to reproduce it. One test per operation:
select some with ``-k`` (``-k "jobs and PATCH"``); under pytest 9.2 they share one node id, because
schemathesis builds its items without a callspec, so ``::``-selection and the progress percentage cannot
tell them apart.

All of schemathesis's default checks run: no 5xx, a documented status code, content type, body schema
and headers for every answer, schema-violating requests refused with a 4xx, authentication enforced.
The exceptions, each a rule JSON Schema cannot state, are explained where they are configured below.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from flask import Flask
from schemathesis.config import SchemathesisConfig

from mission_control.base.clock import FrozenClock
from mission_control.base.config import Settings
from mission_control.db import migrate
from mission_control.db.engine import make_engine
from mission_control.web.api import create_app
from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET, T0

# Operations whose valid-looking requests the API may still refuse with a documented 422 for rules the
# document cannot express, so `positive_data_acceptance` (schema-valid => not 422) does not apply:
# cross-field rules (a schedule has exactly one of cron/every_s/at, a service interval_s or schedule,
# a target a url or a mission, an email channel a `to`, backoff_max_s >= backoff_s, a PATCH may not
# rename, a silence ends in the future and after it starts), cron and timezone syntax, names of other
# resources (`definition`), and opaque cursors that must be ones the API gave out.
SEMANTIC_422 = [
    "add_channel",
    "add_silence",
    "create_job",
    "put_job",
    "put_service",
    "patch_job",
    "put_definition",
    "start_mission",
    "list_missions",
    "list_audit",
]

CONFIG = SchemathesisConfig.from_dict(
    {
        "auth": {"openapi": {"bearerAuth": {"bearer": ADMIN_TOKEN}}},
        "generation": {
            "max-examples": 25,
            "deterministic": True,
            "database": "none",
            # Every JSON string the API stores refuses NUL (PostgreSQL cannot hold it; see
            # mission_control/web/api/bodies.py), a rule no per-field schema states; tests/api/test_fuzz.py
            # and test_bad_input.py send NULs on purpose.
            "allow-x00": False,
        },
        "operations": [
            {
                "include-operation-id": SEMANTIC_422,
                "checks": {"positive_data_acceptance": {"enabled": False}},
            }
        ],
    }
)


def _app(database_url: str) -> Flask:
    settings = Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        signing_secret=SIGNING_SECRET,
        broker_url="memory://",
        max_request_bytes=1024 * 1024,
        max_target_body_bytes=64 * 1024,
        # The auth checks send requests without the token or with a wrong one on purpose; within the
        # default budget they would soon turn every request into a 429 (tests/api/test_rate_limits.py).
        auth_failures_per_min=1_000_000,
    )
    sink: list[object] = []
    return create_app(
        settings,
        clock=FrozenClock(T0),
        engine=make_engine(database_url),
        enqueue=sink.extend,
        notify=sink.extend,
        deliver=sink.extend,
        enqueue_missions=sink.extend,
    )


# Collection needs the operations, so the document is read at import, from an app whose database is never
# touched; the requests go to `fuzzed_app` below, on a registry made when the tests run. (The lazy
# schemathesis.pytest.from_fixture would avoid the second app, but it sets pytest's private
# Node._nodeid, which pytest 9.2 no longer has.)
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", _app("sqlite://"), config=CONFIG)


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The app on a throwaway SQLite registry: the fuzzing is about the API's logic, not the backend."""
    url = f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'registry.db'}"
    app = _app(url)
    engine = app.extensions["mission_control"].engine
    migrate.upgrade(engine)
    yield app
    engine.dispose()


@schema.parametrize()
def test_every_operation_answers_as_documented(case: schemathesis.Case, fuzzed_app: Flask) -> None:
    case.call_and_validate(app=fuzzed_app)
