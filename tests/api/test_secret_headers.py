"""Secret job headers are write-only (issue 15): answered "****", stored sealed, sent for real.

Each test reads what an operator or an attacker with a database copy would see (API answers, the jobs
row itself) and what the target receives, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update

from mission_control.base.config import Settings
from mission_control.db.tables import jobs
from mission_control.execution.executor import ExecutionContext, execute_run
from mission_control.jobs.registry import JobRegistry
from mission_control.jobs.secrets import redact_spec, reseal_all, seal_spec
from mission_control.jobs.spec import JobSpec
from mission_control.outbound.secretbox import SecretBox, SecretUnreadable, is_sealed
from mission_control.outbound.sender import make_session
from mission_control.scheduling.claiming import create_manual_run
from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET
from tests.factories import job_body

TOKEN = "Bearer sk-live-SECRET-MARKER-0001"
API_KEY = "api-key-SECRET-MARKER-0002"
CUSTOM = "custom-SECRET-MARKER-0003"
KEY_OLD = "old-key-" + "o" * 32
KEY_NEW = "new-key-" + "n" * 32
RETRY = {"max_attempts": 1, "backoff_s": 0, "backoff_max_s": 0, "jitter": 0}


def secret_job(url: str = "https://billing.internal/x", **headers: str) -> dict:
    return job_body(
        target={
            "url": url,
            "headers": headers
            or {"Authorization": TOKEN, "X-Api-Key": API_KEY, "X-Vault": CUSTOM, "X-Team": "b"},
            "secret_headers": ["x-vault"],
        },
        schedule={"every_s": 3600},
        retry=RETRY,
    )


def stored_target(engine, name: str = "nightly-report") -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(jobs.c.target).where(jobs.c.name == name)).scalar_one())


def no_marker_in(text: str) -> None:
    assert "SECRET-MARKER" not in text


REDACTED = {"Authorization": "****", "X-Api-Key": "****", "X-Vault": "****", "X-Team": "b"}


def test_no_answer_echoes_a_secret_header(api):
    put = api.put("/api/v1/jobs/nightly-report", json=secret_job())
    assert put.status_code == 201, put.get_json()
    assert put.get_json()["target"]["headers"] == REDACTED
    assert put.get_json()["target"]["secret_headers"] == ["x-vault"]
    no_marker_in(put.get_data(as_text=True))

    got = api.get("/api/v1/jobs/nightly-report")
    assert got.get_json()["target"]["headers"] == REDACTED
    listed = api.get("/api/v1/jobs")
    assert listed.get_json()["jobs"][0]["target"]["headers"] == REDACTED
    patched = api.patch("/api/v1/jobs/nightly-report", json={"timeout_s": 5})
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["target"]["headers"] == REDACTED
    for answer in (got, listed, patched, api.post("/api/v1/jobs/nightly-report/pause")):
        no_marker_in(answer.get_data(as_text=True))


def test_the_stored_row_holds_no_plaintext(api, engine):
    assert api.put("/api/v1/jobs/nightly-report", json=secret_job()).status_code == 201
    target = stored_target(engine)
    no_marker_in(json.dumps(target))
    headers = target["headers"]
    assert all(is_sealed(headers[name]) for name in ("Authorization", "X-Api-Key", "X-Vault"))
    assert headers["X-Team"] == "b"


def test_putting_back_what_was_read_keeps_every_secret_and_changes_nothing(api, engine):
    assert api.put("/api/v1/jobs/nightly-report", json=secret_job()).status_code == 201
    read = api.get("/api/v1/jobs/nightly-report").get_json()
    before = stored_target(engine)
    body = {key: read[key] for key in JobSpec.model_fields if key in read}

    again = api.put("/api/v1/jobs/nightly-report", json=body)

    assert again.status_code == 200, again.get_json()
    assert again.get_json()["revision"] == read["revision"]
    assert stored_target(engine) == before


def test_putting_the_same_plaintext_again_is_still_a_no_op(api, engine):
    first = api.put("/api/v1/jobs/nightly-report", json=secret_job()).get_json()
    again = api.put("/api/v1/jobs/nightly-report", json=secret_job()).get_json()
    assert again["revision"] == first["revision"]


def test_a_placeholder_with_nothing_stored_is_refused(api):
    answer = api.put("/api/v1/jobs/nightly-report", json=secret_job(Authorization="****"))
    assert answer.status_code == 422
    assert answer.get_json()["error"]["field"] == "target.headers"


def test_a_client_cannot_send_a_sealed_value(api):
    answer = api.put("/api/v1/jobs/nightly-report", json=secret_job(Authorization="mc-sealed:v1:gAAAA"))
    assert answer.status_code == 422


def test_secret_headers_must_be_header_names(api):
    body = secret_job()
    body["target"]["secret_headers"] = ["not a header"]
    assert api.put("/api/v1/jobs/nightly-report", json=body).status_code == 422


@pytest.fixture
def settings() -> Settings:
    return Settings(admin_token=ADMIN_TOKEN, signing_secret=SIGNING_SECRET, response_excerpt_bytes=1024)


def fire(engine, clock, settings: Settings, name: str = "nightly-report") -> str:
    clock.advance(1)  # one manual run per instant
    session = make_session()
    try:
        ctx = ExecutionContext(engine=engine, clock=clock, settings=settings, session=session)
        return execute_run(create_manual_run(engine, name, clock.now()), ctx)
    finally:
        session.close()


def test_a_trigger_sends_the_real_values_kept_through_round_trips(api, engine, clock, target, settings):
    assert api.put("/api/v1/jobs/nightly-report", json=secret_job(f"{target.url}/ok")).status_code == 201
    read = api.get("/api/v1/jobs/nightly-report").get_json()
    api.put("/api/v1/jobs/nightly-report", json={key: read[key] for key in JobSpec.model_fields})
    # PATCH merges headers: "****" keeps Authorization, X-Api-Key changes, X-Vault is dropped.
    patch = {"target": {"headers": {"Authorization": "****", "X-Api-Key": "new-api-key", "X-Team": "b"}}}
    assert api.patch("/api/v1/jobs/nightly-report", json=patch).status_code == 200

    assert fire(engine, clock, settings) == "succeeded"

    [request] = target.requests_to("/ok")
    assert request.headers["Authorization"] == TOKEN
    assert request.headers["X-Api-Key"] == "new-api-key"
    assert "X-Vault" not in request.headers
    no_marker_in(json.dumps(api.get("/api/v1/runs").get_json()))


def test_a_job_stored_with_plaintext_secrets_is_hidden_at_once_and_sealed_by_the_command(
    api, engine, clock, target, settings
):
    legacy = JobSpec.model_validate(secret_job(f"{target.url}/ok"))
    JobRegistry(engine, clock).put(JobSpec.model_validate(job_body(schedule={"every_s": 3600})))
    with engine.begin() as conn:  # as a version before sealing wrote it
        conn.execute(update(jobs).values(target=legacy.target.model_dump(mode="json")))
    assert TOKEN in json.dumps(stored_target(engine))

    assert api.get("/api/v1/jobs/nightly-report").get_json()["target"]["headers"] == REDACTED
    assert reseal_all(engine, SecretBox.from_settings(settings)) == 1

    no_marker_in(json.dumps(stored_target(engine)))
    assert fire(engine, clock, settings) == "succeeded"
    assert target.requests_to("/ok")[0].headers["X-Vault"] == CUSTOM


def test_a_key_rotation_end_to_end(engine, clock, target, settings):
    old = settings.model_copy(update={"encryption_keys": (KEY_OLD,)})
    both = settings.model_copy(update={"encryption_keys": (KEY_NEW, KEY_OLD)})
    new_only = settings.model_copy(update={"encryption_keys": (KEY_NEW,)})
    JobRegistry(engine, clock, SecretBox.from_settings(old)).put(
        JobSpec.model_validate(secret_job(f"{target.url}/ok"))
    )
    sealed_with_old = stored_target(engine)["headers"]["Authorization"]

    # 1. the new key goes first (the old one still decrypts), 2. the command re-seals everything.
    assert fire(engine, clock, both) == "succeeded"
    assert reseal_all(engine, SecretBox.from_settings(both)) == 1
    assert stored_target(engine)["headers"]["Authorization"] != sealed_with_old

    # 3. the old key is dropped: everything still opens with the new one alone, nothing with the old.
    assert fire(engine, clock, new_only) == "succeeded"
    assert [r.headers["Authorization"] for r in target.requests_to("/ok")] == [TOKEN, TOKEN]
    with pytest.raises(SecretUnreadable):
        SecretBox((KEY_OLD,), None).open_value(stored_target(engine)["headers"]["Authorization"])


def test_a_secret_no_key_opens_fails_the_run_without_showing_it(engine, clock, target, settings):
    JobRegistry(engine, clock, SecretBox((KEY_OLD,), None)).put(
        JobSpec.model_validate(secret_job(f"{target.url}/ok"))
    )
    other = settings.model_copy(update={"encryption_keys": (KEY_NEW,), "signing_secret": "x" * 40})
    assert fire(engine, clock, other) == "failed"
    assert target.requests_to("/ok") == []


def test_redact_spec_never_carries_a_secret():
    box = SecretBox((KEY_NEW,), None)
    spec = JobSpec.model_validate(secret_job())
    for each in (spec, seal_spec(spec, None, box)):
        redacted = redact_spec(each)
        assert redacted["target"]["headers"] == REDACTED
        no_marker_in(json.dumps(redacted))
        assert "mc-sealed" not in json.dumps(redacted)


def test_mc_secret_key_is_read_and_mc_encryption_key_still_is():
    signing = {"MC_SIGNING_SECRET": SIGNING_SECRET}
    assert Settings.from_env({**signing, "MC_SECRET_KEY": f"{KEY_NEW},{KEY_OLD}"}).encryption_keys == (
        KEY_NEW,
        KEY_OLD,
    )
    assert Settings.from_env({**signing, "MC_ENCRYPTION_KEY": KEY_OLD}).encryption_keys == (KEY_OLD,)
    both = {**signing, "MC_SECRET_KEY": KEY_NEW, "MC_ENCRYPTION_KEY": KEY_OLD}
    assert Settings.from_env(both).encryption_keys == (KEY_NEW,)


def test_the_reencrypt_command_rotates_every_stored_secret(tmp_path, clock):
    from click.testing import CliRunner

    from mission_control.cli import main
    from mission_control.db import migrate
    from mission_control.db.engine import make_engine

    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    JobRegistry(engine, clock, SecretBox((KEY_OLD,), None)).put(JobSpec.model_validate(secret_job()))
    env = {
        "MC_DATABASE_URL": url,
        "MC_SIGNING_SECRET": SIGNING_SECRET,
        "MC_SECRET_KEY": f"{KEY_NEW},{KEY_OLD}",
    }

    result = CliRunner().invoke(main, ["db", "reencrypt-secrets"], env=env)

    assert result.exit_code == 0, result.output
    assert "1 job(s)" in result.output
    no_marker_in(result.output)
    sealed = stored_target(engine)["headers"]["Authorization"]
    assert SecretBox((KEY_NEW,), None).open_value(sealed) == TOKEN
    engine.dispose()
