"""The client published alone (``clients/python``: requests only): an exception per kind of error,
retries that honour ``Retry-After`` for idempotent calls and heartbeats only, and the distribution
installed by itself in a fresh venv, talking to a real server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from mission_control.client import (
    Conflict,
    Forbidden,
    MissionControl,
    MissionControlError,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from tests.servers import offline_pip_env

ROOT = Path(__file__).resolve().parents[1]
SERVER_ONLY = {"celery", "flask", "sqlalchemy", "psycopg2", "psycopg2-binary", "gunicorn", "kombu"}


class ScriptedSession(requests.Session):
    """Answers each request with the next scripted (status, headers, body) and records the calls."""

    def __init__(self, *answers: tuple[int, dict[str, str], object]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.calls: list[tuple[str, str]] = []

    def request(self, method, url, **kwargs):  # type: ignore[no-untyped-def, override]
        self.calls.append((method, url))
        status, headers, body = self.answers.pop(0)
        response = requests.Response()
        response.status_code = status
        response.headers.update({"Content-Type": "application/json", **headers})
        response._content = json.dumps(body).encode()
        return response


def error(code: str) -> dict:
    return {"error": {"code": code, "message": f"{code} happened"}}


def client(*answers: tuple[int, dict[str, str], object], **options) -> tuple[MissionControl, list[float]]:
    slept: list[float] = []
    mc = MissionControl(
        "http://127.0.0.1:9", "token", session=ScriptedSession(*answers), sleep=slept.append, **options
    )
    return mc, slept


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (429, RateLimited),
        (503, Unavailable),
    ],
)
def test_each_kind_of_error_has_its_own_exception_that_is_still_a_mission_control_error(status, kind):
    mc, _ = client((status, {}, error("some_code")), retries=0)
    with pytest.raises(kind) as raised:
        mc.pause_job("nightly")
    assert isinstance(raised.value, MissionControlError)
    assert (raised.value.status, raised.value.code) == (status, "some_code")


def test_a_get_is_retried_after_what_retry_after_asks():
    mc, slept = client((503, {"Retry-After": "2"}, error("unavailable")), (200, {}, {"id": 7}))
    assert mc.run(7) == {"id": 7}
    assert slept == [2.0]


def test_a_heartbeat_is_retried_when_rate_limited():
    mc, slept = client((429, {"Retry-After": "1"}, error("rate_limited")), (200, {}, {"state": "up"}))
    assert mc.heartbeat("billing") == {"state": "up"}
    assert slept == [1.0]


def test_a_post_that_changes_something_is_never_repeated():
    mc, slept = client((503, {"Retry-After": "1"}, error("unavailable")), (201, {}, {"id": 1}))
    with pytest.raises(Unavailable):
        mc.trigger("nightly")
    assert slept == [] and len(mc.session.calls) == 1  # type: ignore[attr-defined]


def test_a_wait_longer_than_the_bound_is_not_made_and_retries_end():
    mc, slept = client((429, {"Retry-After": "3600"}, error("rate_limited")), max_retry_wait_s=30)
    with pytest.raises(RateLimited) as raised:
        mc.job("nightly")
    assert raised.value.retry_after_s == 3600 and slept == []
    answers = [(503, {}, error("unavailable"))] * 3
    mc, slept = client(*answers, retries=2)
    with pytest.raises(Unavailable):
        mc.job("nightly")
    assert slept == [0.5, 1.0]


def test_the_signature_check_is_the_servers_own_code():
    from mission_control._client import _signing
    from mission_control.outbound import signing

    assert signing.sign is _signing.sign and signing.verify is _signing.verify
    assert (ROOT / "clients" / "python" / "mission_control_client" / "py.typed").is_file()


@pytest.mark.slow
def test_the_client_installs_alone_and_talks_to_a_server(web_server, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt")]
    # From a copy (the symlinked package resolved), so the build leaves nothing in the checkout.
    source = shutil.copytree(
        ROOT / "clients" / "python", tmp_path / "client", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run([*install, str(source)], check=True, timeout=300, env=offline_pip_env())
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"], check=True, capture_output=True, text=True
    )
    installed = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert "mission-control-client" in installed and "requests" in installed
    assert not installed & SERVER_ONLY
    assert "mission-control" not in installed
    script = textwrap.dedent(
        """
        import sys
        from mission_control_client import MissionControl, NotFound

        mc = MissionControl(sys.argv[1], sys.argv[2])
        mc.put_service("installed-alone", interval_s=60)
        print(mc.heartbeat("installed-alone")["service"])
        try:
            mc.job("no-such-job")
        except NotFound as error:
            print(error.status, error.code)
        import mission_control_client, pathlib
        print(pathlib.Path(mission_control_client.__file__).with_name("py.typed").is_file())
        """
    )
    result = subprocess.run(
        [str(python), "-c", script, web_server.url, web_server.token],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # not the checkout, whose mission_control would be importable from here
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["installed-alone", "404 not_found", "True"]


def test_a_server_that_does_not_answer_is_reported_at_once_not_retried():
    slept: list[float] = []
    mc = MissionControl("http://127.0.0.1:9", "token", timeout_s=2, sleep=slept.append)  # discard port
    with pytest.raises(Unavailable) as raised:
        mc.job("nightly")
    assert (raised.value.status, raised.value.code, slept) == (None, "unreachable", [])
