"""``{{ input.x }}`` and ``{{ steps.NAME.output.y }}`` in step fields: finding, checking and filling them.

Deliberately not Jinja: a step's URL, headers and body are data, and a template language that can call
methods or loop would let a registered definition run code on a worker. A reference is a dotted path
into the mission's input, an earlier step's output, or ``mission.id``; nothing else.

A string that is exactly one reference takes the referenced value as it is (a number stays a number,
an object an object); references inside a longer string are replaced by their text (JSON for
non-strings).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

_REFERENCE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_WHOLE = re.compile(r"^\{\{\s*([^{}]*?)\s*\}\}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")


class TemplateError(ValueError):
    """A reference that cannot be read, or cannot be filled with what the mission holds."""


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


def render(value: Any, scope: Mapping[str, Any]) -> Any:
    """Fill every reference in ``value`` from ``scope`` (keys ``input``, ``steps``, ``mission``)."""
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole:
            return _lookup(whole.group(1), scope)
        return _REFERENCE.sub(lambda m: _as_text(_lookup(m.group(1), scope)), value)
    if isinstance(value, list):
        return [render(item, scope) for item in value]
    if isinstance(value, dict):
        return {key: render(item, scope) for key, item in value.items()}
    return value


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
