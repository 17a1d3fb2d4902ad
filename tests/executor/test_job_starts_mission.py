"""A job whose target is a mission: each run starts one, idempotently, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from mission_control.base.config import Settings
from mission_control.db.tables import attempts, missions, runs
from mission_control.execution.executor import ExecutionContext, execute_run
from mission_control.jobs.registry import JobRegistry
from mission_control.jobs.spec import JobSpec
from mission_control.missions import mission
from mission_control.missions.store import MissionStore
from mission_control.outbound.sender import make_session
from mission_control.scheduling.claiming import create_manual_run
from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET
from tests.factories import job_body, job_spec


@pytest.fixture
def sent() -> list[str]:
    return []


@pytest.fixture
def ctx(engine, clock, sent):
    settings = Settings(admin_token=ADMIN_TOKEN, signing_secret=SIGNING_SECRET)
    session = make_session()
    yield ExecutionContext(
        engine=engine, clock=clock, settings=settings, session=session, enqueue_missions=sent.extend
    )
    session.close()


def run_row(engine, run_id):
    with engine.connect() as conn:
        run = conn.execute(select(runs).where(runs.c.id == run_id)).one()
        tries = conn.execute(select(attempts).where(attempts.c.run_id == run_id)).all()
    return run, tries


def test_a_run_starts_its_mission_once(engine, clock, ctx, sent):
    store = MissionStore(engine, clock)
    store.put_definition(
        mission("nightly-close").start(input_schema={"type": "object", "required": ["ledger"]})
        .http("close", url="http://ledger.test/close").end()
    )  # fmt: skip
    registry = JobRegistry(engine, clock)
    registry.put(
        job_spec(
            "close-books", target={"mission": {"definition": "nightly-close", "input": {"ledger": "eu"}}}
        )
    )
    run_id = create_manual_run(engine, "close-books", clock.now())
    assert execute_run(run_id, ctx) == "succeeded"
    mission_id = f"close-books:{run_id}"
    doc = store.get(mission_id)
    assert doc["input"] == {"ledger": "eu"} and doc["status"] == "running"
    assert sent == [mission_id]
    _, tries = run_row(engine, run_id)
    assert tries[0].http_status == 201
    assert json.loads(tries[0].response_excerpt) == {"id": mission_id, "status": "running"}

    # A second attempt of the same run (its worker lost after the start) finds the mission, starts none.
    from mission_control.execution.executor import start_mission_for_run

    again = start_mission_for_run("close-books", run_id, registry.get("close-books").spec.target.mission, ctx)
    assert again.status == 200 and json.loads(again.excerpt or "")["id"] == mission_id
    assert len(store.list()[0]) == 1


def test_a_mission_started_by_a_job_belongs_to_the_jobs_service(engine, clock, ctx):
    store = MissionStore(engine, clock)
    store.put_definition(mission("payout").start().sleep("wait", seconds=60).end())
    JobRegistry(engine, clock).put(
        job_spec("pay-out", service="payments", target={"mission": {"definition": "payout"}})
    )
    run_id = create_manual_run(engine, "pay-out", clock.now())
    assert execute_run(run_id, ctx) == "succeeded"
    mission_id = f"pay-out:{run_id}"
    with engine.connect() as conn:
        assert (
            conn.execute(select(missions.c.service).where(missions.c.id == mission_id)).scalar() == "payments"
        )
    # so a listing for the payments service holds it, and one for billing does not
    assert [m["id"] for m in store.list(service="payments")[0]] == [mission_id]
    assert store.list(service="billing")[0] == []


def test_a_missing_definition_or_bad_input_fails_the_run_at_once(engine, clock, ctx):
    store = MissionStore(engine, clock)
    store.put_definition(
        mission("strict")
        .start(input_schema={"type": "object", "required": ["x"]})
        .sleep("s", seconds=1)
        .end()
    )
    registry = JobRegistry(engine, clock)
    registry.put(job_spec("no-definition", target={"mission": {"definition": "nowhere"}}))
    registry.put(job_spec("bad-input", target={"mission": {"definition": "strict", "input": {}}}))
    for name, words in (("no-definition", "no mission definition named 'nowhere'"), ("bad-input", "input")):
        run_id = create_manual_run(engine, name, clock.now())
        assert execute_run(run_id, ctx) == "failed"
        _, tries = run_row(engine, run_id)
        assert len(tries) == 1 and tries[0].http_status == 422
        assert words in tries[0].response_excerpt


@pytest.mark.parametrize(
    "target",
    [
        {"mission": {"definition": "x"}, "url": "http://x.test"},
        {"mission": {"definition": "x"}, "body": {"a": 1}},
        {},
    ],
)
def test_a_target_is_a_request_or_a_mission_not_both(target):
    with pytest.raises(ValueError, match=r"url|mission"):
        JobSpec.model_validate(job_body("j", target=target))
