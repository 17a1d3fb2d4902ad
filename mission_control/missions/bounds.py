"""How much user data the mission engine will hold, build or record at once, and how it measures that.

A definition is small, but what it makes the engine do need not be: templates copy step outputs and
input into requests (a reference repeated a few hundred times turned a 17 kB definition into a
200 MB request), and exception texts can carry whatever a library had in hand (a payload, a fetched
document). Everything that ends up in a request, a mission document or a log is measured or cut here.

:func:`json_size` is hand-written rather than ``len(json.dumps(value))`` on purpose: it stops walking
as soon as the size passes the bound, so measuring a value never costs more memory than the bound
itself, and it walks with an explicit stack, so deep nesting cannot exhaust Python's.
"""

from __future__ import annotations

import json
from typing import Any

#: Error messages recorded in attempts, history, mission errors and API answers.
MAX_MESSAGE_CHARS = 500
#: One template once filled in: a string holding references, or the value a whole-string reference
#: stands for (the default step output limit is 256 KiB, so a whole output still fits).
MAX_TEMPLATE_CHARS = 512 * 1024
#: A step's whole request once filled in: URL, header names and values, and body (or a call's args).
MAX_REQUEST_CHARS = 1024 * 1024
#: A step's URL once filled in (most servers refuse longer request lines anyway).
MAX_URL_CHARS = 8 * 1024


def bounded(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying that it was cut."""
    if len(text) <= limit:
        return text
    marker = "… (truncated)"
    return text[: max(limit - len(marker), 0)] + marker


def json_size(value: Any, limit: int) -> int:
    """Characters of ``value`` as compact JSON, or any number above ``limit`` once it is past it."""
    total = 0
    stack: list[Any] = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += _string_size(item, limit - total)
        elif isinstance(item, dict):
            total += 2 + max(len(item) - 1, 0) + len(item)  # braces, commas, colons
            for key, child in item.items():
                if total > limit:
                    break
                total += _string_size(str(key), limit - total)
                stack.append(child)
        elif isinstance(item, list | tuple):
            total += 2 + max(len(item) - 1, 0)  # brackets and commas: past the limit, no need to look
            if total <= limit:
                stack.extend(item)
        else:  # numbers, booleans, null
            try:
                total += len(json.dumps(item))
            except (TypeError, ValueError):  # not JSON, or an integer too long to print: too large
                total += limit + 1
    return total


def _string_size(text: str, room: int) -> int:
    if len(text) + 2 > room:  # escapes only make it longer: no need to encode it to know
        return len(text) + 2
    return len(json.dumps(text, ensure_ascii=False))
