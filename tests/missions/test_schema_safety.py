"""User JSON Schemas and templates cannot reach outside, stall a process or blow a request up.

Security issue 13: a ``$ref`` made the worker fetch any URL or file (past the outbound policy) and
copy the document into the run's error; a ``pattern`` backtracked exponentially; templates repeated
and nested built a 200 MB request from a 17 kB definition. A local server on 127.0.0.2, denied by the
outbound policy, stands for every forbidden address: it must never be asked anything.
"""

from __future__ import annotations

import ipaddress
import json
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mission_control.base.config import Settings
from mission_control.db.tables import attempts
from mission_control.execution.executor import ExecutionContext, execute_run
from mission_control.jobs.registry import JobRegistry
from mission_control.missions import DefinitionError, machine, mission, parse_definition
from mission_control.missions.callables import StepFailed
from mission_control.missions.definition import MissionDefinition, schema_errors
from mission_control.missions.machine import PayloadInvalid
from mission_control.missions.store import MissionStore
from mission_control.outbound.sender import make_session
from mission_control.scheduling.claiming import create_manual_run
from tests.conftest import ADMIN_TOKEN, SIGNING_SECRET
from tests.factories import job_spec
from tests.missions.conftest import Targets
from tests.targets import SECRET, ForbiddenServer

# The contract (mission_control.missions.bounds), pinned here.
MAX_MESSAGE_CHARS = 500
MAX_REQUEST_CHARS = 1024 * 1024
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.json"
    path.write_text(json.dumps({"secret": SECRET}))
    return path


SLEEP = {"name": "nap", "kind": "sleep", "seconds": 1}


def with_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": "m", "input_schema": schema, "steps": [SLEEP]}


def with_step_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": "m", "steps": [SLEEP, {"name": "w", "kind": "wait_for", "schema": schema}]}


def remote_cases(base: str, file_url: str) -> list[tuple[dict[str, Any], str]]:
    return [
        (with_input_schema({"$ref": f"{base}/secret#/nowhere"}), "input_schema.$ref"),
        (with_input_schema({"$ref": file_url}), "input_schema.$ref"),
        (with_input_schema({"$ref": f"{file_url}#/secret"}), "input_schema.$ref"),
        (
            with_step_schema({"properties": {"x": {"$ref": f"{base}/x"}}}),
            "steps.1.schema.properties.x.$ref",
        ),
        (with_input_schema({"items": {"$ref": f"{base}/items"}}), "input_schema.items.$ref"),
        (with_input_schema({"$defs": {"a": {"$ref": f"{base}/defs"}}}), "input_schema.$defs.a.$ref"),
        (with_input_schema({"allOf": [{}, {"$ref": f"{base}/all"}]}), "input_schema.allOf.1.$ref"),
        (with_input_schema({"$dynamicRef": f"{base}/dyn"}), "input_schema.$dynamicRef"),
        (with_step_schema({"$schema": f"{base}/meta"}), "steps.1.schema.$schema"),
        # A relative reference under a remote $id resolves to that remote base.
        (with_input_schema({"$id": f"{base}/root", "$ref": "other"}), "input_schema.$ref"),
        # Hidden where no schema is expected, then made a schema by a JSON pointer.
        (with_input_schema({"$ref": "#/const", "const": {"$ref": f"{base}/c"}}), "input_schema.const.$ref"),
        (with_input_schema({"x-note": {"$ref": "//127.0.0.2/x"}}), "input_schema.x-note.$ref"),
    ]


def test_references_outside_the_schema_are_refused_where_they_are(
    forbidden: ForbiddenServer, secret_file: Path
) -> None:
    for definition, field in remote_cases(forbidden.base, secret_file.as_uri()):
        with pytest.raises(DefinitionError) as caught:
            parse_definition(definition)
        assert caught.value.field == field, (definition, caught.value)
        assert SECRET not in str(caught.value)
    assert forbidden.requests == []


def test_local_references_ids_and_anchors_still_work(forbidden: ForbiddenServer) -> None:
    schema = {
        "$id": f"{forbidden.base}/schemas/order",  # a remote base is only a name: nothing is retrieved
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "item": {"$ref": "#/$defs/item"},
            "code": {"$ref": "#code"},
            "$ref": {"type": "string"},  # a property named $ref is no reference
        },
        "$defs": {
            "item": {"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"}}},
            "code": {"$anchor": "code", "type": "string", "pattern": "^[A-Z]{3}$"},
        },
    }
    definition = parse_definition(with_input_schema(schema))
    assert schema_errors(definition.input_schema, {"item": {"sku": "a"}, "code": "ABC", "$ref": "x"}) == []
    assert schema_errors(definition.input_schema, {"item": {}, "code": "abc"}) == [
        ("code", '"abc" does not match "^[A-Z]{3}$"'),
        ("item", '"sku" is a required property'),
    ]
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]}
    parse_definition(with_input_schema(draft7))
    assert forbidden.requests == []


def test_a_stored_remote_reference_is_never_retrieved_nor_quoted_when_a_job_starts_it(
    engine: Any, clock: Any, forbidden: ForbiddenServer, secret_file: Path
) -> None:
    """Definitions stored before the check: compiled offline, the run fails with a short message."""
    store = MissionStore(engine, clock)
    registry = JobRegistry(engine, clock)
    refs = {
        "by-url": f"{forbidden.base}/secret#/nowhere",
        "by-file": f"{secret_file.as_uri()}#/nowhere",
        "by-meta": None,
    }
    for name, ref in refs.items():
        schema = {"$ref": ref} if ref else {"$schema": f"{forbidden.base}/meta"}
        # What a database written before this fix may hold: no check_definition on the way in.
        store.put_definition(MissionDefinition.model_validate(with_input_schema(schema) | {"name": name}))
        registry.put(job_spec(f"start-{name}", target={"mission": {"definition": name, "input": {}}}))
    settings = Settings(
        admin_token=ADMIN_TOKEN,
        signing_secret=SIGNING_SECRET,
        outbound_deny=(ipaddress.ip_network("127.0.0.2/32"),),
    )
    session = make_session()
    ctx = ExecutionContext(engine=engine, clock=clock, settings=settings, session=session)
    try:
        for name in refs:
            run_id = create_manual_run(engine, f"start-{name}", clock.now())
            assert execute_run(run_id, ctx) == "failed", name
            with engine.connect() as conn:
                row = conn.execute(select(attempts).where(attempts.c.run_id == run_id)).one()
            recorded = f"{row.response_excerpt} {row.error_message}"
            assert row.http_status == 422, recorded
            assert "schema cannot be used" in recorded, recorded
            assert SECRET not in recorded and len(row.response_excerpt) < 2 * MAX_MESSAGE_CHARS
    finally:
        session.close()
    assert forbidden.requests == []


HOSTILE = ["^(a|a)*$", "^(a+)+$", "^(a|aa)*$", r"^(\w+\s?)*$"]


@pytest.mark.timeout(30, method="signal")  # a backtracking engine would run for years
@pytest.mark.parametrize("pattern", HOSTILE)
def test_hostile_patterns_match_in_linear_time(pattern: str) -> None:
    attack = "a" * 5000 + "!"
    definition = parse_definition(
        with_step_schema(
            {
                "type": "object",
                "properties": {"text": {"type": "string", "pattern": pattern}},
                "patternProperties": {pattern: {"type": "integer"}},
            }
        )
    )
    schema = definition.steps[1].schema_  # type: ignore[union-attr]
    problems = schema_errors(schema, {"text": attack, attack: 1, "a" * 5000: "not an integer"})
    fields = [field for field, _ in problems]
    assert "text" in fields and "a" * 5000 in fields
    assert all(len(message) <= MAX_MESSAGE_CHARS for _, message in problems)
    # format: regex checks a payload's string is a pattern; hostile ones are only parsed, never run.
    assert schema_errors({"format": "regex"}, pattern * 200) == []
    assert schema_errors({"format": "regex"}, "(unclosed")[0][0] == ""


def test_patterns_a_linear_engine_cannot_run_are_refused_naming_the_schema() -> None:
    for schema in ({"pattern": "(?=a)b"}, {"patternProperties": {"(a)\\1": {}}}):
        with pytest.raises(DefinitionError) as caught:
            parse_definition(with_input_schema(schema))
        assert caught.value.field == "input_schema"
        assert "linear-time engine" in caught.value.message


def test_payload_messages_are_bounded() -> None:
    definition = parse_definition(with_input_schema({"type": "string", "pattern": "^a+$"}))
    with pytest.raises(PayloadInvalid) as caught:
        machine.create(definition, 1, "m-1", "b" * 100_000, T0)
    assert caught.value.field == "input" and len(caught.value.message) <= MAX_MESSAGE_CHARS


def blob_definition(body: Any) -> MissionDefinition:
    return mission("blow-up").http("send", url="http://svc.test/x", body=body).end()


def test_repeated_references_stop_at_the_request_bound_without_building_it() -> None:
    blob = "x" * 64 * 1024
    body = {"whole": ["{{ input.blob }}"] * 400, "text": ["<{{ input.blob }}>"] * 400}
    doc = machine.create(blob_definition(body), 1, "m-big", {"blob": blob}, T0)
    tracemalloc.start()
    try:
        request = machine.begin_attempt(doc, blob_definition(body), T0, "worker", 10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert request is None
    assert peak < 8 * MAX_REQUEST_CHARS, peak  # the request would be 52 MB
    assert doc["status"] == "failed" and doc["error"]["code"] == "request_too_large"
    assert str(MAX_REQUEST_CHARS) in doc["error"]["message"]
    assert [a["error"]["code"] for a in doc["attempts"]] == ["request_too_large"]


@pytest.mark.parametrize(
    ("fields", "blob", "words"),
    [
        ({"url": "http://svc.test/{{ input.blob }}"}, 10_000, "URL of step 'send' would be longer than 8192"),
        (
            {"headers": {"X-A": "{{ input.blob }}", "X-B": "{{ input.blob }}", "X-C": "{{ input.blob }}"}},
            400_000,
            "the request of step 'send' would be larger than 1048576 characters",
        ),
        ({"body": "{{ input.blob }}" * 40}, 20_000, "fills in to more than 524288 characters"),
    ],
)
def test_each_part_of_a_request_is_bounded(fields: dict[str, Any], blob: int, words: str) -> None:
    definition = mission("parts").http("send", **{"url": "http://svc.test/x", **fields}).end()
    doc = machine.create(definition, 1, "m-parts", {"blob": "y" * blob}, T0)
    assert machine.begin_attempt(doc, definition, T0, "worker", 10) is None
    assert doc["error"]["code"] == "request_too_large" and words in doc["error"]["message"]


def test_nested_blow_up_fails_the_step_at_once_not_retried(
    driver: Any, targets: Targets, functions: dict[str, Any]
) -> None:
    functions["echo"] = lambda args: args
    driver.register(
        mission("nested")
        .call("a", function="echo", args=["{{ input.blob }}"] * 10, retry={"max_attempts": 5})
        .call("b", function="echo", args=["{{ steps.a.output }}"] * 10, retry={"max_attempts": 5})
        .call("c", function="echo", args=["{{ steps.b.output }}"] * 10, retry={"max_attempts": 5})
        .end()
    )
    done = driver.start("nested", {"blob": "z" * 40_000}, id="m-nested")
    assert done["status"] == "failed", done["status"]
    assert done["error"]["code"] == "request_too_large" and done["error"]["step"] == "b"
    assert [(a["step"], a["status"]) for a in done["attempts"]] == [("a", "succeeded"), ("b", "failed")]
    assert done["waiting"] is None


def test_long_failure_messages_are_recorded_bounded(driver: Any, functions: dict[str, Any]) -> None:
    def fail(args: Any) -> Any:
        raise StepFailed("boom " + "x" * 100_000)

    functions["fail"] = fail
    driver.register(mission("loud").call("a", function="fail").end())
    done = driver.start("loud", {}, id="m-loud")
    assert done["status"] == "failed"
    assert done["error"]["message"].startswith("boom ")
    assert len(done["error"]["message"]) <= MAX_MESSAGE_CHARS
    assert len(done["attempts"][0]["error"]["message"]) <= MAX_MESSAGE_CHARS
    assert all(len(event.get("message", "")) <= MAX_MESSAGE_CHARS for event in done["history"])
