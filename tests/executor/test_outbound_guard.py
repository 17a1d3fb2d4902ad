"""The SSRF guard on job triggers, end to end through the executor (SQLite and PostgreSQL): a target
whose address the outbound policy denies fails its run at once, unretried and unconnected; the check
judges the addresses a host name resolves to; and redirects towards denied addresses are not followed."""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from mission_control.base.config import Settings
from mission_control.db.tables import attempts, runs
from mission_control.execution.executor import ExecutionContext, execute_run
from mission_control.jobs.registry import JobRegistry
from mission_control.outbound.sender import make_session
from mission_control.runtime.context import Runtime
from mission_control.scheduling.claiming import create_manual_run
from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET, T0
from tests.factories import job_spec

METADATA_URL = "http://169.254.169.254/latest/meta-data/iam/security-credentials/?token=s3cret"
RETRY = {"max_attempts": 3, "backoff_s": 2, "backoff_max_s": 60, "jitter": 0}
SECRETS = {"MC_ADMIN_TOKEN": ADMIN_TOKEN, "MC_SIGNING_SECRET": SIGNING_SECRET}


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every address a Python socket tries to connect to while the test runs (the database drivers
    connect in C, so only HTTP connections show up here)."""
    seen: list[Any] = []
    original = socket.socket.connect

    def spy(sock: socket.socket, address: Any) -> Any:
        seen.append(address)
        return original(sock, address)

    monkeypatch.setattr(socket.socket, "connect", spy)
    return seen


@pytest.fixture
def notified() -> list[Any]:
    return []


def worker_context(engine: Any, clock: Any, notified: list[Any], env: dict[str, str]) -> ExecutionContext:
    """A worker's execution context as ``Runtime`` builds it from the environment ``env``, so the
    policy travels the real way from MC_OUTBOUND_* to the session; alert notices go to a list."""
    runtime = Runtime(settings=Settings.from_env({**SECRETS, **env}), engine=engine, clock=clock)
    return dataclasses.replace(runtime.execution_context(), notify=notified.extend)


def register(engine: Any, clock: Any, url: str) -> None:
    JobRegistry(engine, clock).put(job_spec(target={"url": url}, schedule={"every_s": 3600}, retry=RETRY))


def the_run(engine: Any, run_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(runs).where(runs.c.id == run_id)).one()


def the_attempts(engine: Any, run_id: int) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(select(attempts).where(attempts.c.run_id == run_id).order_by(attempts.c.number))
        )


def test_a_trigger_to_the_metadata_service_fails_at_once_without_a_connection(
    engine, clock, notified, connects
):
    ctx = worker_context(engine, clock, notified, {})
    register(engine, clock, METADATA_URL)
    run_id = create_manual_run(engine, "nightly-report", T0)

    assert execute_run(run_id, ctx) == "failed"

    run = the_run(engine, run_id)
    assert (run.status, run.reason, run.attempt_count, run.next_attempt_at) == (
        "failed",
        "destination_refused",
        1,
        None,
    )  # three attempts allowed, one made: a refusal is not retried
    [attempt] = the_attempts(engine, run_id)
    assert (attempt.status, attempt.error_class) == ("failed", "DestinationRefused")
    assert attempt.http_status is None
    assert "169.254.169.254 is denied by the outbound policy" in attempt.error_message
    assert "s3cret" not in attempt.error_message and "meta-data" not in attempt.error_message
    assert connects == []
    assert [change.kind for change in notified] == ["job_failed"]
    ctx.session.close()


def test_a_host_name_is_judged_by_the_address_it_resolves_to(engine, clock, notified, target, connects):
    # Nothing in the URL says loopback: only resolving "localhost" shows that it is denied.
    ctx = worker_context(engine, clock, notified, {"MC_OUTBOUND_DENY": "127.0.0.0/8,::1/128"})
    register(engine, clock, f"http://localhost:{target.port}/ok")
    run_id = create_manual_run(engine, "nightly-report", T0)

    assert execute_run(run_id, ctx) == "failed"

    assert the_run(engine, run_id).reason == "destination_refused"
    [attempt] = the_attempts(engine, run_id)
    assert attempt.error_class == "DestinationRefused"
    assert attempt.error_message.startswith("refused to connect: localhost resolves to ")
    assert "127.0.0.1" in attempt.error_message
    assert connects == []
    assert target.requests == []
    ctx.session.close()


def test_an_allowed_network_reopens_a_denied_one(engine, clock, notified, target):
    ctx = worker_context(
        engine,
        clock,
        notified,
        {"MC_OUTBOUND_DENY": "127.0.0.0/8,::1/128", "MC_OUTBOUND_ALLOW": "127.0.0.1/32"},
    )
    register(engine, clock, f"http://localhost:{target.port}/ok")
    run_id = create_manual_run(engine, "nightly-report", T0)

    assert execute_run(run_id, ctx) == "succeeded"
    assert len(target.requests_to("/ok")) == 1
    ctx.session.close()


@pytest.mark.parametrize(
    ("host", "env"),
    [
        # IPv4-mapped: denied by default. (NAT64 and IPv4-compatible forms are in the unit tests' table
        # only: without the guard a test would send packets towards them.)
        ("[::ffff:127.0.0.1]", {}),
        # opening the IPv6 range does not open an IPv4 address the operator denies
        ("[::ffff:127.0.0.1]", {"MC_OUTBOUND_DENY": "127.0.0.0/8", "MC_OUTBOUND_ALLOW": "::ffff:0:0/96"}),
    ],
)
def test_an_ipv6_spelling_of_an_ipv4_address_is_refused_without_a_connection(
    engine, clock, notified, target, connects, host, env
):
    ctx = worker_context(engine, clock, notified, env)
    register(engine, clock, f"http://{host}:{target.port}/ok")
    run_id = create_manual_run(engine, "nightly-report", T0)

    assert execute_run(run_id, ctx) == "failed"

    assert the_run(engine, run_id).reason == "destination_refused"
    [attempt] = the_attempts(engine, run_id)
    assert attempt.error_class == "DestinationRefused"
    assert connects == []
    assert target.requests == []
    ctx.session.close()


class _RedirectToMetadata(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(302)
        self.send_header("Location", METADATA_URL)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def redirector() -> Iterator[str]:
    """A local server answering every request with a 302 to the metadata service."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RedirectToMetadata)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hop"
    finally:
        server.shutdown()
        server.server_close()


def test_a_redirect_to_a_denied_address_is_recorded_as_the_answer_not_followed(
    engine, clock, notified, redirector, connects
):
    settings = Settings(admin_token=ADMIN_TOKEN, signing_secret=SIGNING_SECRET)
    session = make_session()
    ctx = ExecutionContext(engine=engine, clock=clock, settings=settings, session=session)
    register(engine, clock, redirector)
    run_id = create_manual_run(engine, "nightly-report", T0)

    assert execute_run(run_id, ctx) == "failed"

    assert the_run(engine, run_id).reason == "redirect"
    [attempt] = the_attempts(engine, run_id)
    assert (attempt.http_status, attempt.error_class) == (302, None)
    assert attempt.response_headers["location"] == METADATA_URL
    assert all(address[0] == "127.0.0.1" for address in connects)  # only the redirecting server
    session.close()
