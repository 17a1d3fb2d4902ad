"""``{{ input.x }}`` and ``{{ steps.NAME.output.y }}`` in step fields: finding, checking and filling them.

Deliberately not Jinja: a step's URL, headers and body are data, and a template language that can call
methods or loop would let a registered definition run code on a worker. A reference is a dotted path
into the mission's input, an earlier step's output, or ``mission.id``; nothing else.

A string that is exactly one reference takes the referenced value as it is (a number stays a number,
an object an object); references inside a longer string are replaced by their text (JSON for
non-strings).

Filling in is bounded: every template's result, and everything one :class:`Budget` is spent on (a
step's whole request), is measured before it is built (see :mod:`mission_control.missions.bounds`),
so references repeated or nested to blow a request up stop at the bound with
:class:`TemplateTooLarge` instead of filling a worker's memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from mission_control.missions.bounds import MAX_TEMPLATE_CHARS, json_size

_REFERENCE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_WHOLE = re.compile(r"^\{\{\s*([^{}]*?)\s*\}\}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")


class TemplateError(ValueError):
    """A reference that cannot be read, or cannot be filled with what the mission holds."""


class TemplateTooLarge(TemplateError):
    """Filling the templates in would build more than the bound allows; nothing past it was built."""


class Budget:
    """Characters (of compact JSON) that one rendering may produce in all, literal parts included."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.what = what
        self.used = 0

    @property
    def room(self) -> int:
        return self.limit - self.used

    def spend(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise TemplateTooLarge(
                f"{self.what} would be larger than {self.limit} characters once its templates are filled in"
            )


def references(value: Any) -> Iterator[str]:
    """Every reference path in a JSON value (strings inside lists and objects included)."""
    if isinstance(value, str):
        for match in _REFERENCE.finditer(value):
            yield match.group(1)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from references(item)


def parse(path: str) -> tuple[str, list[str]]:
    """Split ``steps.send-email.output.id`` into its root and keys; refuse what is not a reference.

    Step names may contain dots and dashes, so ``steps`` paths are read as ``steps.<name>.output``
    followed by keys, where ``<name>`` is everything before the ``.output`` that follows it.
    """
    if not path:
        raise TemplateError("empty reference {{ }}")
    if path == "mission.id":
        return "mission", ["id"]
    if path == "input" or path.startswith("input."):
        keys = path.split(".")[1:]
        _check_keys(path, keys)
        return "input", keys
    if path.startswith("steps."):
        rest = path[len("steps.") :]
        marker = rest.find(".output")
        while marker != -1 and not (len(rest) == marker + 7 or rest[marker + 7] == "."):
            marker = rest.find(".output", marker + 1)
        if marker <= 0:
            raise TemplateError(f"{{{{ {path} }}}} must read steps.<step name>.output[.key…]")
        name = rest[:marker]
        keys = rest[marker + len(".output") :].split(".")[1:]
        _check_keys(path, keys)
        return "steps", [name, *keys]
    raise TemplateError(f"{{{{ {path} }}}} must start with input, steps.<step name>.output or mission.id")


def _check_keys(path: str, keys: list[str]) -> None:
    for key in keys:
        if not key or not _SEGMENT.match(key):
            raise TemplateError(f"{{{{ {path} }}}} has an empty or invalid key")


def render(
    value: Any,
    scope: Mapping[str, Any],
    budget: Budget | None = None,
    *,
    template_limit: int = MAX_TEMPLATE_CHARS,
) -> Any:
    """Fill every reference in ``value`` from ``scope`` (keys ``input``, ``steps``, ``mission``).

    Raises :class:`TemplateTooLarge` when one template would fill in to more than ``template_limit``
    characters or the whole of ``value`` to more than ``budget`` allows (by default the template
    limit); sizes are measured before anything is copied, so memory stays within the bounds.
    """
    if budget is None:
        budget = Budget(template_limit, "the value")
    return _render(value, scope, budget, template_limit)


def _render(value: Any, scope: Mapping[str, Any], budget: Budget, template_limit: int) -> Any:
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole:
            found = _lookup(whole.group(1), scope)
            size = json_size(found, min(template_limit, budget.room))
            _check_template(f"{{{{ {whole.group(1)} }}}}", size, template_limit)
            budget.spend(size)
            return found
        if _REFERENCE.search(value) is None:
            budget.spend(json_size(value, budget.room))
            return value
        return _fill(value, scope, budget, template_limit)
    if isinstance(value, list):
        budget.spend(2 + max(len(value) - 1, 0))
        return [_render(item, scope, budget, template_limit) for item in value]
    if isinstance(value, dict):
        budget.spend(2 + max(len(value) - 1, 0) + len(value))
        rendered = {}
        for key, item in value.items():
            budget.spend(json_size(key, budget.room))
            rendered[key] = _render(item, scope, budget, template_limit)
        return rendered
    budget.spend(json_size(value, budget.room))
    return value


def _fill(text: str, scope: Mapping[str, Any], budget: Budget, template_limit: int) -> str:
    """References inside a longer string, replaced by their text; sizes checked before joining."""
    pieces: list[str] = []
    size = 2  # the quotes around it, as it goes out in JSON
    last = 0
    first = ""
    for match in _REFERENCE.finditer(text):
        first = first or match.group(1)
        literal = text[last : match.start()]
        found = _lookup(match.group(1), scope)
        room = min(template_limit, budget.room) - size - len(literal)
        found_size = len(found) if isinstance(found, str) else json_size(found, room)
        size += len(literal) + found_size
        _check_template(f"a string holding {{{{ {match.group(1)} }}}}", size, template_limit)
        if size > budget.room:
            budget.spend(size)  # past the budget already: raises before anything is joined
        pieces.append(literal)
        pieces.append(_as_text(found))
        last = match.end()
    pieces.append(text[last:])
    rendered = "".join(pieces)
    final = json_size(rendered, min(template_limit, budget.room))
    _check_template(f"a string holding {{{{ {first} }}}}", final, template_limit)
    budget.spend(final)
    return rendered


def _check_template(what: str, size: int, limit: int) -> None:
    if size > limit:
        raise TemplateTooLarge(f"{what} fills in to more than {limit} characters")


def _lookup(path: str, scope: Mapping[str, Any]) -> Any:
    root, keys = parse(path)
    if root == "steps":
        name, keys = keys[0], keys[1:]
        outputs = scope.get("steps", {})
        if name not in outputs:
            raise TemplateError(f"{{{{ {path} }}}}: step {name!r} has no output yet")
        current = outputs[name]
    else:
        current = scope.get(root)
    for key in keys:
        if isinstance(current, Mapping) and key in current:
            current = current[key]
        elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            raise TemplateError(f"{{{{ {path} }}}}: no {key!r} there")
    return current


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
