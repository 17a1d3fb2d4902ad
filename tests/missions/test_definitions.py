"""Definitions: what the builder and the API accept, and the field named when they refuse."""

from __future__ import annotations

from typing import Any

import pytest

from mission_control.missions import DefinitionError, mission, parse_definition, templates


def steps(*items: dict[str, Any]) -> dict[str, Any]:
    return {"name": "m", "steps": list(items)}


HTTP = {"name": "a", "kind": "http", "url": "http://svc.test/a"}


def test_builder_and_json_produce_the_same_definition() -> None:
    built = (
        mission("approval")
        .start(input_schema={"type": "object"})
        .http("send-email", url="http://mail.test/send", retry={"max_attempts": 3, "backoff_s": 1})
        .wait_for("receive-approval", schema={"type": "object"}, timeout_s=86_400)
        .sleep("cool-off", seconds=60)
        .http("archive", url="http://archive.test/{{ steps.send-email.output.id }}")
        .end()
    )
    assert parse_definition(built.as_json()) == built
    assert built.as_json()["steps"][1]["schema"] == {"type": "object"}


@pytest.mark.parametrize(
    ("definition", "field", "words"),
    [
        (steps(HTTP, {**HTTP}), "steps.1.name", "used twice"),
        (steps({**HTTP, "name": "input"}), "steps.0.name", "reserved"),
        (steps({"name": "s", "kind": "sleep", "seconds": -1}), "steps.0.seconds", "greater than or equal"),
        (steps({"name": "s", "kind": "sleep", "seconds": float("inf")}), "steps.0.seconds", "finite"),
        (steps({"name": "s", "kind": "sleep"}), "steps.0", "exactly one of seconds or until"),
        (steps({"name": "s", "kind": "sleep", "until": "2030-01-01T00:00:00"}), "steps.0", "offset"),
        (steps({"name": "w", "kind": "wait_for", "timeout_s": 0}), "steps.0.timeout_s", "greater than"),
        (steps({**HTTP, "retry": {"max_attempts": 0}}), "steps.0.retry.max_attempts", "greater than"),
        (steps({**HTTP, "retry": {"multiplier": 0.5}}), "steps.0.retry.multiplier", "greater than"),
        (
            steps({**HTTP, "retry": {"backoff_s": 10, "backoff_max_s": 5}}),
            "steps.0.retry",
            "must not be below",
        ),
        (steps({**HTTP, "retry": {"tries": 3}}), "steps.0.retry.tries", "unknown field"),
        (
            steps({**HTTP, "url": "http://x/{{ steps.later.output }}"}, {**HTTP, "name": "later"}),
            "steps.0.url",
            "not an earlier step",
        ),
        (
            steps({**HTTP, "body": {"k": "{{ steps.nowhere.output.id }}"}}),
            "steps.0.body",
            "not an earlier step",
        ),
        (steps({**HTTP, "body": "{{ env.HOME }}"}), "steps.0.body", "must start with"),
        (steps({**HTTP, "url": "ftp://x"}), "steps.0", "http"),
        (steps({**HTTP, "headers": {"Host": "evil"}}), "steps.0", "cannot be set"),
        (
            steps({"name": "w", "kind": "wait_for", "schema": {"type": "nonsense"}}),
            "steps.0.schema",
            "JSON Schema",
        ),
        ({"name": "m", "input_schema": {"type": 5}, "steps": [HTTP]}, "input_schema", "JSON Schema"),
        (steps({"name": "x", "kind": "teleport"}), "steps.0", "kind must be one of"),
        ({"name": "m", "steps": []}, "steps", "at least 1"),
        ({"name": "Bad Name", "steps": [HTTP]}, "name", "pattern"),
        (steps({"name": "c", "kind": "call", "function": "rm -rf"}), "steps.0.function", "pattern"),
    ],
)
def test_bad_definitions_are_refused_naming_the_field(
    definition: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(definition)
    assert caught.value.field == field, caught.value.details
    assert words in caught.value.message


def test_builder_end_validates() -> None:
    with pytest.raises(DefinitionError) as caught:
        mission("m").http("a", url="http://x").http("a", url="http://y").end()
    assert caught.value.field == "steps.1.name"


@pytest.mark.parametrize(
    ("template", "scope", "expected"),
    [
        ("{{ input.n }}", {"input": {"n": 3}}, 3),
        ("n={{ input.n }}", {"input": {"n": 3}}, "n=3"),
        ("{{input}}", {"input": [1]}, [1]),
        ("{{ steps.a.b-c.output.x.0 }}", {"steps": {"a.b-c": {"x": ["first"]}}}, "first"),
        ("{{ mission.id }}/{{ input.s }}", {"mission": {"id": "m1"}, "input": {"s": "t"}}, "m1/t"),
        ({"k": ["{{ input.o }}"]}, {"input": {"o": {"a": 1}}}, {"k": [{"a": 1}]}),
    ],
)
def test_templates_render(template: Any, scope: dict[str, Any], expected: Any) -> None:
    assert templates.render(template, scope) == expected


def test_templates_name_what_is_missing() -> None:
    with pytest.raises(templates.TemplateError, match="'id'"):
        templates.render("{{ input.id }}", {"input": {}})
    with pytest.raises(templates.TemplateError, match="no output yet"):
        templates.render("{{ steps.a.output }}", {"steps": {}})
